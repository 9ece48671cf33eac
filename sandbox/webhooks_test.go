package sandbox_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

const hookSecret = "5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"

// hook is one delivery a receiver got.
type hook struct {
	id, ts string
	event  map[string]any
	status int // what the receiver answered
}

// receiver is a webhook endpoint that checks every signature (Finch's
// scheme, finch-api.md §7) and answers with answer(n) for its nth
// delivery (from 1). The job.initial_data_sync_*.succeeded events each
// new connection brings are answered 200 and set aside in initial, so
// that tests of other events see only theirs, unless keepInitial is set.
type receiver struct {
	url         string
	got         chan hook
	initial     chan hook
	keepInitial atomic.Bool
	n           atomic.Int64
	t           *testing.T
	fail        func(n int) int
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	rc := &receiver{got: make(chan hook, 256), initial: make(chan hook, 256), t: t, fail: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("Finch-Event-Id"), r.Header.Get("Finch-Timestamp")
		key, _ := base64.StdEncoding.DecodeString(hookSecret)
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		if !hmac.Equal([]byte(r.Header.Get("Finch-Signature")), []byte("v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
			t.Errorf("webhook %s: bad signature", id)
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		if typ, _ := ev["event_type"].(string); strings.HasPrefix(typ, "job.initial_data_sync_") && !rc.keepInitial.Load() {
			rc.initial <- hook{id: id, ts: ts, event: ev, status: http.StatusOK}
			return
		}
		status := http.StatusOK
		if answer != nil {
			status = answer(int(rc.n.Add(1)))
		}
		w.WriteHeader(status)
		rc.got <- hook{id: id, ts: ts, event: ev, status: status}
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL
	return rc
}

// next returns the next delivery, failing the test after 10 s.
func (rc *receiver) next() hook {
	rc.t.Helper()
	select {
	case h := <-rc.got:
		return h
	case <-time.After(10 * time.Second):
		rc.t.Fatal("no webhook arrived")
	}
	return hook{}
}

// none checks that nothing arrives within a short while.
func (rc *receiver) none(what string) {
	rc.t.Helper()
	select {
	case h := <-rc.got:
		rc.t.Fatalf("%s: unexpected webhook %s %v", what, h.id, h.event["event_type"])
	case <-time.After(300 * time.Millisecond):
	}
}

// noStatus fails on any account.updated that arrives within 300 ms; data
// events (the timeline's daily changes) may come and are skipped.
func (rc *receiver) noStatus(what string) {
	rc.t.Helper()
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case h := <-rc.got:
			if h.event["event_type"] == "account.updated" {
				rc.t.Fatalf("%s: unexpected webhook %s %v", what, h.id, h.event["event_type"])
			}
		case <-deadline:
			return
		}
	}
}

// settled waits for the first-sync event of the connection just made
// (set aside, see receiver), so that the test's own events come after it,
// and returns GET /_sandbox/webhooks once it counts it delivered.
func (rc *receiver) settled(e *env) map[string]any {
	rc.t.Helper()
	select {
	case <-rc.initial:
	case <-time.After(10 * time.Second):
		rc.t.Fatal("no job.initial_data_sync_org.succeeded arrived")
	}
	// The receiver has it before the sandbox records the attempt.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st := e.call("GET", "/_sandbox/webhooks", "", nil).json(rc.t)
		if st["delivered"] == st["events"] && st["pending"] == 0.0 || time.Now().After(deadline) {
			return st
		}
	}
}

// delta is st's counter k less base's.
func delta(st, base map[string]any, k string) float64 {
	a, _ := st[k].(float64)
	b, _ := base[k].(float64)
	return a - b
}

// wallClock is an Options.Now that tests move.
type wallClock struct {
	mu sync.Mutex
	t  time.Time
}

func newWallClock() *wallClock {
	return &wallClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}
