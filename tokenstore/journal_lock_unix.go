//go:build unix && !solaris && !aix

package tokenstore

import (
	"errors"
	"os"
	"syscall"
)

// lockJournal takes an exclusive lock on f without waiting. The kernel
// releases it when f is closed or the process dies, so a crash leaves no
// stale lock.
func lockJournal(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errJournalInUse
	}
	return err
}

// syncDir fsyncs the folder dir, so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
