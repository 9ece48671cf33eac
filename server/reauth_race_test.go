package server_test

import (
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// disconnectHook runs, once, a DELETE /v1/connections/{id} when a
// callback reaches the failpoint named at: a disconnect that lands while a
// re-authentication's code is at Finch, or its token in flight.
type disconnectHook struct {
	at     string
	url    atomic.Pointer[string] // the DELETE's URL; set to arm the hook
	key    string
	status atomic.Int64 // the DELETE's answer
}

func (d *disconnectHook) failpoint(name string) {
	if name != d.at {
		return
	}
	u := d.url.Swap(nil)
	if u == nil {
		return
	}
	req, err := http.NewRequest("DELETE", *u, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+d.key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.status.Store(-1)
		return
	}
	res.Body.Close()
	d.status.Store(int64(res.StatusCode))
}

func (d *disconnectHook) arm(h *harness, id string) {
	u := h.ts.URL + "/v1/connections/" + id
	d.url.Store(&u)
}

// startReauth starts a re-authentication of id from the harness's browser
// and returns its callback URL.
func startReauth(t *testing.T, h *harness, id string) string {
	t.Helper()
	start := h.do(h.client, "POST", "/connections/"+id+"/reauthenticate", url.Values{})
	if start.status != http.StatusSeeOther {
		t.Fatalf("POST reauthenticate = %d; body:\n%s", start.status, start.body)
	}
	return h.signIn(h.client, start.location, "authorized_simple")
}

// TestCallback_DisconnectDuringReauthWins: the connection is disconnected
// (DELETE /v1/connections/ID: revoked at Finch, row deleted) while its
// re-authentication's exchange is in flight. The disconnect wins: the
// callback does not bring the connection back, and the token the exchange
// returned is disconnected at Finch rather than left live.
func TestCallback_DisconnectDuringReauthWins(t *testing.T) {
	hook := &disconnectHook{at: "after-exchange"}
	h := newHarnessWith(t, harnessOptions{backend: tokenstore.NewMemory(), failpoint: hook.failpoint}, nil)
	hook.key = h.apiKey(apikey.ScopeWrite)
	id := h.finish(h.client, h.connect(h.client, "acme-reauth-race", "authorized_simple"))
	cb := startReauth(t, h, id)

	hook.arm(h, id)
	res := h.do(h.client, "GET", cb, nil)
	if got := hook.status.Load(); got != http.StatusNoContent {
		t.Fatalf("the DELETE during the exchange answered %d, want 204; the test did not run its case", got)
	}
	if res.status == http.StatusSeeOther || res.status != http.StatusConflict || !strings.Contains(res.body, "disconnected") {
		t.Errorf("callback of a re-authentication whose connection was disconnected = %d → %q, want 409 saying it was disconnected; body:\n%s", res.status, res.location, res.body)
	}
	if _, err := h.store.Lookup(t.Context(), id); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Lookup(%s) after the race err = %v, want ErrNotFound: the re-authentication brought the connection back", id, err)
	}
	if n := h.sb.Stats().Requests["POST /disconnect"]; n != 2 {
		t.Errorf("POST /disconnect calls = %d, want 2: the DELETE's, and the re-authentication's new token", n)
	}
	// The refresh says the same, and nothing was exchanged again.
	before := h.exchanges()
	if again := h.do(h.client, "GET", cb, nil); again.status != http.StatusConflict {
		t.Errorf("refreshed callback = %d, want 409", again.status)
	}
	if h.exchanges() != before {
		t.Error("the refreshed callback exchanged the code again")
	}
}

// TestRecover_DisconnectedReauthIsNotStored: a re-authentication's token
// is staged in the ledger but the vault write fails; the connection is
// then disconnected. Recovering the staged token must not store it (which
// would bring the connection back): it disconnects it at Finch and settles
// the callback as disconnected.
func TestRecover_DisconnectedReauthIsNotStored(t *testing.T) {
	b := &vaultDownBackend{Backend: tokenstore.NewMemory()}
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	h := newHarnessWith(t, harnessOptions{backend: b, clock: &skipClock{now: now}}, func(c *server.Config) { c.RecoverAfter = time.Minute })
	key := h.apiKey(apikey.ScopeWrite)
	id := h.finish(h.client, h.connect(h.client, "acme-recover-race", "authorized_simple"))
	cb := startReauth(t, h, id)

	b.down.Store(true)
	if res := h.do(h.client, "GET", cb, nil); res.status == http.StatusSeeOther {
		t.Fatal("the re-authentication stored its token with the vault down")
	}
	b.down.Store(false)
	req, err := http.NewRequest("DELETE", h.ts.URL+"/v1/connections/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", res.StatusCode)
	}

	skew.Store(int64(10 * time.Minute))
	if _, err := h.srv.Protocol().Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Lookup(t.Context(), id); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Lookup(%s) after recovery err = %v, want ErrNotFound: recovery brought the connection back", id, err)
	}
	if n := h.sb.Stats().Requests["POST /disconnect"]; n != 2 {
		t.Errorf("POST /disconnect calls = %d, want 2: the DELETE's, and the staged token's", n)
	}
	if again := h.do(h.client, "GET", cb, nil); again.status != http.StatusConflict {
		t.Errorf("refreshed callback after recovery = %d, want 409 (disconnected); body:\n%s", again.status, again.body)
	}
}

// TestJournal_DisconnectedReauthIsNotReplayed: a re-authentication's token
// waits in the journal while the store is down; meanwhile the connection
// is disconnected. Replaying the journal must not bring the connection
// back: the token is disconnected at Finch and the callback settles as
// disconnected.
func TestJournal_DisconnectedReauthIsNotReplayed(t *testing.T) {
	b := &writesDownBackend{vaultDownBackend{Backend: tokenstore.NewMemory()}}
	lj := &lateJournal{}
	h := newHarnessWith(t, harnessOptions{backend: b, clock: &skipClock{}}, func(c *server.Config) { c.Journal = lj })
	j, err := h.store.OpenJournal(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	lj.j = j
	key := h.apiKey(apikey.ScopeWrite)
	id := h.finish(h.client, h.connect(h.client, "acme-journal-race", "authorized_simple"))
	cb := startReauth(t, h, id)

	b.down.Store(true)
	if res := h.do(h.client, "GET", cb, nil); res.status != http.StatusAccepted {
		t.Fatalf("re-authentication's callback with the store down = %d, want 202 (held in the journal)", res.status)
	}
	b.down.Store(false)
	req, err := http.NewRequest("DELETE", h.ts.URL+"/v1/connections/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", res.StatusCode)
	}

	if n, err := h.srv.Protocol().Replay(t.Context()); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want the one record done", n, err)
	}
	if _, err := h.store.Lookup(t.Context(), id); !errors.Is(err, finchconnect.ErrNotFound) {
		t.Errorf("Lookup(%s) after the replay err = %v, want ErrNotFound: the journal brought the connection back", id, err)
	}
	if n := h.sb.Stats().Requests["POST /disconnect"]; n != 2 {
		t.Errorf("POST /disconnect calls = %d, want 2: the DELETE's, and the journalled token's", n)
	}
	if again := h.do(h.client, "GET", cb, nil); again.status != http.StatusConflict {
		t.Errorf("refreshed callback after the replay = %d, want 409 (disconnected); body:\n%s", again.status, again.body)
	}
}
