package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
)

// Associated data for sealed values. Each names what the value is and which
// record it belongs to, so a token copied to another row, or a staged blob
// offered as a row's token, fails to open.
const (
	rowAADPrefix = "finchconnect/connection/v1:"
	stagedAAD    = "finchconnect/staged-connection/v1"
)

// maxAttempts bounds the compare-and-set loops. Every lost round means
// another writer won, so real contention ends long before this; the bound
// only stops a misbehaving backend from spinning forever.
const maxAttempts = 1000

// Store is the vault: it seals each connection's access token under the
// keyring's primary key, with the connection id as associated data, and
// keeps the connection's other fields in the clear so that listing and
// status changes never decrypt.
//
// A Store is safe for concurrent use, also by several processes sharing one
// backend: every write is a compare-and-set on the row's version. A row it
// inserts starts at a version read from its clock (see [Row]), so a
// connection deleted and stored again never repeats the versions it had,
// and a writer that read it before the delete cannot write over the new
// row. Create it with [New].
//
// That guarantee rests on the clock. Within one Store it holds even if the
// clock stalls or steps back: every write takes a value at least one above
// the last, so a re-insert starts above every version the Store's own
// writes gave the deleted row. Across replicas, a re-created row could meet
// a version of the deleted one only if the replica that re-creates it ran
// behind the one that first created it by more than the time between the
// two inserts (less the deleted row's number of writes, in microseconds),
// and even then only an exact match of the stale writer's version lets its
// write through.
type Store struct {
	// Now reports the time for CreatedAt, UpdatedAt and TokenAt, and the
	// versions that rows start at. Nil means time.Now. Set it before first
	// use.
	Now func() time.Time

	v           vault   // what the Store itself uses of b
	b           Backend // for Backend, the key space's users
	keysMu      sync.RWMutex
	keys        *keyring.Keyring
	lastVersion atomic.Int64 // the last insertVersion returned
}

// New returns a Store that keeps connections in b, sealed by kr.
func New(b Backend, kr *keyring.Keyring) *Store { return &Store{v: b, b: b, keys: kr} }

// vault is what a Store uses of its backend: the connection rows, the
// transaction that writes a row and an entry together (or a row at the
// version read), and Ping. It never touches the key space by itself.
type vault interface {
	Rows
	Transactor
	Ping(ctx context.Context) error
}

// Backend returns the backend the store writes to, for the short-lived
// records (states, callback ledger) that other packages keep beside it.
func (s *Store) Backend() Backend { return s.b }

// Keyring returns the keyring the store seals with.
func (s *Store) Keyring() *keyring.Keyring {
	s.keysMu.RLock()
	defer s.keysMu.RUnlock()
	return s.keys
}

// SetKeyring replaces the keyring, for a server that reloads its key file
// during a rotation: writes seal under the new primary from then on, and
// records under any key of the new ring open. Safe to call while the store
// is in use.
func (s *Store) SetKeyring(kr *keyring.Keyring) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	s.keys = kr
}

// Ping reports whether the backend is reachable.
func (s *Store) Ping(ctx context.Context) error { return s.v.Ping(ctx) }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// insertVersion returns the version for a row that a write may insert
// ([Row]): the clock in microseconds, or one more than the last value
// returned if the clock has not moved past it (a coarse tick, a stalled
// test clock, a step back), so that within one Store it always grows.
func (s *Store) insertVersion() int64 {
	now := s.now().UnixMicro()
	for {
		last := s.lastVersion.Load()
		v := max(now, last+1)
		if s.lastVersion.CompareAndSwap(last, v) {
			return v
		}
	}
}

func rowAAD(id string) []byte { return []byte(rowAADPrefix + id) }

