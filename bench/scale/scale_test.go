package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs the whole scale run on a tiny vault: seed, both lookup
// measurements, the rewrap and its check.
func TestRunSmall(t *testing.T) {
	var out, log bytes.Buffer
	args := []string{"-dir", t.TempDir(), "-small", "20", "-n", "120", "-lookups", "50", "-rounds", "3", "-warmup", "10", "-writers", "8", "-progress", "10ms"}
	if err := run(context.Background(), args, &out, &log); err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log.String())
	}
	for _, want := range []string{
		"| `Store.Get` (read + decrypt) | 20 |",
		"| `Store.Get` (read + decrypt) | 120 |",
		"| `Store.Lookup` (metadata, no decrypt) | 20 |",
		"| `Store.Lookup` (metadata, no decrypt) | 120 |",
		"p99 at 120 over 20 (target ≤ 2×), median of rounds: `Store.Get` ",
		"Re-encrypting all 120 connections under a new key",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(log.String(), "lookups: round 3/3") {
		t.Errorf("progress lacks the last lookup round:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "seed: 120 stored") {
		t.Errorf("progress lacks the final count:\n%s", log.String())
	}
}

func TestRunRejectsBadSizes(t *testing.T) {
	for _, args := range [][]string{{"-small", "10", "-n", "5"}, {"-lookups", "0"}, {"-rounds", "0"}, {"-warmup", "-1"}, {"-writers", "0"}} {
		if err := run(context.Background(), append(args, "-dir", t.TempDir()), new(bytes.Buffer), new(bytes.Buffer)); err == nil {
			t.Errorf("run(%q): got no error, want one", args)
		}
	}
}

func TestConnectionID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := range 10000 {
		id := connectionID(i)
		if !uuid.MatchString(id) {
			t.Fatalf("connectionID(%d) = %q, want a UUID's shape", i, id)
		}
		if seen[id] {
			t.Fatalf("connectionID(%d) = %q repeats an earlier id", i, id)
		}
		seen[id] = true
	}
	if a, b := connectionID(7), connectionID(7); a != b {
		t.Error("connectionID is not stable")
	}
}

func TestSummarize(t *testing.T) {
	d := make([]time.Duration, 200)
	for i := range d {
		d[len(d)-1-i] = time.Duration(i+1) * time.Microsecond
	}
	got := summarize(d)
	want := latencies{p50: 100 * time.Microsecond, p99: 198 * time.Microsecond, max: 200 * time.Microsecond}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
}

// The per-round p99 is the median of the rounds' p99s, so that one
// disturbed round does not decide it; the pooled figures use every sample.
func TestSamplesStats(t *testing.T) {
	round := func(base time.Duration) []time.Duration {
		d := make([]time.Duration, 100)
		for i := range d {
			d[i] = base + time.Duration(i)*time.Microsecond
		}
		return d
	}
	s := samples{rounds: [][]time.Duration{round(0), round(1000 * time.Microsecond), round(10 * time.Microsecond)}}
	got := s.stats()
	if got.roundP99 != 108*time.Microsecond || got.minRoundP99 != 98*time.Microsecond || got.maxRoundP99 != 1098*time.Microsecond {
		t.Errorf("round p99s = median %v, range %v–%v; want 108µs, 98µs–1.098ms", got.roundP99, got.minRoundP99, got.maxRoundP99)
	}
	if got.max != 1099*time.Microsecond || got.p99 != 1096*time.Microsecond {
		t.Errorf("pooled = %+v, want max 1.099ms, p99 1.096ms", got.latencies)
	}
}
