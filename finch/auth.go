package finch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
)

// ExchangeCode trades an authorization code from Finch Connect for an
// access token, with POST /auth/token
// (https://developer.tryfinch.com/api-reference/management/create-access-token).
//
// Pass redirectURI exactly as the Connect session had it for a code from
// the redirect flow, and "" for a code from the embedded flow: Finch refuses
// an embedded-flow code sent with a redirect_uri (400 invalid_grant_error).
//
// The returned Connection has the token and every id Finch sent; Status is
// left empty, for the caller to fill from [Client.Introspect].
//
// ExchangeCode never retries and never sends a code twice, because a code
// is single use. So if the request may have reached Finch and no answer came
// back (a timeout, a reset connection, ctx cancelled while waiting), the
// code's fate is unknown: Finch may have minted a token that nobody holds.
// Treat any error other than an *[APIError] as "ask the employer to connect
// again"; never call ExchangeCode again with the same code. A refused code
// gives an error matching [finchconnect.ErrInvalidCode], refused client
// credentials [finchconnect.ErrInvalidClient]. Errors never contain the code
// or the token.
func (c *Client) ExchangeCode(ctx context.Context, code, redirectURI string) (finchconnect.Connection, error) {
	switch {
	case code == "":
		return finchconnect.Connection{}, errors.New("finch: exchange code: the code is empty")
	case c.ClientID == "" || c.ClientSecret.IsZero():
		return finchconnect.Connection{}, errors.New("finch: exchange code: ClientID and ClientSecret are required")
	}
	in := struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Code         string `json:"code"`
		RedirectURI  string `json:"redirect_uri,omitempty"`
	}{c.ClientID, c.ClientSecret.Reveal(), code, redirectURI}
	var out struct {
		AccessToken    string   `json:"access_token"`
		TokenType      string   `json:"token_type"`
		ConnectionID   string   `json:"connection_id"`
		ClientType     string   `json:"client_type"`
		ConnectionType string   `json:"connection_type"`
		EntityIDs      []string `json:"entity_ids"`
		Products       []string `json:"products"`
		ProviderID     string   `json:"provider_id"`
		AccountID      string   `json:"account_id"`
		CompanyID      string   `json:"company_id"`
		CustomerID     *string  `json:"customer_id"`
		CustomerName   *string  `json:"customer_name"`
	}
	// The credentials travel in the body, and the request carries no
	// Authorization header: Finch's SDK removes it explicitly for this
	// route (finch-api.md §1.2).
	err := c.do(ctx, &request{
		method: "POST", path: "/auth/token", body: encode(in),
		auth: authNone, policy: retryNever, hide: []string{code},
	}, &out)
	if err != nil {
		return finchconnect.Connection{}, err
	}
	switch {
	case out.AccessToken == "":
		return finchconnect.Connection{}, errors.New("finch: exchange code: the response has no access_token")
	case out.TokenType != "" && !strings.EqualFold(out.TokenType, "bearer"):
		return finchconnect.Connection{}, fmt.Errorf("finch: exchange code: unexpected token_type %q", cleanText(out.TokenType, 32))
	case out.ConnectionID == "":
		// The connection id is the vault's primary key; a token without
		// one cannot be stored, and Finch has sent it since 2024-09.
		return finchconnect.Connection{}, errors.New("finch: exchange code: the response has no connection_id")
	}
	return finchconnect.Connection{
		ConnectionID:   out.ConnectionID,
		CustomerID:     deref(out.CustomerID),
		CustomerName:   deref(out.CustomerName),
		ProviderID:     out.ProviderID,
		Products:       out.Products,
		EntityIDs:      out.EntityIDs,
		ConnectionType: out.ConnectionType,
		ClientType:     out.ClientType,
		AccountID:      out.AccountID,
		CompanyID:      out.CompanyID,
		AccessToken:    finchconnect.NewSecret(out.AccessToken),
	}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Introspection is what GET /introspect says about an access token and its