func (c *wallClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *wallClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sdkEventTypes are the 26 event types of @tryfinch/finch-api 10.7.0's
// resources/webhooks.ts, written out here so that the sandbox's own list
// cannot drift from it unnoticed.
var sdkEventTypes = strings.Fields(`account.updated company.updated
directory.created directory.updated directory.deleted employment.created employment.updated employment.deleted
individual.created individual.updated individual.deleted payment.created payment.updated payment.deleted
pay_statement.created pay_statement.updated pay_statement.deleted
job.benefit_create.completed job.benefit_enroll.completed job.benefit_register.completed job.benefit_unenroll.completed
job.benefit_update.completed job.data_sync_all.completed job.w4_form_employee_sync.completed
job.initial_data_sync_org.succeeded job.initial_data_sync_payroll.succeeded`)

// TestWebhooks_EveryEventType: POST /_sandbox/webhooks/test sends every
// event type the SDK knows, and test, each signed, in Finch's envelope,
// with data of the SDK's shape.
func TestWebhooks_EveryEventType(t *testing.T) {
	rc := newReceiver(t, nil)
	rc.keepInitial.Store(true)
	e := newEnv(t, sandbox.Options{WebhookURL: rc.url, WebhookSecret: hookSecret})
	_, conn := e.sandboxToken()
	types := append(slices.Clone(sdkEventTypes), "test")
	if len(sdkEventTypes) != 26 || !slices.Equal(types, sandbox.EventTypes) {
		t.Fatalf("sandbox.EventTypes = %v, want the SDK's 26 and test", sandbox.EventTypes)
	}
	for _, typ := range types {
		mustStatus(t, "trigger "+typ, e.call("POST", "/_sandbox/webhooks/test", "", map[string]any{"connection_id": conn, "event_type": typ}), http.StatusAccepted)
	}
	// Each type once, and the new connection's own first-sync event, in
	// whatever order.
	seen := map[string]bool{}
	for range len(types) + 1 {
		h := rc.next()
		ev := h.event
		typ, _ := ev["event_type"].(string)
		seen[typ] = true
		if ev["connection_id"] != conn || ev["company_id"] == nil || ev["account_id"] == nil || !strings.HasPrefix(h.id, "msg_") {
			t.Errorf("%s: envelope %v (id %s), want the connection's ids", typ, ev, h.id)
		}
		if _, ok := ev["entity_id"]; !ok {
			t.Errorf("%s: no entity_id", typ)
		}
		data, _ := ev["data"].(map[string]any)
		str := func(k string) bool { v, ok := data[k].(string); return ok && v != "" }
		var ok bool
		switch kind, _, _ := strings.Cut(typ, "."); kind {
		case "account":
			am, _ := data["authentication_method"].(map[string]any)
			ok = data["status"] == "connected" && am["type"] == "credential"
		case "company":
			ok = ev["data"] == nil
		case "directory", "employment", "individual":
			ok = str("individual_id")
		case "payment":
			ok = str("payment_id") && str("pay_date")
		case "pay_statement":
			ok = str("payment_id") && str("individual_id")
		case "job":
			ok = str("job_id") && strings.HasSuffix(data["job_url"].(string), "/"+data["job_id"].(string))
		case "test":
			ok = data != nil
		}
		if !ok {
			t.Errorf("%s: data %v is not the SDK's shape", typ, ev["data"])
		}
	}
	if len(seen) != len(types) {
		t.Errorf("received %d distinct event types, want %d: %v", len(seen), len(types), seen)
	}
	mustStatus(t, "unknown type", e.call("POST", "/_sandbox/webhooks/test", "", map[string]any{"connection_id": conn, "event_type": "nope"}), http.StatusBadRequest)
	mustStatus(t, "unknown connection", e.call("POST", "/_sandbox/webhooks/test", "", map[string]any{"connection_id": "nope", "event_type": "test"}), http.StatusNotFound)
}

// TestWebhooks_TriggerNeedsAURL: without a webhook URL the trigger says
// so; PUT /_sandbox/webhooks sets one at run time (checking the secret).
func TestWebhooks_TriggerNeedsAURL(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	_, conn := e.sandboxToken()
	mustStatus(t, "trigger without a URL", e.call("POST", "/_sandbox/webhooks/test", "", map[string]any{"connection_id": conn, "event_type": "test"}), http.StatusConflict)
	rc := newReceiver(t, nil)
	mustStatus(t, "PUT with a non-base64 secret", e.call("PUT", "/_sandbox/webhooks", "", map[string]any{"url": rc.url, "secret": "not base64!"}), http.StatusBadRequest)
	r := e.call("PUT", "/_sandbox/webhooks", "", map[string]any{"url": rc.url, "secret": hookSecret})
	mustStatus(t, "PUT", r, http.StatusOK)
	if strings.Contains(string(r.body), hookSecret) {
		t.Error("GET/PUT /_sandbox/webhooks shows the secret")
	}
	mustStatus(t, "trigger", e.call("POST", "/_sandbox/webhooks/test", "", map[string]any{"connection_id": conn, "event_type": "directory.updated", "data": map[string]any{"individual_id": "i-1"}}), http.StatusAccepted)
	if h := rc.next(); h.event["event_type"] != "directory.updated" || h.event["data"].(map[string]any)["individual_id"] != "i-1" {
		t.Errorf("triggered webhook = %v, want directory.updated with the given data", h.event)
	}
	mustStatus(t, "PUT url off", e.call("PUT", "/_sandbox/webhooks", "", map[string]any{"url": ""}), http.StatusOK)
	mustStatus(t, "trigger after", e.call("POST", "/_sandbox/webhooks/test", "", map[string]any{"connection_id": conn, "event_type": "test"}), http.StatusConflict)
}

// TestWebhooks_RetriedOnFinchSchedule: a failed delivery is retried 5 s,
// then 5 min after the failure before, on the wall clock (Options.Now,
// which the test moves: nothing sleeps for the schedule), with the same
// Finch-Event-Id and a fresh signature; a success ends it.
func TestWebhooks_RetriedOnFinchSchedule(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	wall := newWallClock()
	rc := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e := newEnv(t, sandbox.Options{WebhookURL: rc.url, WebhookSecret: hookSecret, Now: wall.now})
	_, conn := e.sandboxToken()
	base := rc.settled(e)
	t0 := wall.now().Unix()
	if err := e.sb.SendWebhook(conn, "company.updated", nil); err != nil {
		t.Fatal(err)
	}
	first := rc.next()
	if first.status != 503 || first.ts != strconv.FormatInt(t0, 10) {
		t.Fatalf("first attempt = %d at %s, want the failing answer at %d", first.status, first.ts, t0)
	}
	wall.add(4 * time.Second)
	rc.none("4 s after the failure")
	wall.add(time.Second)
	second := rc.next()
	if second.id != first.id || second.ts != strconv.FormatInt(t0+5, 10) {
		t.Fatalf("second attempt = %s at %s, want %s at %d", second.id, second.ts, first.id, t0+5)
	}
	wall.add(5*time.Minute - time.Second)
	rc.none("5 min less a second after the second failure")
	wall.add(time.Second)
	third := rc.next()
	if third.id != first.id || third.status != 200 {
		t.Fatalf("third attempt = %s answered %d, want %s delivered", third.id, third.status, first.id)
	}
	wall.add(3 * time.Hour)
	rc.none("after the delivery")
	st := e.call("GET", "/_sandbox/webhooks", "", nil).json(t)
	if delta(st, base, "attempts") != 3 || delta(st, base, "delivered") != 1 || st["failed"] != 0.0 || st["pending"] != 0.0 {
		t.Errorf("GET /_sandbox/webhooks = %v (before: %v), want 3 more attempts, 1 more delivered, none pending", st, base)
	}
}

// TestWebhooks_GivesUp: with Options.WebhookRetryDelays a failing
// receiver gets one attempt per delay plus the first, then the event
// counts as failed.
func TestWebhooks_GivesUp(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	rc := newReceiver(t, func(int) int { return http.StatusInternalServerError })
	e := newEnv(t, sandbox.Options{WebhookURL: rc.url, WebhookSecret: hookSecret, Now: fixedNow(), WebhookRetryDelays: []time.Duration{0, 0}})
	_, conn := e.sandboxToken()
	base := rc.settled(e)
	if err := e.sb.SendWebhook(conn, "test", nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rc.next()
	}
	rc.none("after the last retry")
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.call("GET", "/_sandbox/webhooks", "", nil).json(t)
		if st["failed"] == 1.0 && delta(st, base, "attempts") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /_sandbox/webhooks = %v (before: %v), want 3 more attempts and 1 failed", st, base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebhooks_DuplicatesAndOutOfOrder: the chaos knobs deliver an event
// twice under one Finch-Event-Id, and batches newest first.
func TestWebhooks_DuplicatesAndOutOfOrder(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	t.Run("duplicates", func(t *testing.T) {
		rc := newReceiver(t, nil)
		e := newEnv(t, sandbox.Options{WebhookURL: rc.url, WebhookSecret: hookSecret, WebhookDuplicateEvery: 2})
		_, conn := e.sandboxToken()
		rc.settled(e)
		// Setting the knob starts its count again, after the first-sync event.
		mustStatus(t, "PUT duplicate_every", e.call("PUT", "/_sandbox/webhooks", "", map[string]any{"duplicate_every": 2}), http.StatusOK)
		for _, typ := range []string{"directory.created", "directory.updated"} {
			if err := e.sb.SendWebhook(conn, typ, nil); err != nil {
				t.Fatal(err)
			}
		}
		a, b, c := rc.next(), rc.next(), rc.next()
		rc.none("after the duplicate")
		if a.event["event_type"] != "directory.created" || b.event["event_type"] != "directory.updated" || c.id != b.id || c.event["event_type"] != "directory.updated" || a.id == b.id {
			t.Errorf("deliveries = %s %v, %s %v, %s %v; want the second event twice under one id", a.id, a.event["event_type"], b.id, b.event["event_type"], c.id, c.event["event_type"])
		}
	})
	t.Run("out of order", func(t *testing.T) {
		rc := newReceiver(t, nil)
		e := newEnv(t, sandbox.Options{WebhookURL: rc.url, WebhookSecret: hookSecret, Now: fixedNow()})
		_, conn := e.sandboxToken()
		rc.settled(e)
		mustStatus(t, "PUT reorder_window", e.call("PUT", "/_sandbox/webhooks", "", map[string]any{"reorder_window": 3}), http.StatusOK)
		sent := []string{"individual.created", "individual.updated", "individual.deleted"}
		for _, typ := range sent {
			if err := e.sb.SendWebhook(conn, typ, nil); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for range sent {
			got = append(got, rc.next().event["event_type"].(string))
		}
		if want := []string{"individual.deleted", "individual.updated", "individual.created"}; !slices.Equal(got, want) {
			t.Errorf("delivered %v, want %v (newest first)", got, want)
		}
		mustStatus(t, "PUT reorder_window -1", e.call("PUT", "/_sandbox/webhooks", "", map[string]any{"reorder_window": -1}), http.StatusBadRequest)
	})
}
