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
	args := []string{"-dir", t.TempDir(), "-small", "20", "-n", "120", "-lookups", "50", "-writers", "8", "-progress", "10ms"}
	if err := run(context.Background(), args, &out, &log); err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log.String())
	}
	for _, want := range []string{
		"| `Store.Get` (read + decrypt) | 20 |",
		"| `Store.Get` (read + decrypt) | 120 |",
		"| `Store.Lookup` (metadata, no decrypt) | 120 |",
		"Re-encrypting all 120 connections under a new key",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(log.String(), "seed: 120 stored") {
		t.Errorf("progress lacks the final count:\n%s", log.String())
	}
}

func TestRunRejectsBadSizes(t *testing.T) {
	for _, args := range [][]string{{"-small", "10", "-n", "5"}, {"-lookups", "0"}, {"-writers", "0"}} {
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
	if connectionID(7) != connectionID(7) {
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