// Put stores c, replacing any connection with the same id: a
// re-authentication is a Put of the same connection with a new token. The
// token is sealed; everything else is kept in the clear. Put sets UpdatedAt,
// and CreatedAt on the first write (to c.CreatedAt if it is set, else now);
// an existing connection keeps its CreatedAt. TokenAt becomes now unless
// the connection is stored with the same token already.
//
// c must have a ConnectionID and an AccessToken.
func (s *Store) Put(ctx context.Context, c finchconnect.Connection) error {
	_, _, err := s.put(ctx, c, putOptions{})
	return err
}

// PutUnlessNewer is [Store.Put], except that it keeps the stored connection
// when the vault received its token after asOf (its TokenAt is later): a
// later re-authentication, which a token exchanged at asOf must not undo;
// or when it holds c's token already, whose metadata may have changed
// since (a status a sweep recorded). The check and the write are one
// compare-and-set, so a newer token stored between them is kept too. It
// reports whether it stored c. What it stores has asOf as its TokenAt, the
// time its token was obtained, not the time of the write: of two older
// tokens stored this way, oldest first, the second is still stored.
// Recovering a staged callback and replaying the journal store their older
// tokens this way.
func (s *Store) PutUnlessNewer(ctx context.Context, c finchconnect.Connection, asOf time.Time) (stored bool, err error) {
	_, kept, err := s.put(ctx, c, putOptions{keepAfter: asOf})
	return err == nil && !kept, err
}

// PutSwap is [Store.Put] and [KeySpace.Swap] in one atomic write
// ([PutRowSwap]): it stores c and, in the same write, replaces
// sw.Key's value if it equals sw.Old. The connection is stored whether or
// not the swap's condition holds; swapped says whether it did. A callback
// stores its new connection and settles its ledger entry this way, so that
// no reader, and no crash, sees one without the other.
func (s *Store) PutSwap(ctx context.Context, c finchconnect.Connection, sw Swap) (swapped bool, err error) {
	swapped, _, err = s.put(ctx, c, putOptions{swap: &sw})
	return swapped, err
}

// CreateSwap is [Store.PutSwap] for a connection that is not stored yet: a
// single write, with no read before it. When a connection with c's id is
// stored already it writes nothing, neither the connection nor the swap,
// and returns an error wrapping [finchconnect.ErrConflict]; the caller
// falls back to PutSwap. A callback's new connection takes one round trip
// to the store this way.
func (s *Store) CreateSwap(ctx context.Context, c finchconnect.Connection, sw Swap) (swapped bool, err error) {
	swapped, _, err = s.put(ctx, c, putOptions{swap: &sw, createOnly: true})
	return swapped, err
}

// ReplaceSwap is [Store.PutSwap] for a connection that must be stored
// already, as a re-authentication's is: it replaces the stored connection
// and never inserts one. When none is stored under c's id (it was deleted,
// say by a disconnect that landed while the re-authentication was at
// Finch) it writes nothing, neither the connection nor the swap, and
// returns an error wrapping [finchconnect.ErrNotFound]. The check is the
// write's compare-and-set, so a delete that lands between the read and
// the write is seen too.
func (s *Store) ReplaceSwap(ctx context.Context, c finchconnect.Connection, sw Swap) (swapped bool, err error) {
	swapped, _, err = s.put(ctx, c, putOptions{swap: &sw, replaceOnly: true})
	return swapped, err
}

// ReplaceUnlessNewer is [Store.PutUnlessNewer] for a connection that must
// be stored already (see [Store.ReplaceSwap]): it returns an error wrapping
// [finchconnect.ErrNotFound], and writes nothing, when none is.
func (s *Store) ReplaceUnlessNewer(ctx context.Context, c finchconnect.Connection, asOf time.Time) (stored bool, err error) {
	_, kept, err := s.put(ctx, c, putOptions{keepAfter: asOf, replaceOnly: true})
	return err == nil && !kept, err
}

// putOptions are the variants of put.
type putOptions struct {
	swap        *Swap     // a swap in the same write
	createOnly  bool      // make the first write only, the one that inserts
	replaceOnly bool      // never insert: ErrNotFound when no row is stored
	keepAfter   time.Time // keep a stored token received after this (not zero)
}

