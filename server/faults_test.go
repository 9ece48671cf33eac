package server_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
	"github.com/finchconnect/finchconnect/webhook"
)

// testClock is a harness's clock: real time plus what the test advanced.
type testClock struct{ skew atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *testClock) Advance(d time.Duration) { c.skew.Add(int64(d)) }
func (c *testClock) opts(b tokenstore.Backend) harnessOptions {
	return harnessOptions{backend: b, now: c.Now}
}

// deliverWebhook posts a signed Finch webhook and returns the answer's
// status and body.
func (h *harness) deliverWebhook(id string, at time.Time, body string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.ts.URL+"/webhooks/finch", strings.NewReader(body))
	if err := webhook.SetHeaders(req.Header, webhook.Finch, hookSecret, id, at, []byte(body)); err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// deliverLikeFinch delivers a webhook until it is answered 2xx, as Finch
// does: again at once, then after 5 s, then after 5 and 30 minutes
// (finch-api.md §7), advancing clk instead of waiting. It returns every
// answer's body.
func deliverLikeFinch(h *harness, clk *testClock, id, body string) []string {
	h.t.Helper()
	var answers []string
	for _, wait := range []time.Duration{0, 0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute} {
		clk.Advance(wait)
		status, b := h.deliverWebhook(id, clk.Now(), body)
		answers = append(answers, b)
		if status/100 == 2 {
			return answers
		}
		if status != http.StatusServiceUnavailable {
			h.t.Fatalf("webhook delivery = %d, want 200 or 503; body %s", status, b)
		}
	}
	return answers
}

// TestWebhooks_ExactlyOnceUnderStoreFaults: every store call a webhook
// makes meets each fault that leaves its write done but its answer unknown
// (lost, timed out, or sent twice as go-redis resends a timed-out script),
// on every backend. Finch's delivery, and its redeliveries of anything not
// answered 2xx, must end with the event applied, and never be acknowledged
// as a duplicate before it was applied.
func TestWebhooks_ExactlyOnceUnderStoreFaults(t *testing.T) {
	t.Parallel() // a fresh backend and harness per case: nothing shared
	for _, be := range everyBackend {
		t.Run(be.name, func(t *testing.T) {
			cases := []faultCase{
				{"Claim"},            // the claim
				{"Claim", "Load!"},   // the claim, and the read that would tell whose it is
				{"Swap"},             // marking it applied
				{"GetRow"},           // applying it
				{"PutRow"},           // ... its write
				{"GetRow!", "Swap"},  // applying fails: giving the claim back
				{"GetRow!", "Swap!"}, // ... and that fails too: Finch's redeliveries take it over once stale
			}
			for _, c := range cases {
				faults := tokenstoretest.Faults
				if !c.hasPlain() {
					faults = []tokenstoretest.Fault{tokenstoretest.Refuse}
				}
				for _, fault := range faults {
					t.Run(c.String()+"/"+fault.String(), func(t *testing.T) {
						f := tokenstoretest.NewFaulty(be.open(t))
						clk := &testClock{}
						var log eventLog
						h := newHarnessWith(t, clk.opts(f), func(c *server.Config) {
							c.WebhookSecrets = []finchconnect.Secret{finchconnect.NewSecret(hookSecret)}
							c.Notify = log.notify
						})
						id := h.finish(h.client, h.connect(h.client, "hook-fault", "authorized_simple"))
						log.events = nil
						body := `{"event_type":"account.updated","connection_id":"` + id + `","data":{"status":"reauth"}}`

						c.inject(f, fault)
						answers := deliverLikeFinch(h, clk, "msg_fault", body)
						c.checkHit(t, f)
						c, err := h.store.Lookup(t.Context(), id)
						if err != nil || c.Status != finchconnect.StatusReauth {
							t.Fatalf("after deliveries answered %q: status %q, %v; want reauth (the event was lost)", answers, c.Status, err)
						}
						for _, a := range answers {
							if strings.Contains(a, `"duplicate"`) {
								t.Errorf("a delivery was acknowledged as a duplicate of itself: answers %q", answers)
							}
						}
						if got := strings.Count(strings.Join(log.types(), ","), finchconnect.EventConnectionReauthRequired); got != 1 {
							t.Errorf("reauth_required published %d times, want once; events %v", got, log.types())
						}
						// Applied now: Finch's next delivery is a duplicate.
						if _, b := h.deliverWebhook("msg_fault", clk.Now(), body); !strings.Contains(b, `"duplicate"`) {
							t.Errorf("a delivery after the event was applied answered %s, want duplicate", b)
						}
					})
				}
			}
		})
	}
}