// connection.
type Introspection struct {
	ID                    string                 `json:"id"` // the token's id, not the token
	ClientID              string                 `json:"client_id"`
	ClientType            string                 `json:"client_type"`     // development, production or sandbox
	ConnectionID          string                 `json:"connection_id"`   //
	ConnectionType        string                 `json:"connection_type"` // provider or finch
	ConnectionStatus      ConnectionStatus       `json:"connection_status"`
	Products              []string               `json:"products"`
	ProviderID            string                 `json:"provider_id"`
	AccountID             string                 `json:"account_id,omitempty"`          // deprecated
	CompanyID             string                 `json:"company_id,omitempty"`          // deprecated
	PayrollProviderID     string                 `json:"payroll_provider_id,omitempty"` // deprecated
	AuthenticationMethods []AuthenticationMethod `json:"authentication_methods,omitempty"`
	CustomerID            string                 `json:"customer_id,omitempty"`
	CustomerName          string                 `json:"customer_name,omitempty"`
	CustomerEmail         string                 `json:"customer_email,omitempty"`
	Entities              []Entity               `json:"entities,omitempty"`
	Manual                bool                   `json:"manual,omitempty"` // true for an assisted connection
	Username              string                 `json:"username,omitempty"`
}

// ConnectionStatus is a connection's (or an authentication method's)
// health. Status is one of the finchconnect Status constants.
type ConnectionStatus struct {
	Status string `json:"status"`
	// LastSuccessfulSync is when Finch last synced the data; nil if Finch
	// did not say, or said it in a form that is not a timestamp.
	LastSuccessfulSync *time.Time `json:"last_successful_sync,omitempty"`
	Message            string     `json:"message,omitempty"`
}

// UnmarshalJSON reads last_successful_sync leniently: an unexpected date
// format must not fail the whole introspection, which the callback needs.
func (s *ConnectionStatus) UnmarshalJSON(b []byte) error {
	var w struct {
		Status             string          `json:"status"`
		LastSuccessfulSync json.RawMessage `json:"last_successful_sync"`
		Message            string          `json:"message"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = ConnectionStatus{Status: w.Status, Message: w.Message}
	var ts string
	if len(w.LastSuccessfulSync) > 0 && !bytes.Equal(w.LastSuccessfulSync, []byte("null")) &&
		json.Unmarshal(w.LastSuccessfulSync, &ts) == nil {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", time.DateOnly} {
			if t, err := time.Parse(layout, ts); err == nil {
				s.LastSuccessfulSync = &t
				break
			}
		}
	}
	return nil
}

// AuthenticationMethod is one way a connection was authorised.
type AuthenticationMethod struct {
	Type             string            `json:"type"` // assisted, credential, api_token, api_credential or oauth
	ConnectionStatus *ConnectionStatus `json:"connection_status,omitempty"`
	Products         []string          `json:"products,omitempty"`
}

// Entity is one legal entity of a multi-entity connection.
type Entity struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	SourceID string `json:"source_id,omitempty"`
	Status   string `json:"status"`
}

// Introspect describes token and its connection, with GET /introspect
// (https://developer.tryfinch.com/api-reference/management/introspect).
// Finch suggests calling it right after the exchange and then now and
// then as a health check. It is retried as a read.
func (c *Client) Introspect(ctx context.Context, token finchconnect.Secret) (*Introspection, error) {
	if err := needToken(token); err != nil {
		return nil, err
	}
	var out Introspection
	err := c.do(ctx, &request{method: "GET", path: "/introspect", auth: authBearer, token: token, policy: retryRead}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Disconnect revokes the whole connection behind token (every token and
// entity of it), with POST /disconnect
// (https://developer.tryfinch.com/api-reference/management/disconnect).
// It is permanent. A token Finch already refuses gives an error matching
// [finchconnect.ErrUnauthorized].
//
// The request has no body. It is retried only when it certainly did not
// reach Finch (see the package documentation).
func (c *Client) Disconnect(ctx context.Context, token finchconnect.Secret) error {
	if err := needToken(token); err != nil {
		return err
	}
	return c.do(ctx, &request{method: "POST", path: "/disconnect", auth: authBearer, token: token, policy: retryUnsent}, nil)
}

// DisconnectEntity disconnects some entities of a multi-entity connection,
// with POST /disconnect-entity; the token and the other entities stay
// valid. It is retried only when it certainly did not reach Finch.
func (c *Client) DisconnectEntity(ctx context.Context, token finchconnect.Secret, entityIDs []string) error {
	if err := needToken(token); err != nil {
		return err
	}
	if len(entityIDs) == 0 {
		return errors.New("finch: disconnect entity: no entity ids")
	}
	body := encode(struct {
		EntityIDs []string `json:"entity_ids"`
	}{entityIDs})
	return c.do(ctx, &request{method: "POST", path: "/disconnect-entity", body: body, auth: authBearer, token: token, policy: retryUnsent}, nil)
}

func needToken(token finchconnect.Secret) error {
	if token.IsZero() {
		return errors.New("finch: the access token is empty")
	}
	return nil
}
