package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/events"
	"github.com/finchconnect/finchconnect/internal/testenv"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/redis"
	"github.com/finchconnect/finchconnect/webhook"
)

const secret = "c2lnbmluZy1zZWNyZXQtZm9yLWV2ZW50cy10ZXN0cw=="

// TestDeliverer_AppDownThenUp: the app's endpoint fails for a while, then
// recovers; every event arrives, signed and verifiable, exactly once, in
// order per connection.
func TestDeliverer_AppDownThenUp(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var got []finchconnect.Event
	var failures atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			failures.Add(1)
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(r.Header, webhook.Finchconnect, []string{secret}, body, time.Now()); err != nil {
			t.Errorf("delivered event does not verify: %v", err)
		}
		var e finchconnect.Event
		json.Unmarshal(body, &e)
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}))
	defer app.Close()

	b := tokenstore.NewMemory()
	out := events.NewOutbox(b)
	for i, typ := range []string{finchconnect.EventConnectionCreated, finchconnect.EventConnectionReauthRequired, finchconnect.EventConnectionReauthenticated} {
		if err := out.Publish(t.Context(), finchconnect.Event{ID: "evt_" + string(rune('a'+i)), Type: typ, ConnectionID: "c1"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	d := &events.Deliverer{Outbox: out, URL: app.URL, Secret: finchconnect.NewSecret(secret), MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}

	for range 5 {
		if _, err := d.DeliverDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if n, _ := out.Depth(t.Context()); n != 3 {
		t.Fatalf("outbox depth while the app is down = %d, want 3", n)
	}
	if failures.Load() == 0 {
		t.Fatal("no delivery was attempted while the app was down")
	}
	if failures.Load() > 5 {
		t.Errorf("%d attempts while down: later events of a blocked connection were sent out of order", failures.Load())
	}

	down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := d.DeliverDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n, _ := out.Depth(t.Context()); n == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// More passes deliver nothing twice.
	d.DeliverDue(t.Context())
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("the app received %d events, want 3 exactly once", len(got))
	}
	for i, want := range []string{"evt_a", "evt_b", "evt_c"} {
		if got[i].ID != want {
			t.Errorf("event %d = %s, want %s (in order)", i, got[i].ID, want)
		}
	}
}

func TestDeliverer_LeaseStopsDoubleSend(t *testing.T) {
	var hits atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(50 * time.Millisecond)
	}))
	defer app.Close()
	b := tokenstore.NewMemory()
	out := events.NewOutbox(b)
	out.Publish(t.Context(), finchconnect.Event{ID: "evt_x", ConnectionID: "c"})
	var wg sync.WaitGroup
	for range 4 {
		d := &events.Deliverer{Outbox: out, URL: app.URL, Secret: finchconnect.NewSecret(secret)}
		wg.Go(func() { d.DeliverDue(t.Context()) })
	}
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Errorf("four replicas delivering at once sent the event %d times, want 1", n)
	}
}

// stalePage is a replica's view of a shared store whose first Scan is slow:
// it reads its page, then, before returning it, lets another replica work
// (meanwhile). The page it returns is then older than the store.
type stalePage struct {
	*tokenstore.Memory
	once      sync.Once
	meanwhile func()
}

func (s *stalePage) Scan(ctx context.Context, prefix, after string, limit int) ([]tokenstore.Entry, error) {
	es, err := s.Memory.Scan(ctx, prefix, after, limit)
	s.once.Do(s.meanwhile)
	return es, err
}

