// Package events delivers finchconnect's events (a connection created,
// needing re-authentication, disconnected, its data changed) to the app, at
// least once, through a durable outbox.
//
// Publish writes an event into the outbox, which lives in the vault's store
// (tokenstore.Backend, under "outbox/"), so an event survives a restart and
// any replica can deliver it. A Deliverer posts each due event to the app's
// URL, signed like Finch's webhooks (package webhook, Finchconnect-*
// headers), and retries failures with exponential backoff and jitter.
// Replicas take a short lease on an event before sending it, so they do not
// routinely send it twice; events of one connection go out in the order
// they were published.
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
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/webhook"
)

const (
	prefix      = "outbox/"
	leasePrefix = "outbox-lease/"
	// keep is how long an undelivered event waits before it is dropped.
	keep = 7 * 24 * time.Hour
)

// record is an outbox entry.
type record struct {
	Event    finchconnect.Event `json:"event"`
	Attempts int                `json:"attempts"`
	NextAt   time.Time          `json:"next_at"`
	LastErr  string             `json:"last_error,omitempty"`
}

// Outbox is the durable queue of events. It is safe for concurrent use.
type Outbox struct {
	b   tokenstore.Backend
	now func() time.Time
}

// NewOutbox returns the outbox kept in b.
func NewOutbox(b tokenstore.Backend) *Outbox { return &Outbox{b: b, now: time.Now} }

// Publish adds e to the outbox.
func (o *Outbox) Publish(ctx context.Context, e finchconnect.Event) error {
	v, err := json.Marshal(record{Event: e, NextAt: o.now()})
	if err != nil {
		return err
	}
	// Keys sort by publication time, so a scan delivers oldest first.
	key := fmt.Sprintf("%s%020d-%s", prefix, o.now().UnixNano(), e.ID)
	if err := o.b.Claim(ctx, key, v, keep); err != nil {
		return fmt.Errorf("events: publish %s: %w", e.ID, err)
	}
	return nil
}

// Depth is the number of events waiting in the outbox.
func (o *Outbox) Depth(ctx context.Context) (int, error) {
	n, after := 0, ""
	for {
		es, err := o.b.Scan(ctx, prefix, after, 500)
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
		es, err := d.Outbox.b.Scan(ctx, prefix, after, 200)
		if err != nil {
			return delivered, err
		}
		for _, e := range es {
			var rec record
			if json.Unmarshal(e.Value, &rec) != nil {
				continue
			}
			conn := rec.Event.ConnectionID
			if blocked[conn] || d.Outbox.now().Before(rec.NextAt) {
				blocked[conn] = true
				continue
			}
			ok, err := d.deliver(ctx, e, rec)
			if err != nil {
				return delivered, err
			}
			if ok {
				delivered++
			} else {
				blocked[conn] = true
			}
		}
		if len(es) < 200 {
			return delivered, nil
		}
		after = es[len(es)-1].Key
	}
}

// deliver sends one event under a lease and settles its entry.
func (d *Deliverer) deliver(ctx context.Context, e tokenstore.Entry, rec record) (bool, error) {
	lease := leasePrefix + strings.TrimPrefix(e.Key, prefix)
	if err := d.Outbox.b.Claim(ctx, lease, []byte("1"), 30*time.Second); err != nil {
		if errors.Is(err, finchconnect.ErrConflict) {
			return false, nil // another replica is sending it
		}
		return false, err
	}
	defer d.Outbox.b.Forget(context.WithoutCancel(ctx), lease)

	sendErr := d.send(ctx, rec.Event)
	if sendErr == nil {
		if err := d.Outbox.b.Forget(ctx, e.Key); err != nil {
			return false, err
		}
		if d.Delivered != nil {
			d.Delivered(rec.Event)
		}
		return true, nil
	}
	next := rec
	next.Attempts++
	next.LastErr = sendErr.Error()
	next.NextAt = d.Outbox.now().Add(d.backoff(next.Attempts))
	v, _ := json.Marshal(next)
	if err := d.Outbox.b.Swap(ctx, e.Key, e.Value, v, keep); err != nil && !errors.Is(err, finchconnect.ErrConflict) {
		return false, err
	}
	d.Logger.Info("event delivery failed; will retry", "event_id", rec.Event.ID, "attempts", next.Attempts, "err", sendErr, "next_at", next.NextAt)
	return false, nil
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
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "finchconnect-events")
	if err := webhook.SetHeaders(req.Header, webhook.Finchconnect, d.Secret.Reveal(), e.ID, time.Now(), body); err != nil {
		return err
	}
	res, err := d.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post event: %v", err)
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("the app answered %d", res.StatusCode)
	}
	return nil
}
