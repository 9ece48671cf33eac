package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/internal/testenv"
)

// ttyBuffer is a buffer that says it is a terminal.
type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) IsTerminal() bool { return true }

// TestProgress_LinesAndBar: off a terminal, plain lines with count, total,
// rate and time left, at most every two seconds; on a terminal, a bar
// redrawn in place. An unknown total is not printed as "1/0".
func TestProgress_LinesAndBar(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	var plain bytes.Buffer
	p := newProgress(&plain, "connections")
	p.start, p.now = start, func() time.Time { return now }
	for i, step := range []int{0, 100, 200, 300, 400} {
		now = start.Add(time.Duration(i) * time.Second)
		p.update(step, 400)
	}
	p.finish()
	want := "connections: 0/400 (0%)\n" +
		"connections: 200/400 (50%), 100/s, 2s left\n" +
		"connections: 400/400 (100%), 100/s, done in 4s\n"
	if plain.String() != want {
		t.Errorf("plain progress:\n%s\nwant:\n%s", plain.String(), want)
	}

	var tty ttyBuffer
	p = newProgress(&tty, "re-sealing")
	p.start, p.now = start, func() time.Time { return now }
	now = start.Add(time.Second)
	p.update(10, 40)
	p.finish()
	if got := tty.String(); !strings.HasPrefix(got, "\r\033[Kre-sealing [") || !strings.Contains(got, "10/40 (25%), 10/s, 3s left") || !strings.HasSuffix(got, "\n") {
		t.Errorf("terminal progress = %q, want a redrawn bar with count, total, rate and time left", got)
	}

	// The first records, a millisecond in: no rate, no time left, yet;
	// a fast finish says how long it took, not "0s".
	plain.Reset()
	p = newProgress(&plain, "verify")
	p.start, p.now = start, func() time.Time { return now }
	now = start.Add(time.Millisecond)
	p.update(1, 5)
	now = start.Add(1500 * time.Microsecond)
	p.update(5, 5)
	now = start.Add(2 * time.Second)
	p = newProgress(&plain, "entries")
	p.start, p.now = start, func() time.Time { return now }
	now = start.Add(300 * time.Microsecond)
	p.update(5, 5)
	if got, want := plain.String(), "verify: 1/5 (20%)\nverify: 5/5 (100%), done in 2ms\nentries: 5/5 (100%), done in <1ms\n"; got != want {
		t.Errorf("progress within the first second:\n%s\nwant:\n%s", got, want)
	}

	plain.Reset()
	p = newProgress(&plain, "entries")
	p.start, p.now = start, func() time.Time { return start.Add(time.Second) }
	p.update(5, 0)
	if got := plain.String(); got != "entries: 5, 5/s\n" {
		t.Errorf("progress with an unknown total = %q", got)
	}
}

// TestRunGroup_StopsInReverseOrder: the group stops its actors one at a
// time, last added first, each after the one added after it has returned;
// an actor's failure stops the group and is returned.
func TestRunGroup_StopsInReverseOrder(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	loop := func(name string) func(context.Context) error {
		return func(ctx context.Context) error { <-ctx.Done(); note(name + " returned"); return nil }
	}
	var g runGroup
	g.add("loops", loop("loops"), nil)
	g.add("sweeps", loop("sweeps"), nil)
	served := make(chan struct{})
	g.add("http", func(ctx context.Context) error { <-served; note("http returned"); return nil },
		func() error { note("http stop"); close(served); return nil })
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := g.run(ctx); err != nil {
		t.Fatalf("run = %v", err)
	}
	want := []string{"http stop", "http returned", "sweeps returned", "loops returned"}
	if !slices.Equal(order, want) {
		t.Errorf("stop order = %v, want %v", order, want)
	}

	var g2 runGroup
	boom := errors.New("boom")
	g2.add("loops", loop("loops"), nil)
	g2.add("failing", func(context.Context) error { return boom }, nil)
	if err := g2.run(t.Context()); !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
		t.Errorf("run with a failing actor = %v, want its error, named", err)
	}
}

// TestStore_UnreachableIsOneSentence: a store that cannot be reached is
// one sentence that names the store and the cause in an operator's terms
// (refused at which address, which database is missing), with no
// go-redis log lines before it and none of the drivers' layers ("ping:",
// "failed to connect to `user=…`", "dial error: dial tcp", SQLSTATE).
func TestStore_UnreachableIsOneSentence(t *testing.T) {
	t.Parallel()
	type tc struct{ store, want string }
	cases := []tc{
		{"redis://127.0.0.1:1/0", "cannot open the store redis://127.0.0.1:1/0: nothing accepts connections at 127.0.0.1:1 (connection refused)."},
		{"postgres://postgres@127.0.0.1:1/test?sslmode=disable", "nothing accepts connections at 127.0.0.1:1 (connection refused)."},
	}
	if os.Getenv("FINCHCONNECT_TEST_POSTGRES_URL") != "" || os.Getenv("CI") == "true" {
		u, err := url.Parse(testenv.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/no_such_database_17"
		cases = append(cases, tc{u.String(), `the server says: database "no_such_database_17" does not exist.`})
	}
	for _, c := range cases {
		_, stderr, err := runCLI(t, map[string]string{"FINCHCONNECT_KEYS": "1:" + strings.Repeat("A", 43) + "="}, nil,
			"token", "list", "-store", c.store)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("token list -store %s: %v; want %q", c.store, err, c.want)
			continue
		}
		for _, noise := range []string{"redis: ", "ping", "dial tcp", "failed to connect", "SQLSTATE", "\n"} {
			if strings.Contains(err.Error(), noise) {
				t.Errorf("token list -store %s: %v; has driver noise %q", c.store, err, noise)
			}
		}
		if stderr != "" {
			t.Errorf("stderr = %q, want nothing (no driver noise)", stderr)
		}
	}
}