// faultCase names the store calls of a callback that meet faults, in
// order: the fault under test for a plain name, Refuse for a name ending
// in "!" (a call refused to lead the callback to the step under test, or
// to make it work harder to find out what its write did).
type faultCase []string

func (c faultCase) String() string { return strings.Join(c, "+") }

// hasPlain reports whether a call of c meets the fault under test.
func (c faultCase) hasPlain() bool {
	for _, op := range c {
		if !strings.HasSuffix(op, "!") {
			return true
		}
	}
	return false
}

// checkHit fails the test unless every fault of c met a call.
func (c faultCase) checkHit(t *testing.T, f *tokenstoretest.Faulty) {
	t.Helper()
	for _, op := range c {
		if op = strings.TrimSuffix(op, "!"); f.Pending(op) > 0 {
			t.Fatalf("a fault on %s met no call; the test did not run its case", op)
		}
	}
}

func (c faultCase) inject(f *tokenstoretest.Faulty, fault tokenstoretest.Fault) {
	for _, op := range c {
		if name, refused := strings.CutSuffix(op, "!"); refused {
			f.Inject(name, tokenstoretest.Refuse)
		} else {
			f.Inject(op, fault)
		}
	}
}

// TestCallback_ExactlyOnceUnderStoreFaults: every store write of a
// callback, a new connection's and a re-authentication's, meets each fault
// that leaves the write done but its answer unknown, on every backend. The
// callback (or, if it could not finish, the employer's refresh) must end
// with the connection stored, the code exchanged once, the token stored
// once and announced once; never a wait for an exchange nobody is doing.
func TestCallback_ExactlyOnceUnderStoreFaults(t *testing.T) {
	t.Parallel() // a fresh backend and harness per case: nothing shared
	connect := []faultCase{
		{tokenstoretest.TxnEntries},                            // the claim
		{tokenstoretest.TxnEntries, "Load!"},                   // the claim, and the read that would tell whose it is
		{tokenstoretest.TxnRows},                               // the vault write that settles the ledger
		{tokenstoretest.TxnRows + "!", "Swap"},                 // that write refused: the write-ahead
		{tokenstoretest.TxnRows + "!", tokenstoretest.TxnRows}, // ... and the retried vault write
	}
	reauth := []faultCase{
		{tokenstoretest.TxnEntries}, // the claim
		{"Swap"},                    // the write-ahead
		{tokenstoretest.TxnRows},    // the vault write that settles the ledger
		{"GetRow"},                  // the read before it
	}
	for _, be := range everyBackend {
		t.Run(be.name, func(t *testing.T) {
			for _, flow := range []struct {
				reauth bool
				cases  []faultCase
			}{{false, connect}, {true, reauth}} {
				for _, c := range flow.cases {
					for _, fault := range tokenstoretest.Faults {
						name := "connect/"
						if flow.reauth {
							name = "reauth/"
						}
						t.Run(name+c.String()+"/"+fault.String(), func(t *testing.T) {
							callbackUnderFault(t, be.open(t), flow.reauth, c, fault)
						})
					}
				}
			}
		})
	}
}

