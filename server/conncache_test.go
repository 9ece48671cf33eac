package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	ifclock "github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/finchconnect/finchconnect/server"
)

func newCachedProxyFixture(t *testing.T, ttl time.Duration) (*proxyFixture, *ifclock.Fake) {
	t.Helper()
	clock := ifclock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	f := newProxyFixtureConfig(t, nil, func(c *server.Config) {
		c.ConnectionCacheTTL = ttl
	}, server.WithClock(clock))
	return f, clock
}

// TestProxy_ConnectionCache: the proxy reads and opens a connection once
// per TTL, not per call. Shown by taking the store down (all but the API
// keys) after a first call: within the TTL calls still reach Finch with the
// connection's token, and are each audited; past it they meet the outage;
// with the cache off, the first call after the outage meets it.
func TestProxy_ConnectionCache(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ttl      time.Duration
		cachedOK bool
	}{{"default TTL", 0, true}, {"off", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			f, clock := newCachedProxyFixture(t, tc.ttl)
			path := f.base() + "employer/company"
			if r := f.read.call("GET", path, ""); r.status != http.StatusOK {
				t.Fatalf("first call = %d %s", r.status, r.body)
			}
			f.backend.down.Store(true)
			clock.Advance(server.DefaultConnCacheTTL / 2)
			r := f.read.call("GET", path, "")
			if got := r.status == http.StatusOK; got != tc.cachedOK {
				t.Fatalf("within the TTL with the store down: %d %s; want 200: %v", r.status, r.body, tc.cachedOK)
			}
			if tc.cachedOK {
				seen := f.up.seen("/employer/company")
				if len(seen) != 2 || seen[1].header.Get("Authorization") != "Bearer "+f.token.Reveal() {
					t.Errorf("Finch saw %d company calls; the second with the stored token: %v", len(seen), len(seen) == 2)
				}
				if n := len(f.audits()); n != 2 {
					t.Errorf("%d audit records for two proxied calls, want one each", n)
				}
			}
			clock.Advance(server.DefaultConnCacheTTL)
			if r := f.read.call("GET", path, ""); r.status != http.StatusServiceUnavailable {
				t.Errorf("past the TTL with the store down = %d %s, want 503", r.status, r.body)
			}
		})
	}
}

// TestProxy_ConnectionCacheForgetsWrites: this replica's writes take effect
// at once, whatever the TTL: a disconnected connection is not used from
// the cache, and neither is a token opened under a keyring since replaced
// (a key retired in a rotation).
func TestProxy_ConnectionCacheForgetsWrites(t *testing.T) {
	t.Run("disconnect", func(t *testing.T) {
		f, _ := newCachedProxyFixture(t, time.Hour)
		path := f.base() + "employer/company"
		if r := f.read.call("GET", path, ""); r.status != http.StatusOK {
			t.Fatalf("first call = %d %s", r.status, r.body)
		}
		if r := f.write.call("DELETE", "/v1/connections/"+f.id, ""); r.status != http.StatusNoContent {
			t.Fatalf("DELETE = %d %s", r.status, r.body)
		}
		f.up.reset()
		if r := f.read.call("GET", path, ""); r.status != http.StatusNotFound {
			t.Errorf("after the disconnect = %d %s, want 404", r.status, r.body)
		}
		if n := len(f.up.seen("")); n != 0 {
			t.Errorf("after the disconnect %d calls reached Finch with the cached token, want none", n)
		}
	})
	t.Run("keyring replaced", func(t *testing.T) {
		f, _ := newCachedProxyFixture(t, time.Hour)
		path := f.base() + "employer/company"
		if r := f.read.call("GET", path, ""); r.status != http.StatusOK {
			t.Fatalf("first call = %d %s", r.status, r.body)
		}
		key, err := keyring.Generate(7)
		if err != nil {
			t.Fatal(err)
		}
		kr, err := keyring.New(key) // the old key is gone: the row no longer opens
		if err != nil {
			t.Fatal(err)
		}
		f.store.SetKeyring(kr)
		f.up.reset()
		if r := f.read.call("GET", path, ""); r.status == http.StatusOK {
			t.Errorf("after the keyring lost the row's key = 200, want a refusal")
		}
		if n := len(f.up.seen("")); n != 0 {
			t.Errorf("%d calls reached Finch with a token the keyring can no longer open, want none", n)
		}
	})
}

