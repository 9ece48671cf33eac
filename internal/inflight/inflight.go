// Package inflight counts work in progress and waits for it to end, for
// graceful shutdowns. Unlike sync.WaitGroup, work may start while someone
// waits (a request that arrived just before the listener closed), and a
// wait ends with its context.
package inflight

import (
	"context"
	"net/http"
	"sync"
)

// Group counts work in progress. The zero value is ready to use.
type Group struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

// Start counts one more piece of work; Done must follow.
func (g *Group) Start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
}

// Done ends a piece of work counted by Start.
func (g *Group) Done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n--; g.n == 0 {
		close(g.idle)
	}
}

// Running is how much work is in progress.
func (g *Group) Running() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Wait returns nil once no work is in progress, or ctx's error if it ends
// first. Work that starts while Wait waits is waited for too.
func (g *Group) Wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		if g.n == 0 {
			g.mu.Unlock()
			return nil
		}
		idle := g.idle
		g.mu.Unlock()
		select {
		case <-idle:
			// Look again: work may have started since.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Track returns h, counting each request it handles as work.
func (g *Group) Track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Start()
		defer g.Done()
		h.ServeHTTP(w, r)
	})
}
