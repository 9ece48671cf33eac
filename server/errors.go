package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
)

// fail maps an error to a response, once, for both flows: a page for the
// browser, JSON for the embedded flow. The error's text never reaches the
// client — only a title, an explanation and the request id — and only
// unexpected errors are logged at ERROR.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, asJSON bool, err error) {
	if wait, ok := noBudget(err); ok && asJSON {
		s.writeNoBudget(w, r, wait)
		return
	}
	status, code, title, detail := classify(err)
	if status >= 500 {
		s.log.Error("request failed", "path", r.URL.Path, "err", err, "request_id", requestID(r.Context()))
	} else {
		s.log.Info("request refused", "path", r.URL.Path, "err", err, "request_id", requestID(r.Context()))
	}
	if asJSON {
		s.writeJSONError(w, r, status, code, title+" "+detail)
		return
	}
	s.renderError(w, r, status, title, detail)
}

// classify is the single mapping from errors to HTTP answers.
func classify(err error) (status int, code, title, detail string) {
	var netErr net.Error
	var apiErr *finch.APIError
	var missingKey *keyring.MissingKeyError
	switch {
	case errors.Is(err, budget.ErrNoBudget):
		return http.StatusTooManyRequests, budgetFinchCode, "Finch is busy.",
			"finchconnect held this call back to stay within the application's Finch rate limits. Please try again in a minute."
	case errors.Is(err, connect.ErrMissingParams):
		return http.StatusBadRequest, "bad_request", "This link is incomplete.",
			"The callback needs both a code and a state. Start the connection again from the home page."
	case errors.Is(err, connect.ErrInvalidFlow):
		return http.StatusBadRequest, "invalid_request", "The request is not valid.",
			strings.TrimPrefix(err.Error(), connect.ErrInvalidFlow.Error()+": ")
	case errors.Is(err, finchconnect.ErrStateMismatch):
		return http.StatusBadRequest, "invalid_state", "This connection link is no longer valid.",
			"It expired, was already used, or was started in another browser. Start the connection again from the home page."
	case errors.Is(err, finchconnect.ErrInvalidCode):
		return http.StatusBadRequest, "invalid_code", "Finch did not accept the authorization code.",
			"Codes work once and expire after 10 minutes. Start the connection again from the home page."
	case errors.Is(err, finchconnect.ErrNotFound):
		return http.StatusNotFound, "not_found", "Not found.", "There is no such connection."
	case errors.Is(err, connect.ErrPending):
		return http.StatusServiceUnavailable, "pending", "Still connecting.",
			"The first request for this connection is still being processed. Refresh this page in a moment."
	case errors.Is(err, connect.ErrSaving):
		return http.StatusAccepted, "saving", "The connection is being saved.",
			"The employer is connected. Our storage is briefly unavailable, so the connection is held safely and will appear in a few moments; there is nothing more to do."
	case errors.Is(err, connect.ErrInterrupted):
		return http.StatusConflict, "interrupted", "The connection attempt was interrupted.",
			"Our server restarted while finishing it. Please connect the employer again from the home page."
	case errors.Is(err, connect.ErrDisconnected):
		return http.StatusConflict, "disconnected", "The connection was disconnected.",
			"It was disconnected while the employer was signing in again, so the new sign-in was cancelled at Finch. Connect the employer again from the home page if they should be connected."
	case errors.Is(err, connect.ErrStoreDown):
		return http.StatusServiceUnavailable, "store_unavailable", "Our storage is briefly unavailable.",
			"Nothing was lost. Please try again in a few moments."
	case errors.Is(err, connect.ErrStoreKept):
		return http.StatusServiceUnavailable, "store_unavailable", "The connection could not be updated.",
			"Our storage is unavailable, so the new sign-in was not saved; the employer's connection is as it was. Please try again in a few minutes."
	case errors.Is(err, connect.ErrStore):
		return http.StatusServiceUnavailable, "store_unavailable", "The connection could not be saved.",
			"Our storage is unavailable, so the connection was cancelled at Finch. Please connect again in a few minutes."
	case errors.As(err, &missingKey):
		return http.StatusServiceUnavailable, "key_missing", "This connection cannot be opened here.",
			"Its token is sealed under encryption key id " + strconv.FormatUint(uint64(missingKey.KeyID), 10) +
				", which this server's keyring does not hold. The operator must add that key (docs/key-rotation.md); nothing was lost."
	case errors.Is(err, finchconnect.ErrDecrypt):
		return http.StatusServiceUnavailable, "cannot_decrypt", "This connection cannot be opened here.",
			"Its token does not open with this server's keys: a different key with the same id, or a damaged record. The operator must check the keyring (finchconnect keys status)."
	case errors.Is(err, finchconnect.ErrInvalidClient):
		return http.StatusBadGateway, "misconfigured", "Finch refused this application's credentials.",
			"The operator must check the Finch client id and secret."
	case errors.Is(err, connect.ErrExchange), errors.Is(err, finchconnect.ErrRateLimited), errors.As(err, &netErr),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusBadGateway, "upstream_error", "Finch could not be reached.",
			"Finch did not complete the request. Please try again in a few minutes."
	case errors.As(err, &apiErr):
		// Finch answered, but refused: a session it would not create, a
		// disconnect it would not do. Its message is not ours to show.
		return http.StatusBadGateway, "upstream_error", "Finch refused the request.",
			"Finch answered with an error (status " + strconv.Itoa(apiErr.StatusCode) + "). Please try again later, or contact the operator."
	default:
		return http.StatusInternalServerError, "internal_error", "Internal error.", "Something went wrong on our side."
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An error here means the client went away; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is finchconnect's own error body, in Finch's shape ({code, name,
// finch_code, message}) so that an official Finch SDK pointed at the proxy
// raises the right typed error with its name set: code is the HTTP status,
// name Finch's category for it, and finch_code (and error, kept for
// clients of the first /v1) finchconnect's own stable code.
type apiError struct {
	Code      int    `json:"code"`
	Name      string `json:"name"`
	FinchCode string `json:"finch_code"`
	Message   string `json:"message"`
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// finchErrorName is the name Finch gives an error of status, with
// finchconnect's own code refining it where Finch has a closer category.
func finchErrorName(status int, code string) string {
	switch code {
	case "unauthorized":
		return "invalid_token_error"
	case "path_not_allowed", "forward_disabled":
		return "permission_denied"
	}
	switch {
	case status == http.StatusBadRequest:
		return "bad_request"
	case status == http.StatusUnauthorized:
		return "invalid_token_error"
	case status == http.StatusForbidden:
		return "insufficient_scope_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusMethodNotAllowed:
		return "method_not_allowed_error"
	case status == http.StatusConflict:
		return "conflict_error"
	case status == http.StatusRequestEntityTooLarge:
		return "request_too_large_error"
	case status == http.StatusUnprocessableEntity:
		return "unprocessable_request_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_exceeded_error"
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return "service_unavailable_error"
	case status >= 500:
		return "server_error"
	case status < 300:
		return "accepted"
	}
	return "client_error"
}

func (s *Server) writeJSONError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	s.writeNamedError(w, r, status, finchErrorName(status, code), code, message)
}

// writeNamedError is writeJSONError with Finch's name chosen by the caller.
func (s *Server) writeNamedError(w http.ResponseWriter, r *http.Request, status int, name, code, message string) {
	writeJSON(w, status, apiError{Code: status, Name: name, FinchCode: code, Message: message, Error: code, RequestID: requestID(r.Context())})
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz reports whether the store answers, and whether tokens are
// waiting in the local journal for it: a replica in either state should be
// taken out of the load balancer until it recovers.
func (s *Server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held := 0
		if s.cfg.Journal != nil {
			held = s.cfg.Journal.Pending()
		}
		if err := s.backend.Ping(r.Context()); err != nil {
			s.log.Warn("readiness: store unreachable", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "store": "unreachable", "journal_pending": held})
			return
		}
		if s.cfg.Ready != nil {
			if err := s.cfg.Ready(); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "store": "ok", "error": err.Error(), "journal_pending": held})
				return
			}
		}
		if held > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "degraded", "store": "ok", "journal_pending": held})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "store": "ok", "journal_pending": 0})
	})
}

func (s *Server) handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusNotFound, "Not found.", "There is no page at this address.")
	})
}

// handleAPINotFound answers the /v1 requests that no route took, as JSON:
// 405 with Allow when the path is routed for other methods, 404 otherwise.
// api holds the /v1 routes only.
func (s *Server) handleAPINotFound(api *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// For an unmatched request, ServeMux hands back its own 404 or 405
		// handler; running it on a probe reads which, and the Allow list,
		// without writing anything.
		if h, pattern := api.Handler(r); pattern == "" {
			p := &probeWriter{header: http.Header{}}
			h.ServeHTTP(p, r)
			if p.status == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", p.header.Get("Allow"))
				s.writeJSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "This route does not take "+r.Method+"; see /v1/openapi.json.")
				return
			}
		}
		s.writeJSONError(w, r, http.StatusNotFound, "not_found", "There is no such API route; see /v1/openapi.json.")
	})
}

// probeWriter is a ResponseWriter that only records the header and status.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(code int)        { p.status = code }
