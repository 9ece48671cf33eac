package connect

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// Flow kinds and modes, as recorded with a state.
const (
	kindConnect = "connect"
	kindReauth  = "reauth"

	modeRedirect = "redirect" // Connect redirects to /callback; the exchange sends redirect_uri
	modeEmbedded = "embedded" // the app's page posts the code; the exchange omits redirect_uri
)

// The protocol's namespaces in the backend's key space. Every id is a
// SHA-256 hash (or two), never a state, a code or a browser id themselves.
var (
	stateNS     = tokenstore.NS("state")         // state hash + "/" + browser hash → flowState (see stateKey)
	stateUsedNS = tokenstore.NS("state-used")    // state hash → "used" or "cancelled", claimed once
	ledgerNS    = tokenstore.NS("callback")      // code hash → ledgerEntry; see StagedKeyIDs
	webhookNS   = tokenstore.NS("webhook-event") // event id hash → webhookClaim
)

// ledgerTTL is how long a callback is remembered, so that a refresh long
// after the exchange still shows the result rather than an error. It bounds
// the ledger's size, which the recovery loop scans.
const ledgerTTL = time.Hour

// flowState is what the server remembers of a Connect flow between
// POST /connect and the callback, under the hash of its state.
type flowState struct {
	Browser      string   `json:"browser"` // hex SHA-256 of the browser cookie; empty for flows the app's back-end started
	Kind         string   `json:"kind"`
	Mode         string   `json:"mode"`
	CustomerID   string   `json:"customer_id,omitempty"`
	CustomerName string   `json:"customer_name,omitempty"`
	Products     []string `json:"products,omitempty"`
	ConnectionID string   `json:"connection_id,omitempty"` // re-authentication only
	ReturnURL    string   `json:"return_url,omitempty"`    // app-started flows: where the browser goes after the callback
	Created      int64    `json:"created"`
}

// ledgerEntry is the callback ledger's record of one code.
type ledgerEntry struct {
	V            int    `json:"v"`       // format version: ledgerVersion
	Nonce        string `json:"nonce"`   // the claimant's own random nonce, to tell its claim from another's
	Status       string `json:"status"`  // pending, exchanged, done, failed or released
	State        string `json:"state"`   // hex SHA-256 of the state the code came with
	Browser      string `json:"browser"` // hex SHA-256 of the browser cookie
	ConnectionID string `json:"connection_id,omitempty"`
	ReturnURL    string `json:"return_url,omitempty"`
	Exchanged    int64  `json:"exchanged,omitempty"` // when Finch answered, for an exchanged entry
	Sealed       []byte `json:"sealed,omitempty"`    // the write-ahead: the connection, sealed by the vault
	Failure      string `json:"failure,omitempty"`   // a failure kind; see failureError
	Started      int64  `json:"started"`
	// Kind is the flow's kind (connect or reauth), for the event that
	// announces a connection stored late, by the recovery loop. The claim
	// is written before the flow's state is read, so only the writes
	// after it hold Kind.
	Kind string `json:"kind,omitempty"`
}

// Ledger statuses. An entry moves pending → exchanged → done, or to failed.
const (
	ledgerPending   = "pending"   // claimed; the code may be on its way to Finch
	ledgerExchanged = "exchanged" // Finch answered; the sealed token is staged in the entry
	ledgerDone      = "done"      // the connection is in the vault
	ledgerFailed    = "failed"
	ledgerReleased  = "released" // given back by its claimant before any exchange; the next request of the flow takes it over
)

// ledgerVersion is the format version of a ledger entry.
const ledgerVersion = 1

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// randomToken returns 32 random bytes, base64url: 256 bits, as Finch's own
// guidance and RFC 6749 §10.10 ask of a state.
func (s *Service) randomToken() (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("connect: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// newState records a flow and returns its state, to travel through Connect.
// Only the state's hash is stored, so a read of the store does not yield a
// usable state.
func (s *Service) newState(ctx context.Context, browser string, fs flowState) (string, error) {
	state, err := s.randomToken()
	if err != nil {
		return "", err
	}
	fs.Browser = browserHash(browser)
	fs.Created = s.clock.Now().Unix()
	b, err := json.Marshal(fs)
	if err != nil {
		return "", err
	}
	if err := s.backend.Claim(ctx, stateKey(hashHex(state), fs.Browser), b, s.cfg.StateTTL); err != nil {
		return "", fmt.Errorf("%w: save state: %v", ErrStoreDown, err)
	}
	return state, nil
}

// stateKey is where a flow's state is stored: under the state's hash and
// the hash of the browser the flow is bound to ("" for a flow the app's
// back-end started through the API). A callback finds the state only from
// the browser that started the flow, so a request from another browser
// cannot so much as claim the code (claimFlow).
func stateKey(stateHash, bHash string) string { return stateNS.Key(stateHash + "/" + bHash) }

// bindings are the browser bindings a request from the browser whose hash
// is bHash may complete: its own, and none.
func bindings(bHash string) []string {
	if bHash == "" {
		return []string{""}
	}
	return []string{bHash, ""}
}

// loadState returns the flow a state belongs to, after checking that this
// browser started it (or that no browser did). Any failure is
// ErrStateMismatch with a reason.
func (s *Service) loadState(ctx context.Context, stateHash, browser string) (flowState, error) {
	bHash := browserHash(browser)
	var fs flowState
	var err error
	for _, b := range bindings(bHash) {
		fs, err = s.readState(ctx, stateKey(stateHash, b), bHash)
		if !errors.Is(err, errStateGone) {
			return fs, err
		}
	}
	return fs, err
}

// readState reads the flow state under key and checks its browser binding
// against bHash.
func (s *Service) readState(ctx context.Context, key, bHash string) (flowState, error) {
	var fs flowState
	b, err := s.backend.Load(ctx, key)
	if errors.Is(err, finchconnect.ErrNotFound) {
		return fs, fmt.Errorf("%w: %w", finchconnect.ErrStateMismatch, errStateGone)
	}
	if err != nil {
		return fs, fmt.Errorf("%w: load state: %v", ErrStoreDown, err)
	}
	if err := json.Unmarshal(b, &fs); err != nil {
		return fs, fmt.Errorf("connect: decode state: %v", err)
	}
	if fs.Browser != "" && !sameHash(fs.Browser, bHash) {
		return fs, fmt.Errorf("%w: started in another browser", finchconnect.ErrStateMismatch)
	}
	return fs, nil
}

// browserHash is the hash a flow binds to; "" for no browser (a flow the
// app's back-end started through the API, where the state alone, 256 bits
// and single-use, authorises the callback).
func browserHash(browser string) string {
	if browser == "" {
		return ""
	}
	return hashHex(browser)
}

// sameHash compares two hex hashes in constant time.
func sameHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
