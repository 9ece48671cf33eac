//go:build !unix || solaris || aix

package tokenstore

import "os"

// lockJournal does nothing where there is no flock: one server per data
// folder is then up to the operator.
func lockJournal(*os.File) error { return nil }

// syncDir does nothing: folders cannot be fsynced on these platforms, and a
// rename is as durable as they make it.
func syncDir(string) error { return nil }
