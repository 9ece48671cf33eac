package sandbox_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

var cancelRe = regexp.MustCompile(`id="cancel" href="([^"]+)"`)

// followCancel opens the Cancel link of a Connect page.
func (e *env) followCancel(page resp) resp {
	e.t.Helper()
	m := cancelRe.FindStringSubmatch(string(page.body))
	if m == nil {
		e.t.Fatalf("no cancel link on the Connect page (%d):\n%s", page.status, page.body)
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.call("GET", strings.TrimPrefix(u.Path, "/finch")+"?"+u.RawQuery, "", nil)
}

// TestConnect_LegacyCancel: the Cancel link of a Connect page opened with
// the legacy static parameters returns to the app with
// error=access_denied and the state (it once lost products, and Cancel
// showed "The link names no products.").
func TestConnect_LegacyCancel(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	conn := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["connection_id"].(string)
	tests := []struct {
		name  string
		extra url.Values
	}{
		{"picker", nil},
		{"payroll_provider", url.Values{"payroll_provider": {"gusto"}}},
		{"re-authentication", url.Values{"connection_id": {conn}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.on(t)
			q := url.Values{"client_id": {sandbox.DefaultClientID}, "products": {"company directory"}, "redirect_uri": {cb}, "state": {"legacy-" + tt.name}}
			for k, v := range tt.extra {
				q[k] = v
			}
			page := e.call("GET", "/authorize?"+q.Encode(), "", nil)
			if page.status != http.StatusOK {
				t.Fatalf("legacy authorize = %d:\n%s", page.status, page.body)
			}
			back := e.followCancel(page)
			loc, err := url.Parse(back.header.Get("Location"))
			if back.status != http.StatusFound || err != nil {
				t.Fatalf("cancel = %d %q, want 302:\n%s", back.status, back.header.Get("Location"), back.body)
			}
			if got := loc.Query(); !strings.HasPrefix(loc.String(), cb+"?") || got.Get("error") != "access_denied" || got.Get("state") != "legacy-"+tt.name {
				t.Errorf("cancel → %q, want %s?error=access_denied&…&state=legacy-%s", loc, cb, tt.name)
			}
		})
	}
}

// TestReauthSession_Validation: POST /connect/sessions/reauthenticate
// checks minutes_to_expire and products by the rules of
// POST /connect/sessions.
func TestReauthSession_Validation(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	_, conn := e.sandboxToken()
	tests := []struct {
		name string
		body map[string]any
		want int
	}{
		{"defaults", map[string]any{}, 201},
		{"one minute", map[string]any{"minutes_to_expire": 1}, 201},
		{"90 days", map[string]any{"minutes_to_expire": 129600}, 201},
		{"products", map[string]any{"products": []string{"company", "ssn"}}, 201},
		{"null products", map[string]any{"products": nil}, 201},
		{"zero minutes", map[string]any{"minutes_to_expire": 0}, 400},
		{"negative minutes", map[string]any{"minutes_to_expire": -5}, 400},
		{"too many minutes", map[string]any{"minutes_to_expire": 129601}, 400},
		{"Duration overflow", map[string]any{"minutes_to_expire": 1 << 62}, 400},
		{"unknown product", map[string]any{"products": []string{"company", "gold"}}, 400},
		{"deduction with benefits", map[string]any{"products": []string{"deduction", "benefits"}}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.body["connection_id"] = conn
			r := e.on(t).call("POST", "/connect/sessions/reauthenticate", "basic", tt.body)
			if r.status != tt.want {
				t.Fatalf("POST /connect/sessions/reauthenticate %v = %d %s, want %d", tt.body, r.status, r.body, tt.want)
			}
			if r.status == http.StatusBadRequest && r.json(t)["name"] != "bad_request" {
				t.Errorf("error = %s, want bad_request", r.body)
			}
		})
	}
}

var postMessageRe = regexp.MustCompile(`postMessage\(msg, ("[^"]*")\)`)

// targetOrigin returns the target origin the done page posts its message to.
func targetOrigin(t *testing.T, page []byte) string {
	t.Helper()
	m := postMessageRe.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no postMessage(msg, \"…\") on the page:\n%s", page)
	}
	s, err := strconv.Unquote(strings.ReplaceAll(string(m[1]), `\/`, `/`))
	if err != nil {
		t.Fatalf("target origin %s: %v", m[1], err)
	}
	return s
}

// TestConnect_EmbeddedTargetOrigin: the embedded flow's page posts the code
// only to the origin the Connect SDK named in sdk_host_url, and to any
// origin ("*") only when none was given.
func TestConnect_EmbeddedTargetOrigin(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tests := []struct {
		name, sdkHostURL, want string
	}{
		{"no sdk_host_url", "", "*"},
		{"origin", "https://app.example.test", "https://app.example.test"},
		{"URL with a path", "http://localhost:3000/settings/payroll?x=1", "http://localhost:3000"},
		{"not http", "javascript:alert(1)", "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.on(t)
			r := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "C", "products": []string{"company"}})
			u, _ := url.Parse(r.json(t)["connect_url"].(string))
			q := u.Query()
			q.Set("app_type", "spa")
			if tt.sdkHostURL != "" {
				q.Set("sdk_host_url", tt.sdkHostURL)
			}
			picker := e.call("GET", "/authorize?"+q.Encode(), "", nil)
			if got := targetOrigin(t, e.followCancel(picker).body); got != tt.want {
				t.Errorf("cancel page posts to %q, want %q", got, tt.want)
			}
			_, vals := hidden(string(picker.body))
			vals.Set("provider", "gusto")
			_, vals = hidden(string(e.call("POST", "/authorize", "", vals).body))
			vals.Set("username", "authorized_simple")
			vals.Set("password", "letmein")
			done := e.call("POST", "/authorize", "", vals)
			if !strings.Contains(string(done.body), `id="code"`) {
				t.Fatalf("embedded sign-in = %d, want the done page:\n%s", done.status, done.body)
			}
			if got := targetOrigin(t, done.body); got != tt.want {
				t.Errorf("done page posts the code to %q, want %q", got, tt.want)
			}
		})
	}
}
