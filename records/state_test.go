package records

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/internal/clock"
)

// TestState: a connection's state says when its last committed run began,
// and whether a run is open; an abandoned run counts as neither.
func TestState(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t, 1)
	c := clock.NewFake(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	s := openStore(t, filepath.Join(t.TempDir(), "r.db"), kr, c)
	check := func(what string, want RunState) {
		t.Helper()
		got, err := s.State(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastCommitted.Equal(want.LastCommitted) || got.Open != want.Open {
			t.Errorf("%s: State = %+v, want %+v", what, got, want)
		}
	}
	check("never synced", RunState{})

	first := c.Now()
	syncAll(t, s, "c", []Item{person("a", `{}`)}, Individual)
	check("after a committed run", RunState{LastCommitted: first})

	c.Advance(time.Hour)
	y, _, err := s.Begin(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	check("with a run open", RunState{LastCommitted: first, Open: true})
	if err := y.Abandon(ctx); err != nil {
		t.Fatal(err)
	}
	check("after an abandoned run", RunState{LastCommitted: first})

	c.Advance(time.Hour)
	second := c.Now()
	syncAll(t, s, "c", []Item{person("a", `{"x":1}`)}, Individual)
	check("after a second committed run", RunState{LastCommitted: second})
}