// TestDeliverer_StalePage: a replica that read its page of the outbox
// before another replica delivered (or failed and backed off) sends
// nothing again, counts nothing, and does not fail the pass.
func TestDeliverer_StalePage(t *testing.T) {
	const n = 20
	for _, tc := range []struct {
		name string
		// accept says whether the app takes the i-th request (from 1).
		accept        func(i int64) bool
		conns         int // the events are spread over this many connections
		wantHits      int64
		wantDelivered int64 // by both replicas
		wantDepth     int
	}{
		{"DeliveredMeanwhile", func(int64) bool { return true }, n, n, n, 0},
		{"FailedMeanwhile", func(int64) bool { return false }, n, n, 0, n},
		{"DeliveredMeanwhileResendFails", func(i int64) bool { return i <= n }, n, n, n, 0},
		// One connection: A sends its first event and backs off; B, seeing
		// the backoff, holds back the connection's later events too.
		{"FailedMeanwhileOneConnection", func(int64) bool { return false }, 1, 1, 0, n},
		// A delivers the first event and backs off on the second; B skips
		// the first (gone) and holds back from the second on.
		{"DeliveredThenFailedMeanwhile", func(i int64) bool { return i == 1 }, 1, 2, 1, n - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !tc.accept(hits.Add(1)) {
					http.Error(w, "no", http.StatusInternalServerError)
				}
			}))
			defer app.Close()

			m := tokenstore.NewMemory()
			for i := range n {
				e := finchconnect.Event{ID: fmt.Sprintf("evt_%02d", i), ConnectionID: fmt.Sprintf("c%02d", i%tc.conns)}
				if err := events.NewOutbox(m).Publish(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			var delivered atomic.Int64
			replica := func(b tokenstore.Backend) *events.Deliverer {
				return &events.Deliverer{Outbox: events.NewOutbox(b), URL: app.URL, Secret: finchconnect.NewSecret(secret),
					MinBackoff: time.Hour, Delivered: func(finchconnect.Event) { delivered.Add(1) }}
			}
			a := replica(m)
			stale := &stalePage{Memory: m, meanwhile: func() {
				if _, err := a.DeliverDue(t.Context()); err != nil {
					t.Errorf("replica A: DeliverDue() error = %v", err)
				}
			}}
			b := replica(stale)
			if got, err := b.DeliverDue(t.Context()); got != 0 || err != nil {
				t.Errorf("replica B: DeliverDue() = %d, %v; want 0, nil", got, err)
			}
			if got := hits.Load(); got != tc.wantHits {
				t.Errorf("the app received %d requests, want %d", got, tc.wantHits)
			}
			if got := delivered.Load(); got != tc.wantDelivered {
				t.Errorf("Delivered called %d times, want %d", got, tc.wantDelivered)
			}
			if got, _ := a.Outbox.Depth(t.Context()); got != tc.wantDepth {
				t.Errorf("outbox depth = %d, want %d", got, tc.wantDepth)
			}
		})
	}
}

