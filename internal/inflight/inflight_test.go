package inflight_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/internal/inflight"
)

func TestGroup_Wait(t *testing.T) {
	var g inflight.Group
	if err := g.Wait(t.Context()); err != nil {
		t.Fatalf("Wait with nothing in progress = %v", err)
	}
	g.Start()
	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := g.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with work in progress past its deadline = %v, want DeadlineExceeded", err)
	}

	// Work that starts while Wait waits is waited for too.
	waited := make(chan error, 1)
	go func() { waited <- g.Wait(t.Context()) }()
	time.Sleep(10 * time.Millisecond)
	g.Start() // a second piece, before the first ends
	g.Done()
	select {
	case err := <-waited:
		t.Fatalf("Wait returned (%v) with work still in progress", err)
	case <-time.After(20 * time.Millisecond):
	}
	if g.Running() != 1 {
		t.Errorf("Running = %d, want 1", g.Running())
	}
	g.Done()
	if err := <-waited; err != nil {
		t.Errorf("Wait = %v once all work ended", err)
	}
}

func TestGroup_Track(t *testing.T) {
	var g inflight.Group
	release := make(chan struct{})
	h := g.Track(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		close(done)
	}()
	for deadline := time.Now().Add(time.Second); g.Running() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request was never counted")
		}
	}
	close(release)
	<-done
	if err := g.Wait(t.Context()); err != nil || g.Running() != 0 {
		t.Errorf("after the request: Wait = %v, Running = %d; want nil, 0", err, g.Running())
	}
}
