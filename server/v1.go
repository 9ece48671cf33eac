package server

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// The app-facing JSON API under /v1: the app's own services start Connect,
// list and read connections, disconnect them, and read employer data
// through the proxy — authenticated with API keys, and never seeing a
// token. openapi.json describes it.

//go:embed openapi.json
var openAPIDoc []byte

type ctxKeyAPI int

const (
	apiKeyCtx ctxKeyAPI = iota
	apiKeyScopeCtx
	apiKeyPersonalCtx
)

// requireKey authenticates the request's API key and checks its scope.
func (s *Server) requireKey(scope string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, err := s.keys(r.Context(), r.Header.Get("Authorization"))
		switch {
		case errors.Is(err, apikey.ErrMissing):
			w.Header().Set("WWW-Authenticate", `Bearer realm="finchconnect"`)
			s.writeNamedError(w, r, http.StatusUnauthorized, "unauthorized_request_error", "unauthorized", "An API key is required: Authorization: Bearer fck_…")
			return
		case errors.Is(err, apikey.ErrInvalid), errors.Is(err, apikey.ErrRevoked):
			w.Header().Set("WWW-Authenticate", `Bearer realm="finchconnect", error="invalid_token"`)
			s.writeJSONError(w, r, http.StatusUnauthorized, "unauthorized", "The API key is invalid or revoked.")
			return
		case err != nil:
			s.fail(w, r, true, fmt.Errorf("%w: verify API key: %v", connect.ErrStoreDown, err))
			return
		case !rec.Allows(scope):
			s.writeJSONError(w, r, http.StatusForbidden, "forbidden", "This API key's scope ("+rec.Scope+") does not allow this route.")
			return
		}
		ctx := context.WithValue(r.Context(), apiKeyCtx, rec.ID)
		ctx = context.WithValue(ctx, apiKeyScopeCtx, rec.Scope)
		ctx = context.WithValue(ctx, apiKeyPersonalCtx, rec.Personal)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// actor names the API key a request came with, for the audit trail.
func actor(ctx context.Context) string {
	if id, ok := ctx.Value(apiKeyCtx).(string); ok {
		return "api:" + id
	}
	return "api"
}

// connectionJSON is a connection as the API shows it: everything but the
// token.
type connectionJSON struct {
	ConnectionID   string    `json:"connection_id"`
	CustomerID     string    `json:"customer_id"`
	CustomerName   string    `json:"customer_name"`
	CustomerEmail  string    `json:"customer_email,omitempty"`
	ProviderID     string    `json:"provider_id"`
	Products       []string  `json:"products"`
	EntityIDs      []string  `json:"entity_ids"`
	ConnectionType string    `json:"connection_type,omitempty"`
	ClientType     string    `json:"client_type,omitempty"`
	Status         string    `json:"status"`
	StatusMessage  string    `json:"status_message,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	LastSyncAt     time.Time `json:"last_sync_at,omitzero"`
	CheckedAt      time.Time `json:"checked_at,omitzero"`
}

func toJSON(c finchconnect.Connection) connectionJSON {
	return connectionJSON{
		ConnectionID: c.ConnectionID, CustomerID: c.CustomerID, CustomerName: c.CustomerName, CustomerEmail: c.CustomerEmail,
		ProviderID: c.ProviderID, Products: nonNilStrings(c.Products), EntityIDs: nonNilStrings(c.EntityIDs),
		ConnectionType: c.ConnectionType, ClientType: c.ClientType, Status: c.Status, StatusMessage: c.StatusMessage,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, LastSyncAt: c.LastSyncAt, CheckedAt: c.CheckedAt,
	}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// decodeJSON reads a JSON request body into v, refusing unknown fields so
// that a typo is an error rather than a silently ignored setting.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// handleAPIConnectSession starts a Connect flow for the app: a new
// connection, or (with connection_id) a re-authentication.
func (s *Server) handleAPIConnectSession() http.Handler {
	type request struct {
		CustomerID    string   `json:"customer_id"`
		CustomerName  string   `json:"customer_name"`
		CustomerEmail string   `json:"customer_email"`
		Products      []string `json:"products"`
		ConnectionID  string   `json:"connection_id"`
		Embedded      bool     `json:"embedded"`
		ReturnURL     string   `json:"return_url"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			s.writeJSONError(w, r, http.StatusBadRequest, "invalid_request", "The body must be a JSON object: "+jsonProblem(err))
			return
		}
		if id := r.PathValue("id"); id != "" {
			req.ConnectionID = id
		}
		flow, err := s.protocol.StartFlow(r.Context(), connect.FlowRequest{
			CustomerID: req.CustomerID, CustomerName: req.CustomerName, CustomerEmail: req.CustomerEmail,
			Products: req.Products, ConnectionID: req.ConnectionID, Embedded: req.Embedded, ReturnURL: req.ReturnURL,
		})
		if err != nil {
			s.fail(w, r, true, err)
			return
		}
		writeJSON(w, http.StatusCreated, flow)
	})
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "malformed JSON at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	case errors.Is(err, io.EOF):
		return "empty body"
	default:
		return "unreadable body"
	}
}

