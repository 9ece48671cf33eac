//go:build !linux

package main

import "os"

// fileIsTerminal reports whether f is a character device other than the
// null device: the best guess without the platform's terminal ioctl.
func fileIsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
