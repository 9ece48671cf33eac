package connect

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
)

// FlowRequest asks for a Connect flow: a new connection, or the
// re-authentication of a stored one.
type FlowRequest struct {
	CustomerID    string
	CustomerName  string
	CustomerEmail string
	Products      []string

	// ConnectionID, when set, re-authenticates that stored connection: the
	// new token replaces the old one under the same id. Products may then
	// be empty (the connection's own); CustomerID and CustomerName are the
	// connection's.
	ConnectionID string

	// Embedded flows are for an app page that opens Connect itself and
	// receives the code by postMessage; it then hands code and state to
	// [Service.Complete]. Otherwise Connect redirects the browser to
	// Config.RedirectURI.
	Embedded bool

	// ReturnURL is where the browser goes after a redirect flow's callback,
	// with ?connection_id=… added. It must be on the origin of
	// Config.RedirectURI or of one of Config.ReturnOrigins. Empty: the
	// transport's default.
	ReturnURL string

	// Browser is the browser cookie to bind the flow to: only a callback
	// from that browser completes it. Empty for a flow the app's back-end
	// starts: the state is then not bound to a browser (it is 256 random
	// bits, single use and short-lived, and whoever completes the flow
	// must present it).
	Browser string
}

// Flow is a started Connect flow: send the employer to ConnectURL.
type Flow struct {
	SessionID  string    `json:"session_id"`
	ConnectURL string    `json:"connect_url"`
	State      string    `json:"state"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Problems checks a flow request against Finch's rules for a Connect
// session (finch-api.md §2.1) and returns every problem at once, as
// sentences; nil when there is none. A re-authentication's products are
// checked as a new flow's are.
func Problems(req FlowRequest) []string {
	if req.ConnectionID != "" {
		return productProblems(req.Products)
	}
	var problems []string
	if n := len(strings.TrimSpace(req.CustomerID)); n == 0 || len(req.CustomerID) > 255 {
		problems = append(problems, "Customer id is required (1 to 255 characters).")
	}
	if n := len(strings.TrimSpace(req.CustomerName)); n == 0 || len(req.CustomerName) > 255 {
		problems = append(problems, "Customer name is required (1 to 255 characters).")
	}
	if len(req.Products) == 0 {
		problems = append(problems, "Choose at least one product.")
	}
	return append(problems, productProblems(req.Products)...)
}

// productProblems names each of ps that is not a Finch product. Every path
// that asks Finch for a session checks its products with it, so that a typo
// is the caller's 400, not Finch's refusal (a 502).
// Every product Finch accepts is valid (finch.Products, "deduction" among
// them); Finch refuses "deduction" together with "benefits", its
// replacement, and so does this.
func productProblems(ps []string) []string {
	var problems []string
	for _, p := range ps {
		if !finch.IsProduct(p) {
			problems = append(problems, fmt.Sprintf("%q is not a Finch product.", p))
		}
	}
	if slices.Contains(ps, "deduction") && slices.Contains(ps, "benefits") {
		problems = append(problems, `"deduction" is the deprecated name of "benefits": ask for one of them.`)
	}
	return problems
}

// StartFlow records a flow's state and creates its Connect session. A
// request that fails validation is [ErrInvalidFlow], whose message says
// why; a re-authentication of an unknown connection wraps
// finchconnect.ErrNotFound; a store that fails before anything reached
// Finch is [ErrStoreDown]. Other errors are Finch's (finch package types).
func (s *Service) StartFlow(ctx context.Context, req FlowRequest) (*Flow, error) {
	fs := flowState{Kind: kindConnect, Mode: modeRedirect, ReturnURL: req.ReturnURL}
	if req.Embedded {
		fs.Mode = modeEmbedded
		if req.ReturnURL != "" {
			return nil, fmt.Errorf("%w: return_url applies to redirect flows only", ErrInvalidFlow)
		}
	}
	if req.ReturnURL != "" && !s.returnAllowed(req.ReturnURL) {
		return nil, fmt.Errorf("%w: return_url must be on an allowed origin", ErrInvalidFlow)
	}
	if problems := Problems(req); problems != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidFlow, problems[0])
	}
	redirectURI := ""
	if fs.Mode == modeRedirect {
		redirectURI = s.cfg.RedirectURI
	}
	if req.ConnectionID != "" {
		conn, err := s.store.Lookup(ctx, req.ConnectionID)
		if err != nil {
			return nil, storeFailure(err)
		}
		fs.Kind, fs.ConnectionID = kindReauth, conn.ConnectionID
		fs.CustomerID, fs.CustomerName, fs.Products = conn.CustomerID, conn.CustomerName, conn.Products
	} else {
		fs.CustomerID, fs.CustomerName, fs.Products = req.CustomerID, req.CustomerName, req.Products
	}
	// The state is recorded before Finch is asked for a session: with the
	// store down, nothing is sent to Finch (no session left dangling), and
	// a state whose session then fails simply expires unused.
	state, err := s.newState(ctx, req.Browser, fs)
	if err != nil {
		return nil, err
	}
	var session *finch.Session
	if fs.Kind == kindReauth {
		session, err = s.finch.ReauthenticateSession(ctx, finch.ReauthRequest{
			ConnectionID: fs.ConnectionID, RedirectURI: redirectURI, Products: req.Products,
		})
	} else {
		session, err = s.finch.NewConnectSession(ctx, finch.SessionRequest{
			CustomerID: req.CustomerID, CustomerName: req.CustomerName, CustomerEmail: req.CustomerEmail,
			Products: req.Products, RedirectURI: redirectURI, Sandbox: s.cfg.Sandbox,
		})
	}
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(session.ConnectURL)
	if err != nil {
		return nil, fmt.Errorf("connect: Finch returned a bad connect_url: %v", err)
	}
	// Sessions carry no state; Finch's Connect SDK appends it to the URL,
	// and Connect echoes it back on the callback (finch-api.md §2.1).
	q := u.Query()
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return &Flow{
		SessionID:  session.SessionID,
		ConnectURL: u.String(),
		State:      state,
		ExpiresAt:  s.clock.Now().Add(s.cfg.StateTTL).UTC(),
	}, nil
}

// storeFailure marks a store error that is not an answer about the record
// (not found, cannot be decrypted) as the store being unavailable.
func storeFailure(err error) error {
	if err == nil || errors.Is(err, finchconnect.ErrNotFound) || errors.Is(err, finchconnect.ErrDecrypt) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrStoreDown, err)
}
