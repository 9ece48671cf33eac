package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/budget"
)

// maxProxyBody bounds a request body sent through the proxy: a batch read
// of 10,000 individuals is about 550 KB. limitBody applies it to proxy
// routes instead of the 64 KiB that bounds every other request.
const maxProxyBody = 1 << 20

// isProxyPath reports whether a request path is (or could be) one of the
// proxy's, for the body limit, which is set before routing.
func isProxyPath(p string) bool {
	return strings.HasPrefix(p, "/v1/connections/") && strings.Contains(p, "/finch/")
}

// proxyMethods are the methods the proxy forwards: Finch's API uses no
// others, and finch.Client.Do refuses any other.
var proxyMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// proxyPathOK reports whether a proxied path is a plain Finch API path:
// segments of letters, digits, '-' and '_' only, as every Finch route and id
// is. That rules out, before any allow-list question, everything path
// checks are smuggled past with: "." and ".." segments, empty segments
// ("//host"), backslashes, control characters, '?', '#', ':' (schemes) and
// any percent-encoding (escaped is the request's escaped path, so "%2f",
// "%2e" or a double-encoded "%252f" never reach Finch to be decoded there).
func proxyPathOK(escaped, path string) bool {
	if strings.Contains(escaped, "%") || len(path) < 2 || path[0] != '/' {
		return false
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "" {
			return false
		}
		for _, c := range []byte(seg) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// proxyAllowed reports whether method and path may go to Finch through the
// proxy: every route of Finch's data, benefits, documents, pay groups, pay
// statement items and jobs (the /employer and /jobs routes), introspection
// and providers, and request forwarding (POST /forward, which the handler
// gates on its own). Never the token, disconnect, Connect or sandbox
// routes. path has passed proxyPathOK.
func proxyAllowed(method, path string) bool {
	switch {
	case path == "/introspect", path == "/providers":
		return method == http.MethodGet || method == http.MethodHead
	case path == forwardPath:
		return method == http.MethodPost
	case strings.HasPrefix(path, "/employer/"), strings.HasPrefix(path, "/jobs/"):
		return true
	}
	return false
}

// forwardPath is Finch's request forwarding.
const forwardPath = "/forward"

// readOnly reports whether a proxied call only reads: GETs, and the batch
// POSTs that Finch uses for reads (individuals, employments, pay
// statements). Every other method is a write: benefits created, updated,
// registered, enrolled in and unenrolled from, pay statement item rules
// created, updated and deleted, a data sync job started.
func readOnly(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		return path == "/employer/individual" || path == "/employer/employment" || path == "/employer/pay-statement"
	}
	return false
}

// proxyScope is the API key scope a proxied call needs.
func proxyScope(method, path string) string {
	switch {
	case path == forwardPath:
		return apikey.ScopeForward
	case readOnly(method, path):
		return apikey.ScopeRead
	}
	return apikey.ScopeWrite
}

// passHeaders are Finch's response headers the proxy hands on: those the
// official SDKs and Finch's docs have clients read (the API version, the
// request id to quote to Finch, the retry advice the SDKs obey:
// x-should-retry, retry-after-ms, retry-after) and the data freshness
// headers.
var passHeaders = []string{
	"Content-Type", "Finch-Api-Version", "Finch-Request-Id", "Retry-After", "Retry-After-Ms", "X-Should-Retry",
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
		if !slices.Contains(proxyMethods, r.Method) {
			w.Header().Set("Allow", strings.Join(proxyMethods, ", "))
			s.writeJSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "The proxy forwards GET, HEAD, POST, PUT, PATCH and DELETE only.")
			return
		}
		path := "/" + r.PathValue("path")
		if !proxyPathOK(r.URL.EscapedPath(), path) || !proxyAllowed(r.Method, path) {
			s.writeJSONError(w, r, http.StatusForbidden, "path_not_allowed", "This Finch path is not available through the proxy.")
			return
		}
		if path == forwardPath && !s.cfg.ProxyForward {
			s.writeJSONError(w, r, http.StatusForbidden, "forward_disabled", "Request forwarding (POST /forward) is off on this server; the operator turns it on with serve -proxy-forward.")
			return
		}
		if need := proxyScope(r.Method, path); !(apikey.Record{Scope: scopeOf(ctx)}).Allows(need) {
			s.writeJSONError(w, r, http.StatusForbidden, "forbidden", "This API key's scope ("+scopeOf(ctx)+") does not allow this call; it needs a key of scope "+need+".")
			return
		}
		lane, ok := proxyLane(r.Header.Get(PriorityHeader))
		if !ok {
			s.writeJSONError(w, r, http.StatusBadRequest, "invalid_priority", "The "+PriorityHeader+" header must be interactive (the default) or background.")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxProxyBody))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			s.writeJSONError(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "The request body is over 1 MiB.")
			return
		case err != nil:
			s.writeJSONError(w, r, http.StatusBadRequest, "invalid_request", "The request body could not be read.")
			return
		}
		id := r.PathValue("id")
		conn, cached, err := s.conns.get(ctx, id, s.store.Keyring(), s.store.Get)
		if err != nil {
			s.fail(w, r, true, storeFailure(err))
			return
		}
		s.audit(ctx, finchconnect.AuditDecrypted, id, actor(ctx), r.Method+" "+path)
		ctx = budget.WithConnection(budget.WithLane(ctx, lane), id)
		res, err := s.finch.Do(ctx, conn.AccessToken, r.Method, path, r.URL.Query(), body)
		if wait, ok := noBudget(err); ok {
			s.writeNoBudget(w, r, wait)
			return
		}
		if err != nil {
			s.fail(w, r, true, err)
			return
		}
		if cached && refusedToken(res.Err()) {
			// The cached token may be older than the store's (another
			// replica re-authenticated the connection): Finch refused the
			// call, so it had no effect and may be sent again, once, with
			// the stored token if that is another.
			s.conns.forget(id)
			if fresh, ferr := s.store.Get(ctx, id); ferr == nil && !fresh.AccessToken.Equal(conn.AccessToken) {
				conn = fresh
				s.audit(ctx, finchconnect.AuditDecrypted, id, actor(ctx), r.Method+" "+path)
				res, err = s.finch.Do(ctx, conn.AccessToken, r.Method, path, r.URL.Query(), body)
				if wait, ok := noBudget(err); ok {
					s.writeNoBudget(w, r, wait)
					return
				}
				if err != nil {
					s.fail(w, r, true, err)
					return
				}
			}
		}
		if errors.Is(res.Err(), finchconnect.ErrReauthRequired) && conn.Status != finchconnect.StatusReauth {
			s.markReauth(r, conn)
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

// scopeOf is the scope of the API key the request came with.
func scopeOf(ctx context.Context) string {
	sc, _ := ctx.Value(apiKeyScopeCtx).(string)
	return sc
}

// refusedToken reports whether Finch refused a call's token.
func refusedToken(err error) bool {
	return errors.Is(err, finchconnect.ErrReauthRequired) || errors.Is(err, finchconnect.ErrUnauthorized)
}

// markReauth records that Finch wants the employer to sign in again, and
// tells the app. conn is the connection as read for the request.
func (s *Server) markReauth(r *http.Request, conn finchconnect.Connection) {
	_, err := s.changeStatus(r.Context(), conn.ConnectionID, conn, func(c *finchconnect.Connection) {
		c.Status = finchconnect.StatusReauth
		c.CheckedAt = s.clock.Now()
	})
	if err != nil {
		s.log.Warn("record reauth status", "connection_id", conn.ConnectionID, "err", err)
	}
}
