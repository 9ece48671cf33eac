package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/finchconnect/finchconnect/tokenstore/postgres/postgrestest"

	goredis "github.com/redis/go-redis/v9"
)

func integrationURL(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set under CI; .ci/run sets it", name)
		}
		t.Skipf("set %s to run the replica tests against a real server", name)
	}
	return v
}

// testSchema creates a PostgreSQL schema of the test's own, dropped when the
// test ends, so tests share the server but no tables.
func testSchema(t *testing.T, base, prefix string) string {
	t.Helper()
	return postgrestest.Schema(t, base, prefix)
}

// withParam returns the URL raw with query parameter k set to v.
func withParam(t *testing.T, raw, k, v string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// finchEnv is the environment of a finchconnect server that talks to the
// sandbox at sandboxURL, with a fresh key, plus extra.
func finchEnv(t *testing.T, sandboxURL string, extra map[string]string) map[string]string {
	t.Helper()
	var key bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "keygen"}, nil, nil, &key, io.Discard); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FINCH_CLIENT_ID": "sandbox-client-id", "FINCH_CLIENT_SECRET": "sandbox-client-secret",
		"FINCH_BASE_URL": sandboxURL, "FINCHCONNECT_KEYS": strings.TrimSpace(key.String()),
		"FINCHCONNECT_CONNECT_LIMIT": "0", "FINCHCONNECT_CALLBACK_LIMIT": "0",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestReplicas_ExactlyOnce runs two finchconnect servers on one shared store
// — Redis, then PostgreSQL — behind one public URL, as a load balancer would
// present them. The same callback fired at both, many times at once, makes
// one exchange at Finch and one stored, usable connection; a flow started on
// replica A finishes on replica B.
func TestReplicas_ExactlyOnce(t *testing.T) {
	t.Parallel() // its own store namespace, processes and ports; mostly waiting
	stores := map[string]func(t *testing.T) string{
		"redis": func(t *testing.T) string {
			base := integrationURL(t, "FINCHCONNECT_TEST_REDIS_URL")
			prefix := "fcrep-" + randomSuffix()
			t.Cleanup(func() {
				opts, _ := goredis.ParseURL(base)
				c := goredis.NewClient(opts)
				defer c.Close()
				iter := c.Scan(context.Background(), 0, "{"+prefix+"}*", 500).Iterator()
				for iter.Next(context.Background()) {
					c.Del(context.Background(), iter.Val())
				}
			})
			return withParam(t, base, "prefix", prefix)
		},
		"postgres": func(t *testing.T) string {
			base := integrationURL(t, "FINCHCONNECT_TEST_POSTGRES_URL")
			return withParam(t, base, "search_path", testSchema(t, base, "fc_rep_"))
		},
	}
	for _, name := range []string{"redis", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storeURL := stores[name](t)
			sb := start(t, nil, "sandbox", "-addr", "127.0.0.1:0")
			const lb = "http://lb.finchconnect.test"
			env := finchEnv(t, sb.url, map[string]string{"FINCHCONNECT_STORE": storeURL, "FINCHCONNECT_PUBLIC_URL": lb})
			a := start(t, env, "-addr", "127.0.0.1:0", "-data-dir", t.TempDir())
			b := start(t, env, "-addr", "127.0.0.1:0", "-data-dir", t.TempDir())
			browser := newBrowser(t)

			// One flow, started on A; its callback hits both replicas at once.
			cb := connectThroughSandbox(t, browser, a.url, "replica-1")
			if !strings.HasPrefix(cb, lb+"/callback?") {
				t.Fatalf("Connect redirected to %q, want the shared public URL", cb)
			}
			before := getStats(t, sb.url)
			const n = 40
			var wg sync.WaitGroup
			locs := make([]string, n)
			for i := range n {
				target := a.url
				if i%2 == 1 {
					target = b.url
				}
				wg.Go(func() {
					status, loc, body := browser.do("GET", strings.Replace(cb, lb, target, 1), nil)
					if status != http.StatusSeeOther {
						t.Errorf("callback %d = %d; body:\n%s", i, status, body)
					}
					locs[i] = loc
				})
			}
			wg.Wait()
			for i, l := range locs {
				if l != locs[0] || !strings.HasPrefix(l, "/connections/") {
					t.Errorf("callback %d went to %q, callback 0 to %q", i, l, locs[0])
				}
			}
			after := getStats(t, sb.url)
			if got := after.TokenExchanges - before.TokenExchanges; got != 1 {
				t.Errorf("Finch saw %d exchanges for one code on two replicas, want 1", got)
			}
			if got := after.FailedExchanges - before.FailedExchanges; got != 0 {
				t.Errorf("Finch saw %d failed exchanges: a code was sent twice", got)
			}
			// The connection is stored once and usable from either replica.
			for _, r := range []*running{a, b} {
				status, _, page := browser.do("GET", r.url+locs[0], nil)
				if status != http.StatusOK || !strings.Contains(page, `id="legal-name"`) {
					t.Errorf("GET %s on %s = %d, want the company page", locs[0], r.url, status)
				}
			}

			// A flow started on A finishes on B alone.
			cb2 := connectThroughSandbox(t, browser, a.url, "replica-2")
			status, loc, body := browser.do("GET", strings.Replace(cb2, lb, b.url, 1), nil)
			if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/connections/") {
				t.Errorf("a flow started on A, finished on B = %d → %q; body:\n%s", status, loc, body)
			}
			var out bytes.Buffer
			if err := run(t.Context(), []string{"finchconnect", "token", "list", "-json"}, func(k string) string { return env[k] }, nil, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(out.String(), `"connection_id"`); got != 2 {
				t.Errorf("the shared store lists %d connections, want 2:\n%s", got, out.String())
			}
		})
	}
}
