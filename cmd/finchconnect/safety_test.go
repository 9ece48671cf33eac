package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

// vault is a data folder whose SQLite store holds connections sealed under
// one key, given as keys.
type vault struct {
	dir  string
	keys string // ID:base64 of the key that sealed them
}

func (v *vault) token(id string) string { return "tok-" + id + "-0123456789abcdef" }

// newVaultWith makes a vault whose connections ids are sealed under a new
// key with keyID.
func newVaultWith(t *testing.T, keyID uint32, ids ...string) *vault {
	t.Helper()
	key, err := keyring.Generate(keyID)
	if err != nil {
		t.Fatal(err)
	}
	v := &vault{dir: t.TempDir(), keys: key.Encode()}
	v.put(t, v.keys, ids...)
	return v
}

// put stores connections ids sealed under keys (ID:base64, primary first).
func (v *vault) put(t *testing.T, keys string, ids ...string) {
	t.Helper()
	kr, err := keyring.Parse(keys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sqlite.Open(t.Context(), filepath.Join(v.dir, "finchconnect.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Now()
	for _, id := range ids {
		c := finchconnect.Connection{ConnectionID: id, CustomerID: "cust-" + id, Status: finchconnect.StatusConnected,
			AccessToken: finchconnect.NewSecret(v.token(id)), CreatedAt: now, UpdatedAt: now}
		if err := tokenstore.New(b, kr).Put(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeTTY is a stdin that says it is a terminal, with what the operator
// types.
type fakeTTY struct{ io.Reader }

func (fakeTTY) IsTerminal() bool { return true }

// TestTokenDelete_DisconnectsAtFinchFirst connects an employer through the
// demo, then deletes the connection with `token delete`: Finch (the
// sandbox) refuses its token afterwards, the vault no longer holds it, and
// the audit trail says it was disconnected.
func TestTokenDelete_DisconnectsAtFinchFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", dir)
	b := newBrowser(t)
	_, loc, _ := b.do("GET", connectThroughSandbox(t, b, app.url, "del-1"), nil)
	id := strings.TrimPrefix(loc, "/connections/")
	tok, _, err := runCLI(t, nil, nil, "token", "get", "-reveal", "-data-dir", dir, id)
	tok = strings.TrimSpace(tok)
	if err != nil || tok == "" {
		t.Fatalf("token get -reveal: %v", err)
	}
	if got := introspect(t, app.url+"/finch", tok); got != http.StatusOK {
		t.Fatalf("introspect before the delete = %d, want 200", got)
	}
	finchURL := app.url + "/finch"

	// The demo's vault, without the demo's Finch: refused.
	_, _, err = runCLI(t, nil, nil, "token", "delete", "-yes", "-data-dir", dir, id)
	if err == nil || !strings.Contains(err.Error(), "/finch") {
		t.Errorf("token delete on the demo's vault without -finch-base-url: %v; want a refusal naming the demo's /finch", err)
	}
	// Finch unreachable: nothing is deleted.
	_, _, err = runCLI(t, nil, nil, "token", "delete", "-yes", "-data-dir", dir, "-finch-base-url", "http://127.0.0.1:1", id)
	if err == nil || !strings.Contains(err.Error(), "kept") {
		t.Errorf("token delete with Finch unreachable: %v; want a refusal that keeps the token", err)
	}
	if _, _, err := runCLI(t, nil, nil, "token", "get", "-data-dir", dir, id); err != nil {
		t.Errorf("the token is gone after a failed disconnect: %v", err)
	}

	out, _, err := runCLI(t, nil, nil, "token", "delete", "-yes", "-data-dir", dir, "-finch-base-url", finchURL, id)
	if err != nil || !strings.Contains(out, "disconnected "+id+" at Finch") {
		t.Fatalf("token delete = %v, %q; want it to say it disconnected at Finch", err, out)
	}
	if got := introspect(t, finchURL, tok); got != http.StatusUnauthorized {
		t.Errorf("introspect after token delete = %d, want 401: the connection is still live at Finch", got)
	}
	if _, _, err := runCLI(t, nil, nil, "token", "get", "-data-dir", dir, id); err == nil || !strings.Contains(err.Error(), "no connection") {
		t.Errorf("token get after the delete: %v, want no such connection", err)
	}
	trail, _, err := runCLI(t, nil, nil, "audit", "-data-dir", dir, "-connection", id)
	if err != nil || !strings.Contains(trail, finchconnect.AuditDisconnected) {
		t.Errorf("audit after token delete = %v\n%s; want a %s record", err, trail, finchconnect.AuditDisconnected)
	}
}

func introspect(t *testing.T, finchURL, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", finchURL+"/introspect", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestTokenDelete_AsksFirst: without -yes and without a terminal, token
// delete (with or without -forget) and keys retire refuse and change
// nothing; on a terminal, a wrong answer changes nothing, and the typed id
// goes ahead. -forget deletes without calling Finch and records
// token.deleted.
func TestTokenDelete_AsksFirst(t *testing.T) {
	v := newVaultWith(t, 1, "conn-1")
	env := map[string]string{"FINCHCONNECT_KEYS": v.keys}
	unreachable := "http://127.0.0.1:1" // -forget must not need Finch
	for _, tt := range []struct {
		name  string
		stdin io.Reader
		args  []string
	}{
		{"no terminal", strings.NewReader("conn-1\n"), []string{"token", "delete", "-data-dir", v.dir, "conn-1"}},
		{"no terminal, -forget", strings.NewReader("conn-1\n"), []string{"token", "delete", "-forget", "-data-dir", v.dir, "conn-1"}},
		{"wrong answer", fakeTTY{strings.NewReader("yes\n")}, []string{"token", "delete", "-forget", "-data-dir", v.dir, "conn-1"}},
		{"no answer", fakeTTY{strings.NewReader("")}, []string{"token", "delete", "-forget", "-data-dir", v.dir, "conn-1"}},
	} {
		out, _, err := runCLI(t, env, tt.stdin, append(tt.args, "-finch-base-url", unreachable)...)
		if err == nil || !strings.Contains(err.Error(), "confirm") && !strings.Contains(err.Error(), "not confirmed") {
			t.Errorf("%s: err = %v, stdout %q; want a refusal", tt.name, err, out)
		}
		if _, _, err := runCLI(t, env, nil, "token", "get", "-data-dir", v.dir, "conn-1"); err != nil {
			t.Fatalf("%s: the token is gone: %v", tt.name, err)
		}
	}
	out, errOut, err := runCLI(t, env, fakeTTY{strings.NewReader("conn-1\n")}, "token", "delete", "-forget", "-data-dir", v.dir, "-finch-base-url", unreachable, "conn-1")
	if err != nil || !strings.Contains(out, "still live at Finch") || !strings.Contains(errOut, "Type conn-1 to confirm") {
		t.Fatalf("token delete -forget, confirmed: %v, stdout %q, stderr %q", err, out, errOut)
	}
	b, err := sqlite.Open(t.Context(), filepath.Join(v.dir, "finchconnect.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	recs, err := audit.New(b).List(t.Context(), audit.Filter{ConnectionID: "conn-1"})
	if err != nil || len(recs) != 1 || recs[0].Action != finchconnect.AuditDeleted {
		t.Errorf("audit after -forget = %v, %+v; want one %s record", err, recs, finchconnect.AuditDeleted)
	}
}

// TestConfirm_DevNullIsNoTerminal: /dev/null is a character device, and
// the stdin of cron jobs and `cmd </dev/null`: a destructive command run
// so is refused with the -yes hint, not shown a prompt nobody answers.
func TestConfirm_DevNullIsNoTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Errorf("isTerminal(%s) = true, want false", os.DevNull)
	}
	v := newVaultWith(t, 1, "conn-1")
	_, errOut, err := runCLI(t, map[string]string{"FINCHCONNECT_KEYS": v.keys}, null,
		"token", "delete", "-forget", "-data-dir", v.dir, "conn-1")
	if err == nil || !strings.Contains(err.Error(), "no terminal") || !strings.Contains(err.Error(), "-yes") || strings.Contains(errOut, "Type conn-1") {
		t.Errorf("token delete -forget </dev/null: %v, stderr %q; want a refusal naming -yes and no prompt", err, errOut)
	}
}

// TestKeysRetire_AsksFirst: retire removes a key for good, so it asks.
func TestKeysRetire_AsksFirst(t *testing.T) {
	s := newRetireSetup(t)
	run := func(stdin io.Reader, extra ...string) error {
		_, _, err := runCLI(t, nil, stdin, append([]string{"keys", "retire", "-id", "1", "-data-dir", s.dir}, extra...)...)
		return err
	}
	if err := run(nil); err == nil || !strings.Contains(err.Error(), "-yes") {
		t.Errorf("keys retire without a terminal: %v, want a refusal that names -yes", err)
	}
	if err := run(fakeTTY{strings.NewReader("2\n")}); err == nil {
		t.Error("keys retire -id 1 went ahead when 2 was typed")
	}
	if got := s.keyIDs(t); len(got) != 2 {
		t.Fatalf("key ids after refused retires = %v, want both", got)
	}
	if err := run(fakeTTY{strings.NewReader("1\n")}); err != nil {
		t.Errorf("keys retire -id 1, confirmed: %v", err)
	}
	if got := s.keyIDs(t); len(got) != 1 || got[0] != 2 {
		t.Errorf("key ids after retire = %v, want [2]", got)
	}
}

// TestStores_NeverCreatedByAccident: every command that reads a store
// refuses a SQLite file or folder that does not exist, names the path and
// creates nothing; migrate creates its -to, and serve its store, saying so.
func TestStores_NeverCreatedByAccident(t *testing.T) {
	key, _ := keyring.Generate(1)
	env := map[string]string{"FINCHCONNECT_KEYS": key.Encode()}
	base := t.TempDir()
	typo := filepath.Join(base, "typo.db")
	nodir := filepath.Join(base, "nonexistent", "dir", "x.db")
	for _, args := range [][]string{
		{"keys", "status", "-store", "sqlite://" + typo},
		{"token", "list", "-store", "sqlite://" + typo},
		{"token", "get", "-store", "sqlite://" + typo, "c1"},
		{"token", "delete", "-yes", "-store", "sqlite://" + typo, "c1"},
		{"apikey", "list", "-store", "sqlite://" + typo},
		{"apikey", "create", "-store", "sqlite://" + typo},
		{"audit", "-store", "sqlite://" + typo},
		{"keys", "status", "-data-dir", filepath.Join(base, "no-such-data-dir")},
		{"migrate", "-from", "sqlite://" + typo, "-to", "sqlite://" + filepath.Join(base, "copy.db")},
		{"serve", "-addr", "127.0.0.1:0", "-store", "sqlite://" + nodir, "-data-dir", filepath.Join(base, "data")},
	} {
		_, _, err := runCLI(t, env, nil, args...)
		if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), base) {
			t.Errorf("finchconnect %v: %v; want a refusal naming the path", args, err)
		}
	}
	entries, _ := os.ReadDir(base)
	if len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "data" {
		t.Errorf("the refused commands created %v in %s", entries, base)
	}
	if _, err := os.Stat(filepath.Join(base, "nonexistent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve created the folder of a -store that does not exist (stat: %v)", err)
	}

	v := newVaultWith(t, 1, "c1")
	to := filepath.Join(base, "copy.db")
	if _, _, err := runCLI(t, nil, nil, "migrate", "-from", "sqlite://"+filepath.Join(v.dir, "finchconnect.db"), "-to", "sqlite://"+to); err != nil {
		t.Errorf("migrate to a new file: %v", err)
	}
	if _, err := os.Stat(to); err != nil {
		t.Errorf("migrate did not create its -to: %v", err)
	}

	data := filepath.Join(base, "fresh")
	_, stderr, err := runBriefly(t, env, "serve", "-addr", "127.0.0.1:0", "-data-dir", data)
	if err != nil || !strings.Contains(stderr, "created a new, empty store") || !strings.Contains(stderr, data) {
		t.Errorf("serve on a fresh data folder = %v\n%s; want a log line saying it created the store", err, stderr)
	}
	_, stderr, _ = runBriefly(t, env, "serve", "-addr", "127.0.0.1:0", "-data-dir", data)
	if strings.Contains(stderr, "created a new") {
		t.Errorf("serve's second start says it created the store:\n%s", stderr)
	}
}

// TestServe_ChecksKeysAtStart: a store whose records are sealed under a key
// the keyring lacks, or under a different key of the same id, makes serve
// refuse to start, naming the key ids; -allow-degraded starts it with
// /readyz failing. keys status exits non-zero in both cases.
func TestServe_ChecksKeysAtStart(t *testing.T) {
	v := newVaultWith(t, 2, "c1", "c2")
	other, _ := keyring.Generate(1)
	v.put(t, other.Encode(), "c3")
	sameID, _ := keyring.Generate(2) // a key generated again with id 2: the README mistake
	for _, tt := range []struct {
		name, keys, want string
	}{
		{"missing key 1", v.keys, "key 1, which the keyring does not have"},
		{"wrong key 2", sameID.Encode() + "," + other.Encode(), "key 2 does not open"},
	} {
		env := map[string]string{"FINCHCONNECT_KEYS": tt.keys}
		_, _, err := runBriefly(t, env, "serve", "-addr", "127.0.0.1:0", "-data-dir", v.dir)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "-allow-degraded") {
			t.Errorf("%s: serve = %v; want a refusal saying %q and naming -allow-degraded", tt.name, err, tt.want)
		}
		out, _, err := runCLI(t, env, nil, "keys", "status", "-data-dir", v.dir)
		if err == nil || exitCode(err) == 0 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: keys status = %v\n%s; want a failure saying %q", tt.name, err, out, tt.want)
		}
	}
	env := map[string]string{"FINCHCONNECT_KEYS": v.keys}
	app := start(t, env, "-addr", "127.0.0.1:0", "-data-dir", v.dir, "-allow-degraded")
	res, err := http.Get(app.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "key 1") {
		t.Errorf("/readyz of a degraded start = %d %s; want 503 naming key 1", res.StatusCode, body)
	}
	app.stop()

	env["FINCHCONNECT_KEYS"] = v.keys + "," + other.Encode()
	if out, _, err := runCLI(t, env, nil, "keys", "status", "-data-dir", v.dir); err != nil {
		t.Errorf("keys status with every key: %v\n%s", err, out)
	}
	app = start(t, env, "-addr", "127.0.0.1:0", "-data-dir", v.dir)
	if res, err := http.Get(app.url + "/readyz"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("/readyz with every key = %v %v, want 200", res.Status, err)
	}
}

// TestKeygen_NeverReusesAnID: given the current keys, keygen picks the next
// free id and refuses one in use.
func TestKeygen_NeverReusesAnID(t *testing.T) {
	k1, _ := keyring.Generate(1)
	k4, _ := keyring.Generate(4)
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte(k4.Encode()+"\n"+k1.Encode()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want uint32
	}{
		{"no current keys", nil, nil, 1},
		{"-keys-file", nil, []string{"-keys-file", file}, 5},
		{"FINCHCONNECT_KEYS_FILE", map[string]string{"FINCHCONNECT_KEYS_FILE": file}, nil, 5},
		{"FINCHCONNECT_KEYS", map[string]string{"FINCHCONNECT_KEYS": k1.Encode()}, nil, 2},
		{"free -id", nil, []string{"-keys-file", file, "-id", "3"}, 3},
	} {
		out, _, err := runCLI(t, tt.env, nil, append([]string{"keygen"}, tt.args...)...)
		k, perr := keyring.ParseKey(strings.TrimSpace(out))
		if err != nil || perr != nil || k.ID != tt.want {
			t.Errorf("keygen with %s = %q, %v, %v; want a key with id %d", tt.name, out, err, perr, tt.want)
		}
	}
	_, _, err := runCLI(t, nil, nil, "keygen", "-keys-file", file, "-id", "4")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("key id %d is already in use", 4)) {
		t.Errorf("keygen -id 4 with key 4 in the file: %v, want a refusal", err)
	}
}

// TestServe_ReadyzFollowsTheKeyFile: a degraded start on a key file that
// lacks a key fails /readyz; once the key is added to the file and the
// server re-reads it, /readyz is ok again.
func TestServe_ReadyzFollowsTheKeyFile(t *testing.T) {
	v := newVaultWith(t, 2, "c1")
	old, _ := keyring.Generate(1)
	v.put(t, old.Encode(), "c0")
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte(v.keys+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", v.dir, "-keys-file", file, "-keys-reload", "50ms", "-allow-degraded")
	if got := readyz(t, app.url); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with key 1 missing = %d, want 503", got)
	}
	if err := os.WriteFile(file, []byte(v.keys+"\n"+old.Encode()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for readyz(t, app.url) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still fails after key 1 was added to the key file\n%s", app.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readyz(t *testing.T, base string) int {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
