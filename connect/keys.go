package connect

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/finchconnect/finchconnect/keyring"
)

// StagedKeyIDs returns, by key id, how many tokens the callback ledger
// holds sealed: the write-ahead of callbacks (mostly re-authentications)
// whose vault write has not landed yet. Such a token lives in its entry for
// up to an hour, Recover stores it once the entry is RecoverAfter old, and
// a keyring rewrap does not re-seal it, so a key that seals one must not be
// retired yet. An entry whose staged token names no key id readable is an
// error: the caller cannot tell which key it needs.
func (s *Service) StagedKeyIDs(ctx context.Context) (map[uint32]int, error) {
	ids := map[uint32]int{}
	after := ""
	for {
		entries, err := ledgerNS.Scan(ctx, s.backend, after, 200)
		if err != nil {
			return nil, fmt.Errorf("connect: scan callback ledger: %w", err)
		}
		// Page until an empty page rather than a short one: a backend may
		// return fewer than asked, and stopping early would miss entries.
		if len(entries) == 0 {
			return ids, nil
		}
		for _, en := range entries {
			var e ledgerEntry
			if err := json.Unmarshal(en.Value, &e); err != nil {
				return nil, fmt.Errorf("connect: callback ledger entry %s: cannot be read: %v", en.Key, err)
			}
			if len(e.Sealed) == 0 {
				continue
			}
			k, ok := keyring.KeyID(e.Sealed)
			if !ok {
				return nil, fmt.Errorf("connect: callback ledger entry %s: cannot read the key id of its staged token", en.Key)
			}
			ids[k]++
		}
		after = entries[len(entries)-1].Key
	}
}
