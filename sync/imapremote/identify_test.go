package imapremote

import "testing"

func TestHeaderMessageID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Message-ID: <a@b>\r\n\r\n", "<a@b>"},
		{"message-id:   <a@b>  \r\n\r\n", "<a@b>"},
		{"Message-ID:\r\n <folded@b>\r\n\r\n", "<folded@b>"},
		{"Message-ID: <no-blank-line@b>\r\n", "<no-blank-line@b>"},
		{"\r\n", ""},
		{"", ""},
		{"Subject: x\r\n\r\n", ""},
	}
	for _, tt := range tests {
		if got := headerMessageID([]byte(tt.in)); got != tt.want {
			t.Errorf("headerMessageID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzHeaderMessageID: any server header block is read without panic.
func FuzzHeaderMessageID(f *testing.F) {
	f.Add([]byte("Message-ID: <a@b>\r\n\r\n"))
	f.Add([]byte("Message-ID:\r\n \r\n\r\n"))
	f.Add([]byte("\x00\xff: \r\n"))
	f.Fuzz(func(t *testing.T, h []byte) {
		_ = headerMessageID(h)
	})
}
