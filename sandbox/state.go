package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// stateVersion 2 keys codes and tokens by their SHA-256 digest; version 1
// (no version field) keyed them by the secrets themselves.
const stateVersion = 2

// state is everything the sandbox remembers; it is what DataFile holds.
//
// Codes and tokens are kept only as SHA-256 digests (see [digest]), so
// neither memory dumps nor DataFile hold a credential an app was given:
// a lookup hashes what the client presents. A 256-bit random value needs
// no salt or slow hash; the digest is as unguessable as the value.
type state struct {
	Version     int                    `json:"version"`
	Sessions    map[string]*session    `json:"sessions"`
	Codes       map[string]*code       `json:"codes"`  // by digest of the code
	Tokens      map[string]*token      `json:"tokens"` // by digest of the token
	Connections map[string]*connection `json:"connections"`

	// Deductions and automated jobs (benefits.go, jobs.go), by job id;
	// nil until the first job.
	ManualJobs map[string]*manualJob `json:"manual_jobs,omitempty"`
	AutoJobs   map[string]*autoJob   `json:"automated_jobs,omitempty"`
	JobSeq     int64                 `json:"job_seq,omitempty"` // the last job's Seq
}

func newState() *state {
	st := &state{Version: stateVersion}
	st.fill()
	return st
}

// digest is the key under which a code or token is stored.
func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// upgrade rewrites a version 1 state, which keyed codes and tokens by
// their values, to digests, so a DataFile written before stops holding
// credentials the next time it is saved.
func (st *state) upgrade() {
	if st.Version >= stateVersion {
		return
	}
	codes := make(map[string]*code, len(st.Codes))
	for v, c := range st.Codes {
		for i, m := range c.Minted {
			c.Minted[i] = digest(m)
		}
		codes[digest(v)] = c
	}
	tokens := make(map[string]*token, len(st.Tokens))
	for v, t := range st.Tokens {
		tokens[digest(v)] = t
	}
	st.Codes, st.Tokens, st.Version = codes, tokens, stateVersion
}

func (st *state) fill() {
	if st.Sessions == nil {
		st.Sessions = map[string]*session{}
	}
	if st.Codes == nil {
		st.Codes = map[string]*code{}
	}
	if st.Tokens == nil {
		st.Tokens = map[string]*token{}
	}
	if st.Connections == nil {
		st.Connections = map[string]*connection{}
	}
}

// retention is how long a code or a session is remembered after it
// expires. An hour past a code's 10 minutes lets a reused code still be
// refused as used, and with RevokeOnReuse still revoke what it minted, for
// 70 minutes after it was issued; after that it is refused as unknown
// (the same 400 invalid_grant_error) and revokes nothing. An expired
// session likewise shows "expired" for an hour, then "does not exist".
const retention = time.Hour

// prune forgets the codes and sessions that expired more than retention
// before now, and reports whether it forgot any. It touches nothing else:
// tokens and connections are never pruned.
func (st *state) prune(now time.Time) bool {
	n := len(st.Codes) + len(st.Sessions)
	for k, c := range st.Codes {
		if now.After(c.Expires.Add(retention)) {
			delete(st.Codes, k)
		}
	}
	for k, sess := range st.Sessions {
		if now.After(sess.Expires.Add(retention)) {
			delete(st.Sessions, k)
		}
	}
	return len(st.Codes)+len(st.Sessions) != n
}

// session is a Connect session, created by POST /connect/sessions (or
// reauthenticate) or implied by legacy authorize parameters.
type session struct {
	ID            string    `json:"id"`
	CustomerID    string    `json:"customer_id"`
	CustomerName  string    `json:"customer_name"`
	CustomerEmail string    `json:"customer_email,omitempty"`
	Products      []string  `json:"products"`
	RedirectURI   string    `json:"redirect_uri,omitempty"`
	ConnectionID  string    `json:"connection_id,omitempty"` // re-authentication
	Provider      string    `json:"provider,omitempty"`      // integration.provider: skips the picker
	State         string    `json:"state,omitempty"`
	Sandbox       string    `json:"sandbox,omitempty"` // "finch", "provider" or ""
	Expires       time.Time `json:"expires"`
	AuthMethod    string    `json:"auth_method,omitempty"` // "assisted" (manual, integration.auth_method), …; "": credential
}

// code is an authorization code issued by the Connect page.
type code struct {
	ConnectionID string    `json:"connection_id"`
	RedirectURI  string    `json:"redirect_uri,omitempty"` // "" for embedded-flow codes
	Expires      time.Time `json:"expires"`
	Used         bool      `json:"used"`
	Minted       []string  `json:"minted,omitempty"` // digests of the tokens it produced, for revoke-on-reuse

	// Reauth is what the re-authentication that issued the code changes
	// on its connection (nil for a code that made a new connection). It
	// is applied by the exchange, under the lock that consumes the code,
	// never at sign-in: signing in needs only the public client_id and
	// the published sandbox password, the exchange needs the client
	// secret. A code never exchanged, or exchanged too late, changes
	// nothing.
	Reauth *reauth `json:"reauth,omitempty"`
}

