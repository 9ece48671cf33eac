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
	"github.com/finchconnect/finchconnect/keyring"
)

// maxJournalRecord bounds one record, so a corrupt length cannot make
// replay allocate gigabytes.
const maxJournalRecord = 1 << 20

// errJournalInUse is what OpenJournal returns when another Journal, in this
// process or another, has the journal open.
var errJournalInUse = errors.New("is in use by another process or Journal (is another finchconnect server using the same data folder?)")

// Journal is a local, append-only file that holds exchanged connections the
// store could not take — during a store outage — until [Journal.Replay] puts
// them into it. Each record is sealed exactly like a staged value (see
// [Store.SealStaged]) and the file is fsynced before Hold returns, so a
// token Finch has issued survives both the outage and a crash of this
// process. It is safe for concurrent use.
//
// One Journal owns its file: [Store.OpenJournal] takes an exclusive lock
// that [Journal.Close] releases. Other processes that only need to know what
// the journal holds read it with [PendingInJournal], which never writes.
type Journal struct {
	store *Store
	path  string
	lock  *os.File // holds the exclusive lock on path+".lock"

	mu      sync.Mutex
	f       *os.File
	pending int
	size    int64 // the length of the file's complete records
	// broken is set when a failed Hold could not cut its partial record
	// off: a record appended after it would be misread, so Hold tries the
	// cut again, and refuses while it fails.
	broken error

	// write appends to the file; nil means f.Write. Tests replace it.
	write func(f *os.File, b []byte) (int, error)
}

// OpenJournal opens (creating it, mode 0600) the journal at path, for the
// connections of s. Records already in it count as pending.
//
// The Journal owns the file until [Journal.Close]: OpenJournal takes an
// exclusive lock (on path+".lock", where the platform has flock) and fails
// while another Journal holds it, since two owners would cut each other's
// records off. It also cuts off a torn last record, which only the owner
// may do.
func (s *Store) OpenJournal(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("tokenstore: journal: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: journal lock: %w", err)
	}
	if err := lockJournal(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("tokenstore: journal %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("tokenstore: journal: %w", err)
	}
	j := &Journal{store: s, path: path, lock: lock, f: f}
	recs, size, err := readJournal(path)
	if err != nil {
		f.Close()
		lock.Close()
		return nil, err
	}
	// Cut a torn tail off, so the next record starts where it should. Only
	// the owner may: to anyone else a torn tail may be a Hold in progress.
	if err := f.Truncate(size); err != nil {
		f.Close()
		lock.Close()
		return nil, fmt.Errorf("tokenstore: journal: %w", err)
	}
	j.pending, j.size = len(recs), size
	return j, nil
}

// HeldRecord describes one record of a journal file, as [PendingInJournal]
// reads it without opening the sealed connection.
type HeldRecord struct {
	// Tag is the tag the record was held under (the server passes the
	// callback's ledger key). It holds no secret.
	Tag string

	// KeyID is the id of the key that sealed the record, read from the
	// sealed value's header; 0 if the value is in no format this version
	// knows (no key can open it).
	KeyID uint32
}

