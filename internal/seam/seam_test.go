package seam

import (
	"bytes"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/internal/clock"
)

func TestWithDefaults(t *testing.T) {
	d := Set{}.WithDefaults()
	if d.Clock == nil || d.Rand == nil || d.Failpoint == nil {
		t.Fatalf("defaults left a nil seam: %+v", d)
	}
	d.Failpoint("anything") // the default must be callable
	var b [8]byte
	if _, err := d.Rand.Read(b[:]); err != nil {
		t.Fatalf("default randomness: %v", err)
	}

	fake := clock.NewFake(time.Unix(1e9, 0))
	r := bytes.NewReader([]byte("x"))
	called := ""
	kept := Set{Clock: fake, Rand: r, Failpoint: func(n string) { called = n }}.WithDefaults()
	if kept.Clock != clock.Clock(fake) || kept.Rand != r {
		t.Fatal("WithDefaults replaced a seam that was set")
	}
	kept.Failpoint("here")
	if called != "here" {
		t.Fatalf("WithDefaults replaced the failpoint: called %q", called)
	}
}