// handleAPIComplete completes an embedded flow started through the API.
func (s *Server) handleAPIComplete() http.Handler {
	type request struct {
		Code  string `json:"code"`
		State string `json:"state"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			s.writeJSONError(w, r, http.StatusBadRequest, "invalid_request", "The body must be a JSON object: "+jsonProblem(err))
			return
		}
		start := s.clock.Now()
		out, err := s.protocol.Complete(r.Context(), connect.Callback{Code: req.Code, State: req.State})
		s.observe(callbackOutcome(out, err), s.clock.Now().Sub(start))
		if err != nil {
			s.fail(w, r, true, err)
			return
		}
		conn, err := s.store.Lookup(r.Context(), out.ConnectionID)
		if err != nil {
			writeJSON(w, http.StatusAccepted, map[string]string{"connection_id": out.ConnectionID})
			return
		}
		writeJSON(w, http.StatusOK, toJSON(conn))
	})
}

// handleAPIListConnections lists connections, filtered and paged.
func (s *Server) handleAPIListConnections() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := 100
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 500 {
				s.writeJSONError(w, r, http.StatusBadRequest, "invalid_request", "limit must be between 1 and 500")
				return
			}
			limit = n
		}
		conns, next, err := s.store.List(r.Context(), tokenstore.Filter{
			CustomerID: q.Get("customer_id"), ProviderID: q.Get("provider_id"), Status: q.Get("status"),
			After: q.Get("after"), Limit: limit,
		})
		if err != nil {
			s.fail(w, r, true, fmt.Errorf("%w: list connections: %v", connect.ErrStoreDown, err))
			return
		}
		data := make([]connectionJSON, len(conns))
		for i, c := range conns {
			data[i] = toJSON(c)
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "next": next})
	})
}

func (s *Server) handleAPIGetConnection() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := s.store.Lookup(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, true, storeFailure(err))
			return
		}
		writeJSON(w, http.StatusOK, toJSON(conn))
	})
}

// handleAPIDeleteConnection disconnects at Finch, then deletes the token.
func (s *Server) handleAPIDeleteConnection() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := r.PathValue("id")
		if err := s.disconnect(ctx, id, actor(ctx)); err != nil {
			s.fail(w, r, true, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// disconnect revokes a connection at Finch, then deletes its token, then
// shreds its local records. A token Finch already refuses counts as
// disconnected; any other failure keeps the token, so the disconnect can be
// retried. A failed shred does not fail the disconnect (ShredOrphans
// retries it).
func (s *Server) disconnect(ctx context.Context, id, who string) error {
	conn, err := s.store.Get(ctx, id)
	if err != nil {
		return storeFailure(err)
	}
	if err := s.finch.Disconnect(ctx, conn.AccessToken); err != nil && !errors.Is(err, finchconnect.ErrUnauthorized) {
		return err
	}
	err = s.store.Delete(ctx, id)
	s.conns.forget(id)
	if err != nil && !errors.Is(err, finchconnect.ErrNotFound) {
		// Finch has revoked the token; trying again finds it refused
		// (counted as disconnected above) and deletes it then.
		return storeFailure(err)
	}
	s.audit(ctx, finchconnect.AuditDisconnected, id, who, "")
	s.shredRecords(ctx, id)
	conn.Status = finchconnect.StatusDisconnected
	s.notifyAfter(ctx, finchconnect.EventConnectionDisconnected, conn)
	return nil
}

// storeFailure marks a store error that is not an answer about the record
// (not found, cannot be decrypted) as the store being unavailable: a 503
// that says nothing reached Finch, rather than a 500.
func storeFailure(err error) error {
	if err == nil || errors.Is(err, finchconnect.ErrNotFound) || errors.Is(err, finchconnect.ErrDecrypt) {
		return err
	}
	return fmt.Errorf("%w: %v", connect.ErrStoreDown, err)
}

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openAPIDoc)
	})
}
