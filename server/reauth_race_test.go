package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/finch"
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

// heldFinch holds back, once it is armed, Finch's answer to the next
// request for path: Finch handles the request, then the answer waits until
// release is closed. held is closed when an answer is being held, and body
// is that answer's body (readable after held).
type heldFinch struct {
	path    string
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
	body    []byte
}

func newHeldFinch(path string) *heldFinch {
	return &heldFinch{path: path, held: make(chan struct{}), release: make(chan struct{})}
}

func (f *heldFinch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != f.path || !f.armed.CompareAndSwap(true, false) {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		f.body = rec.Body.Bytes()
		close(f.held)
		<-f.release
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// deleteConnection sends DELETE /v1/connections/id with the API key key
// and returns its status; it may run on any goroutine.
func deleteConnection(h *harness, key, id string) (int, error) {
	req, err := http.NewRequest("DELETE", h.ts.URL+"/v1/connections/"+id, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// revokedAtFinch reports whether Finch refuses token.
func revokedAtFinch(t *testing.T, h *harness, token finchconnect.Secret) bool {
	t.Helper()
	fc := &finch.Client{BaseURL: h.ts.URL + "/finch", MaxRetries: -1}
	_, err := fc.Company(t.Context(), token)
	if err != nil && !errors.Is(err, finchconnect.ErrUnauthorized) {
		t.Fatalf("asking Finch about a token: %v", err)
	}
	return err != nil
}

// TestCallback_DisconnectWhileExchangeHeldWins: a re-authentication's code
// is at Finch, whose answer is held back; meanwhile the connection is
// disconnected (DELETE /v1/connections/ID: 204). When Finch's answer is
// released, the disconnect wins: the callback does not bring the
// connection back, and the token Finch returned is disconnected at Finch.
func TestCallback_DisconnectWhileExchangeHeldWins(t *testing.T) {
	for _, be := range everyBackend {
		t.Run(be.name, func(t *testing.T) {
			hold := newHeldFinch("/auth/token")
			h := newHarness(t, harnessOptions{backend: be.open(t), finch: hold.wrap})
			key := h.apiKey(apikey.ScopeWrite)
			id := h.finish(h.client, h.connect(h.client, "acme-held-exchange", "authorized_simple"))
			cb := startReauth(t, h, id)

			hold.armed.Store(true)
			done := make(chan response, 1)
			go func() {
				res, err := h.client.Get(cb)
				if err != nil {
					done <- response{status: -1, body: err.Error()}
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				done <- response{status: res.StatusCode, location: res.Header.Get("Location"), body: string(b)}
			}()
			<-hold.held
			if status, err := deleteConnection(h, key, id); err != nil || status != http.StatusNoContent {
				t.Fatalf("DELETE while the exchange is held = %d, %v; want 204", status, err)
			}
			close(hold.release)
			res := <-done

			if res.status != http.StatusConflict || !strings.Contains(res.body, "disconnected") {
				t.Errorf("callback of a re-authentication disconnected during its exchange = %d → %q, want 409 saying it was disconnected; body:\n%s", res.status, res.location, res.body)
			}
			if _, err := h.store.Lookup(t.Context(), id); !errors.Is(err, finchconnect.ErrNotFound) {
				t.Errorf("Lookup(%s) err = %v, want ErrNotFound: the re-authentication brought the connection back", id, err)
			}
			var answer struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(hold.body, &answer); err != nil || answer.AccessToken == "" {
				t.Fatalf("the held exchange answered %q, want a token", hold.body)
			}
			if !revokedAtFinch(t, h, finchconnect.NewSecret(answer.AccessToken)) {
				t.Error("the re-authentication's new token is live at Finch after the disconnect")
			}
		})
	}
}
