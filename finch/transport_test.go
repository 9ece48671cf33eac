package finch_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
)

// TestNewTransport_KeepsConnections drives 32 concurrent callers through
// several rounds: with the transport's idle pool they reuse the
// connections of the first round, where http.DefaultTransport's two idle
// connections per host would make almost every later call dial anew.
func TestNewTransport_KeepsConnections(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	const callers, rounds = 32, 10
	count := func(rt http.RoundTripper) int64 {
		dials.Store(0)
		c := &http.Client{Transport: rt}
		for range rounds {
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					res, err := c.Get(srv.URL)
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				})
			}
			wg.Wait()
		}
		return dials.Load()
	}
	// A connection goes back to the pool from the transport's own
	// goroutine once its body is read, so a caller of the next round can
	// find it not back yet and dial: allow a round's worth of such dials
	// on top of the first round's. Without the pool, nearly every call
	// of every later round dials (about rounds × callers).
	const most = 2 * callers
	tr := finch.NewTransport()
	defer tr.CloseIdleConnections()
	if got := count(tr); got > most {
		t.Errorf("NewTransport: %d connections for %d rounds of %d callers, want at most %d", got, rounds, callers, most)
	}
	// The comparison shows the test can tell the two apart.
	small := &http.Transport{MaxIdleConnsPerHost: 2}
	defer small.CloseIdleConnections()
	if got := count(small); got <= most {
		t.Errorf("a 2-connection idle pool dialled only %d times; the test does not discriminate", got)
	}
}

// TestNoRedirects: a redirect comes back as the response, and the request
// is not repeated at the other address.
func TestNoRedirects(t *testing.T) {
	var followed atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Store(true) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := &http.Client{Transport: finch.NewTransport(), CheckRedirect: finch.NoRedirects}
	res, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || followed.Load() {
		t.Errorf("status %d, followed %v; want the 307 itself, not followed", res.StatusCode, followed.Load())
	}
}
