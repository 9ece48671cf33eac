package finch

import (
	"context"
	"errors"
)

// SessionRequest describes a Connect session for a new connection. Empty
// optional fields are left out of the request.
type SessionRequest struct {
	CustomerID    string   `json:"customer_id"`   // required: your own id for the employer
	CustomerName  string   `json:"customer_name"` // required
	CustomerEmail string   `json:"customer_email,omitempty"`
	Products      []string `json:"products"` // required, e.g. "company", "directory"
	// RedirectURI is where Connect sends the employer back with a code, for
	// the redirect flow; leave it empty for the embedded flow. It must be
	// registered with Finch.
	RedirectURI string `json:"redirect_uri,omitempty"`
	// MinutesToExpire is the session's lifetime, 1 to 129600; Finch's
	// default (0 here) is 90 days.
	MinutesToExpire int          `json:"minutes_to_expire,omitempty"`
	Sandbox         string       `json:"sandbox,omitempty"` // "finch" or "provider" for sandbox sessions
	Manual          bool         `json:"manual,omitempty"`  // list assisted providers too
	Integration     *Integration `json:"integration,omitempty"`
}

// Integration preselects the provider (and optionally the authentication
// method) in Connect, skipping the picker.
type Integration struct {
	Provider   string `json:"provider"`
	AuthMethod string `json:"auth_method,omitempty"` // assisted, credential, oauth or api_token
}

// ReauthRequest describes a Connect session that re-authenticates an
// existing connection, keeping its connection id.
type ReauthRequest struct {
	ConnectionID    string   `json:"connection_id"` // required
	MinutesToExpire int      `json:"minutes_to_expire,omitempty"`
	Products        []string `json:"products,omitempty"`
	RedirectURI     string   `json:"redirect_uri,omitempty"`
}

// Session is a Connect session: send the employer to ConnectURL.
type Session struct {
	SessionID  string `json:"session_id"`
	ConnectURL string `json:"connect_url"`
}

// NewConnectSession creates a Connect session with POST /connect/sessions
// (https://developer.tryfinch.com/api-reference/connect/new-session),
// authenticated with the client id and secret.
//
// Creating a session is a write and Finch offers no idempotency key, so a
// resend after a lost answer could create a second session for the same
// employer. The call is therefore retried only when Finch certainly did not
// act on it: the connection could not be made, or Finch answered 429 (a
// rate-limited request is refused before it is processed). A timeout or a
// 5xx is returned as is.
func (c *Client) NewConnectSession(ctx context.Context, req SessionRequest) (*Session, error) {
	switch {
	case req.CustomerID == "" || req.CustomerName == "":
		return nil, errors.New("finch: new connect session: CustomerID and CustomerName are required")
	case len(req.Products) == 0:
		return nil, errors.New("finch: new connect session: at least one product is required")
	}
	return c.session(ctx, "/connect/sessions", req)
}

// ReauthenticateSession creates a Connect session that lets the employer
// re-authenticate an existing connection, with
// POST /connect/sessions/reauthenticate
// (https://developer.tryfinch.com/api-reference/connect/reauthenticate-session).
// The exchange that follows yields a new token for the same connection id.
// It is retried like [Client.NewConnectSession].
func (c *Client) ReauthenticateSession(ctx context.Context, req ReauthRequest) (*Session, error) {
	if req.ConnectionID == "" {
		return nil, errors.New("finch: reauthenticate session: ConnectionID is required")
	}
	return c.session(ctx, "/connect/sessions/reauthenticate", req)
}

func (c *Client) session(ctx context.Context, path string, body any) (*Session, error) {
	if c.ClientID == "" || c.ClientSecret.IsZero() {
		return nil, errors.New("finch: connect session: ClientID and ClientSecret are required")
	}
	var out Session
	err := c.do(ctx, &request{method: "POST", path: path, body: encode(body), auth: authBasic, policy: retryUnsent}, &out)
	if err != nil {
		return nil, err
	}
	if out.SessionID == "" || out.ConnectURL == "" {
		return nil, errors.New("finch: connect session: the response has no session_id or connect_url")
	}
	return &out, nil
}
