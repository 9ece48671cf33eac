package sandbox_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestPrune_CodesAndSessions: expired codes and sessions are forgotten an
// hour after they expire, on the sandbox's own clock, while anything still
// valid stays, and every token keeps working. Until then a used code is
// still refused as used (and, with RevokeOnReuse, still revokes what it
// minted); after, it is refused as unknown, with the same 400.
func TestPrune_CodesAndSessions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, sandbox.Options{DataFile: file, RevokeOnReuse: true})
	const many = 40
	var unused []string
	for range many {
		code, _ := e.connect(cb, "authorized_simple", "letmein")
		unused = append(unused, code)
	}
	used, _ := e.connect(cb, "authorized_simple", "letmein")
	x := e.exchange(used, cb)
	if x.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", x.status, x.body)
	}
	tok := x.json(t)["access_token"].(string)
	sbTok, _ := e.sandboxToken() // its code is used at once
	// A session that outlives everything the test does.
	long := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c-long", "customer_name": "Long", "products": []string{"company"}, "redirect_uri": cb})
	if long.status != http.StatusCreated {
		t.Fatalf("long session = %d %s", long.status, long.body)
	}
	// Sessions that expire in a minute.
	for range many {
		r := e.call("POST", "/connect/sessions", "basic", map[string]any{"customer_id": "c", "customer_name": "Short", "products": []string{"company"}, "minutes_to_expire": 1})
		if r.status != http.StatusCreated {
			t.Fatalf("short session = %d %s", r.status, r.body)
		}
	}
	sessions0, codes0 := e.sb.Held()
	if sessions0 < 2*many+2 || codes0 < many+1 {
		t.Fatalf("Held() = %d sessions, %d codes; want at least %d and %d", sessions0, codes0, 2*many+2, many+1)
	}

	// 30 minutes on: every code has expired but is within its hour of
	// retention, so reusing the used one is still "already used", and
	// revokes its token.
	e.sb.Advance(30 * time.Minute)
	fresh, _ := e.connect(cb, "authorized_simple", "letmein") // issuing prunes
	if _, codes := e.sb.Held(); codes != codes0+1 {
		t.Errorf("codes held 30 minutes on = %d, want all %d kept", codes, codes0+1)
	}
	r := e.exchange(used, cb)
	if r.status != http.StatusBadRequest || r.json(t)["message"] != "The authorization code has already been used." {
		t.Errorf("reuse within the retention = %d %s, want 400 already used", r.status, r.body)
	}
	if r := e.call("GET", "/introspect", "bearer:"+tok, nil); r.status != http.StatusUnauthorized {
		t.Errorf("token of a reused code = %d, want 401 (revoke-on-reuse)", r.status)
	}

	// Two hours on: the old codes and the short sessions are gone, and
	// what is still valid stays through a second prune.
	e.sb.Advance(90 * time.Minute)
	valid, _ := e.connect(cb, "authorized_simple", "letmein") // prunes
	e.sb.Advance(2 * time.Minute)
	tok2 := e.token("authorized_simple") // prunes again, and leaves a used code and a token
	sessions, codes := e.sb.Held()
	if codes != 2 {
		t.Errorf("codes held two hours on = %d (of %d), want only the two newest", codes, codes0+3)
	}
	// The Connect flows' sessions live 90 days (Finch's default) and
	// stay, with the long one; the three newest flows added one each.
	if want := sessions0 - many + 3; sessions != want {
		t.Errorf("sessions held two hours on = %d (of %d), want %d: the short ones gone", sessions, sessions0, want)
	}
	r = e.exchange(used, cb)
	if m := r.json(t); r.status != http.StatusBadRequest || m["name"] != "invalid_grant_error" || m["message"] != "Invalid authorization code." {
		t.Errorf("reuse after the retention = %d %s, want 400 invalid_grant_error, an unknown code", r.status, r.body)
	}
	r = e.exchange(fresh, cb)
	if r.status != http.StatusBadRequest || r.json(t)["name"] != "invalid_grant_error" {
		t.Errorf("pruned unused code = %d %s, want 400 invalid_grant_error", r.status, r.body)
	}
	for _, c := range unused[:3] {
		if r := e.exchange(c, cb); r.status != http.StatusBadRequest || r.json(t)["name"] != "invalid_grant_error" {
			t.Errorf("pruned code never exchanged = %d %s, want 400 invalid_grant_error", r.status, r.body)
		}
	}
	// Nothing valid went: the long session still opens, the unused
	// code issued before the last prune exchanges, and the tokens work.
	if r := e.exchange(valid, cb); r.status != http.StatusOK {
		t.Errorf("valid code issued before a prune = %d %s, want 200", r.status, r.body)
	}
	if r := e.call("GET", "/employer/company", "bearer:"+sbTok, nil); r.status != http.StatusOK {
		t.Errorf("POST /sandbox/connections token after pruning = %d, want 200", r.status)
	}
	if r := e.call("GET", "/authorize?session="+long.json(t)["session_id"].(string), "", nil); r.status != http.StatusOK {
		t.Errorf("long session two hours on = %d, want 200", r.status)
	}
	if r := e.call("GET", "/employer/company", "bearer:"+tok2, nil); r.status != http.StatusOK {
		t.Errorf("newest token = %d, want 200", r.status)
	}

	// The pruned codes are gone from DataFile too.
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte(`"expires"`)); n != sessions+codes {
		t.Errorf("DataFile holds %d sessions and codes, want %d", n, sessions+codes)
	}
}
