//go:build !failpoints

package main

// failpoint is compiled out of release builds: see failpoint_on.go.
func failpoint(func(string) string) func(string) { return nil }

// recoverAfterFloor is the shortest -recover-after serve accepts.
const recoverAfterFloor = minRecoverAfter
