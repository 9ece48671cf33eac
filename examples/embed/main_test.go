package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

const staffPassword = "correct horse battery"

// TestEmbed runs the example as README.md shows it, against the sandbox: the
// pages need the staff password, the callback does not, and an employer
// connected through the sandbox's Connect page is shown from the vault.
func TestEmbed(t *testing.T) {
	ctx := context.Background()
	// The example sets no Config.Logger: what the handler logs must reach
	// slog.Default(), errors included, not vanish.
	var logs syncBuffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	finchAPI := httptest.NewServer(sb)
	defer finchAPI.Close()

	key, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FINCHCONNECT_KEYS":   key.Encode(),
		"FINCH_BASE_URL":      finchAPI.URL,
		"FINCH_CLIENT_ID":     sandbox.DefaultClientID,
		"FINCH_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"APP_PUBLIC_URL":      app.URL,
		"STAFF_PASSWORD":      staffPassword,
	}
	backend, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "finch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	h, err := newHandler(backend, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/finch/", http.StripPrefix("/finch", h))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string, staff bool) (int, string, string) {
		req, _ := http.NewRequest("GET", u, nil)
		if staff {
			req.SetBasicAuth("staff", staffPassword)
		}
		return do(t, browser, req)
	}
	if status, _, _ := get(app.URL+"/finch/", false); status != http.StatusUnauthorized {
		t.Fatalf("home page without the staff password = %d, want 401", status)
	}
	if status, _, _ := get(app.URL+"/finch/", true); status != http.StatusOK {
		t.Fatalf("home page with the staff password = %d, want 200", status)
	}

	form := url.Values{"customer_id": {"acme"}, "customer_name": {"Acme Inc."}, "products": {"company", "directory"}}
	req, _ := http.NewRequest("POST", app.URL+"/finch/connect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("staff", staffPassword)
	status, connectURL, _ := do(t, browser, req)
	if status != http.StatusSeeOther || !strings.HasPrefix(connectURL, finchAPI.URL) {
		t.Fatalf("POST /finch/connect = %d to %q, want 303 to the sandbox", status, connectURL)
	}
	callback := signIn(t, browser, connectURL)
	if !strings.HasPrefix(callback, app.URL+"/finch/callback?") {
		t.Fatalf("Connect sent the browser to %q, want the app's /finch/callback", callback)
	}
	// The callback needs no staff password: the state bound to the browser
	// is its guard.
	status, page, _ := get(callback, false)
	if status != http.StatusSeeOther || !strings.Contains(page, "/connections/") {
		t.Fatalf("callback = %d to %q, want 303 to the connection's page", status, page)
	}
	base, _ := url.Parse(callback)
	ref, err := base.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := get(ref.String(), true)
	if status != http.StatusOK || !strings.Contains(body, "Acme Inc.") {
		t.Fatalf("connection page = %d, want 200 naming the customer; body:\n%s", status, body)
	}
	if status, _, _ := get(ref.String(), false); status != http.StatusUnauthorized {
		t.Fatalf("connection page without the staff password = %d, want 401", status)
	}

	// Finch goes away: the page says so, and the handler's warning,
	// with no Logger configured, is in slog.Default()'s output.
	finchAPI.CloseClientConnections()
	finchAPI.Close()
	get(ref.String(), true)
	if got := logs.String(); !strings.Contains(got, "level=WARN msg=\"read employer data\"") {
		t.Errorf("with a nil Config.Logger and Finch down, slog.Default() got:\n%s\nwant the handler's warning", got)
	}
}

// syncBuffer is a bytes.Buffer that the handler's goroutines may write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEmbed_RefusesWeakSetup checks that the example will not start without
// its keys or with a guessable staff password.
func TestEmbed_RefusesWeakSetup(t *testing.T) {
	backend, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "finch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	key, _ := keyring.Generate(1)
	for name, env := range map[string]map[string]string{
		"no keys":        {"APP_PUBLIC_URL": "http://127.0.0.1:8080", "STAFF_PASSWORD": staffPassword},
		"short password": {"FINCHCONNECT_KEYS": key.Encode(), "APP_PUBLIC_URL": "http://127.0.0.1:8080", "STAFF_PASSWORD": "letmein"},
	} {
		if _, err := newHandler(backend, func(k string) string { return env[k] }); err == nil {
			t.Errorf("%s: newHandler succeeded, want an error", name)
		}
	}
}

// TestREADMEShowsTheExample keeps README.md's "Embed it in your app" the
// file this package builds.
func TestREADMEShowsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	body = body[strings.Index(body, "package main"):]
	if !strings.Contains(string(readme), "```go\n"+body+"```\n") {
		t.Error("README.md does not show examples/embed/main.go (from `package main` on) in a ```go block; copy it there")
	}
}

var (
	formRe  = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input[^>]*type="hidden"[^>]*>`)
	nameRe  = regexp.MustCompile(`name="([^"]*)"`)
	valueRe = regexp.MustCompile(`value="([^"]*)"`)
)

// signIn walks the sandbox's Connect page (picker, then sign-in) as a
// browser without JavaScript, and returns where it redirects to.
func signIn(t *testing.T, c *http.Client, connectURL string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", connectURL, nil)
	_, _, page := do(t, c, req)
	for _, step := range []url.Values{{"provider": {"gusto"}}, {"username": {"authorized_simple"}, "password": {"letmein"}}} {
		m := formRe.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no form on the Connect page:\n%s", page)
		}
		vals := url.Values{}
		for _, in := range inputRe.FindAllString(m[2], -1) {
			name, value := nameRe.FindStringSubmatch(in), valueRe.FindStringSubmatch(in)
			if name != nil && value != nil {
				vals.Set(name[1], html.UnescapeString(value[1]))
			}
		}
		for k, v := range step {
			vals[k] = v
		}
		req, _ := http.NewRequest("POST", html.UnescapeString(m[1]), strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		var status int
		var location string
		status, location, page = do(t, c, req)
		if status == http.StatusFound || status == http.StatusSeeOther {
			return location
		}
	}
	t.Fatalf("the Connect page never redirected; last page:\n%s", page)
	return ""
}

// do sends req and returns its status, Location and body.
func do(t *testing.T, c *http.Client, req *http.Request) (int, string, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Location"), string(b)
}
