package server

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect/internal/reqid"
)

// requestID returns the id of the request in ctx, as set by the middleware.
func requestID(ctx context.Context) string { return reqid.From(ctx) }

// maxBody bounds every request body: the largest legitimate one is the
// connect form or a small JSON callback.
const maxBody = 64 << 10

// middleware wraps the mux with the cross-cutting concerns, outermost first:
// request ids and logging, panic recovery, security headers, body limits and
// cross-origin protection for state-changing forms.
func (s *Server) middleware(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refuse(w, r, http.StatusForbidden, "cross_site", "Cross-site request refused.",
			"This form can only be submitted from this site's own pages.")
	}))
	h = cop.Handler(h)
	h = limitBody(h)
	h = securityHeaders(h)
	h = s.recoverPanics(h)
	h = s.logRequests(h)
	return h
}

// refuse answers a request that the middleware turns away: in JSON for the
// /v1 API, Finch's webhooks and the embedded flow (a POST to /callback, or a
// request that accepts only JSON), as a page for the browser.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, code, title, detail string) {
	if answersJSON(r) {
		s.writeJSONError(w, r, status, code, title+" "+detail)
		return
	}
	s.renderError(w, r, status, title, detail)
}

func answersJSON(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/v1/") || p == finchWebhookPath ||
		(r.Method == http.MethodPost && p == "/callback") ||
		strings.Contains(r.Header.Get("Accept"), "application/json")
}

// statusWriter records the status a handler wrote, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests gives every request an id (echoed in X-Request-Id and on error
// pages) and logs one line per request. It logs r.URL.Path only: the query of
// /callback carries the authorization code, a credential.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(reqid.With(r.Context(), id))
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		h.ServeHTTP(sw, r)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", id))
	})
}

// recoverPanics turns a handler panic into a 500 page and an ERROR log line.
// The panic value is logged by type only: it could hold anything, a token
// included.
func (s *Server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "path", r.URL.Path, "request_id", requestID(r.Context()))
				s.refuse(w, r, http.StatusInternalServerError, "internal_error", "Internal error.", "Something went wrong on our side.")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every response carries. Pages load
// nothing from elsewhere and may not be framed; none is cached, since most
// show employer data, and the callback's URL holds a code.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; "+
			"script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// limitBody bounds request bodies before routing. The proxy's bodies (Finch
// batch reads) and Finch's webhooks get larger bounds, maxProxyBody and
// maxWebhookBody, which their handlers enforce themselves; a smaller limit
// here would silently cap them.
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := int64(maxBody)
		switch {
		case isProxyPath(r.URL.Path):
			limit = maxProxyBody
		case r.URL.Path == finchWebhookPath:
			limit = maxWebhookBody
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h.ServeHTTP(w, r)
	})
}