// PendingInJournal returns the records held in the journal file at path,
// oldest first, without opening them. It only reads: it never creates,
// locks, truncates or writes the file, so it is safe to call while a server
// owns the journal (for example, before retiring a key). A missing file
// holds nothing. A torn last record (a Hold still writing, or cut short by a
// crash) is left out, as the owner does. A file that cannot be read, or
// whose records are malformed, gives an error.
func PendingInJournal(path string) ([]HeldRecord, error) {
	recs, _, err := readJournal(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	held := make([]HeldRecord, 0, len(recs))
	for i, rec := range recs {
		_, tag, sealed, ok := splitRecord(rec)
		if !ok {
			return nil, fmt.Errorf("tokenstore: journal %s: record %d is corrupt, or in an unknown format", path, i)
		}
		id, _ := keyring.KeyID(sealed)
		held = append(held, HeldRecord{Tag: tag, KeyID: id})
	}
	return held, nil
}

// Replayed names a connection that Replay is done with, with the tag it was
// held under.
type Replayed struct {
	Tag          string
	ConnectionID string

	// Orphan is set, token and all, when the record was held with
	// [Journal.HoldReplacement] and its connection is no longer stored (a
	// re-authentication whose connection was disconnected meanwhile):
	// Replay did not write it, and the caller must disconnect the token
	// at Finch, since nothing holds it.
	Orphan *finchconnect.Connection
}

// Hold appends c to the journal and fsyncs it. tag travels with it
// unsealed (it must hold no secret): the server passes the callback's
// ledger key, so that it can settle the callback once the token is stored.
//
// The record keeps the time it was held, as the sealed connection's
// TokenAt (whatever c.TokenAt was), so that [Journal.Replay] never puts it
// over a token the store received later.
func (j *Journal) Hold(c finchconnect.Connection, tag string) error {
	return j.hold(c, tag, 0)
}

// HoldReplacement is [Journal.Hold] for a connection that must be stored
// already, as a re-authentication's is: Replay replaces it
// ([Store.ReplaceUnlessNewer]) and never inserts it, and reports it as an
// orphan ([Replayed].Orphan) if it is gone.
func (j *Journal) HoldReplacement(c finchconnect.Connection, tag string) error {
	return j.hold(c, tag, recordReplace)
}

func (j *Journal) hold(c finchconnect.Connection, tag string, flags byte) error {
	c.TokenAt = j.store.now()
	sealed, err := j.store.SealStaged(c)
	if err != nil {
		return err
	}
	if len(tag) > 1<<10 {
		return fmt.Errorf("tokenstore: journal tag too long")
	}
	rec := appendRecord(nil, flags, tag, sealed)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.broken != nil {
		// Try the cut again: the disk may have room again.
		if err := j.cutBack(nil); err != nil {
			return fmt.Errorf("tokenstore: journal unusable since a failed write: %w", err)
		}
	}
	write := j.write
	if write == nil {
		write = (*os.File).Write
	}
	if _, err := write(j.f, rec); err != nil {
		return j.cutBack(fmt.Errorf("tokenstore: journal write: %w", err))
	}
	if err := j.f.Sync(); err != nil {
		// The record may or may not be on disk; Hold reports it not held,
		// so it must not come back at the next replay either.
		return j.cutBack(fmt.Errorf("tokenstore: journal sync: %w", err))
	}
	j.size += int64(len(rec))
	j.pending++
	return nil
}

// cutBack cuts the file back to its complete records after a failed Hold
// (a disk that filled up midway leaves part of a record, and the next
// record would be appended after it and misread), and returns err. If the
// file cannot be cut, it is marked broken, and each Hold tries the cut
// again before it writes, refusing while it fails.
func (j *Journal) cutBack(err error) error {
	terr := j.f.Truncate(j.size)
	if terr == nil {
		terr = j.f.Sync()
	}
	if terr != nil {
		j.broken = terr
		return errors.Join(err, fmt.Errorf("tokenstore: journal: cut off the failed record: %w", terr))
	}
	j.broken = nil
	return err
}

// Pending is the number of connections held and not yet replayed.
func (j *Journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.pending
}

// Replay puts every held connection into the store, oldest first, and
// returns the connections it is done with, with their tags. Once all of them
// are done, the journal is emptied. If one fails, Replay stops there and
// durably rewrites the journal without the records before it, so that the
// next Replay never writes those again: by then the store may hold a newer
// token for their connections.
//
// A record is not written, but counts as done, when the store holds a token
// for its connection that it received after the record was held (a
// re-authentication that reached the store directly): the newer token stays;
// or when it was held with HoldReplacement and its connection is gone (see
// [Replayed].Orphan).
func (j *Journal) Replay(ctx context.Context) ([]Replayed, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pending == 0 {
		return nil, nil
	}
	recs, _, err := readJournal(j.path)
	if err != nil {
		return nil, err
	}
	var done []Replayed
	for i, rec := range recs {
		r, err := j.replayOne(ctx, i, rec)
		if err != nil {
			if i > 0 {
				if werr := j.rewrite(recs[i:]); werr != nil {
					return done, errors.Join(err, werr)
				}
			}
			return done, err
		}
		done = append(done, r)
	}
	if err := j.f.Truncate(0); err != nil {
		return done, fmt.Errorf("tokenstore: journal truncate: %w", err)
	}
	j.size, j.broken = 0, nil
	if err := j.f.Sync(); err != nil {
		return done, fmt.Errorf("tokenstore: journal sync: %w", err)
	}
	j.pending = 0
	return done, nil
}

// replayOne puts record i into the store, unless the store has a newer
// token for its connection.
func (j *Journal) replayOne(ctx context.Context, i int, rec []byte) (Replayed, error) {
	flags, tag, sealed, ok := splitRecord(rec)
	if !ok {
		return Replayed{}, fmt.Errorf("tokenstore: journal record %d is corrupt, or in an unknown format", i)
	}
	c, err := j.store.OpenStaged(sealed)
	if err != nil {
		return Replayed{}, fmt.Errorf("tokenstore: journal record %d: %w", i, err)
	}
	r := Replayed{Tag: tag, ConnectionID: c.ConnectionID}
	// c.TokenAt is when Hold held it. A token stored after this one was
	// held, from a later exchange, is kept: PutUnlessNewer checks in the
	// same compare-and-set as its write.
	if flags&recordReplace != 0 {
		_, err = j.store.ReplaceUnlessNewer(ctx, c, c.TokenAt)
		if errors.Is(err, finchconnect.ErrNotFound) {
			r.Orphan = &c
			return r, nil
		}
	} else {
		_, err = j.store.PutUnlessNewer(ctx, c, c.TokenAt)
	}
	if err != nil {
		return Replayed{}, fmt.Errorf("tokenstore: replay %s: %w", c.ConnectionID, err)
	}
	return r, nil
}

// rewrite replaces the journal with recs, atomically and durably: a
// temporary file, fsynced, renamed over the journal, and the folder fsynced,
// so a crash leaves the old journal or the new one. Holds wait on j.mu, which
// the caller holds.
func (j *Journal) rewrite(recs [][]byte) error {
	tmpPath := j.path + ".tmp"
	// The lock makes this process the only writer of tmpPath; a leftover
	// from a crash is overwritten.
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("tokenstore: journal rewrite: %w", err)
	}
	var buf []byte
	for _, rec := range recs {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(rec)))
		buf = append(buf, rec...)
	}
	_, err = tmp.Write(buf)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = os.Rename(tmpPath, j.path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmpPath)
		return fmt.Errorf("tokenstore: journal rewrite: %w", err)
	}
	// tmp is the journal now, opened for appending as OpenJournal opens it;
	// the old file is unlinked, so Hold must not write to it any more.
	old := j.f
	j.f = tmp
	j.pending, j.size, j.broken = len(recs), int64(len(buf)), nil
	old.Close()
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		// The rename may not survive a crash, which would bring the
		// replayed records back; replayOne's check keeps them from undoing
		// newer tokens.
		return fmt.Errorf("tokenstore: journal rewrite: sync folder: %w", err)
	}
	return nil
}

