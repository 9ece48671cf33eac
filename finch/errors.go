package finch

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/finchconnect/finchconnect"
)

// ErrResponseTooLarge is wrapped by the error a call returns when Finch's
// response body is larger than [Client.MaxBodyBytes]. Nothing of the body is
// returned: a truncated JSON document would decode into silently wrong data.
var ErrResponseTooLarge = errors.New("finch: response body too large")

// Limits on what an [APIError] keeps. An error body is read up to
// maxErrorRead bytes to find Finch's JSON error; only maxErrorBody bytes of it
// are kept, because errors get logged and a log line is no place for a
// megabyte of HTML from a misbehaving proxy.
const (
	maxErrorRead    = 64 << 10
	maxErrorBody    = 2 << 10
	maxErrorMessage = 1 << 10
)

// APIError is a failure that Finch (or something between us and Finch)
// reported with an HTTP status. It carries Finch's error body fields
// (https://developer.tryfinch.com/api-reference/development-guides/errors/Error-Types).
//
// Callers branch on it with [errors.Is] against the root sentinels (see
// [APIError.Is]) or with [errors.As] for the details. Message and Body are
// Finch's text; the client removes any credential it sent from both before
// returning them, so the error is safe to log.
type APIError struct {
	StatusCode int           // the HTTP status, or a batch item's code
	Name       string        // Finch's error category, e.g. "invalid_grant_error"
	FinchCode  string        // Finch's detail code, e.g. "reauthenticate_user"; often empty
	Message    string        // Finch's human-readable message
	RequestID  string        // the Finch-Request-Id response header; quote it to Finch support
	Body       []byte        // the raw response body, truncated to 2 KiB
	RetryAfter time.Duration // how long Finch asked us to wait (Retry-After), if it said
}

// Error reads like "finch: 400 invalid_grant_error: <message> (request id X)".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("finch: ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	name := e.Name
	if name == "" {
		name = strings.ToLower(http.StatusText(e.StatusCode))
	}
	if name != "" {
		b.WriteString(" ")
		b.WriteString(name)
	}
	if e.FinchCode != "" && e.FinchCode != e.Name {
		b.WriteString(" (")
		b.WriteString(e.FinchCode)
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	return b.String()
}

// Is maps Finch's error names onto the root package's sentinels, so callers
// write errors.Is(err, finchconnect.ErrInvalidCode):
//
//   - invalid_grant_error → [finchconnect.ErrInvalidCode]
//   - invalid_client_error → [finchconnect.ErrInvalidClient]
//   - authentication_error, or finch_code reauthenticate_user →
//     [finchconnect.ErrReauthRequired]
//   - any other 401 except invalid_request_error → [finchconnect.ErrUnauthorized]
//   - insufficient_scope_error → [finchconnect.ErrInsufficientScope]
//   - status 429 → [finchconnect.ErrRateLimited]
func (e *APIError) Is(target error) bool {
	switch target {
	case finchconnect.ErrInvalidCode:
		return e.Name == "invalid_grant_error"
	case finchconnect.ErrInvalidClient:
		return e.Name == "invalid_client_error"
	case finchconnect.ErrReauthRequired:
		return e.reauth()
	case finchconnect.ErrUnauthorized:
		// The other 401s mean the token itself is refused (revoked, unknown,
		// missing). Callers may forget a token on this error, so it must
		// not fire for the 401s whose remedy is something else:
		// re-authentication, fixing our client credentials, or fixing a
		// malformed request (invalid_request_error, the older table's name
		// for "the request does not match the spec").
		return e.StatusCode == http.StatusUnauthorized && !e.reauth() &&
			e.Name != "invalid_client_error" && e.Name != "invalid_request_error"
	case finchconnect.ErrInsufficientScope:
		return e.Name == "insufficient_scope_error"
	case finchconnect.ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

// reauth reports whether the employer has to act in Finch Connect. That is
// authentication_error with finch_code reauthenticate_user, and also with
// account_setup_required (the employer must finish connecting): in both
// cases the token stays valid and must be kept, which is why neither may
// read as ErrUnauthorized.
func (e *APIError) reauth() bool {
	return e.Name == "authentication_error" || e.FinchCode == "reauthenticate_user"
}

// errorBody is Finch's error document. Older responses carried the status
// again as statusCode and status; only code is read, and only for batch
// items, since the HTTP status is authoritative for a whole response.
type errorBody struct {
	Code      json.RawMessage `json:"code"`
	Name      string          `json:"name"`
	FinchCode string          `json:"finch_code"`
	Message   string          `json:"message"`
	// Deprecated batch-level fields that some responses still carry.
	ErrorName    string `json:"error_name"`
	ErrorMessage string `json:"error_message"`
}

// checkResponse returns nil for a 2xx status and an *APIError otherwise.
func checkResponse(status int, header http.Header, body []byte, now func() time.Time, secrets ...string) error {
	if status >= 200 && status <= 299 {
		return nil
	}
	return newAPIError(status, header, body, now, secrets...)
}

// newAPIError describes a response as an *APIError. The body may be
// anything: Finch's JSON, a proxy's HTML page, nothing, or garbage; none of
// that makes it panic or lose the status. now dates an HTTP-date
// Retry-After. Any of secrets found in the message or body is replaced, so
// a server that echoes a request cannot smuggle a token into a log line.
func newAPIError(status int, header http.Header, body []byte, now func() time.Time, secrets ...string) *APIError {
	e := &APIError{
		StatusCode: status,
		RequestID:  header.Get("Finch-Request-Id"),
		RetryAfter: max(serverDelay(header, now), 0),
	}
	var eb errorBody
	if len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &eb) == nil {
		e.Name = cmp.Or(eb.Name, eb.ErrorName)
		e.FinchCode = eb.FinchCode
		e.Message = cmp.Or(eb.Message, eb.ErrorMessage)
	}
	e.Body = body
	return e.sanitize(secrets)
}

// batchError builds the *APIError for one failed item of a batch response.
func batchError(code int, body json.RawMessage, requestID string, secrets []string) *APIError {
	e := &APIError{StatusCode: code, RequestID: requestID, Body: body}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Name, e.FinchCode, e.Message = eb.Name, eb.FinchCode, eb.Message
	}
	return e.sanitize(secrets)
}

// sanitize makes the server-supplied fields safe to print: secrets
// replaced (before any truncation, which could otherwise leave half a
// token behind), control characters removed, lengths capped.
func (e *APIError) sanitize(secrets []string) *APIError {
	e.Name = cleanText(scrub(e.Name, secrets), 128)
	e.FinchCode = cleanText(scrub(e.FinchCode, secrets), 128)
	e.RequestID = cleanText(scrub(e.RequestID, secrets), 128)
	e.Message = cleanText(scrub(e.Message, secrets), maxErrorMessage)
	body := scrub(string(e.Body), secrets)
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	e.Body = []byte(body)
	return e
}

// minScrub is the shortest secret scrub looks for. Finch's tokens, codes
// and client secrets are far longer; replacing a two-letter test secret
// would only mangle Finch's text (and its error names, which errors.Is
// reads).
const minScrub = 8

// scrub replaces every occurrence of each secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minScrub && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// cleanText makes server-supplied text safe to put in an error string: valid
// UTF-8, no control characters (no forged log lines), at most max bytes.
func cleanText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.TrimSpace(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
