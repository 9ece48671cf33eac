package server_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/webhook"
)

const (
	hookSecret    = "5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
	hookOldSecret = "b2xkLXNlY3JldC1iZWZvcmUtdGhlLXJvdGF0aW9u"
)

type eventLog struct {
	mu     sync.Mutex
	events []finchconnect.Event
	fail   int // how many of the next events to refuse
}

func (l *eventLog) failNext(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = n
}

func (l *eventLog) notify(_ context.Context, e finchconnect.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail > 0 {
		l.fail--
		return errors.New("test: the outbox is down")
	}
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Type)
	}
	return out
}

func (h *harness) postWebhook(secret, id string, at time.Time, body string, tamper bool) response {
	h.t.Helper()
	sent := body
	if tamper {
		sent = body + " "
	}
	req, _ := http.NewRequest("POST", h.ts.URL+"/webhooks/finch", strings.NewReader(sent))
	if err := webhook.SetHeaders(req.Header, webhook.Finch, secret, id, at, []byte(body)); err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	return response{status: res.StatusCode}
}

func TestWebhooks_Finch(t *testing.T) {
	var log eventLog
	h := newHarnessWith(t, harnessOptions{}, func(c *server.Config) {
		c.WebhookSecrets = []finchconnect.Secret{finchconnect.NewSecret(hookSecret), finchconnect.NewSecret(hookOldSecret)}
		c.Notify = log.notify
	})
	id := h.finish(h.client, h.connect(h.client, "hook-1", "authorized_simple"))
	now := time.Now()
	reauth := `{"event_type":"account.updated","connection_id":"` + id + `","data":{"status":"reauth","authentication_method":{"type":"credential"}}}`

	tests := []struct {
		name   string
		secret string
		id     string
		at     time.Time
		body   string
		tamper bool
		want   int
	}{
		{"tampered", hookSecret, "msg_1", now, reauth, true, http.StatusUnauthorized},
		{"stale", hookSecret, "msg_2", now.Add(-6 * time.Minute), reauth, false, http.StatusUnauthorized},
		{"future", hookSecret, "msg_3", now.Add(6 * time.Minute), reauth, false, http.StatusUnauthorized},
		{"unknown secret", "dW5rbm93bi1zZWNyZXQ=", "msg_4", now, reauth, false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		if got := h.postWebhook(tt.secret, tt.id, tt.at, tt.body, tt.tamper).status; got != tt.want {
			t.Errorf("%s: POST /webhooks/finch = %d, want %d", tt.name, got, tt.want)
		}
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusConnected {
		t.Fatalf("refused webhooks changed the status to %q", c.Status)
	}

	// A valid one, signed with the rotated-out secret, is applied once.
	if got := h.postWebhook(hookOldSecret, "msg_ok", now, reauth, false).status; got != http.StatusOK {
		t.Fatalf("valid webhook = %d, want 200", got)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusReauth {
		t.Errorf("status after account.updated = %q, want reauth", c.Status)
	}
	// The duplicate is acknowledged and dropped.
	h.store.Update(t.Context(), id, func(c *finchconnect.Connection) error { c.Status = finchconnect.StatusConnected; return nil })
	if got := h.postWebhook(hookSecret, "msg_ok", now, reauth, false).status; got != http.StatusOK {
		t.Errorf("duplicate webhook = %d, want 200", got)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusConnected {
		t.Errorf("a duplicate event was applied again (status %q)", c.Status)
	}

	data := `{"event_type":"directory.updated","connection_id":"` + id + `","data":{"individual_id":"x"}}`
	if got := h.postWebhook(hookSecret, "msg_data", now, data, false).status; got != http.StatusOK {
		t.Errorf("data webhook = %d", got)
	}
	unknown := `{"event_type":"account.updated","connection_id":"not-ours","data":{"status":"reauth"}}`
	if got := h.postWebhook(hookSecret, "msg_unknown", now, unknown, false).status; got != http.StatusOK {
		t.Errorf("webhook for an unknown connection = %d, want 200", got)
	}
	types := strings.Join(log.types(), ",")
	if !strings.Contains(types, finchconnect.EventConnectionReauthRequired) || !strings.Contains(types, finchconnect.EventDataChanged) {
		t.Errorf("events raised = %s, want reauth_required and data_changed", types)
	}
	if strings.Count(types, finchconnect.EventConnectionReauthRequired) != 1 {
		t.Errorf("events raised = %s, want reauth_required once", types)
	}
}

// rowReadFailsBackend fails the next n row reads.
type rowReadFailsBackend struct {
	tokenstore.Backend
	n atomic.Int64
}

func (b *rowReadFailsBackend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	if b.n.Add(-1) >= 0 {
		return tokenstore.Row{}, errors.New("test: the store blinked")
	}
	return b.Backend.GetRow(ctx, id)
}

// TestWebhooks_DeliveredAgainAfterAFailure: an event that could not be
// applied (the store failed; the body was not JSON) is not spent, so
// Finch's next delivery of it is applied. A body larger than the site-wide
// limit but within the webhook's own is taken.
func TestWebhooks_DeliveredAgainAfterAFailure(t *testing.T) {
	b := &rowReadFailsBackend{Backend: tokenstore.NewMemory()}
	var log eventLog
	h := newHarnessWith(t, harnessOptions{backend: b}, func(c *server.Config) {
		c.WebhookSecrets = []finchconnect.Secret{finchconnect.NewSecret(hookSecret)}
		c.Notify = log.notify
	})
	id := h.finish(h.client, h.connect(h.client, "hook-blip", "authorized_simple"))
	now := time.Now()
	reauth := `{"event_type":"account.updated","connection_id":"` + id + `","data":{"status":"reauth"}}`

	if got := h.postWebhook(hookSecret, "msg_bad", now, `{"event_type":`, false).status; got != http.StatusBadRequest {
		t.Errorf("webhook with a broken body = %d, want 400", got)
	}
	if got := h.postWebhook(hookSecret, "msg_bad", now, reauth, false).status; got != http.StatusOK {
		t.Errorf("the same event id, whole = %d, want 200", got)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusReauth {
		t.Fatalf("status after the event was delivered whole = %q, want reauth (spent by the broken delivery?)", c.Status)
	}

	connected := `{"event_type":"account.updated","connection_id":"` + id + `","data":{"status":"connected"}}`
	b.n.Store(1)
	if got := h.postWebhook(hookSecret, "msg_blip", now, connected, false).status; got != http.StatusServiceUnavailable {
		t.Errorf("webhook during a store failure = %d, want 503 (so Finch retries)", got)
	}
	if got := h.postWebhook(hookSecret, "msg_blip", now, connected, false).status; got != http.StatusOK {
		t.Errorf("Finch's retry = %d, want 200", got)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusConnected {
		t.Errorf("status after the retry = %q, want connected (the event was lost)", c.Status)
	}

	// The event for the app cannot be published: the webhook is answered
	// 503 and nothing recorded, so Finch's retry records and announces it.
	log.failNext(1)
	if got := h.postWebhook(hookSecret, "msg_outbox", now, reauth, false).status; got != http.StatusServiceUnavailable {
		t.Errorf("webhook with the outbox down = %d, want 503", got)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusConnected {
		t.Errorf("status after an unannounced change = %q, want it unrecorded (connected)", c.Status)
	}
	if got := h.postWebhook(hookSecret, "msg_outbox", now, reauth, false).status; got != http.StatusOK {
		t.Errorf("Finch's retry = %d, want 200", got)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusReauth {
		t.Errorf("status after the retry = %q, want reauth", c.Status)
	}
	if got := log.types(); !slices.Contains(got, finchconnect.EventConnectionReauthRequired) {
		t.Errorf("events = %v, want reauth_required", got)
	}

	padded := `{"event_type":"company.updated","connection_id":"` + id + `","data":{"note":"` + strings.Repeat("x", 100<<10) + `"}}`
	if got := h.postWebhook(hookSecret, "msg_large", now, padded, false).status; got != http.StatusOK {
		t.Errorf("a 100 KiB webhook = %d, want 200 (the webhook limit is 256 KiB)", got)
	}
}

// slowRowReadBackend makes the next row read wait until the test lets it
// go (or the request's context ends), then fail, as a store too slow for
// Finch's patience would. gaveBack is closed once the write after that
// failed read, the claim given back, has returned.
type slowRowReadBackend struct {
	tokenstore.Backend
	slow     atomic.Bool
	release  chan struct{} // closed by the test: the slow read fails
	failed   atomic.Bool   // the slow read failed; the next Swap gives the claim back
	gaveBack chan struct{}
}

func newSlowRowReadBackend() *slowRowReadBackend {
	return &slowRowReadBackend{Backend: tokenstore.NewMemory(), release: make(chan struct{}), gaveBack: make(chan struct{})}
}

func (b *slowRowReadBackend) GetRow(ctx context.Context, id string) (tokenstore.Row, error) {
	if b.slow.CompareAndSwap(true, false) {
		select {
		case <-ctx.Done():
		case <-b.release:
		}
		b.failed.Store(true)
		return tokenstore.Row{}, errors.New("test: the store is slow")
	}
	return b.Backend.GetRow(ctx, id)
}

func (b *slowRowReadBackend) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	err := b.Backend.Swap(ctx, key, old, value, ttl)
	if b.failed.CompareAndSwap(true, false) {
		close(b.gaveBack)
	}
	return err
}

// TestWebhooks_FinchGivesUpWaiting: Finch stops waiting for an answer
// while the store is slow. The claim on the event id is given back all the
// same, so Finch's retry is applied rather than taken as a duplicate.
func TestWebhooks_FinchGivesUpWaiting(t *testing.T) {
	b := newSlowRowReadBackend()
	h := newHarnessWith(t, harnessOptions{backend: b}, func(c *server.Config) {
		c.WebhookSecrets = []finchconnect.Secret{finchconnect.NewSecret(hookSecret)}
	})
	id := h.finish(h.client, h.connect(h.client, "hook-slow", "authorized_simple"))
	body := `{"event_type":"account.updated","connection_id":"` + id + `","data":{"status":"reauth"}}`

	b.slow.Store(true)
	req, _ := http.NewRequest("POST", h.ts.URL+"/webhooks/finch", strings.NewReader(body))
	if err := webhook.SetHeaders(req.Header, webhook.Finch, hookSecret, "msg_slow", time.Now(), []byte(body)); err != nil {
		t.Fatal(err)
	}
	impatient := &http.Client{Timeout: 200 * time.Millisecond}
	if res, err := impatient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the first delivery was answered (%d) although the store was slow", res.StatusCode)
	}
	close(b.release) // the store's answer comes after Finch gave up: an error
	select {
	case <-b.gaveBack: // the handler gave the claim back
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not give the claim back after the slow read failed")
	}

	if got := h.postWebhook(hookSecret, "msg_slow", time.Now(), body, false).status; got != http.StatusOK {
		t.Errorf("Finch's retry = %d, want 200", got)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusReauth {
		t.Errorf("status after Finch's retry = %q, want reauth (the retry was taken as a duplicate)", c.Status)
	}
}

// TestWebhooks_ConnectionSealedUnderAMissingKey: a status change for a
// connection whose token this replica cannot open (a new key not yet
// rolled out to it) is neither recorded nor announced here, and Finch is
// asked to deliver it again, which applies it once the key is back. A data
// event needs no key and is announced at once.
func TestWebhooks_ConnectionSealedUnderAMissingKey(t *testing.T) {
	var log eventLog
	h := newHarnessWith(t, harnessOptions{backend: tokenstore.NewMemory()}, func(c *server.Config) {
		c.WebhookSecrets = []finchconnect.Secret{finchconnect.NewSecret(hookSecret)}
		c.Notify = log.notify
	})
	id := h.finish(h.client, h.connect(h.client, "hook-nokey", "authorized_simple"))
	other, err := keyring.Generate(2)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(other)
	if err != nil {
		t.Fatal(err)
	}
	keys := h.store.Keyring()
	h.store.SetKeyring(kr) // the connection's key is not here
	log.events = nil
	body := `{"event_type":"account.updated","connection_id":"` + id + `","data":{"status":"reauth"}}`
	for i := range 2 {
		if got := h.postWebhook(hookSecret, "msg_nokey", time.Now(), body, false).status; got != http.StatusServiceUnavailable {
			t.Errorf("delivery %d = %d, want 503 (another replica, or a later try, may have the key)", i, got)
		}
	}
	if got := log.types(); len(got) != 0 {
		t.Errorf("events = %v, want none for a change that was not recorded", got)
	}
	data := `{"event_type":"directory.created","connection_id":"` + id + `","data":{"individual_id":"x"}}`
	if got := h.postWebhook(hookSecret, "msg_nokey_data", time.Now(), data, false).status; got != http.StatusOK {
		t.Errorf("data webhook = %d, want 200 (it needs no key)", got)
	}
	if got := log.types(); !slices.Equal(got, []string{finchconnect.EventDataChanged}) {
		t.Errorf("events after the data webhook = %v, want data_changed", got)
	}

	h.store.SetKeyring(keys) // the rollout reaches this replica
	if got := h.postWebhook(hookSecret, "msg_nokey", time.Now(), body, false).status; got != http.StatusOK {
		t.Errorf("Finch's retry with the key back = %d, want 200", got)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusReauth {
		t.Errorf("status after the retry = %q, want reauth", c.Status)
	}
}

// TestWebhooks_SyncNow: a Finch data webhook or a completed data job asks
// the sync engine to refresh that connection now; a status change does
// not, and a duplicate delivery does not ask again.
func TestWebhooks_SyncNow(t *testing.T) {
	var mu sync.Mutex
	var kicked []string
	h := newHarnessWith(t, harnessOptions{}, func(c *server.Config) {
		c.WebhookSecrets = []finchconnect.Secret{finchconnect.NewSecret(hookSecret)}
		c.SyncNow = func(id string) {
			mu.Lock()
			defer mu.Unlock()
			kicked = append(kicked, id)
		}
	})
	id := h.finish(h.client, h.connect(h.client, "hook-sync", "authorized_simple"))
	now := time.Now()
	for _, ev := range []struct{ msg, body string }{
		{"m1", `{"event_type":"account.updated","connection_id":"` + id + `","data":{"status":"connected"}}`},
		{"m2", `{"event_type":"employment.updated","connection_id":"` + id + `","data":{"individual_id":"x"}}`},
		{"m2", `{"event_type":"employment.updated","connection_id":"` + id + `","data":{"individual_id":"x"}}`},
		{"m3", `{"event_type":"job.data_sync_all.completed","connection_id":"` + id + `","data":{"job_id":"j"}}`},
		{"m4", `{"event_type":"job.data_sync_all.updated","connection_id":"` + id + `","data":{"job_id":"j"}}`},
	} {
		if got := h.postWebhook(hookSecret, ev.msg, now, ev.body, false).status; got != http.StatusOK {
			t.Fatalf("webhook %s = %d", ev.msg, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{id, id}; !slices.Equal(kicked, want) {
		t.Errorf("SyncNow called for %v, want %v (the data event once, the completed job)", kicked, want)
	}
}
