package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EventTypes are the webhook event types the sandbox sends: the 26 of the
// official SDK's resources/webhooks.ts (10.7.0) and the dashboard's
// "test" (finch-api-more.md §9).
var EventTypes = []string{
	"account.updated", "company.updated",
	"directory.created", "directory.updated", "directory.deleted",
	"employment.created", "employment.updated", "employment.deleted",
	"individual.created", "individual.updated", "individual.deleted",
	"payment.created", "payment.updated", "payment.deleted",
	"pay_statement.created", "pay_statement.updated", "pay_statement.deleted",
	"job.benefit_create.completed", "job.benefit_enroll.completed", "job.benefit_register.completed",
	"job.benefit_unenroll.completed", "job.benefit_update.completed",
	"job.data_sync_all.completed", "job.w4_form_employee_sync.completed",
	"job.initial_data_sync_org.succeeded", "job.initial_data_sync_payroll.succeeded",
	"test",
}

// DefaultWebhookRetryDelays is Finch's documented retry schedule: after a
// failed first attempt, retries 5 s, 5 min, 30 min and 2 h after the
// failure before it (finch-api.md §7, "immediately, then 5 s, 5 min,
// 30 min, 2 h").
var DefaultWebhookRetryDelays = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour}

const (
	maxPendingHooks = 10000                 // deliveries waiting; more are dropped with a warning
	reorderHold     = time.Second           // how long a partial reorder batch waits (wall clock)
	hookPoll        = 50 * time.Millisecond // how often a sender on an injected clock looks at it
	recentHooks     = 100                   // delivery attempts GET /_sandbox/webhooks lists
)

// delivery is one event on its way, with its attempts so far.
type delivery struct {
	id, eventType, connectionID string
	body                        []byte
	attempts                    int
	due                         time.Time // wall clock
	seq                         uint64    // FIFO among equal due times
}

// attemptRecord is one delivery attempt, for GET /_sandbox/webhooks.
type attemptRecord struct {
	EventID      string    `json:"event_id"`
	EventType    string    `json:"event_type"`
	ConnectionID string    `json:"connection_id"`
	Attempt      int       `json:"attempt"`
	At           time.Time `json:"at"`
	Status       int       `json:"status,omitempty"` // the receiver's HTTP status (0: no answer)
	Error        string    `json:"error,omitempty"`
	Delivered    bool      `json:"delivered"`
}