// reauth is a re-authentication waiting for its code to be exchanged.
type reauth struct {
	Products []string `json:"products,omitempty"` // nil keeps the connection's
}

// reauthenticate applies r to c: the connection is connected again, with
// its data-call count reset, the entities POST /disconnect-entity removed
// restored (Finch: a mistaken removal is undone by a re-authentication
// session), and r's products in place of its own. The Server's mu must
// be held.
func (c *connection) reauthenticate(r *reauth) {
	c.Status, c.DataCalls = "connected", 0
	for i := range c.Entities {
		c.Entities[i].Status = "connected"
	}
	if len(r.Products) > 0 {
		c.Products = r.Products
	}
}

// token is an access token.
type token struct {
	ConnectionID string    `json:"connection_id"`
	ID           string    `json:"id"`
	Revoked      bool      `json:"revoked"`
	Created      time.Time `json:"created"`
	ClientID     string    `json:"client_id,omitempty"` // the application it was issued to; its rate limits
}

// connection is an employer's connection with its data seed.
type connection struct {
	ID            string           `json:"id"`
	CustomerID    string           `json:"customer_id,omitempty"`
	CustomerName  string           `json:"customer_name,omitempty"`
	CustomerEmail string           `json:"customer_email,omitempty"`
	ProviderID    string           `json:"provider_id"`
	Products      []string         `json:"products"`
	Status        string           `json:"status"`
	Scenario      string           `json:"scenario"`
	Seed          uint64           `json:"seed"`
	Employees     int              `json:"employees"`
	Entities      []entity         `json:"entities"`
	AccountID     string           `json:"account_id"`
	CompanyID     string           `json:"company_id"`
	Created       time.Time        `json:"created"`
	DataCalls     int              `json:"data_calls"`
	Company       map[string]any   `json:"company,omitempty"` // set by PUT /sandbox/company
	Extra         []map[string]any `json:"extra,omitempty"`   // added by POST /sandbox/directory
	Username      string           `json:"username,omitempty"`
	Finch         bool             `json:"finch,omitempty"` // Finch-generated data: connection_type "finch"

	// sb-payroll (timeline.go): the sandbox data API's changes and the
	// last refresh noticed; the data of the latest refresh, cached.
	Payroll *payrollState `json:"payroll,omitempty"`
	view    *view
	// sb-items: pay statement item rules (items.go) and the accounts
	// POST /sandbox/connections/accounts added (accounts.go).
	Rules    []*itemRule      `json:"rules,omitempty"`
	Accounts []sandboxAccount `json:"accounts,omitempty"`
	// AuthType is the authentication type ("": credential); an
	// "assisted" connection moves from pending to processing to
	// connected at AssistedNext (zero: no step scheduled). See assisted.go.
	AuthType     string    `json:"authentication_type,omitempty"`
	AssistedNext time.Time `json:"assisted_next,omitzero"`

	// Deductions and jobs (benefits.go, jobs.go); an assisted
	// connection (AuthType) is treated as Finch treats it.
	Benefits       []*benefit `json:"benefits,omitempty"`
	BenefitsSeeded bool       `json:"benefits_seeded,omitempty"` // the employer's own 401(k) and medical plans were added
	SyncOutcome    string     `json:"sync_outcome,omitempty"`    // PUT /sandbox/jobs/configuration; "" is complete
	RefreshWindow  time.Time  `json:"refresh_window,omitzero"`   // the hour Refreshes counts in
	Refreshes      int        `json:"refreshes,omitempty"`       // data_sync_all jobs started in RefreshWindow

	// The first sync (jobs.go, initialSync): done once the connection was
	// first connected; BaseURL is the sandbox's public URL when it was
	// made, for the job URLs of webhooks sent from the background tick.
	InitialSynced bool   `json:"initial_synced,omitempty"`
	BaseURL       string `json:"base_url,omitempty"`
}

// entity is one of a connection's entities; its name is its company's
// legal name, derived from the seed like the rest of its data.
type entity struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// connectionType is Finch's connection_type: "finch" for a Finch Sandbox
// connection (Finch-generated data: a session with "sandbox": "finch", or
// POST /sandbox/connections), "provider" for the others, as Finch's SDK
// documents it (CreateAccessTokenResponse, Introspection).
func (c *connection) connectionType() string {
	if c.Finch {
		return "finch"
	}
	return "provider"
}

func (c *connection) hasProduct(p string) bool {
	for _, q := range c.Products {
		if q == p || (p == "benefits" && q == "deduction") {
			return true
		}
	}
	return false
}
