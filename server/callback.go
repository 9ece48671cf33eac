package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
)

// handleCallback receives the authorization code. GET is the redirect flow
// (Connect sends the browser here with ?code&state, or ?error&state) and
// answers with a redirect or a page; POST is the embedded flow (the app's
// page posts {"code","state"} as JSON) and answers with JSON.
func (s *Server) handleCallback() http.Handler {
	type request struct {
		Code             string `json:"code"`
		State            string `json:"state"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.clock.Now()
		embedded := r.Method == http.MethodPost
		var req request
		if embedded {
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				s.writeJSONError(w, r, http.StatusBadRequest, "bad_request", "The body must be a JSON object with code and state.")
				return
			}
		} else {
			q := r.URL.Query()
			req = request{Code: q.Get("code"), State: q.Get("state"), Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
		}
		browser := ""
		if c, err := r.Cookie(s.browserCookieName()); err == nil {
			browser = c.Value
		}

		if req.Error != "" {
			s.observe("connect_error", s.clock.Now().Sub(start))
			s.connectFailed(w, r, embedded, req.State, browser, req.Error, req.ErrorDescription)
			return
		}
		out, err := s.protocol.Complete(r.Context(), connect.Callback{Code: req.Code, State: req.State, Browser: browser})
		s.observe(callbackOutcome(out, err), s.clock.Now().Sub(start))
		if err != nil {
			s.fail(w, r, embedded, err)
			return
		}
		s.failpoint("before-response")
		id := out.ConnectionID
		if embedded {
			writeJSON(w, http.StatusOK, map[string]string{"connection_id": id, "url": s.link("/connections/" + id)})
			return
		}
		if out.ReturnURL != "" {
			http.Redirect(w, r, withQuery(out.ReturnURL, "connection_id", id), http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, s.link("/connections/"+id), http.StatusSeeOther)
	})
}

// callbackOutcome names how a callback ended, for metrics.
func callbackOutcome(out connect.Outcome, err error) string {
	switch {
	case err == nil && out.Duplicate:
		return "duplicate"
	case err == nil:
		return "connected"
	case errors.Is(err, finchconnect.ErrStateMismatch), errors.Is(err, connect.ErrMissingParams):
		return "invalid_state"
	case errors.Is(err, finchconnect.ErrInvalidCode):
		return "invalid_code"
	case errors.Is(err, connect.ErrStore), errors.Is(err, connect.ErrStoreKept):
		return "store_failed"
	case errors.Is(err, connect.ErrExchange):
		return "exchange_failed"
	case errors.Is(err, connect.ErrPending):
		return "pending"
	case errors.Is(err, connect.ErrSaving):
		return "saving"
	case errors.Is(err, connect.ErrInterrupted):
		return "interrupted"
	case errors.Is(err, connect.ErrDisconnected):
		return "disconnected"
	default:
		return "error"
	}
}

// connectFailed handles a callback that carries Connect's error parameters:
// the employer cancelled, or Connect failed. The state is spent so it
// cannot be replayed, and no exchange happens.
func (s *Server) connectFailed(w http.ResponseWriter, r *http.Request, embedded bool, state, browser, code, description string) {
	s.protocol.Cancel(r.Context(), state, browser)
	if embedded {
		s.writeJSONError(w, r, http.StatusBadRequest, "connect_error", "Finch Connect ended without a connection: "+code)
		return
	}
	detail := "Finch Connect ended without connecting the employer (" + code + ")."
	if description != "" {
		detail += " " + description
	}
	s.renderError(w, r, http.StatusBadRequest, "The connection was not completed", detail)
}

// randomToken returns 32 random bytes, base64url: 256 bits, as Finch's own
// guidance and RFC 6749 §10.10 ask of a state.
func (s *Server) randomToken() (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("server: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// browserID returns the browser cookie's value, creating it if the request
// has none. The cookie is set again either way, so its day-long life starts
// afresh with every flow: one started in an old cookie's last minutes would
// otherwise come back to a browser that no longer sends it, and fail as
// "started in another browser".
func (s *Server) browserID(w http.ResponseWriter, r *http.Request) (string, error) {
	v := ""
	if c, err := r.Cookie(s.browserCookieName()); err == nil && len(c.Value) >= 32 {
		v = c.Value
	} else if v, err = s.randomToken(); err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.browserCookieName(),
		Value:    v,
		Path:     "/",
		MaxAge:   int(browserCookieTTL.Seconds()),
		HttpOnly: true,
		Secure:   s.secureCookies(),
		SameSite: http.SameSiteLaxMode,
	})
	return v, nil
}

// browserCookieTTL is the browser cookie's life from the last flow started
// with it: far longer than any state (Config.StateTTL).
const browserCookieTTL = 24 * time.Hour

// browserCookie binds a flow to the browser that started it. The cookie is
// HttpOnly and SameSite=Lax: Lax so that it rides along on the top-level
// navigation back from Connect to /callback, and on nothing cross-site else.
// One cookie serves every tab, so several flows can run at once.
func (s *Server) browserCookieName() string {
	if s.secureCookies() {
		// The __Host- prefix makes the browser refuse the cookie unless it is
		// Secure, host-only and Path=/, so a sibling subdomain cannot plant one.
		return "__Host-fc_browser"
	}
	return "fc_browser"
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
