package sandbox

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// handleToken is POST /auth/token: a JSON body with the client credentials
// (current SDKs), or HTTP Basic with a form body (older ones). Codes are
// single use: the check and the consumption happen under one lock, so of
// any number of concurrent exchanges of one code exactly one succeeds.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Code         string `json:"code"`
		RedirectURI  string `json:"redirect_uri"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			s.refuse(w, http.StatusBadRequest, "bad_request", "invalid_request", "Unreadable form body.")
			return
		}
		req.Code, req.RedirectURI = r.PostForm.Get("code"), r.PostForm.Get("redirect_uri")
		req.ClientID, req.ClientSecret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if id, secret, ok := r.BasicAuth(); ok {
			req.ClientID, req.ClientSecret = id, secret
		}
	} else if err := decodeBody(r, &req); err != nil {
		s.refuse(w, http.StatusBadRequest, "bad_request", "invalid_request", "The body must be a JSON object with client_id, client_secret and code.")
		return
	}
	if !s.checkClient(req.ClientID, req.ClientSecret) {
		s.refuse(w, http.StatusUnauthorized, "invalid_client_error", "", "Invalid client_id or client_secret.")
		return
	}
	if req.Code == "" {
		s.refuse(w, http.StatusBadRequest, "bad_request", "invalid_request", "code is required.")
		return
	}

	resp, problem := s.redeem(req.Code, req.RedirectURI, s.publicURL(r))
	if problem != "" {
		s.refuse(w, http.StatusBadRequest, "invalid_grant_error", "", problem)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// redeem consumes code value and mints a token for its connection,
// returning the token response, or why the code was refused. The check
// and the consumption happen under one lock.
func (s *Server) redeem(value, redirectURI, base string) (map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.Codes[digest(value)]
	switch {
	case !ok:
		return nil, "Invalid authorization code."
	case c.Used:
		if s.opts.RevokeOnReuse {
			for _, t := range c.Minted {
				if tok := s.st.Tokens[t]; tok != nil {
					tok.Revoked = true
				}
			}
			s.dirty = true
		}
		return nil, "The authorization code has already been used."
	case s.now().After(c.Expires):
		return nil, "The authorization code has expired."
	case c.RedirectURI != redirectURI:
		// Finch wants the redirect_uri of a redirect-flow code, exactly,
		// and none for an embedded-flow code (finch-api.md §3).
		return nil, "redirect_uri does not match the one the code was issued for."
	}
	conn := s.st.Connections[c.ConnectionID]
	c.Used = true
	s.dirty = true
	if conn == nil || conn.Status == "disconnected" {
		// A code signed in before the connection was disconnected must not
		// mint a token after it: disconnect is permanent.
		return nil, "The connection this code was issued for has been disconnected."
	}
	if c.Reauth != nil {
		s.reauthenticate(conn, c.Reauth)
		c.Reauth = nil
	} else {
		s.initialSync(conn, base)
	}
	tok := s.random(32) // 256 bits
	s.st.Tokens[digest(tok)] = &token{ConnectionID: conn.ID, ID: s.id(), Created: s.now(), ClientID: s.opts.ClientID}
	c.Minted = append(c.Minted, digest(tok))
	s.stats.TokenExchanges++
	return map[string]any{
		"access_token": tok, "token_type": "bearer", "connection_id": conn.ID,
		"client_type": "sandbox", "connection_type": conn.connectionType(), "entity_ids": entityIDs(conn),
		"products": conn.Products, "provider_id": conn.ProviderID,
		"account_id": conn.AccountID, "company_id": conn.CompanyID,
		"customer_id": nullable(conn.CustomerID), "customer_name": nullable(conn.CustomerName),
	}, ""
}

func (s *Server) refuse(w http.ResponseWriter, status int, name, finchCode, message string) {
	s.mu.Lock()
	s.stats.FailedExchanges++
	s.mu.Unlock()
	writeError(w, status, name, finchCode, message)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func entityIDs(c *connection) []string {
	ids := []string{}
	for _, e := range c.Entities {
		ids = append(ids, e.ID)
	}
	return ids
}

// bearer resolves the access token before h runs, with Finch's 401s.
func (s *Server) bearer(h func(http.ResponseWriter, *http.Request, *connection, *token)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		value := bearerToken(r)
		if value == "" {
			writeError(w, http.StatusUnauthorized, "unauthorized_request_error", "", "Unauthorized request: no authentication given")
			return
		}
		s.mu.Lock()
		t := s.st.Tokens[digest(value)]
		var c *connection
		if t != nil {
			c = s.st.Connections[t.ConnectionID]
		}
		// A disconnected connection's tokens are all revoked; checking its
		// status as well keeps that true for any token minted some other
		// way. Both are read under the lock: a disconnect may be running.
		if c != nil {
			s.assistedTick(c)
		}
		valid := t != nil && !t.Revoked && c != nil && c.Status != "disconnected"
		s.mu.Unlock()
		if !valid {
			writeError(w, http.StatusUnauthorized, "invalid_token_error", "", "Invalid access token.")
			return
		}
		if !s.allowApp(w, r, t) {
			return
		}
		h(w, r, c, t)
	}
}

// handleIntrospect is GET /introspect.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request, c *connection, t *token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status := map[string]any{"status": c.Status, "last_successful_sync": s.now().UTC().Add(-3 * 3600e9).Format("2006-01-02T15:04:05Z"), "message": statusMessage(c)}
	if c.assisted() && (c.Status == "pending" || c.Status == "processing") {
		status["last_successful_sync"] = nil // the first sync has not finished
	}
	var entities []any
	for i, e := range c.Entities {
		entities = append(entities, map[string]any{"id": e.ID, "name": c.entityName(i), "source_id": nil, "status": e.Status})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": t.ID, "client_id": s.opts.ClientID, "client_type": "sandbox",
		"connection_id": c.ID, "connection_type": c.connectionType(), "connection_status": status,
		"products": c.Products, "provider_id": c.ProviderID, "account_id": c.AccountID, "company_id": c.CompanyID,
		"payroll_provider_id":    c.ProviderID,
		"authentication_methods": append([]any{map[string]any{"type": c.authType(), "connection_status": status, "products": c.Products}}, c.accountMethods(status)...),
		"customer_id":            nullable(c.CustomerID), "customer_name": nullable(c.CustomerName), "customer_email": nullable(c.CustomerEmail),
		"entities": entities, "manual": c.assisted(), "username": nullable(c.Username),
	})
}

// handleDisconnect is POST /disconnect: every token of the connection is
// revoked, so each answers 401 from then on.
func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.disconnect(c)
	}()
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}

// disconnect ends connection c for good: every token it has is revoked
// and no re-authentication can revive it (Finch: a new Connect makes a new
// connection). s.mu must be held.
func (s *Server) disconnect(c *connection) {
	for _, t := range s.st.Tokens {
		if t.ConnectionID == c.ID {
			t.Revoked = true
		}
	}
	if c.Status != "disconnected" {
		c.Status = "disconnected"
		c.AssistedNext = time.Time{}
		s.emitStatus(c)
	}
	s.dirty = true
}

// handleDisconnectEntity is POST /disconnect-entity {entity_ids}.
func (s *Server) handleDisconnectEntity(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	var req struct {
		EntityIDs []string `json:"entity_ids"`
	}
	if err := decodeBody(r, &req); err != nil || len(req.EntityIDs) == 0 {
		badRequest(w, "entity_ids must list at least one entity.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range req.EntityIDs {
		if !slices.ContainsFunc(c.Entities, func(e entity) bool { return e.ID == id }) {
			writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "No such entity on this connection.")
			return
		}
	}
	for i := range c.Entities {
		if slices.Contains(req.EntityIDs, c.Entities[i].ID) && c.Entities[i].Status != "disconnected" {
			c.Entities[i].Status = "disconnected"
			s.emitEntityStatus(c, c.Entities[i]) // Finch: one account.updated per entity removed
		}
	}
	s.dirty = true
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}

// handleProviders is GET /providers, with or without a token.
func (s *Server) handleProviders(w http.ResponseWriter, r *http.Request) {
	var out []any
	for _, p := range providers {
		out = append(out, map[string]any{
			"id": p.ID, "display_name": p.Name, "products": providerProducts,
			"authentication_methods": []any{map[string]any{"type": "credential", "benefits_support": benefitsSupport(p.ID)}}, "beta": false,
			"mfa_required": false, "manual": false, // icon, logo, primary_color: the SDK types them string, so absent rather than null
		})
	}
	writeJSON(w, http.StatusOK, out)
}
