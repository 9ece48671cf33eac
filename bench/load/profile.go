package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"time"
)

// profiler takes a CPU profile of the target over the timed phase, and
// heap-allocation profiles just before and just after it, from the target's
// net/http/pprof. The difference of the two allocation profiles (go tool
// pprof -base) is what the phase allocated; the preparation is left out of
// both.
type profiler struct {
	base, out string
	client    *http.Client
	cpuDone   chan error
}

func startProfile(ctx context.Context, base, out string, d time.Duration) (*profiler, error) {
	p := &profiler{base: base, out: out, client: &http.Client{Timeout: d + time.Minute}, cpuDone: make(chan error, 1)}
	if err := p.fetch(ctx, "/debug/pprof/allocs", out+".allocs-before"); err != nil {
		return nil, err
	}
	secs := int(math.Ceil(d.Seconds()))
	go func() { p.cpuDone <- p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), out+".cpu") }()
	return p, nil
}

// finish waits for the CPU profile and takes the second allocation profile.
func (p *profiler) finish(ctx context.Context) error {
	if err := p.fetch(ctx, "/debug/pprof/allocs", p.out+".allocs-after"); err != nil {
		return err
	}
	return <-p.cpuDone
}

func (p *profiler) fetch(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	res, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %v", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: status %d", path, res.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(res.Body, 256<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