// put is Put and its variants (see putOptions). kept says it wrote nothing
// because the stored token is newer than o.keepAfter.
func (s *Store) put(ctx context.Context, c finchconnect.Connection, o putOptions) (swapped, kept bool, err error) {
	sw, createOnly := o.swap, o.createOnly
	if err := validate(c); err != nil {
		return false, false, err
	}
	sealed, err := s.Keyring().Seal([]byte(c.AccessToken.Reveal()), rowAAD(c.ConnectionID))
	if err != nil {
		return false, false, fmt.Errorf("tokenstore: put %s: seal: %v", c.ConnectionID, err)
	}
	write := func(row Row, expect int64) (bool, error) {
		if sw == nil {
			_, err := s.v.PutRow(ctx, row, expect)
			return false, err
		}
		_, swapped, err := PutRowSwap(ctx, s.v, row, expect, *sw)
		return swapped, err
	}
	// Most Puts store a new connection (a callback's exchange): try the
	// insert first, which saves the read, and read the current row only
	// when there is one.
	first := c
	if first.CreatedAt.IsZero() {
		first.CreatedAt = s.now()
	}
	first.UpdatedAt = s.now()
	first.TokenAt = first.UpdatedAt
	if !o.keepAfter.IsZero() {
		first.TokenAt = o.keepAfter
	}
	row, err := encodeRow(first, sealed)
	if err != nil {
		return false, false, err
	}
	row.Version = s.insertVersion()
	if !o.replaceOnly {
		if swapped, err := write(row, 0); err == nil {
			return swapped, false, nil
		} else if createOnly || !errors.Is(err, finchconnect.ErrConflict) {
			return false, false, fmt.Errorf("tokenstore: put %s: %w", c.ConnectionID, err)
		}
	}
	for range maxAttempts {
		var expect int64
		cur, err := s.v.GetRow(ctx, c.ConnectionID)
		switch {
		case err == nil:
			prev, oerr := s.open(cur)
			if oerr != nil {
				// A token that does not open (under a retired key, say):
				// the metadata still says when the connection began.
				if prev, oerr = decodeMeta(cur); oerr != nil {
					return false, false, oerr
				}
			}
			if !o.keepAfter.IsZero() && (prev.TokenAt.After(o.keepAfter) ||
				!prev.AccessToken.IsZero() && prev.AccessToken.Equal(c.AccessToken)) {
				// A newer token, or this one already: writing would only
				// bring back c's older metadata (a status a sweep has
				// changed since, say).
				return false, true, nil
			}
			c.CreatedAt = prev.CreatedAt
			c.TokenAt = s.now()
			if !o.keepAfter.IsZero() {
				c.TokenAt = o.keepAfter
			}
			if !prev.TokenAt.IsZero() && !prev.AccessToken.IsZero() && prev.AccessToken.Equal(c.AccessToken) {
				c.TokenAt = prev.TokenAt // the same token, written again
			}
			expect = cur.Version
		case errors.Is(err, finchconnect.ErrNotFound) && o.replaceOnly:
			return false, false, fmt.Errorf("tokenstore: replace %s: %w", c.ConnectionID, err)
		case errors.Is(err, finchconnect.ErrNotFound):
			if c.CreatedAt.IsZero() {
				c.CreatedAt = s.now()
			}
			c.TokenAt = s.now()
			if !o.keepAfter.IsZero() {
				c.TokenAt = o.keepAfter
			}
		default:
			return false, false, fmt.Errorf("tokenstore: put %s: %w", c.ConnectionID, err)
		}
		c.UpdatedAt = s.now()
		row, err := encodeRow(c, sealed)
		if err != nil {
			return false, false, err
		}
		row.Version = s.insertVersion() // used if expect is 0: the row was deleted
		swapped, err := write(row, expect)
		if !errors.Is(err, finchconnect.ErrConflict) {
			if err != nil {
				return false, false, fmt.Errorf("tokenstore: put %s: %w", c.ConnectionID, err)
			}
			return swapped, false, nil
		}
		// Another writer got in between; read again so its CreatedAt (and
		// its token, if newer) stays.
	}
	return false, false, fmt.Errorf("tokenstore: put %s: gave up after %d attempts: %w", c.ConnectionID, maxAttempts, finchconnect.ErrConflict)
}

