package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
)

// FlowRequest asks for a Connect flow started by the app's back-end (through
// the /v1 API) rather than by a browser on this server's pages.
type FlowRequest struct {
	CustomerID    string
	CustomerName  string
	CustomerEmail string
	Products      []string

	// ConnectionID, when set, re-authenticates that stored connection: the
	// new token replaces the old one under the same id.
	ConnectionID string

	// Embedded flows are for an app page that opens Connect itself and
	// receives the code by postMessage; it then hands code and state to
	// [Server.CompleteFlow] (or POST /callback). Otherwise Connect redirects
	// the browser to this server's /callback.
	Embedded bool

	// ReturnURL is where the browser goes after a redirect flow's callback,
	// with ?connection_id=… added. It must share the origin of
	// Config.PublicURL or of one of Config.ReturnOrigins. Empty: this
	// server's connection page.
	ReturnURL string
}

// Flow is a started Connect flow: send the employer to ConnectURL.
type Flow struct {
	SessionID  string    `json:"session_id"`
	ConnectURL string    `json:"connect_url"`
	State      string    `json:"state"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// ErrInvalidFlow is returned by StartFlow for a request that fails
// validation; its message says why.
var ErrInvalidFlow = errors.New("server: invalid flow request")

// StartFlow creates a Connect session and records its state, for a flow
// that the app's back-end starts. The state is not bound to a browser: it
// is 256 random bits, single use and short-lived, and whoever completes the
// flow must present it.
func (s *Server) StartFlow(ctx context.Context, req FlowRequest) (*Flow, error) {
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
	redirectURI := ""
	if fs.Mode == modeRedirect {
		redirectURI = s.redirectURI()
	}
	if req.ConnectionID != "" {
		// A re-authentication may ask for other products than the
		// connection has (none: the same ones); they are checked as a new
		// flow's are.
		if problems := productProblems(req.Products); problems != nil {
			return nil, fmt.Errorf("%w: %s", ErrInvalidFlow, problems[0])
		}
		conn, err := s.store.Lookup(ctx, req.ConnectionID)
		if err != nil {
			return nil, storeFailure(err)
		}
		fs.Kind, fs.ConnectionID = kindReauth, conn.ConnectionID
		fs.CustomerID, fs.CustomerName, fs.Products = conn.CustomerID, conn.CustomerName, conn.Products
	} else {
		form := connectForm{CustomerID: req.CustomerID, CustomerName: req.CustomerName, Products: req.Products}
		if problems := form.validate(); problems != nil {
			return nil, fmt.Errorf("%w: %s", ErrInvalidFlow, problems[0])
		}
		fs.CustomerID, fs.CustomerName, fs.Products = req.CustomerID, req.CustomerName, req.Products
	}
	// The state is recorded before Finch is asked for a session: with the
	// store down, nothing is sent to Finch (no session left dangling), and
	// a state whose session then fails simply expires unused.
	state, err := s.newState(ctx, "", fs)
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
		return nil, fmt.Errorf("server: Finch returned a bad connect_url: %v", err)
	}
	return &Flow{
		SessionID:  session.SessionID,
		ConnectURL: withQuery(u.String(), "state", state),
		State:      state,
		ExpiresAt:  s.cfg.Now().Add(s.cfg.StateTTL).UTC(),
	}, nil
}

// CompleteFlow exchanges the code of a flow started with StartFlow and
// stores the connection, exactly once: the same code presented again, here
// or on another replica, returns the same connection id. It returns an
// error matching finchconnect.ErrStateMismatch or ErrInvalidCode for a bad
// state or code.
func (s *Server) CompleteFlow(ctx context.Context, code, state string) (string, error) {
	out, err := s.complete(ctx, code, state, "")
	return out.ConnectionID, err
}

// Connection returns a stored connection's metadata, without its token.
func (s *Server) Connection(ctx context.Context, id string) (finchconnect.Connection, error) {
	return s.store.Lookup(ctx, id)
}

// returnAllowed reports whether a return URL is on this server's origin or
// an allowed one: anything else would make the callback an open redirect.
func (s *Server) returnAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return false
	}
	origin := u.Scheme + "://" + u.Host
	if origin == s.publicURL.Scheme+"://"+s.publicURL.Host {
		return true
	}
	for _, o := range s.cfg.ReturnOrigins {
		if o == origin {
			return true
		}
	}
	return false
}

// withQuery returns raw with the query parameter k set to v.
func withQuery(raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}
