package finch

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/finchconnect/finchconnect"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestAPIError_Error(t *testing.T) {
	tests := []struct {
		name string
		err  *APIError
		want string
	}{
		{"full", &APIError{StatusCode: 400, Name: "invalid_grant_error", Message: "code expired", RequestID: "r1"},
			"finch: 400 invalid_grant_error: code expired (request id r1)"},
		{"finch code", &APIError{StatusCode: 401, Name: "authentication_error", FinchCode: "reauthenticate_user", Message: "Please reauthenticate user"},
			"finch: 401 authentication_error (reauthenticate_user): Please reauthenticate user"},
		{"no body", &APIError{StatusCode: 502}, "finch: 502 bad gateway"},
		{"unknown status", &APIError{StatusCode: 599}, "finch: 599"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewAPIError(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	const tok = "tok_0123456789abcdef"

	t.Run("finch body", func(t *testing.T) {
		h := http.Header{"Finch-Request-Id": {"req-9"}, "Retry-After": {"7"}}
		e := newAPIError(429, h, []byte(`{"code":429,"statusCode":429,"status":429,"name":"rate_limit_exceeded_error","finch_code":"finch_application_rl","message":"Too many requests"}`), now)
		want := APIError{StatusCode: 429, Name: "rate_limit_exceeded_error", FinchCode: "finch_application_rl", Message: "Too many requests", RequestID: "req-9", RetryAfter: 7 * time.Second}
		if diff := cmp.Diff(want, *e, cmpopts.IgnoreFields(APIError{}, "Body")); diff != "" {
			t.Errorf("newAPIError mismatch (-want +got):\n%s", diff)
		}
		if !errors.Is(e, finchconnect.ErrRateLimited) {
			t.Error("a 429 does not match ErrRateLimited")
		}
	})

	t.Run("deprecated batch fields", func(t *testing.T) {
		e := newAPIError(400, http.Header{}, []byte(`{"error_name":"bad_request","error_message":"no"}`), now)
		if e.Name != "bad_request" || e.Message != "no" {
			t.Errorf("newAPIError = %+v, want name bad_request, message no", e)
		}
	})

	t.Run("html", func(t *testing.T) {
		e := newAPIError(503, http.Header{}, []byte("<html>down</html>"), now)
		if e.Name != "" || string(e.Body) != "<html>down</html>" {
			t.Errorf("newAPIError = %+v, want no name and the raw body", e)
		}
	})

	t.Run("echoed secrets", func(t *testing.T) {
		// The token straddles the truncation point: scrubbing after
		// truncating would leave its first half in Body.
		body := `{"name":"x` + tok + `","finch_code":"` + tok + `","message":"got Bearer ` + tok + "\n" + `forged log line","pad":"` +
			strings.Repeat("a", maxErrorBody-10-60) + tok + `"}`
		e := newAPIError(400, http.Header{"Finch-Request-Id": {tok}}, []byte(body), now, tok, "")
		for _, s := range []string{e.Error(), string(e.Body), e.Name, e.FinchCode, e.RequestID} {
			if strings.Contains(s, tok[:8]) {
				t.Errorf("%q contains (part of) the token", s)
			}
		}
		if strings.Contains(e.Error(), "\n") {
			t.Errorf("Error() = %q contains a newline", e.Error())
		}
		if len(e.Body) > maxErrorBody {
			t.Errorf("len(Body) = %d, want at most %d", len(e.Body), maxErrorBody)
		}
	})

	t.Run("short secrets are left alone", func(t *testing.T) {
		// Scrubbing a three-letter secret would turn invalid_token_error
		// into invalid_[redacted]en_error and break errors.Is.
		e := newAPIError(401, http.Header{}, []byte(`{"name":"invalid_token_error"}`), now, "tok")
		if e.Name != "invalid_token_error" || !errors.Is(e, finchconnect.ErrUnauthorized) {
			t.Errorf("newAPIError with secret \"tok\" = %+v, want name invalid_token_error matching ErrUnauthorized", e)
		}
	})

	t.Run("http date", func(t *testing.T) {
		h := http.Header{"Retry-After": {now().Add(90 * time.Second).Format(http.TimeFormat)}}
		if e := newAPIError(503, h, nil, now); e.RetryAfter != 90*time.Second {
			t.Errorf("RetryAfter = %v, want 1m30s", e.RetryAfter)
		}
	})
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"  plain  ", 10, "plain"},
		{"a\nb\tc\x00d\x7f", 20, "a b c d"},
		{"bad \xff utf8", 20, "bad   utf8"},
		{"ééééé", 5, "éé…"}, // never cuts a rune in half
	}
	for _, tt := range tests {
		if got := cleanText(tt.in, tt.max); got != tt.want {
			t.Errorf("cleanText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

// FuzzCheckResponse feeds arbitrary statuses, headers and bodies to the
// error-body parser: it never panics, reports every non-2xx status, keeps
// its fields bounded and printable, and never lets the token through.
func FuzzCheckResponse(f *testing.F) {
	f.Add(400, "", "req-1", []byte(`{"code":400,"name":"invalid_grant_error","message":"bad code"}`))
	f.Add(401, "3", "", []byte(`{"code":401,"name":"authentication_error","finch_code":"reauthenticate_user","message":"Please reauthenticate user"}`))
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", "r", []byte(`{"name":"rate_limit_exceeded_error","message":"Too many requests for token tok_FUZZ_SECRET_42"}`))
	f.Add(500, "-1", "\x00\n", []byte("<html>\xff\xfe</html>"))
	f.Add(200, "", "", []byte(`{}`))
	f.Add(418, "1e309", "", []byte(`{"name":{"nested":true},"message":12}`))
	f.Add(503, "NaN", "", []byte(strings.Repeat("é", 5000)))
	f.Fuzz(func(t *testing.T, status int, retryAfter, requestID string, body []byte) {
		const tok = "tok_FUZZ_SECRET_42"
		h := http.Header{"Retry-After": {retryAfter}, "Finch-Request-Id": {requestID}}
		err := checkResponse(status, h, body, time.Now, tok)
		if status >= 200 && status <= 299 {
			if err != nil {
				t.Fatalf("checkResponse(%d) = %v, want nil", status, err)
			}
			return
		}
		var e *APIError
		if !errors.As(err, &e) {
			t.Fatalf("checkResponse(%d) = %v, want an *APIError", status, err)
		}
		msg := e.Error()
		if e.StatusCode != status || !strings.HasPrefix(msg, "finch: "+strconv.Itoa(status)) {
			t.Errorf("Error() = %q for status %d", msg, status)
		}
		if !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("Error() = %q is not clean printable text", msg)
		}
		if strings.Contains(msg, tok) || strings.Contains(string(e.Body), tok) {
			t.Errorf("the token leaked: %q / %q", msg, e.Body)
		}
		if len(e.Body) > maxErrorBody || len(e.Message) > maxErrorMessage+len("…") || len(e.Name) > 128+len("…") {
			t.Errorf("fields not bounded: body %d, message %d, name %d", len(e.Body), len(e.Message), len(e.Name))
		}
		if e.RetryAfter < 0 {
			t.Errorf("RetryAfter = %v, want >= 0", e.RetryAfter)
		}
	})
}
