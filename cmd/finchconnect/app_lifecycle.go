package main

import (
	"context"
	"flag"
	"math/rand/v2"
	"net/http"
	"strings"
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

// lifecycle is the connection-lifecycle machinery beside the server: the
// outbox and its deliverer, the audit trail, health sweeps, metrics. Its
// loops run in serve's run group.
type lifecycle struct {
	f *lifecycleFlags
	// audits queue for the audit writer, which writes them in batches, so
	// a request does not wait for its record's store write; close drains
	// the queue.
	auditQ  *audit.Queue
	d       *appDeps
	outbox  *events.Outbox
	metrics *metrics.Metrics
}

// newLifecycle builds the lifecycle of validated flags f.
func newLifecycle(f *lifecycleFlags, d *appDeps) *lifecycle {
	l := &lifecycle{f: f, d: d, outbox: events.NewOutbox(d.backend), metrics: d.metrics}
	l.auditQ = audit.NewQueue(audit.New(d.backend), 4096, func(err error, rs []finchconnect.AuditRecord) {
		d.logger.Error("record the audit trail", "records", len(rs), "action", rs[0].Action, "connection_id", rs[0].ConnectionID, "err", err)
	})
	l.metrics.Gauge("finchconnect_outbox_depth", "Events waiting in the outbox for the app.", func() float64 {
		n, _ := l.outbox.Depth(context.Background())
		return float64(n)
	})
	return l
}

// addTo adds the event deliverer and the health sweeps to g.
func (l *lifecycle) addTo(g *runGroup, srv *server.Server) {
	if l.f.eventsURL != "" {
		dl := &events.Deliverer{Outbox: l.outbox, URL: l.f.eventsURL, Secret: finchconnect.NewSecret(l.f.eventsSecret), Logger: l.d.logger.With("component", "events"),
			Delivered: func(finchconnect.Event) { l.metrics.EventDelivered() },
			Dropped:   func(finchconnect.Event) { l.metrics.EventDropped() }}
		g.add("deliver events", func(ctx context.Context) error { dl.Run(ctx); return nil }, nil)
	}
	if l.f.sweepInterval > 0 {
		g.add("health sweeps", func(ctx context.Context) error { l.sweepLoop(ctx, srv); return nil }, nil)
	}
}

// sweepLoop introspects every connection every -sweep-interval, with
// jitter so that replicas and restarts do not sweep in step.
func (l *lifecycle) sweepLoop(ctx context.Context, srv *server.Server) {
	for {
		wait := time.Duration(float64(l.f.sweepInterval) * (0.8 + 0.4*rand.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		res, err := srv.Sweep(ctx, server.SweepOptions{PerMinute: l.f.sweepPerMinute})
		l.metrics.Sweep(res.Checked, res.Changed, err == nil)
		if err != nil && ctx.Err() == nil {
			l.d.logger.Warn("health sweep", "err", err)
		} else if err == nil {
			l.d.logger.Info("health sweep", "checked", res.Checked, "changed", res.Changed, "failed", res.Failed)
		}
	}
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

// close writes the queued audit records. Call it once the server and the
// sweeps, which audit, have stopped.
func (l *lifecycle) close() { l.auditQ.Close() }

type cliError string

func (e cliError) Error() string { return string(e) }

func errorf(s string) error { return cliError(strings.TrimSpace(s)) }
