package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// samplePerKey is how many records of each key the check opens: enough to
// tell a wrong key of the right id (every one fails) from a corrupt row.
const samplePerKey = 3

// keyReport is what the stored data needs of the keyring: which key ids
// seal records, which of those the keyring lacks, and whether a sample of
// each key's records opens.
type keyReport struct {
	usage      map[uint32]int // records per key id; 0 counts values in no known format
	journal    map[uint32]int // tokens held in the local journal, per key id
	missing    []uint32       // key ids used by records or the journal, absent from the keyring
	sampled    map[uint32]int // records opened per key id
	unopenable map[uint32]int // of those, how many failed to open
}

// checkKeys reads every record's key id (without decrypting), opens up to
// samplePerKey records per key the keyring has, and reads the key ids of
// the tokens the journal at journalPath holds ("" for none).
func checkKeys(ctx context.Context, store *tokenstore.Store, journalPath string) (*keyReport, error) {
	r := &keyReport{usage: map[uint32]int{}, journal: map[uint32]int{}, sampled: map[uint32]int{}, unopenable: map[uint32]int{}}
	kr := store.Keyring()
	var sample []string
	after := ""
	for {
		rows, err := store.Backend().ListRows(ctx, tokenstore.Filter{After: after, Limit: 500})
		if err != nil {
			return nil, fmt.Errorf("cannot read the store to check its keys: %s", plainError(err))
		}
		if len(rows) == 0 {
			break
		}
		for _, row := range rows {
			id, _ := keyring.KeyID(row.Sealed)
			r.usage[id]++
			if id != 0 && kr.Has(id) && r.usage[id] <= samplePerKey {
				sample = append(sample, row.ID)
			}
		}
		after = rows[len(rows)-1].ID
	}
	if err := r.openSample(ctx, store, sample); err != nil {
		return nil, err
	}
	if journalPath != "" {
		held, err := tokenstore.PendingInJournal(journalPath)
		if err != nil {
			return nil, fmt.Errorf("cannot read the journal %s to check its keys: %s", journalPath, plainError(err))
		}
		for _, h := range held {
			r.journal[h.KeyID]++
		}
	}
	r.findMissing(kr)
	return r, nil
}

func (r *keyReport) openSample(ctx context.Context, store *tokenstore.Store, ids []string) error {
	kr := store.Keyring()
	for _, id := range ids {
		row, err := store.Backend().GetRow(ctx, id)
		if errors.Is(err, finchconnect.ErrNotFound) {
			continue // deleted since the scan
		}
		if err != nil {
			return fmt.Errorf("cannot read the store to check its keys: %s", plainError(err))
		}
		keyID, _ := keyring.KeyID(row.Sealed)
		r.sampled[keyID]++
		if _, err := store.Get(ctx, id); errors.Is(err, finchconnect.ErrDecrypt) && kr.Has(keyID) {
			r.unopenable[keyID]++
		} else if err != nil && !errors.Is(err, finchconnect.ErrNotFound) {
			return fmt.Errorf("cannot read the store to check its keys: %s", plainError(err))
		}
	}
	return nil
}

func (r *keyReport) findMissing(kr *keyring.Keyring) {
	for _, m := range []map[uint32]int{r.usage, r.journal} {
		for id, n := range m {
			if id != 0 && n > 0 && !kr.Has(id) && !slices.Contains(r.missing, id) {
				r.missing = append(r.missing, id)
			}
		}
	}
	slices.Sort(r.missing)
}

// wrongKeys are the key ids the keyring has but whose sampled records all
// fail to open: a different key under the same id.
func (r *keyReport) wrongKeys() []uint32 {
	var out []uint32
	for id, n := range r.unopenable {
		if n > 0 && n == r.sampled[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// problem describes, in one sentence, why records cannot be opened; nil
// when every key the data names is there and opens its sample. A sample
// where only some records fail is a corrupt record, not a key problem.
func (r *keyReport) problem() error {
	var parts []string
	if len(r.missing) > 0 {
		n := 0
		for _, id := range r.missing {
			n += r.usage[id] + r.journal[id]
		}
		parts = append(parts, fmt.Sprintf("%d stored records are sealed under key %s, which the keyring does not have", n, joinIDs(r.missing)))
	}
	if wrong := r.wrongKeys(); len(wrong) > 0 {
		parts = append(parts, fmt.Sprintf("key %s does not open the records sealed under its id (a different key with the same id)", joinIDs(wrong)))
	}
	if len(parts) == 0 {
		return nil
	}
	return errors.New(strings.Join(parts, "; and "))
}

func joinIDs(ids []uint32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}
