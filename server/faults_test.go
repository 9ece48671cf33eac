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
	for _, be := range everyBackend {
		t.Run(be.name, func(t *testing.T) {
			// "Claim+Load": the claim's answer is lost and so is the read
			// that would tell whose claim it is.
			for _, op := range []string{"Claim", "Claim+Load", "Swap", "GetRow", "PutRow"} {
				for _, fault := range tokenstoretest.Faults {
					t.Run(op+"/"+fault.String(), func(t *testing.T) {
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

						first, then, _ := strings.Cut(op, "+")
						f.Inject(first, fault)
						if then != "" {
							f.Inject(then, tokenstoretest.Refuse)
						}
						answers := deliverLikeFinch(h, clk, "msg_fault", body)
						for _, o := range []string{first, then} {
							if o != "" && f.Hits(o) == 0 {
								t.Fatalf("no %s call met the fault; the test did not run its case", o)
							}
						}
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
