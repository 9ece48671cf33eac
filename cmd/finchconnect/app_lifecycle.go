package main

import (
	"context"
	"flag"
	"net/http"
	"time"

	"github.com/finchconnect/finchconnect"
)

// lifecycleFlags are the settings of webhooks, events, sweeps and metrics.
// TODO(issue 7): webhooks in, events out, health sweeps, metrics, audit.
type lifecycleFlags struct{}

func registerLifecycleFlags(fs *flag.FlagSet) *lifecycleFlags { return &lifecycleFlags{} }

// lifecycle runs the connection-lifecycle machinery beside the server.
type lifecycle struct{}

func startLifecycle(ctx context.Context, f *lifecycleFlags, d *appDeps) (*lifecycle, error) {
	return &lifecycle{}, nil
}

func (l *lifecycle) notify(ctx context.Context, e finchconnect.Event)      {}
func (l *lifecycle) audit(ctx context.Context, r finchconnect.AuditRecord) {}
func (l *lifecycle) observe(outcome string, d time.Duration)               {}
func (l *lifecycle) mount(mux *http.ServeMux)                              {}
func (l *lifecycle) stop()                                                 {}