func validate(c finchconnect.Connection) error {
	if c.ConnectionID == "" {
		return errors.New("tokenstore: connection has no connection_id")
	}
	if c.AccessToken.IsZero() {
		return fmt.Errorf("tokenstore: connection %s has no access token", c.ConnectionID)
	}
	return nil
}

// Get returns the connection with id, its access token opened. It returns
// an error wrapping [finchconnect.ErrNotFound] if there is none, and one
// wrapping [finchconnect.ErrDecrypt] if the sealed token does not open
// (tampered with, copied from another row, or sealed under a key the keyring
// no longer holds). Errors never include token or sealed bytes.
func (s *Store) Get(ctx context.Context, id string) (finchconnect.Connection, error) {
	row, err := s.v.GetRow(ctx, id)
	if err != nil {
		return finchconnect.Connection{}, fmt.Errorf("tokenstore: get %s: %w", id, err)
	}
	return s.open(row)
}

// GetVersion is [Store.Get], and the version of the row it read, for
// [Store.DeleteIf]: a disconnect reads the token it revokes this way, so
// that it deletes the row only if that token is still the one stored.
func (s *Store) GetVersion(ctx context.Context, id string) (finchconnect.Connection, int64, error) {
	row, err := s.v.GetRow(ctx, id)
	if err != nil {
		return finchconnect.Connection{}, 0, fmt.Errorf("tokenstore: get %s: %w", id, err)
	}
	c, err := s.open(row)
	return c, row.Version, err
}

func (s *Store) open(row Row) (finchconnect.Connection, error) {
	c, err := decodeMeta(row)
	if err != nil {
		return finchconnect.Connection{}, err
	}
	token, err := s.Keyring().Open(row.Sealed, rowAAD(row.ID))
	if err != nil {
		// err is the keyring's reason (too short, unknown key id n,
		// authentication failed); it never carries the bytes.
		return finchconnect.Connection{}, fmt.Errorf("tokenstore: connection %s: %w: %w", row.ID, err, finchconnect.ErrDecrypt)
	}
	c.AccessToken = finchconnect.NewSecret(string(token))
	return c, nil
}

// Lookup returns the connection with id without its access token: it reads
// the clear metadata only and never decrypts, so it works for rows sealed
// under keys this keyring lacks. It returns an error wrapping
// [finchconnect.ErrNotFound] if there is none.
func (s *Store) Lookup(ctx context.Context, id string) (finchconnect.Connection, error) {
	row, err := s.v.GetRow(ctx, id)
	if err != nil {
		return finchconnect.Connection{}, fmt.Errorf("tokenstore: lookup %s: %w", id, err)
	}
	return decodeMeta(row)
}

