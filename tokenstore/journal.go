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

// Replayed names a connection that Replay stored, with the tag it was held
// under.
type Replayed struct {
	Tag          string
	ConnectionID string
}

// Hold appends c to the journal and fsyncs it. tag travels with it
// unsealed (it must hold no secret): the server passes the callback's
// ledger key, so that it can settle the callback once the token is stored.
func (j *Journal) Hold(c finchconnect.Connection, tag string) error {
	sealed, err := j.store.SealStaged(c)
	if err != nil {
		return err
	}
	if len(tag) > 1<<10 {
		return fmt.Errorf("tokenstore: journal tag too long")
	}
	rec := binary.BigEndian.AppendUint32(nil, uint32(2+len(tag)+len(sealed)))
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(tag)))
	rec = append(rec, tag...)
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
// returns the connections it stored, with their tags.
func (j *Journal) Replay(ctx context.Context) ([]Replayed, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pending == 0 {
		return nil, nil
	}
	recs, _, err := j.read()
	if err != nil {
		return nil, err
	}
	var done []Replayed
	for i, rec := range recs {
		if len(rec) < 2 || int(binary.BigEndian.Uint16(rec))+2 > len(rec) {
			return done, fmt.Errorf("tokenstore: journal record %d is corrupt", i)
		}
		n := int(binary.BigEndian.Uint16(rec))
		tag, sealed := string(rec[2:2+n]), rec[2+n:]
		c, err := j.store.OpenStaged(sealed)
		if err != nil {
			return done, fmt.Errorf("tokenstore: journal record %d: %w", i, err)
		}
		if err := j.store.Put(ctx, c); err != nil {
			return done, fmt.Errorf("tokenstore: replay %s: %w", c.ConnectionID, err)
		}
		done = append(done, Replayed{Tag: tag, ConnectionID: c.ConnectionID})
	}
	if err := j.f.Truncate(0); err != nil {
		return done, fmt.Errorf("tokenstore: journal truncate: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return done, fmt.Errorf("tokenstore: journal sync: %w", err)
	}
	j.pending = 0
	return done, nil
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
