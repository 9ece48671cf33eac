package server

import "testing"

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"12-3456789", "••-•••6789"},
		{"000123456789", "••••••••6789"},
		{"1234", "••34"},
		{"ab12345", "•••2345"},
	}
	for _, tt := range tests {
		if got := mask(tt.in); got != tt.want {
			t.Errorf("mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