// hookQueue sends webhooks from one goroutine, started once a webhook URL
// is set (Options.WebhookURL or PUT /_sandbox/webhooks). Due times follow
// the wall clock (Options.Now without the offset of Advance), like the
// Finch-Timestamp receivers check. Its mutex is taken under s.mu (by
// emit), never the other way round.
type hookQueue struct {
	enabled atomic.Bool // a URL is set: emit does nothing otherwise

	mu        sync.Mutex
	url       string
	secret    string
	retry     []time.Duration
	dupEvery  int
	reorder   int
	emitted   uint64 // events emitted, for dupEvery
	seq       uint64
	held      []*delivery // the reorder batch
	heldSince time.Time
	pending   []*delivery // by (due, seq)
	recent    []attemptRecord
	counts    struct{ events, attempts, delivered, failed, dropped, duplicates int }
	started   bool
	closed    bool
	poll      bool // Options.Now is injected: poll it every hookPoll

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// initWebhooks sets the queue up from the options; the goroutine starts
// with a URL. On an injected clock (Options.Now) the sender polls it while
// deliveries wait, since tests move it without telling the sandbox; on
// the real clock it sleeps until the next one is due.
func (s *Server) initWebhooks(clockInjected bool) {
	q := &hookQueue{
		url: s.opts.WebhookURL, secret: s.opts.WebhookSecret, retry: s.opts.WebhookRetryDelays,
		dupEvery: s.opts.WebhookDuplicateEvery, reorder: s.opts.WebhookReorderWindow,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		poll: clockInjected,
	}
	if q.retry == nil {
		q.retry = DefaultWebhookRetryDelays
	}
	s.hooks = q
	if q.url != "" {
		q.enabled.Store(true)
		q.start(s)
	}
}

// start runs the sender once. q.mu must be held, or q not yet shared.
func (q *hookQueue) start(s *Server) {
	if q.started || q.closed {
		return
	}
	q.started = true
	go s.sendWebhooks()
}

// stopWebhooks ends the sender (pending deliveries are dropped).
func (s *Server) stopWebhooks() {
	q := s.hooks
	q.mu.Lock()
	started := q.started
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	if started {
		<-q.done
	}
}

// emit queues a webhook of eventType for connection c with data, in
// Finch's envelope (finch-api.md §7). s.mu must be held. Without a
// webhook URL it does nothing.
func (s *Server) emit(c *connection, eventType string, data any) {
	s.emitEntity(c, "", eventType, data)
}

// emitEntity is emit for one entity of a multi-entity connection
// (entity_id set); "" is the connection as a whole (entity_id null).
func (s *Server) emitEntity(c *connection, entityID, eventType string, data any) {
	q := s.hooks
	if !q.enabled.Load() {
		return
	}
	body, err := json.Marshal(map[string]any{
		"event_type": eventType, "connection_id": c.ID, "company_id": c.CompanyID,
		"account_id": c.AccountID, "entity_id": nullable(entityID), "data": data,
	})
	if err != nil {
		s.log.Error("sandbox webhook: unencodable data", "event_type", eventType, "err", err)
		return
	}
	d := &delivery{id: "msg_" + s.random(12), eventType: eventType, connectionID: c.ID, body: body}
	q.mu.Lock()
	q.add(s, d)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// add queues d, a duplicate of it when dupEvery says so, through the
// reorder batch when there is one. q.mu must be held.
func (q *hookQueue) add(s *Server, d *delivery) {
	q.counts.events++
	q.emitted++
	ds := []*delivery{d}
	if q.dupEvery > 0 && q.emitted%uint64(q.dupEvery) == 0 {
		dup := *d
		ds = append(ds, &dup)
		q.counts.duplicates++
	}
	now := s.wallNow()
	for _, d := range ds {
		if len(q.pending)+len(q.held) >= maxPendingHooks {
			q.counts.dropped++
			s.log.Warn("sandbox webhook queue full; dropping an event", "event_type", d.eventType)
			continue
		}
		if q.reorder > 1 {
			if len(q.held) == 0 {
				q.heldSince = now
			}
			q.held = append(q.held, d)
			if len(q.held) >= q.reorder {
				q.flush(now)
			}
			continue
		}
		d.due = now
		q.schedule(d)
	}
}

// flush releases the reorder batch, newest first. q.mu must be held.
func (q *hookQueue) flush(now time.Time) {
	for i := len(q.held) - 1; i >= 0; i-- {
		q.held[i].due = now
		q.schedule(q.held[i])
	}
	q.held = nil
}

// schedule inserts d in pending by (due, seq). q.mu must be held.
func (q *hookQueue) schedule(d *delivery) {
	q.seq++
	d.seq = q.seq
	i := sort.Search(len(q.pending), func(i int) bool {
		p := q.pending[i]
		return p.due.After(d.due) || p.due.Equal(d.due) && p.seq > d.seq
	})
	q.pending = slices.Insert(q.pending, i, d)
}

// sendWebhooks posts due deliveries, one at a time, until Close; a failed
// one is scheduled again after the next retry delay, so that one failing
// receiver's retries do not hold the others up.
func (s *Server) sendWebhooks() {
	q := s.hooks
	defer close(q.done)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		now := s.wallNow()
		q.mu.Lock()
		if len(q.held) > 0 && now.Sub(q.heldSince) >= reorderHold {
			q.flush(now)
		}
		var d *delivery
		if len(q.pending) > 0 && !q.pending[0].due.After(now) {
			d = q.pending[0]
			q.pending = q.pending[1:]
		}
		waiting := len(q.pending) > 0 || len(q.held) > 0
		wait := time.Minute
		if len(q.pending) > 0 {
			wait = min(wait, q.pending[0].due.Sub(now))
		}
		if len(q.held) > 0 {
			wait = min(wait, q.heldSince.Add(reorderHold).Sub(now))
		}
		if q.poll {
			wait = min(wait, hookPoll)
		}
		url, secret := q.url, q.secret
		q.mu.Unlock()
		if d != nil {
			if url == "" {
				q.mu.Lock()
				q.counts.dropped++ // the URL was removed: what was queued is dropped
				q.mu.Unlock()
				continue
			}
			s.attempt(client, d, url, secret)
			continue
		}
		var tick <-chan time.Time
		var t *time.Timer
		if waiting {
			t = time.NewTimer(max(wait, time.Millisecond))
			tick = t.C
		}
		select {
		case <-q.stop:
			return
		case <-q.kick:
		case <-tick:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// attempt posts d once and records the outcome; on failure d is scheduled
// again, or given up after the last retry.
func (s *Server) attempt(client *http.Client, d *delivery, url, secret string) {
	// The retry delay counts from the attempt, so that a slow receiver
	// does not stretch the schedule.
	at := s.wallNow()
	status, err := s.post(client, d, url, secret, at)
	q := s.hooks
	q.mu.Lock()
	defer q.mu.Unlock()
	d.attempts++
	q.counts.attempts++
	rec := attemptRecord{EventID: d.id, EventType: d.eventType, ConnectionID: d.connectionID, Attempt: d.attempts, At: at.UTC(), Status: status, Delivered: err == nil}
	if err != nil {
		rec.Error = err.Error()
	}
	q.recent = append(q.recent, rec)
	if len(q.recent) > recentHooks {
		q.recent = slices.Delete(q.recent, 0, len(q.recent)-recentHooks)
	}
	switch {
	case err == nil:
		q.counts.delivered++
	case d.attempts-1 < len(q.retry):
		d.due = at.Add(q.retry[d.attempts-1])
		q.schedule(d)
		s.log.Info("sandbox webhook failed; will retry", "event_type", d.eventType, "attempt", d.attempts, "err", err)
	default:
		q.counts.failed++
		s.log.Warn("sandbox webhook failed; giving up", "event_type", d.eventType, "attempts", d.attempts, "err", err)
	}
}

// post sends d, signed like Finch's: HMAC-SHA256 over
// "{Finch-Event-Id}.{Finch-Timestamp}.{body}" with the base64-decoded
// secret. It returns the receiver's status; any 2xx is a delivery.
func (s *Server) post(client *http.Client, d *delivery, url, secret string, at time.Time) (int, error) {
	key, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return 0, fmt.Errorf("webhook secret is not base64")
	}
	// The receiver checks Finch-Timestamp against its own clock (Finch's
	// SDKs allow 300 s), which POST /_sandbox/clock does not move: sign
	// with the wall clock, not the advanced one.
	ts := at.Unix()
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", d.id, ts)
	mac.Write(d.body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Finch-Event-Id", d.id)
	req.Header.Set("Finch-Timestamp", fmt.Sprint(ts))
	req.Header.Set("Finch-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	res, err := client.Do(req)
	if err != nil {
		return 0, errors.New("the receiver did not answer")
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return res.StatusCode, fmt.Errorf("the receiver answered %d", res.StatusCode)
	}
	return res.StatusCode, nil
}

// authMethod is account.updated's authentication_method: its type and
// the provider's benefits_support (benefits_support.go), as the SDK's
// AccountUpdateEvent has it.
func (c *connection) authMethod() map[string]any {
	return map[string]any{"type": c.authType(), "benefits_support": benefitsSupport(c.ProviderID)}
}

// emitStatus sends account.updated with the connection's status. s.mu
// must be held.
func (s *Server) emitStatus(c *connection) {
	s.emit(c, "account.updated", map[string]any{"status": c.Status, "authentication_method": c.authMethod()})
}

// emitEntityStatus sends account.updated for one entity of c. s.mu must
// be held.
func (s *Server) emitEntityStatus(c *connection, e entity) {
	s.emitEntity(c, e.ID, "account.updated", map[string]any{"status": e.Status, "authentication_method": c.authMethod()})
}

// sampleData is the data of an event of eventType for connection c that
// POST /_sandbox/webhooks/test sends when it is given none: the shapes of
// the SDK's resources/webhooks.ts, with ids of c's own data where it has
// them. s.mu must be held.
func (s *Server) sampleData(c *connection, eventType, base string) any {
	kind, _, _ := strings.Cut(eventType, ".")
	switch kind {
	case "account":
		return map[string]any{"status": c.Status, "authentication_method": c.authMethod()}
	case "company":
		return nil
	case "test":
		return map[string]any{}
	case "directory", "employment", "individual":
		return map[string]any{"individual_id": s.sampleIndividual(c)}
	case "payment", "pay_statement":
		id, date := s.samplePayment(c)
		if kind == "payment" {
			return map[string]any{"payment_id": id, "pay_date": date}
		}
		return map[string]any{"payment_id": id, "individual_id": s.sampleIndividual(c)}
	case "job":
		id := s.id()
		path := "/jobs/automated/"
		if strings.HasPrefix(eventType, "job.benefit_") {
			path = "/jobs/manual/"
		}
		return map[string]any{"job_id": id, "job_url": base + path + id}
	}
	return nil
}

func (s *Server) sampleIndividual(c *connection) string {
	if people := c.people(); len(people) > 0 {
		return people[0].ID
	}
	return s.id()
}

func (s *Server) samplePayment(c *connection) (string, string) {
	if pays := c.payments(s.now(), c.people()); len(pays) > 0 {
		id, _ := pays[len(pays)-1]["id"].(string)
		date, _ := pays[len(pays)-1]["pay_date"].(string)
		if id != "" && date != "" {
			return id, date
		}
	}
	return s.id(), s.now().UTC().Format("2006-01-02")
}

// SendWebhook queues an event of eventType for a connection, with data
// (nil: a sample of the event's shape, see POST /_sandbox/webhooks/test).
func (s *Server) SendWebhook(connectionID, eventType string, data any) error {
	if !slices.Contains(EventTypes, eventType) {
		return fmt.Errorf("sandbox: unknown webhook event type %q", eventType)
	}
	if !s.hooks.enabled.Load() {
		return errors.New("sandbox: no webhook URL is set")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.Connections[connectionID]
	if !ok {
		return errors.New("sandbox: no such connection")
	}
	if data == nil {
		data = s.sampleData(c, eventType, s.opts.PublicURL)
	}
	s.emit(c, eventType, data)
	return nil
}

// handleWebhookTest is POST /_sandbox/webhooks/test {connection_id,
// event_type, entity_id?, data?}: the sandbox sends that event now.
func (s *Server) handleWebhookTest(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ConnectionID string          `json:"connection_id"`
		EventType    string          `json:"event_type"`
		EntityID     string          `json:"entity_id"`
		Data         json.RawMessage `json:"data"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be {connection_id, event_type, entity_id?, data?}.")
		return
	}
	if !slices.Contains(EventTypes, req.EventType) {
		badRequest(w, "event_type must be one of: "+strings.Join(EventTypes, ", ")+".")
		return
	}
	if !s.hooks.enabled.Load() {
		writeError(w, http.StatusConflict, "conflict", "", "No webhook URL is set: start the sandbox with -webhook-url, or PUT /_sandbox/webhooks {\"url\", \"secret\"}.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.Connections[req.ConnectionID]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "No such connection.")
		return
	}
	if req.EntityID != "" && !slices.ContainsFunc(c.Entities, func(e entity) bool { return e.ID == req.EntityID }) {
		writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "No such entity on this connection.")
		return
	}
	var data any
	if len(req.Data) > 0 && string(req.Data) != "null" {
		data = req.Data
	} else {
		data = s.sampleData(c, req.EventType, s.publicURL(r))
	}
	s.emitEntity(c, req.EntityID, req.EventType, data)
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "queued", "event_type": req.EventType, "connection_id": c.ID})
}

// handleWebhooks is GET /_sandbox/webhooks: the delivery settings (never
// the secret), counts, what waits, and the latest attempts.
func (s *Server) handleWebhooks(w http.ResponseWriter, r *http.Request) {
	q := s.hooks
	q.mu.Lock()
	defer q.mu.Unlock()
	delays := make([]string, len(q.retry))
	for i, d := range q.retry {
		delays[i] = d.String()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url": redactURL(q.url), "secret_set": q.secret != "", "retry_delays": delays,
		"duplicate_every": q.dupEvery, "reorder_window": q.reorder,
		"events": q.counts.events, "attempts": q.counts.attempts, "delivered": q.counts.delivered,
		"failed": q.counts.failed, "dropped": q.counts.dropped, "duplicates": q.counts.duplicates,
		"pending": len(q.pending) + len(q.held), "recent": append([]attemptRecord{}, q.recent...),
		"event_types": EventTypes,
	})
}

// handleSetWebhooks is PUT /_sandbox/webhooks: any of url, secret,
// retry_delays (Go durations), duplicate_every and reorder_window.
func (s *Server) handleSetWebhooks(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL            *string   `json:"url"`
		Secret         *string   `json:"secret"`
		RetryDelays    *[]string `json:"retry_delays"`
		DuplicateEvery *int      `json:"duplicate_every"`
		ReorderWindow  *int      `json:"reorder_window"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be a JSON object: url, secret, retry_delays, duplicate_every, reorder_window.")
		return
	}
	var delays []time.Duration
	if req.RetryDelays != nil {
		delays = []time.Duration{}
		for _, t := range *req.RetryDelays {
			d, err := time.ParseDuration(t)
			if err != nil || d < 0 {
				badRequest(w, `retry_delays are non-negative durations such as "5s".`)
				return
			}
			delays = append(delays, d)
		}
	}
	if req.DuplicateEvery != nil && *req.DuplicateEvery < 0 || req.ReorderWindow != nil && *req.ReorderWindow < 0 {
		badRequest(w, "duplicate_every and reorder_window must not be negative (0: off).")
		return
	}
	q := s.hooks
	q.mu.Lock()
	url, secret := q.url, q.secret
	if req.URL != nil {
		url = *req.URL
	}
	if req.Secret != nil {
		secret = *req.Secret
	}
	if url != "" {
		if problem := webhookTargetProblem(url, secret); problem != "" {
			q.mu.Unlock()
			badRequest(w, problem)
			return
		}
	}
	q.url, q.secret = url, secret
	if delays != nil {
		q.retry = delays
	}
	if req.DuplicateEvery != nil {
		// The count starts again: the Nth event from now is the first duplicated.
		q.dupEvery, q.emitted = *req.DuplicateEvery, 0
	}
	if req.ReorderWindow != nil {
		q.reorder = *req.ReorderWindow
		if q.reorder <= 1 {
			q.flush(s.wallNow())
		}
	}
	q.enabled.Store(url != "")
	if url != "" {
		q.start(s)
	}
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
	s.handleWebhooks(w, r)
}

// redactURL is u without its user information and query, which may hold
// credentials of the receiver's.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || u == "" {
		return ""
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

// webhookTargetProblem says what is wrong with a webhook URL and secret.
func webhookTargetProblem(raw, secret string) string {
	if u, err := url.Parse(raw); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "url must be an absolute http or https URL."
	}
	key, err := base64.StdEncoding.DecodeString(secret)
	if err != nil || secret == "" || base64.StdEncoding.EncodeToString(key) != secret {
		return "secret must be standard base64, as Finch's are (the SDKs reject any other)."
	}
	return ""
}
