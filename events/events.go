// Package events delivers finchconnect's events (a connection created,
// needing re-authentication, disconnected, its data changed) to the app, at
// least once, through a durable outbox.
//
// Publish writes an event into the outbox, which lives in the vault's store
// (a tokenstore.Backend, through [KeySpace], under "outbox/"), so an event survives a restart and
// any replica can deliver it. A Deliverer posts each due event to the app's
// URL, signed like Finch's webhooks (package webhook, Finchconnect-*
// headers), and retries failures with exponential backoff and jitter.
// Replicas take a short lease on an event, and read it again under the
// lease, before sending it, so they do not routinely send it twice. An
// event the app has not accepted within 7 days of its publication is
// dropped, with an error logged. Events of one connection go out in the
// order they were published, as the publishing replicas' clocks timed it:
// an event is sent only once the connection's earlier events are delivered
// or dropped.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/webhook"
)

// KeySpace is the part of the vault's store that the outbox uses: the
// methods of [tokenstore.KeySpace] that it calls, and no more.
// Every tokenstore.Backend is one.
type KeySpace interface {
	Claim(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Load(ctx context.Context, key string) ([]byte, error)
	Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error
	Forget(ctx context.Context, key string) error
	Scan(ctx context.Context, prefix, after string, limit int) ([]tokenstore.Entry, error)
}

// The outbox's namespaces: outboxNS holds the events, under their
// publication time (20 digits of Unix nanoseconds) and the event's id, so
// that a scan reads them oldest first; leaseNS holds the lease of an event
// being sent, under the same id as the event's.
var (
	outboxNS = tokenstore.NS("outbox")
	leaseNS  = tokenstore.NS("outbox-lease")
)

const (
	// keep is how long after its publication an event is retried before it
	// is dropped undelivered.
	keep = 7 * 24 * time.Hour
	// grace is how long an entry outlives its deadline in the store, so
	// that a Deliverer, which logs the drop, removes it rather than the
	// store's silent expiry. A Deliverer polls every few seconds; an hour
	// is ample.
	grace = time.Hour
	// leaseTTL bounds how long a replica may hold an event; it must exceed
	// a send (the default client times out after 10 s).
	leaseTTL = 30 * time.Second
)

// record is an outbox entry.
type record struct {
	Event    finchconnect.Event `json:"event"`
	Attempts int                `json:"attempts"`
	NextAt   time.Time          `json:"next_at"`
	// Deadline is when the event stops being retried: its publication
	// plus keep. It is fixed at Publish, so that retries, which rewrite
	// the entry, do not extend it. Entries written before it existed
	// lack it; see decode.
	Deadline time.Time `json:"deadline,omitzero"`
	LastErr  string    `json:"last_error,omitempty"`
}

// decode reads the outbox entry under key. An entry written without a
// deadline gets the one it would have had: its publication time, which
// its key holds, plus keep; failing that, now plus keep, which the next
// retry stores.
func decode(key string, v []byte, now time.Time) (record, bool) {
	var rec record
	if json.Unmarshal(v, &rec) != nil {
		return record{}, false
	}
	if rec.Deadline.IsZero() {
		id, _ := outboxNS.ID(key)
		ns, _, _ := strings.Cut(id, "-")
		if n, err := strconv.ParseInt(ns, 10, 64); err == nil && n > 0 {
			rec.Deadline = time.Unix(0, n).Add(keep)
		} else {
			rec.Deadline = now.Add(keep)
		}
	}
	return rec, true
}

// Outbox is the durable queue of events. It is safe for concurrent use.
type Outbox struct {
	b   KeySpace
	now func() time.Time
}

// NewOutbox returns the outbox kept in b.
func NewOutbox(b KeySpace) *Outbox { return &Outbox{b: b, now: time.Now} }

// Publish adds e to the outbox.
func (o *Outbox) Publish(ctx context.Context, e finchconnect.Event) error {
	now := o.now()
	v, err := json.Marshal(record{Event: e, NextAt: now, Deadline: now.Add(keep)})
	if err != nil {
		return err
	}
	// Keys sort by publication time, so a scan delivers oldest first.
	key := outboxNS.Key(fmt.Sprintf("%020d-%s", now.UnixNano(), e.ID))
	if err := o.b.Claim(ctx, key, v, keep+grace); err != nil {
		return fmt.Errorf("events: publish %s: %w", e.ID, err)
	}
	return nil
}

// Depth is the number of events waiting in the outbox.
func (o *Outbox) Depth(ctx context.Context) (int, error) {
	n, after := 0, ""
	for {
		es, err := outboxNS.Scan(ctx, o.b, after, 500)
		if err != nil {
			return n, err
		}
		n += len(es)
		if len(es) < 500 {
			return n, nil
		}
		after = es[len(es)-1].Key
	}
}

// Deliverer posts the outbox's events to the app. Set URL and Secret; other
// fields have defaults.
type Deliverer struct {
	Outbox *Outbox
	URL    string
	// Secret signs each delivery (standard base64, like Finch's webhook
	// secrets); the app verifies with package webhook or Finch's SDKs.
	Secret     finchconnect.Secret
	Client     *http.Client  // default: 10 s timeout
	MinBackoff time.Duration // default 1 s
	MaxBackoff time.Duration // default 10 min
	Poll       time.Duration // how often to look for due events; default 1 s
	Logger     *slog.Logger
	// Delivered, when set, is called after each successful delivery.
	Delivered func(finchconnect.Event)
	// Dropped, when set, is called for each event dropped undelivered
	// because it was not delivered within 7 days of its publication.
	Dropped func(finchconnect.Event)
}

func (d *Deliverer) defaults() {
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if d.MinBackoff <= 0 {
		d.MinBackoff = time.Second
	}
	if d.MaxBackoff <= 0 {
		d.MaxBackoff = 10 * time.Minute
	}
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run delivers due events until ctx is done.
func (d *Deliverer) Run(ctx context.Context) {
	d.defaults()
	t := time.NewTicker(d.Poll)
	defer t.Stop()
	for {
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.Logger.Warn("deliver events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue makes one pass over the outbox and returns how many events it
// delivered.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	d.defaults()
	delivered, after := 0, ""
	blocked := map[string]bool{} // connections with an earlier event not yet out
	for {
		es, err := outboxNS.Scan(ctx, d.Outbox.b, after, 200)
		if err != nil {
			return delivered, err
		}
		for _, e := range es {
			rec, ok := decode(e.Key, e.Value, d.Outbox.now())
			if !ok {
				continue
			}
			conn := rec.Event.ConnectionID
			// The page may be stale (another replica may have delivered or
			// retried since), but only an event it shows as actionable
			// needs the lease and a fresh read.
			if next(rec, d.Outbox.now(), blocked[conn]) == wait {
				blocked[conn] = true
				continue
			}
			out, err := d.deliver(ctx, e, blocked[conn])
			if err != nil {
				return delivered, err
			}
			switch out {
			case sent:
				delivered++
			case held:
				blocked[conn] = true
			case gone:
				// Out of the outbox: the connection's later events may go.
			}
		}
		if len(es) < 200 {
			return delivered, nil
		}
		after = es[len(es)-1].Key
	}
}

// action is what an outbox entry calls for now.
type action int

const (
	wait action = iota // not due, or behind an earlier event of its connection
	send
	drop // past its deadline and not to be sent now
)

// next says what rec calls for at now; blocked is whether an earlier
// event of its connection is still waiting.
func next(rec record, now time.Time, blocked bool) action {
	due := !blocked && !now.Before(rec.NextAt)
	switch {
	case due:
		return send
	case !now.Before(rec.Deadline):
		return drop
	default:
		return wait
	}
}

// outcome is how deliver left an event.
type outcome int

const (
	held outcome = iota // still in the outbox; its connection must wait
	sent                // delivered and removed
	gone                // removed undelivered, here or by another replica
)

// deliver acts on the outbox entry e under a lease: it sends the event,
// settles or reschedules the entry, or drops it once past its deadline.
//
// Every change to an entry is made under its lease, so the entry read once
// the lease is held is current; e, from a page read earlier, may not be. It
// is read again lest the event be sent twice (another replica delivered it
// and released the lease) or early (another replica failed and stored a
// backoff).
func (d *Deliverer) deliver(ctx context.Context, e tokenstore.Entry, blocked bool) (outcome, error) {
	id, _ := outboxNS.ID(e.Key)
	lease := leaseNS.Key(id)
	if err := d.Outbox.b.Claim(ctx, lease, []byte("1"), leaseTTL); err != nil {
		if errors.Is(err, finchconnect.ErrConflict) {
			return held, nil // another replica is sending it
		}
		return held, err
	}
	defer d.Outbox.b.Forget(context.WithoutCancel(ctx), lease)

	cur, err := d.Outbox.b.Load(ctx, e.Key)
	if errors.Is(err, finchconnect.ErrNotFound) {
		return gone, nil // delivered or dropped by another replica
	}
	if err != nil {
		return held, err
	}
	rec, ok := decode(e.Key, cur, d.Outbox.now())
	if !ok {
		return gone, nil // unreadable: DeliverDue skips it too
	}
	switch next(rec, d.Outbox.now(), blocked) {
	case wait:
		return held, nil
	case drop:
		return gone, d.drop(ctx, e.Key, rec)
	}

	sendErr := d.send(ctx, rec.Event)
	if sendErr == nil {
		if err := d.Outbox.b.Forget(ctx, e.Key); err != nil {
			return held, err
		}
		if d.Delivered != nil {
			d.Delivered(rec.Event)
		}
		return sent, nil
	}
	rec.Attempts++
	rec.LastErr = sendErr.Error()
	now := d.Outbox.now()
	if !now.Before(rec.Deadline) {
		return gone, d.drop(ctx, e.Key, rec)
	}
	// The last retry falls on the deadline, not after it.
	rec.NextAt = now.Add(d.backoff(rec.Attempts))
	if rec.NextAt.After(rec.Deadline) {
		rec.NextAt = rec.Deadline
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return held, err
	}
	// The entry keeps its deadline: a retry does not buy it more time.
	switch err := d.Outbox.b.Swap(ctx, e.Key, cur, v, rec.Deadline.Add(grace).Sub(now)); {
	case errors.Is(err, finchconnect.ErrNotFound):
		return gone, nil // it expired meanwhile
	case errors.Is(err, finchconnect.ErrConflict):
		return held, nil // changed under an expired lease; the next pass sees it
	case err != nil:
		return held, err
	}
	d.Logger.Info("event delivery failed; will retry", "event_id", rec.Event.ID, "attempts", rec.Attempts, "err", sendErr, "next_at", rec.NextAt)
	return held, nil
}

// drop removes an event that was not delivered by its deadline, so that
// the later events of its connection, which wait behind it, can go out.
func (d *Deliverer) drop(ctx context.Context, key string, rec record) error {
	if err := d.Outbox.b.Forget(ctx, key); err != nil {
		return err
	}
	d.Logger.Error("event dropped: not delivered within its retention", "event_id", rec.Event.ID, "type", rec.Event.Type,
		"connection_id", rec.Event.ConnectionID, "attempts", rec.Attempts, "last_error", rec.LastErr, "deadline", rec.Deadline)
	if d.Dropped != nil {
		d.Dropped(rec.Event)
	}
	return nil
}

// backoff is MinBackoff·2^(n-1), capped at MaxBackoff, less up to a
// quarter of jitter so that many events do not retry in step.
func (d *Deliverer) backoff(n int) time.Duration {
	b := d.MinBackoff << min(n-1, 30)
	if b <= 0 || b > d.MaxBackoff {
		b = d.MaxBackoff
	}
	return b - time.Duration(rand.Float64()*0.25*float64(b))
}

func (d *Deliverer) send(ctx context.Context, e finchconnect.Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("events: events URL %s: %v", redactURL(d.URL), urlCause(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "finchconnect-events")
	if err := webhook.SetHeaders(req.Header, webhook.Finchconnect, d.Secret.Reveal(), e.ID, time.Now(), body); err != nil {
		return err
	}
	res, err := d.Client.Do(req)
	if err != nil {
		return fmt.Errorf("events: post to %s: %v", redactURL(d.URL), urlCause(err))
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("events: the app answered %d", res.StatusCode)
	}
	return nil
}

// redactURL is raw without its user info, query and fragment, any of
// which may hold a secret (a ?token=… for the app to check), for error
// messages, which are stored in the outbox and logged. It does not need
// raw to parse, so that a malformed URL's error does not leak either.
func redactURL(raw string) string {
	s, _, _ := strings.Cut(raw, "#")
	s, _, _ = strings.Cut(s, "?")
	scheme, rest, ok := strings.Cut(s, "://")
	if ok {
		scheme += "://"
	} else {
		scheme, rest = "", s
	}
	// As url.Parse reads it: the authority ends at the first slash, and
	// the user info at the authority's last @.
	auth, path, slash := strings.Cut(rest, "/")
	if i := strings.LastIndex(auth, "@"); i >= 0 {
		auth = auth[i+1:]
	}
	if slash {
		path = "/" + path
	}
	return scheme + auth + path
}

// urlCause is err without the *url.Error around it, which names the full
// URL (it hides a password, but not the query). Callers format it with %v:
// the error ends up as text in the outbox entry, and nobody branches on it.
func urlCause(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