// Update changes the connection with id through fn, atomically: it reads the
// connection (token opened), calls fn, and writes the result only if nobody
// wrote the row in between; otherwise it reads again and calls fn again. So
// fn may run more than once and must only change c. If fn returns an error,
// Update returns it and writes nothing.
//
// The token is re-sealed only if fn changed it; otherwise the stored sealed
// bytes are kept as they are, so a status change does not move a row to
// another key behind a rotation's back. UpdatedAt is set to now; fn cannot
// change the connection id.
//
// Update returns an error wrapping [finchconnect.ErrNotFound] if there is no
// such connection, and one wrapping [finchconnect.ErrDecrypt] if its token
// does not open.
func (s *Store) Update(ctx context.Context, id string, fn func(c *finchconnect.Connection) error) error {
	for range maxAttempts {
		row, err := s.v.GetRow(ctx, id)
		if err != nil {
			return fmt.Errorf("tokenstore: update %s: %w", id, err)
		}
		c, err := s.open(row)
		if err != nil {
			return err
		}
		before := c.AccessToken
		if err := fn(&c); err != nil {
			return err
		}
		if c.ConnectionID != id {
			return fmt.Errorf("tokenstore: update %s: the function changed the connection id", id)
		}
		if err := validate(c); err != nil {
			return err
		}
		sealed := row.Sealed
		if !before.Equal(c.AccessToken) {
			if sealed, err = s.Keyring().Seal([]byte(c.AccessToken.Reveal()), rowAAD(id)); err != nil {
				return fmt.Errorf("tokenstore: update %s: seal: %v", id, err)
			}
			c.TokenAt = s.now()
		}
		c.UpdatedAt = s.now()
		next, err := encodeRow(c, sealed)
		if err != nil {
			return err
		}
		// An update only, expecting the version read: a row deleted and
		// stored again since then started at a later version (see Row),
		// so the write misses it. The start version is ignored, but
		// taking one keeps the Store's counter ahead of the row's.
		next.Version = s.insertVersion()
		_, err = s.v.PutRow(ctx, next, row.Version)
		if !errors.Is(err, finchconnect.ErrConflict) {
			if err != nil {
				return fmt.Errorf("tokenstore: update %s: %w", id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("tokenstore: update %s: gave up after %d attempts: %w", id, maxAttempts, finchconnect.ErrConflict)
}

// Delete removes the connection with id. It returns an error wrapping
// [finchconnect.ErrNotFound] if there was none.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.v.DeleteRow(ctx, id); err != nil {
		return fmt.Errorf("tokenstore: delete %s: %w", id, err)
	}
	return nil
}

// DeleteIf removes the connection with id only if its row is still at
// version, as [Store.GetVersion] read it, in one conditional transaction.
// It returns an error wrapping [finchconnect.ErrConflict], and deletes
// nothing, when the row has been written since (a re-authentication
// stored a new token, a sweep changed its status), and one wrapping
// [finchconnect.ErrNotFound] when there is none (deleted already: by
// another disconnect, or by this one's earlier try whose answer was lost).
//
// A disconnect revokes the token it read and then deletes with DeleteIf,
// so a token stored in between is never deleted unrevoked: on a conflict
// the disconnect reads again and revokes that one too.
func (s *Store) DeleteIf(ctx context.Context, id string, version int64) error {
	if version <= 0 {
		return fmt.Errorf("tokenstore: delete %s if at version %d: not a version a row is read at", id, version)
	}
	res, err := s.v.Txn(ctx, Txn{
		If:   []Cond{{Kind: RowVersion, Key: id, Version: version}},
		Then: []Op{{Kind: DeleteRowOp, Row: Row{ID: id}}},
	})
	switch {
	case err != nil:
		return fmt.Errorf("tokenstore: delete %s: %w", id, err)
	case res.OK:
		return nil
	case res.Reads[0].Version == 0:
		return fmt.Errorf("tokenstore: delete %s: %w", id, finchconnect.ErrNotFound)
	}
	return fmt.Errorf("tokenstore: delete %s: written since version %d: %w", id, version, finchconnect.ErrConflict)
}

// List returns the connections that match f, by connection id, without
// their access tokens (nothing is decrypted). When the page is full, next is
// the cursor for the following page (pass it as f.After); it is empty on the
// last page. A full last page is followed by one empty page.
func (s *Store) List(ctx context.Context, f Filter) (conns []finchconnect.Connection, next string, err error) {
	rows, err := s.v.ListRows(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("tokenstore: list: %w", err)
	}
	conns = make([]finchconnect.Connection, 0, len(rows))
	for _, r := range rows {
		c, err := decodeMeta(r)
		if err != nil {
			return nil, "", err
		}
		conns = append(conns, c)
	}
	if len(rows) > 0 && len(rows) >= limitOrDefault(f.Limit) {
		next = rows[len(rows)-1].ID
	}
	return conns, next, nil
}

// SealStaged seals a whole connection, token included, into one opaque
// value for a write-ahead record kept outside the vault's rows (the callback
// ledger keeps one between the code exchange and the Put), so the token is
// never stored unsealed anywhere. [Store.OpenStaged] reverses it. A staged
// value does not open as a row's token, nor the other way round.
func (s *Store) SealStaged(c finchconnect.Connection) ([]byte, error) {
	if err := validate(c); err != nil {
		return nil, err
	}
	b, err := json.Marshal(staged{V: stagedVersion, Connection: c, AccessToken: c.AccessToken.Reveal()})
	if err != nil {
		return nil, fmt.Errorf("tokenstore: stage %s: %v", c.ConnectionID, err)
	}
	defer clear(b)
	sealed, err := s.Keyring().Seal(b, []byte(stagedAAD))
	if err != nil {
		return nil, fmt.Errorf("tokenstore: stage %s: seal: %v", c.ConnectionID, err)
	}
	return sealed, nil
}

// OpenStaged opens a value that [Store.SealStaged] returned. A value that
// does not open gives an error wrapping [finchconnect.ErrDecrypt].
func (s *Store) OpenStaged(sealed []byte) (finchconnect.Connection, error) {
	b, err := s.Keyring().Open(sealed, []byte(stagedAAD))
	if err != nil {
		return finchconnect.Connection{}, fmt.Errorf("tokenstore: staged connection: %v: %w", err, finchconnect.ErrDecrypt)
	}
	defer clear(b)
	var st staged
	if err := json.Unmarshal(b, &st); err != nil {
		// Not json's error: it can quote the input, which holds the token.
		return finchconnect.Connection{}, errors.New("tokenstore: staged connection: malformed record")
	}
	if st.V != stagedVersion {
		return finchconnect.Connection{}, fmt.Errorf("tokenstore: staged connection: format version %d, want %d", st.V, stagedVersion)
	}
	c := st.Connection
	c.AccessToken = finchconnect.NewSecret(st.AccessToken)
	return c, nil
}

// staged is the JSON inside a staged value. Its AccessToken, a plain string
// at a shallower depth, shadows the embedded Connection's redacting Secret
// field, so the token is encoded for real — only ever to be sealed.
type staged struct {
	V int `json:"v"` // format version: stagedVersion
	finchconnect.Connection
	AccessToken string `json:"access_token"`
}

// stagedVersion is the format version of a staged value.
const stagedVersion = 1

// encodeRow builds the backend row: index fields and the clear metadata
// from c, the sealed token as given. The metadata is c without its token.
func encodeRow(c finchconnect.Connection, sealed []byte) (Row, error) {
	c.AccessToken = finchconnect.Secret{}
	meta, err := json.Marshal(c)
	if err != nil {
		return Row{}, fmt.Errorf("tokenstore: encode %s: %v", c.ConnectionID, err)
	}
	return Row{
		ID:         c.ConnectionID,
		CustomerID: c.CustomerID,
		ProviderID: c.ProviderID,
		Status:     c.Status,
		Meta:       meta,
		Sealed:     sealed,
	}, nil
}

// decodeMeta returns the connection a row describes, without its token.
// The row's id is authoritative: the metadata is not authenticated, and the
// token is bound to the id.
func decodeMeta(r Row) (finchconnect.Connection, error) {
	var c finchconnect.Connection
	if err := json.Unmarshal(r.Meta, &c); err != nil {
		return finchconnect.Connection{}, fmt.Errorf("tokenstore: connection %s: malformed metadata: %v", r.ID, err)
	}
	c.ConnectionID = r.ID
	c.AccessToken = finchconnect.Secret{}
	return c, nil
}