func callbackUnderFault(t *testing.T, b tokenstore.Backend, reauth bool, c faultCase, fault tokenstoretest.Fault) {
	f := tokenstoretest.NewFaulty(b)
	var log eventLog
	h := newHarnessWith(t, harnessOptions{backend: f, clock: &skipClock{}}, func(c *server.Config) {
		c.Notify = log.notify
		c.WaitTimeout = 3 * time.Second // a follower of an exchange nobody does fails fast
	})
	customer := "acme-fault"
	var id string
	var before finchconnect.Connection
	cb := h.connect(h.client, customer, "authorized_simple")
	want := finchconnect.EventConnectionCreated
	if reauth {
		id = h.finish(h.client, cb)
		var err error
		if before, err = h.store.Get(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		cb = startReauth(t, h, id)
		want = finchconnect.EventConnectionReauthenticated
	}
	log.mu.Lock()
	log.events = nil
	log.mu.Unlock()
	exchanges := h.exchanges()

	c.inject(f, fault)
	res := h.do(h.client, "GET", cb, nil)
	c.checkHit(t, f)
	got := ""
	if m := connPathRe.FindStringSubmatch(res.location); res.status == http.StatusSeeOther && m != nil {
		got = m[1]
	} else {
		t.Logf("the callback answered %d; the employer refreshes", res.status)
	}
	again := h.finish(h.client, cb)
	if got != "" && again != got {
		t.Errorf("the refresh led to %q, the callback to %q", again, got)
	}
	if reauth && again != id {
		t.Errorf("the re-authentication led to %q, want %q", again, id)
	}
	if n := h.exchanges() - exchanges; n != 1 {
		t.Errorf("the code was exchanged %d times, want once", n)
	}
	conn, err := h.store.Get(t.Context(), again)
	if err != nil {
		t.Fatalf("the connection is not stored: %v", err)
	}
	if reauth && conn.AccessToken.Equal(before.AccessToken) {
		t.Error("the re-authentication's token was not stored")
	}
	rows, err := b.ListRows(t.Context(), tokenstore.Filter{CustomerID: customer})
	if err != nil || len(rows) != 1 {
		t.Errorf("rows of the customer = %d, %v; want one", len(rows), err)
	}
	if n := strings.Count(strings.Join(log.types(), ","), want); n != 1 {
		t.Errorf("%s published %d times, want once; events %v", want, n, log.types())
	}
}

// TestCallback_GivenBackClaimIsTakenOver: the store keeps failing a
// callback's claim, whose first copy landed with its answer lost. The
// callback gives up (503) and gives the claim back, so that the employer's
// refresh takes it over and exchanges the code, once, instead of waiting
// for an exchange nobody is doing and ending "interrupted".
func TestCallback_GivenBackClaimIsTakenOver(t *testing.T) {
	for _, be := range everyBackend {
		t.Run(be.name, func(t *testing.T) {
			f := tokenstoretest.NewFaulty(be.open(t))
			h := newHarnessWith(t, harnessOptions{backend: f, clock: &skipClock{}}, func(c *server.Config) {
				c.WaitTimeout = 3 * time.Second
			})
			cb := h.connect(h.client, "acme-given-back", "authorized_simple")
			f.Inject(tokenstoretest.TxnEntries, tokenstoretest.LoseAnswer)
			for range 10 {
				f.Inject(tokenstoretest.TxnEntries, tokenstoretest.Refuse)
			}
			res := h.do(h.client, "GET", cb, nil)
			if res.status != http.StatusServiceUnavailable || h.exchanges() != 0 {
				t.Fatalf("callback with the store failing every claim = %d after %d exchanges, want 503 and none", res.status, h.exchanges())
			}
			f.Drain() // the store answers again
			id := h.finish(h.client, cb)
			if n := h.exchanges(); n != 1 {
				t.Errorf("exchanges = %d, want 1", n)
			}
			if _, err := h.store.Get(t.Context(), id); err != nil {
				t.Errorf("the connection is not stored: %v", err)
			}
		})
	}
}

// TestCallback_GivenBackClaimAfterTheStateExpired: a claim given back
// unexchanged cannot be taken over once its flow's state has expired (the
// flow is gone): the refresh is told the link is no longer valid (400),
// not an internal error, and nothing reaches Finch.
func TestCallback_GivenBackClaimAfterTheStateExpired(t *testing.T) {
	clk := &testClock{}
	mem := tokenstore.NewMemory()
	mem.Now = clk.Now
	f := tokenstoretest.NewFaulty(mem)
	h := newHarness(t, harnessOptions{backend: f, clock: &skipClock{now: clk.Now}}) // the claim's backoffs skipped
	cb := h.connect(h.client, "acme-given-back-late", "authorized_simple")
	for range 10 {
		f.Inject(tokenstoretest.TxnEntries, tokenstoretest.Refuse)
	}
	if res := h.do(h.client, "GET", cb, nil); res.status != http.StatusServiceUnavailable {
		t.Fatalf("callback with the store failing every claim = %d, want 503", res.status)
	}
	f.Drain()
	clk.Advance(30 * time.Minute) // past the state's 10 minutes, within the ledger's hour
	res := h.do(h.client, "GET", cb, nil)
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "no longer valid") {
		t.Errorf("refresh after the state expired = %d, want 400 saying the link is no longer valid; body:\n%s", res.status, res.body)
	}
	if n := h.exchanges(); n != 0 {
		t.Errorf("exchanges = %d, want 0", n)
	}
}
