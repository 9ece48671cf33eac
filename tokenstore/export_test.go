package tokenstore

import "os"

// SetJournalWrite replaces how j appends to its file, for the external
// tests' disk faults.
func SetJournalWrite(j *Journal, write func(f *os.File, b []byte) (int, error)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.write = write
}
