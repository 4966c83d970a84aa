// An adapter importing the engine.
package store

import _ "example.com/m/sync"