// journalRecordVersion is the format version that starts every journal
// record's body.
const journalRecordVersion = 1

// Record flags.
const (
	recordReplace byte = 1 << iota // HoldReplacement: replace, never insert
)

// appendRecord appends one journal record to b: its length, then the
// format version, the flags, the tag's length, the tag and the sealed
// connection.
func appendRecord(b []byte, flags byte, tag string, sealed []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(tag)+len(sealed)))
	b = append(b, journalRecordVersion, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(tag)))
	b = append(b, tag...)
	return append(b, sealed...)
}

// splitRecord splits a record's body (after its length) into its flags,
// tag and sealed connection; ok is false if it is malformed or of another
// format version.
func splitRecord(rec []byte) (flags byte, tag string, sealed []byte, ok bool) {
	if len(rec) < 4 || rec[0] != journalRecordVersion || int(binary.BigEndian.Uint16(rec[2:]))+4 > len(rec) {
		return 0, "", nil, false
	}
	n := int(binary.BigEndian.Uint16(rec[2:]))
	return rec[1], string(rec[4 : 4+n]), rec[4+n:], true
}

// readJournal returns the body of every complete record in the journal at
// path and the length of the file they fill. A torn last record (a crash in
// the middle of a write, before its fsync returned) is left out: Hold had
// not reported it held. It only reads.
func readJournal(path string) ([][]byte, int64, error) {
	f, err := os.Open(path)
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
			return nil, 0, fmt.Errorf("tokenstore: journal %s is corrupt (record of %d bytes)", path, n)
		}
		rec := make([]byte, n)
		if _, err := io.ReadFull(r, rec); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return recs, size, nil
			}
			return nil, 0, fmt.Errorf("tokenstore: journal read: %w", err)
		}
		recs = append(recs, rec)
		size += 4 + int64(n)
	}
}

// Close closes the journal file and releases its lock. Held records stay
// in it for the next OpenJournal.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.f.Close()
	// Closing the lock file releases the lock.
	if lerr := j.lock.Close(); err == nil {
		err = lerr
	}
	return err
}
