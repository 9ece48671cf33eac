//go:build failpoints

package main

import (
	"os"
	"syscall"
	"time"
)

// recoverAfterFloor lets the crash tests set -recover-after to a second, so
// that a restarted process finishes a killed one's callback at once. Their
// callbacks are short and the process is killed, so none is live when it
// is recovered; release builds keep minRecoverAfter (failpoint_off.go).
const recoverAfterFloor time.Duration = 0

// failpoint returns a hook that kills this process with SIGKILL at the
// callback point named by FINCHCONNECT_FAILPOINT ("before-exchange",
// "after-stage", "after-commit", "before-response"). It
// exists only in binaries built with -tags failpoints, for the crash tests;
// release builds have no such switch at all.
func failpoint(getenv func(string) string) func(string) {
	want := getenv("FINCHCONNECT_FAILPOINT")
	if want == "" {
		return nil
	}
	return func(name string) {
		if name == want {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way; never return
		}
	}
}
