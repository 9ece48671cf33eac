package server

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
)

// maxProxyBody bounds a request body sent through the proxy: Finch's
// largest requests (batch reads of 10,000 individuals) stay well under it.
const maxProxyBody = 1 << 20

// proxyAllowed reports whether method and path may go to Finch through the
// proxy: the employer data routes, introspection and providers, and the
// job routes. Never the token, disconnect, Connect or sandbox routes, and
// nothing that is not a plain absolute path (the finch client refuses
// those too).
func proxyAllowed(method, path string) bool {
	switch {
	case path == "/introspect", path == "/providers":
		return method == http.MethodGet
	case strings.HasPrefix(path, "/employer/"), strings.HasPrefix(path, "/jobs/"), strings.HasPrefix(path, "/payroll/"):
		return true
	}
	return false
}

// readOnly reports whether a proxied call only reads: GETs, and the batch
// POSTs that Finch uses for reads.
func readOnly(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		return path == "/employer/individual" || path == "/employer/employment" || path == "/employer/pay-statement"
	}
	return false
}

// passHeaders are Finch's response headers the proxy hands on.
var passHeaders = []string{
	"Content-Type", "Finch-Request-Id", "Retry-After", "Retry-After-Ms",
	"Finch-Data-Retrieved", "Finch-Last-Attempted-Update-Date", "Finch-Last-Attempted-Update-Result",
}

// handleProxy forwards /v1/connections/{id}/finch/{path...} to Finch with
// the connection's token injected. It goes only to the configured Finch
// base URL and only to allowed paths: the caller chooses neither the host
// nor the credential. Reads are retried by the client as reads; Finch's
// answer, whatever its status, is passed back as it is.
func (s *Server) handleProxy() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		path := "/" + r.PathValue("path")
		raw := strings.ToLower(r.URL.EscapedPath())
		// Encoded slashes, dots or backslashes are refused outright: they
		// are how path checks are smuggled past.
		if strings.Contains(raw, "%2f") || strings.Contains(raw, "%2e") || strings.Contains(raw, "%5c") || !proxyAllowed(r.Method, path) {
			s.writeJSONError(w, r, http.StatusForbidden, "path_not_allowed", "This Finch path is not available through the proxy.")
			return
		}
		if !readOnly(r.Method, path) {
			if rec, ok := ctx.Value(apiKeyScopeCtx).(string); ok && rec != apikey.ScopeWrite {
				s.writeJSONError(w, r, http.StatusForbidden, "forbidden", "This API key is read-only.")
				return
			}
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxProxyBody))
		if err != nil {
			s.writeJSONError(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "The request body is over 1 MiB.")
			return
		}
		id := r.PathValue("id")
		conn, err := s.store.Get(ctx, id)
		if err != nil {
			s.fail(w, r, true, err)
			return
		}
		s.audit(ctx, finchconnect.AuditDecrypted, id, actor(ctx), r.Method+" "+path)
		res, err := s.finch.Do(ctx, conn.AccessToken, r.Method, path, r.URL.Query(), body)
		if err != nil {
			s.fail(w, r, true, err)
			return
		}
		if errors.Is(res.Err(), finchconnect.ErrReauthRequired) && conn.Status != finchconnect.StatusReauth {
			s.markReauth(r, id)
		}
		for _, h := range passHeaders {
			if v := res.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		for k, v := range res.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-ratelimit-") {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(res.Body)
	})
}

// markReauth records that Finch wants the employer to sign in again, and
// tells the app.
func (s *Server) markReauth(r *http.Request, id string) {
	var conn finchconnect.Connection
	err := s.store.Update(r.Context(), id, func(c *finchconnect.Connection) error {
		c.Status = finchconnect.StatusReauth
		c.CheckedAt = s.cfg.Now()
		conn = *c
		return nil
	})
	if err != nil {
		s.log.Warn("record reauth status", "connection_id", id, "err", err)
		return
	}
	conn.AccessToken = ""
	s.notify(r.Context(), finchconnect.EventConnectionReauthRequired, conn)
}
