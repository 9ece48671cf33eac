package events_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/events"
	"github.com/finchconnect/finchconnect/tokenstore"
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
