package main

import (
	"context"
	"flag"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/events"
	"github.com/finchconnect/finchconnect/metrics"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/webhook"
)

// lifecycleFlags are the settings of webhooks in, events out, health sweeps
// and metrics.
type lifecycleFlags struct {
	webhookSecret  string
	eventsURL      string
	eventsSecret   string
	sweepInterval  time.Duration
	sweepPerMinute float64
}

func registerLifecycleFlags(fs *flag.FlagSet) *lifecycleFlags {
	f := &lifecycleFlags{}
	fs.StringVar(&f.webhookSecret, "webhook-secret", "", "Finch webhook secret(s), comma-separated during a rotation; enables POST /webhooks/finch")
	fs.StringVar(&f.eventsURL, "events-url", "", "the app's URL that receives finchconnect's signed events (see docs/events.md)")
	fs.StringVar(&f.eventsSecret, "events-secret", "", "base64 secret that signs events to -events-url")
	fs.DurationVar(&f.sweepInterval, "sweep-interval", time.Hour, "how often to introspect every connection (±20% jitter; 0 disables)")
	fs.Float64Var(&f.sweepPerMinute, "sweep-per-minute", 10, "request budget of a sweep: /introspect calls per minute at most")
	return f
}

func (f *lifecycleFlags) validate() error {
	if f.eventsURL != "" {
		if f.eventsSecret == "" {
			return errorf("-events-url needs -events-secret (FINCHCONNECT_EVENTS_SECRET) to sign events")
		}
		if _, err := webhook.Sign(f.eventsSecret, "x", 0, nil); err != nil {
			return errorf("-events-secret must be standard base64 (e.g. `openssl rand -base64 32`)")
		}
	}
	for _, s := range f.webhookSecrets() {
		if _, err := webhook.Sign(s.Reveal(), "x", 0, nil); err != nil {
			return errorf("-webhook-secret (FINCH_WEBHOOK_SECRET) must be the base64 secret Finch's dashboard shows")
		}
	}
	return nil
}

func (f *lifecycleFlags) webhookSecrets() []finchconnect.Secret {
	var secrets []finchconnect.Secret
	for _, s := range splitList(f.webhookSecret) {
		secrets = append(secrets, finchconnect.NewSecret(s))
	}
	return secrets
}

// lifecycle runs the connection-lifecycle machinery beside the server: the
// outbox and its deliverer, the audit trail, health sweeps, metrics.
type lifecycle struct {
	f *lifecycleFlags
	// audits queue for the audit writer, which writes them in batches, so
	// a request does not wait for its record's store write; stop drains
	// the queue.
	auditQ  *audit.Queue
	d       *appDeps
	outbox  *events.Outbox
	cancel  context.CancelFunc
	ctx     context.Context
	wg      sync.WaitGroup
	metrics *metrics.Metrics
}

func startLifecycle(ctx context.Context, f *lifecycleFlags, d *appDeps) (*lifecycle, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	l := &lifecycle{f: f, d: d, outbox: events.NewOutbox(d.backend), metrics: d.metrics}
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.auditQ = audit.NewQueue(audit.New(d.backend), 4096, func(err error, rs []finchconnect.AuditRecord) {
		d.logger.Error("record the audit trail", "records", len(rs), "action", rs[0].Action, "connection_id", rs[0].ConnectionID, "err", err)
	})
	l.metrics.Gauge("finchconnect_outbox_depth", "Events waiting in the outbox for the app.", func() float64 {
		n, _ := l.outbox.Depth(context.Background())
		return float64(n)
	})
	if f.eventsURL != "" {
		dl := &events.Deliverer{Outbox: l.outbox, URL: f.eventsURL, Secret: finchconnect.NewSecret(f.eventsSecret), Logger: d.logger.With("component", "events"),
			Delivered: func(finchconnect.Event) { l.metrics.EventDelivered() },
			Dropped:   func(finchconnect.Event) { l.metrics.EventDropped() }}
		l.wg.Go(func() { dl.Run(l.ctx) })
	}
	return l, nil
}

// startSweeps introspects every connection every -sweep-interval, with
// jitter so that replicas and restarts do not sweep in step.
func (l *lifecycle) startSweeps(srv *server.Server) {
	if l.f.sweepInterval <= 0 {
		return
	}
	l.wg.Go(func() {
		for {
			wait := time.Duration(float64(l.f.sweepInterval) * (0.8 + 0.4*rand.Float64()))
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(wait):
			}
			res, err := srv.Sweep(l.ctx, server.SweepOptions{PerMinute: l.f.sweepPerMinute})
			l.metrics.Sweep(res.Checked, res.Changed, err == nil)
			if err != nil && l.ctx.Err() == nil {
				l.d.logger.Warn("health sweep", "err", err)
			} else if err == nil {
				l.d.logger.Info("health sweep", "checked", res.Checked, "changed", res.Changed, "failed", res.Failed)
			}
		}
	})
}

// notify queues an event for the app. Without -events-url events are only
// logged: an outbox nobody drains would grow without end. A failure to
// queue is returned to the server, which fails the request that saw the
// change where it can (server.Config.Notify) and logs it otherwise.
func (l *lifecycle) notify(ctx context.Context, e finchconnect.Event) error {
	if l.f.eventsURL == "" {
		l.d.logger.Debug("event", "type", e.Type, "connection_id", e.ConnectionID)
		return nil
	}
	return l.outbox.Publish(context.WithoutCancel(ctx), e)
}

// audit queues a record for the audit writer. When the queue is full the
// record is written in the caller's time: records are never dropped.
func (l *lifecycle) audit(ctx context.Context, r finchconnect.AuditRecord) { l.auditQ.Add(ctx, r) }

func (l *lifecycle) observe(outcome string, d time.Duration) { l.metrics.Callback(outcome, d) }

func (l *lifecycle) mount(mux *http.ServeMux) { mux.Handle("GET /metrics", l.metrics.Handler()) }

// stop ends the background work and waits for it; queued audit records
// are written first. Call it after the server has stopped taking requests.
func (l *lifecycle) stop() {
	l.cancel()
	l.wg.Wait() // sweeps, which audit, are over
	l.auditQ.Close()
}

type cliError string

func (e cliError) Error() string { return string(e) }

func errorf(s string) error { return cliError(strings.TrimSpace(s)) }
