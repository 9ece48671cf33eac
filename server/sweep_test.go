package server_test

import (
	"slices"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/server"
)

// TestSweep marks a connection that Finch put in reauth, raises the event,
// records the check on the others, and keeps to its request budget.
func TestSweep(t *testing.T) {
	var log eventLog
	h := newHarnessWith(t, harnessOptions{}, func(c *server.Config) { c.Notify = log.notify })
	ids := []string{
		h.finish(h.client, h.connect(h.client, "sw-1", "authorized_simple")),
		h.finish(h.client, h.connect(h.client, "sw-2", "authorized_simple")),
		h.finish(h.client, h.connect(h.client, "sw-3", "authorized_simple")),
	}
	if err := h.sb.SetConnectionStatus(ids[1], "reauth"); err != nil {
		t.Fatal(err)
	}
	log.events = nil
	start := time.Now()
	res, err := h.srv.Sweep(t.Context(), server.SweepOptions{PerMinute: 600}) // one call per 100 ms
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 190*time.Millisecond {
		t.Errorf("3 introspections at 600/min took %v, want at least 200 ms: the budget was not kept", took)
	}
	if res.Checked != 3 || res.Changed != 1 {
		t.Errorf("Sweep = %+v, want 3 checked, 1 changed", res)
	}
	c, _ := h.store.Lookup(t.Context(), ids[1])
	if c.Status != finchconnect.StatusReauth || c.CheckedAt.IsZero() {
		t.Errorf("swept connection = status %q, checked %v; want reauth, checked", c.Status, c.CheckedAt)
	}
	if ok, _ := h.store.Lookup(t.Context(), ids[0]); ok.Status != finchconnect.StatusConnected || ok.CheckedAt.IsZero() {
		t.Errorf("healthy connection after the sweep = %q, checked %v", ok.Status, ok.CheckedAt)
	}
	if !slices.Equal(log.types(), []string{finchconnect.EventConnectionReauthRequired}) {
		t.Errorf("events = %v, want one reauth_required", log.types())
	}
}

// TestSweep_EventNotPublished: when the event announcing a new status
// cannot be published, the sweep records nothing and counts the
// connection as failed, so the next sweep sees the change again and
// announces it: no change goes unannounced.
func TestSweep_EventNotPublished(t *testing.T) {
	var log eventLog
	h := newHarnessWith(t, harnessOptions{}, func(c *server.Config) { c.Notify = log.notify })
	id := h.finish(h.client, h.connect(h.client, "sw-outbox", "authorized_simple"))
	if err := h.sb.SetConnectionStatus(id, "reauth"); err != nil {
		t.Fatal(err)
	}
	log.events = nil

	log.failNext(1)
	res, err := h.srv.Sweep(t.Context(), server.SweepOptions{PerMinute: 6000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || res.Changed != 0 {
		t.Errorf("sweep with the outbox down = %+v, want the connection failed, nothing changed", res)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusConnected {
		t.Errorf("status after an unannounced change = %q, want it unrecorded (connected)", c.Status)
	}

	res, err = h.srv.Sweep(t.Context(), server.SweepOptions{PerMinute: 6000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed != 1 {
		t.Errorf("next sweep = %+v, want the change found again", res)
	}
	if c, _ := h.store.Lookup(t.Context(), id); c.Status != finchconnect.StatusReauth {
		t.Errorf("status after the next sweep = %q, want reauth", c.Status)
	}
	if !slices.Equal(log.types(), []string{finchconnect.EventConnectionReauthRequired}) {
		t.Errorf("events = %v, want one reauth_required", log.types())
	}
}
