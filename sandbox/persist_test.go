package sandbox_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestPersistence_NoCredentialsInDataFile: the state file keeps codes and
// tokens as digests, so neither a used code, an unused one nor a token
// appears in it, and the token still works after a restart.
func TestPersistence_NoCredentialsInDataFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, sandbox.Options{DataFile: file})
	used, _ := e.connect(cb, "authorized_simple", "letmein")
	r := e.exchange(used, cb)
	if r.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	tok := r.json(t)["access_token"].(string)
	unused, _ := e.connect(cb, "authorized_complex", "letmein")
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{"token": tok, "used code": used, "unused code": unused} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("DataFile holds the %s in the clear", name)
		}
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("DataFile mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	e2 := newEnv(t, sandbox.Options{DataFile: file})
	if r := e2.call("GET", "/introspect", "bearer:"+tok, nil); r.status != http.StatusOK {
		t.Errorf("token after a restart = %d %s, want 200", r.status, r.body)
	}
	if r := e2.exchange(unused, cb); r.status != http.StatusOK {
		t.Errorf("code issued before a restart = %d %s, want 200", r.status, r.body)
	}
	if r := e2.exchange(used, cb); r.status != http.StatusBadRequest {
		t.Errorf("code used before a restart = %d, want 400", r.status)
	}
}

// TestPersistence_UpgradesVersion1File: a state file written before codes
// and tokens were hashed (keyed by their values) still works, and is
// rewritten without them.
func TestPersistence_UpgradesVersion1File(t *testing.T) {
	const (
		tok  = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
		code = "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de"
	)
	v1 := `{
 "sessions": {},
 "codes": {"` + code + `": {"connection_id": "conn-1", "redirect_uri": "` + cb + `", "expires": "2999-01-01T00:00:00Z", "used": false}},
 "tokens": {"` + tok + `": {"connection_id": "conn-1", "id": "tok-id-1", "revoked": false, "created": "2026-01-01T00:00:00Z"}},
 "connections": {"conn-1": {"id": "conn-1", "provider_id": "gusto", "products": ["company", "directory"], "status": "connected",
   "scenario": "authorized_simple", "seed": 42, "employees": 25, "entities": [{"id": "ent-1", "name": "Main entity", "status": "connected"}],
   "account_id": "acc-1", "company_id": "co-1", "created": "2026-01-01T00:00:00Z"}}
}`
	file := filepath.Join(t.TempDir(), "sandbox.json")
	if err := os.WriteFile(file, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, sandbox.Options{DataFile: file})
	r := e.call("GET", "/introspect", "bearer:"+tok, nil)
	if r.status != http.StatusOK || r.json(t)["connection_id"] != "conn-1" {
		t.Fatalf("version 1 token = %d %s, want 200 for conn-1", r.status, r.body)
	}
	if r := e.exchange(code, cb); r.status != http.StatusOK || r.json(t)["connection_id"] != "conn-1" {
		t.Errorf("version 1 code = %d %s, want 200 for conn-1", r.status, r.body)
	}
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(tok)) || bytes.Contains(b, []byte(code)) {
		t.Errorf("the rewritten DataFile still holds the version 1 token or code:\n%s", b)
	}
}

// TestPersistence_DataCallsDoNotRewriteFile: reading data changes nothing
// worth saving, so a load test of data endpoints never rewrites DataFile:
// the state saved after 20 reads is the state saved before them.
func TestPersistence_DataCallsDoNotRewriteFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, sandbox.Options{DataFile: file})
	tok := e.token("authorized_simple")
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, sandbox.Options{DataFile: file})
	for range 20 {
		if r := e2.call("GET", "/employer/company", "bearer:"+tok, nil); r.status != http.StatusOK {
			t.Fatalf("company = %d", r.status)
		}
	}
	if err := e2.sb.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("20 company reads changed the saved state:\nbefore %s\nafter  %s", before, after)
	}
}
