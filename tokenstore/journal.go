package tokenstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/finchconnect/finchconnect"
)

// maxJournalRecord bounds one record, so a corrupt length cannot make
// replay allocate gigabytes.
const maxJournalRecord = 1 << 20

// Journal is a local, append-only file that holds exchanged connections the
// store could not take — during a store outage — until [Journal.Replay] puts
// them into it. Each record is sealed exactly like a staged value (see
// [Store.SealStaged]) and the file is fsynced before Hold returns, so a
// token Finch has issued survives both the outage and a crash of this
// process. It is safe for concurrent use.
type Journal struct {
	store *Store
	path  string

	mu      sync.Mutex
	f       *os.File
	pending int
}

// OpenJournal opens (creating it, mode 0600) the journal at path, for the
// connections of s. Records already in it count as pending.
func (s *Store) OpenJournal(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("tokenstore: journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: journal: %w", err)
	}
	j := &Journal{store: s, path: path, f: f}
	recs, size, err := j.read()
	if err != nil {
		f.Close()
		return nil, err
	}
	// Cut a torn tail off, so the next record starts where it should.
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("tokenstore: journal: %w", err)
	}
	j.pending = len(recs)
	return j, nil
}

// Hold appends c to the journal and fsyncs it.
func (j *Journal) Hold(c finchconnect.Connection) error {
	sealed, err := j.store.SealStaged(c)
	if err != nil {
		return err
	}
	rec := binary.BigEndian.AppendUint32(nil, uint32(len(sealed)))
	rec = append(rec, sealed...)
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(rec); err != nil {
		return fmt.Errorf("tokenstore: journal write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("tokenstore: journal sync: %w", err)
	}
	j.pending++
	return nil
}

// Pending is the number of connections held and not yet replayed.
func (j *Journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.pending
}

// Replay puts every held connection into the store. Once all of them are in,
// the journal is emptied; if any Put fails, nothing is removed and Replay
// can run again (a Put of the same connection twice is harmless). It
// returns how many connections it stored.
func (j *Journal) Replay(ctx context.Context) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pending == 0 {
		return 0, nil
	}
	recs, _, err := j.read()
	if err != nil {
		return 0, err
	}
	for i, sealed := range recs {
		c, err := j.store.OpenStaged(sealed)
		if err != nil {
			return i, fmt.Errorf("tokenstore: journal record %d: %w", i, err)
		}
		if err := j.store.Put(ctx, c); err != nil {
			return i, fmt.Errorf("tokenstore: replay %s: %w", c.ConnectionID, err)
		}
	}
	if err := j.f.Truncate(0); err != nil {
		return len(recs), fmt.Errorf("tokenstore: journal truncate: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return len(recs), fmt.Errorf("tokenstore: journal sync: %w", err)
	}
	j.pending = 0
	return len(recs), nil
}

// read returns every complete record and the length of the file they fill.
// A torn last record (a crash in the middle of a write, before its fsync
// returned) is left out: Hold had not reported it held.
func (j *Journal) read() ([][]byte, int64, error) {
	f, err := os.Open(j.path)
	if err != nil {
		return nil, 0, fmt.Errorf("tokenstore: journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var recs [][]byte
	var size int64
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return recs, size, nil
			}
			return nil, 0, fmt.Errorf("tokenstore: journal read: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxJournalRecord {
			return nil, 0, fmt.Errorf("tokenstore: journal %s is corrupt (record of %d bytes)", j.path, n)
		}
		rec := make([]byte, n)
		if _, err := io.ReadFull(r, rec); err != nil {
			return recs, size, nil
		}
		recs = append(recs, rec)
		size += 4 + int64(n)
	}
}

// Close closes the journal file. Held records stay in it for the next
// OpenJournal.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
