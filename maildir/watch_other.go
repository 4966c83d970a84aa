//go:build !linux

package maildir

import "github.com/satchel-mail/satchel/sync/mail"

// Without inotify no folder is watched: NewWatcher reports
// ErrWatchUnsupported and these are never reached.

type watcher struct{}

// FolderWatch is one folder's part of a Watcher.
type FolderWatch struct{}

func newWatcher() (*watcher, error)                          { return nil, ErrWatchUnsupported }
func (*watcher) watch([]string) (*FolderWatch, error)        { return nil, ErrWatchUnsupported }
func (*watcher) close() error                                { return nil }
func (*FolderWatch) changed() (map[string]*mail.Flags, bool) { return nil, false }
func (*FolderWatch) close()                                  {}