// TestDeliverer_ConcurrentReplicas: replicas working the same outbox at
// once send each event once, on the memory store and, when
// FINCHCONNECT_TEST_REDIS_URL is set, on Redis.
func TestDeliverer_ConcurrentReplicas(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) tokenstore.Backend
	}{
		{"Memory", func(*testing.T) tokenstore.Backend { return tokenstore.NewMemory() }},
		{"Redis", func(t *testing.T) tokenstore.Backend {
			u := testenv.RedisURL(t)
			b, err := redis.Open(t.Context(), u+"?prefix="+fmt.Sprintf("events-test-%d", time.Now().UnixNano()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 100
			var mu sync.Mutex
			sent := map[string]int{}
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				sent[r.Header.Get("Finchconnect-Event-Id")]++
				mu.Unlock()
			}))
			defer app.Close()
			b := tc.store(t)
			out := events.NewOutbox(b)
			for i := range n {
				if err := out.Publish(t.Context(), finchconnect.Event{ID: fmt.Sprintf("evt_%03d", i), ConnectionID: fmt.Sprintf("c%d", i%7)}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for range 3 {
				d := &events.Deliverer{Outbox: events.NewOutbox(b), URL: app.URL, Secret: finchconnect.NewSecret(secret)}
				wg.Go(func() {
					for range 20 {
						if _, err := d.DeliverDue(t.Context()); err != nil {
							t.Errorf("DeliverDue() error = %v", err)
						}
					}
				})
			}
			wg.Wait()
			if n, _ := out.Depth(t.Context()); n != 0 {
				t.Errorf("outbox depth = %d, want 0", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(sent) != n {
				t.Errorf("the app received %d distinct events, want %d", len(sent), n)
			}
			dups := 0
			for _, k := range sent {
				dups += k - 1
			}
			if dups != 0 {
				t.Errorf("%d duplicate sends, want 0", dups)
			}
		})
	}
}

// fakeClock is a settable clock for the outbox and its store.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestDeliverer_PoisonEvent: an event the app always refuses is retried
// for 7 days from its publication, not more, then dropped with an error
// logged; the later events of its connection, held back meanwhile, then go
// out.
func TestDeliverer_PoisonEvent(t *testing.T) {
	const keep = 7 * 24 * time.Hour
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	t0 := clock.Now()
	var mu sync.Mutex
	attempts := map[string][]time.Time{} // event id: when the app saw it
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Finchconnect-Event-Id")
		mu.Lock()
		attempts[id] = append(attempts[id], clock.Now())
		mu.Unlock()
		if id == "evt_poison" {
			http.Error(w, "unprocessable", http.StatusUnprocessableEntity)
		}
	}))
	defer app.Close()

	m := tokenstore.NewMemory()
	m.Now = clock.Now
	out := events.NewOutbox(m)
	out.SetClock(clock.Now)
	for _, e := range []finchconnect.Event{
		{ID: "evt_poison", ConnectionID: "c1"},
		{ID: "evt_next", ConnectionID: "c1"},
		{ID: "evt_other", ConnectionID: "c2"},
	} {
		if err := out.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Second)
	}
	es, err := m.Scan(t.Context(), "outbox/", "", 0)
	if err != nil || len(es) != 3 {
		t.Fatalf("Scan(outbox/) = %d entries, %v; want 3", len(es), err)
	}
	expires := es[0].ExpiresAt // the poison event's, as published

	var logs bytes.Buffer
	var dropped []string
	d := &events.Deliverer{Outbox: out, URL: app.URL, Secret: finchconnect.NewSecret(secret),
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		Dropped: func(e finchconnect.Event) { dropped = append(dropped, e.ID) }}
	extended := false
	for clock.Now().Before(t0.Add(10 * 24 * time.Hour)) {
		if _, err := d.DeliverDue(t.Context()); err != nil {
			t.Fatalf("DeliverDue() at %v error = %v", clock.Now().Sub(t0), err)
		}
		if es, _ := m.Scan(t.Context(), "outbox/", "", 1); !extended && len(es) == 1 &&
			bytes.Contains(es[0].Value, []byte("evt_poison")) && es[0].ExpiresAt.After(expires) {
			t.Errorf("at %v the poison event's entry expires at %v, later than when published (%v)",
				clock.Now().Sub(t0), es[0].ExpiresAt.Sub(t0), expires.Sub(t0))
			extended = true
		}
		clock.Add(time.Minute)
	}

	mu.Lock()
	defer mu.Unlock()
	poison := attempts["evt_poison"]
	if len(poison) < 2 {
		t.Fatalf("the poison event was tried %d times, want retries", len(poison))
	}
	// The last try falls on the deadline, or the first pass after it (one
	// a minute here).
	if last := poison[len(poison)-1]; last.Before(t0.Add(keep)) || last.After(t0.Add(keep+time.Minute)) {
		t.Errorf("last try of the poison event at %v, want one at its deadline, 7 days (%v) after its publication", last.Sub(t0), keep)
	}
	if len(dropped) != 1 || dropped[0] != "evt_poison" {
		t.Errorf("Dropped called for %q, want [evt_poison]", dropped)
	}
	if got := len(attempts["evt_other"]); got != 1 {
		t.Errorf("evt_other (another connection) sent %d times, want 1", got)
	}
	next := attempts["evt_next"]
	if len(next) != 1 {
		t.Fatalf("evt_next (held behind the poison event) sent %d times, want 1", len(next))
	}
	if next[0].Before(poison[len(poison)-1]) {
		t.Errorf("evt_next sent at %v, before the poison event's last try at %v (out of order)", next[0].Sub(t0), poison[len(poison)-1].Sub(t0))
	}
	if n, _ := out.Depth(t.Context()); n != 0 {
		t.Errorf("outbox depth = %d, want 0", n)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "event_id=evt_poison") {
		t.Errorf("no ERROR log line names the dropped event; logs:\n%s", tail(logs.String(), 5))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestDeliverer_ErrorHidesURLSecrets: a failed delivery's error, kept in
// the outbox entry and logged, names the events URL without its query or
// user info, which may hold a token.
func TestDeliverer_ErrorHidesURLSecrets(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // connections are refused
	for _, tc := range []struct {
		name, url, want string
	}{
		{"Refused", strings.Replace(gone.URL, "http://", "http://user:hunter2@", 1) + "/hooks?token=hunter2", gone.URL + "/hooks"},
		{"Unparsable", "http://127.0.0.1:bad/hooks?token=hunter2", "http://127.0.0.1:bad/hooks"},
		{"NoScheme", "user:hunter2@127.0.0.1/hooks?token=hunter2", "127.0.0.1/hooks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tokenstore.NewMemory()
			out := events.NewOutbox(m)
			if err := out.Publish(t.Context(), finchconnect.Event{ID: "evt_1", ConnectionID: "c1"}); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			d := &events.Deliverer{Outbox: out, URL: tc.url, Secret: finchconnect.NewSecret(secret),
				Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			if _, err := d.DeliverDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			es, err := m.Scan(t.Context(), "outbox/", "", 0)
			if err != nil || len(es) != 1 {
				t.Fatalf("Scan(outbox/) = %d entries, %v; want 1", len(es), err)
			}
			var rec struct {
				LastErr string `json:"last_error"`
			}
			if err := json.Unmarshal(es[0].Value, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.LastErr == "" || strings.Contains(rec.LastErr, "hunter2") || !strings.Contains(rec.LastErr, tc.want) {
				t.Errorf("last_error = %q, want it to name %q and not hold the secret", rec.LastErr, tc.want)
			}
			if strings.Contains(logs.String(), "hunter2") {
				t.Errorf("the log holds the secret:\n%s", logs.String())
			}
		})
	}
}

// TestDeliverer_RecordWithoutDeadline: an entry written before records
// held their deadline gets one from its publication time, which its key
// holds.
func TestDeliverer_RecordWithoutDeadline(t *testing.T) {
	const keep = 7 * 24 * time.Hour
	for _, tc := range []struct {
		name      string
		age       time.Duration // since its publication
		wantKept  bool
		wantDrops int
	}{
		{"WithinItsDeadline", 24 * time.Hour, true, 0},
		{"PastItsDeadline", 8 * 24 * time.Hour, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				http.Error(w, "no", http.StatusBadRequest)
			}))
			defer app.Close()
			m := tokenstore.NewMemory()
			published := time.Now().Add(-tc.age)
			key := fmt.Sprintf("outbox/%020d-evt_old", published.UnixNano())
			old := fmt.Sprintf(`{"event":{"id":"evt_old","connection_id":"c1"},"attempts":900,"next_at":%q}`,
				time.Now().Add(-time.Minute).Format(time.RFC3339Nano))
			if err := m.Claim(t.Context(), key, []byte(old), keep); err != nil {
				t.Fatal(err)
			}
			drops := 0
			d := &events.Deliverer{Outbox: events.NewOutbox(m), URL: app.URL, Secret: finchconnect.NewSecret(secret),
				Dropped: func(finchconnect.Event) { drops++ }}
			if _, err := d.DeliverDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := hits.Load(); got != 1 {
				t.Errorf("the app received %d requests, want 1", got)
			}
			if drops != tc.wantDrops {
				t.Errorf("Dropped called %d times, want %d", drops, tc.wantDrops)
			}
			es, err := m.Scan(t.Context(), "outbox/", "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(es) == 1; got != tc.wantKept {
				t.Fatalf("entry kept = %v, want %v", got, tc.wantKept)
			}
			if !tc.wantKept {
				return
			}
			var rec struct {
				Deadline time.Time `json:"deadline"`
			}
			if err := json.Unmarshal(es[0].Value, &rec); err != nil {
				t.Fatal(err)
			}
			if want := published.Add(keep); !rec.Deadline.Equal(want) {
				t.Errorf("stored deadline = %v, want %v (publication + 7 days)", rec.Deadline, want)
			}
			if limit := published.Add(keep + 2*time.Hour); es[0].ExpiresAt.After(limit) {
				t.Errorf("entry expires at %v, want by %v (its deadline, not 7 days from the retry)", es[0].ExpiresAt, limit)
			}
		})
	}
}
