package server_test

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain quiets slog.Default, which a nil Config.Logger logs to: the
// tests provoke every error the server logs, and a test that checks a log
// line gives its server a Logger of its own.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