// TestProxy_StaleCacheRetriesWithStoredToken: another replica
// re-authenticates the connection (a new token in the store) and Finch
// revokes the old one, while this replica still holds the old token in its
// cache. Finch's refusal of the old token is not passed on: the call is
// sent once more with the stored token, and the connection is not marked
// as needing re-authentication (its new token is fine). A refusal of the
// token the store holds is still passed on and still marks it.
func TestProxy_StaleCacheRetriesWithStoredToken(t *testing.T) {
	f, _ := newCachedProxyFixture(t, time.Hour)
	path := f.base() + "employer/company"
	if r := f.read.call("GET", path, ""); r.status != http.StatusOK {
		t.Fatalf("first call = %d %s", r.status, r.body)
	}
	// The other replica's re-authentication: a new token, the old revoked.
	newToken := mintToken(t, f.upURL)
	conn, err := f.store.Get(t.Context(), f.id)
	if err != nil {
		t.Fatal(err)
	}
	conn.AccessToken = newToken
	if err := f.store.Put(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	revoke(t, f.upURL, f.token)
	f.up.reset()

	if r := f.read.call("GET", path, ""); r.status != http.StatusOK {
		t.Fatalf("with the stale cached token = %d %s, want 200 through the stored token", r.status, r.body)
	}
	seen := f.up.seen("/employer/company")
	if len(seen) != 2 || seen[0].header.Get("Authorization") != "Bearer "+f.token.Reveal() || seen[1].header.Get("Authorization") != "Bearer "+newToken.Reveal() {
		t.Fatalf("Finch saw %d company calls, want the stale token refused then the stored one", len(seen))
	}
	if got, _ := f.store.Lookup(t.Context(), f.id); got.Status != finchconnect.StatusConnected {
		t.Errorf("status = %q after a refusal of a stale cached token, want it left %q", got.Status, finchconnect.StatusConnected)
	}
	f.up.reset()
	if r := f.read.call("GET", path, ""); r.status != http.StatusOK || len(f.up.seen("")) != 1 {
		t.Errorf("next call = %d, %d calls at Finch; want 200 in one call with the new token cached", r.status, len(f.up.seen("")))
	}

	// The token the store holds refused: passed on, not sent again.
	revoke(t, f.upURL, newToken)
	f.up.reset()
	if r := f.read.call("GET", path, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("with the revoked stored token = %d %s, want Finch's 401", r.status, r.body)
	}
	if n := len(f.up.seen("")); n != 1 {
		t.Errorf("a refused stored token was sent %d times, want once", n)
	}
}

// revoke disconnects token at the sandbox.
func revoke(t *testing.T, sandboxURL string, token finchconnect.Secret) {
	t.Helper()
	req, _ := http.NewRequest("POST", sandboxURL+"/disconnect", nil)
	req.Header.Set("Authorization", "Bearer "+token.Reveal())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke a token: %d", res.StatusCode)
	}
}

// mintToken has the sandbox mint a connection at another provider than the
// fixture's (so that revoking one leaves the other) and returns its token.
func mintToken(t *testing.T, sandboxURL string) finchconnect.Secret {
	t.Helper()
	req, _ := http.NewRequest("POST", sandboxURL+"/sandbox/connections", strings.NewReader(`{"provider_id":"bamboo_hr","employee_size":5,"products":["company"]}`))
	req.SetBasicAuth(sandbox.DefaultClientID, sandbox.DefaultClientSecret)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("mint a token: %d %v", res.StatusCode, err)
	}
	return finchconnect.NewSecret(out.AccessToken)
}
