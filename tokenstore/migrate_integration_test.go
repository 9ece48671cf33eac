package tokenstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/postgres"
	"github.com/finchconnect/finchconnect/tokenstore/redis"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
)

// needEnv returns an integration server's URL, skipping without it except
// under CI.
func needEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set under CI; .ci/run sets it", name)
		}
		t.Skipf("set %s to run this test against a real server", name)
	}
	return v
}

func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// TestMigrate_SQLitePostgresRedisRoundTrip migrates 2,000 connections
// SQLite → PostgreSQL → Redis → SQLite, in pages of 150 so that every hop
// reads many full pages and a short last one, and finds every token opening
// to the same value and every metadata field equal.
//
// It moved 10,000 connections in pages of 500 until the count, not the
// paging, was found to be the test's cost (59 s of the package's 68):
// every copy is one durable write, and a page boundary is the only place
// where a larger count could find a fault that a smaller one misses.
func TestMigrate_SQLitePostgresRedisRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections through three stores; skipped with -short")
	}
	pgURL := needEnv(t, "FINCHCONNECT_TEST_POSTGRES_URL")
	redisURL := needEnv(t, "FINCHCONNECT_TEST_REDIS_URL")
	ctx := context.Background()

	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	back, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()

	schema := randomName("fc_mig_")
	admin, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	cfg, _ := pgxpool.ParseConfig(pgURL)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pg, err := postgres.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}

	ropts, _ := goredis.ParseURL(redisURL)
	rdb := goredis.NewClient(ropts)
	defer rdb.Close()
	prefix := randomName("fcmig-")
	defer func() {
		iter := rdb.Scan(context.Background(), 0, "{"+prefix+"}*", 1000).Iterator()
		for iter.Next(context.Background()) {
			rdb.Del(context.Background(), iter.Val())
		}
	}()
	rd := redis.New(rdb, redis.Options{Prefix: prefix})

	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	store := tokenstore.New(src, kr)
	const n, page = 2000, 150
	// Seeded by 16 writers at once, so that SQLite's group commit shares
	// its fsyncs among them, as a server's concurrent callbacks would.
	want := make(map[string]finchconnect.Connection, n)
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		seedErr error
	)
	const writers = 16
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				got, err := seed(ctx, store, i)
				mu.Lock()
				if err != nil {
					seedErr = errors.Join(seedErr, err)
				} else {
					want[got.ConnectionID] = got
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if seedErr != nil {
		t.Fatal(seedErr)
	}

	hops := []struct {
		name     string
		from, to tokenstore.Backend
	}{
		{"sqlite→postgres", src, pg},
		{"postgres→redis", pg, rd},
		{"redis→sqlite", rd, back},
	}
	for _, h := range hops {
		res, err := tokenstore.Migrate(ctx, h.from, h.to, tokenstore.MigrateOptions{BatchSize: page})
		if err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
		if res.Rows != n || res.Verified != n {
			t.Fatalf("%s = %+v, want %d rows copied and verified", h.name, res, n)
		}
	}

	final := tokenstore.New(back, kr)
	seen := 0
	after := ""
	for {
		page, next, err := final.List(ctx, tokenstore.Filter{After: after, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, meta := range page {
			c, err := final.Get(ctx, meta.ConnectionID)
			if err != nil {
				t.Fatalf("Get(%s) after the round trip: %v", meta.ConnectionID, err)
			}
			w := want[c.ConnectionID]
			if c.AccessToken.Reveal() != w.AccessToken.Reveal() {
				t.Errorf("%s: token changed in the round trip", c.ConnectionID)
			}
			c.AccessToken, w.AccessToken = finchconnect.Secret{}, finchconnect.Secret{}
			if diff := cmp.Diff(w, c); diff != "" {
				t.Errorf("%s metadata changed (-want +got):\n%s", c.ConnectionID, diff)
			}
			seen++
		}
		if next == "" {
			break
		}
		after = next
	}
	if seen != n {
		t.Errorf("after the round trip the store lists %d connections, want %d", seen, n)
	}
}

// seed stores connection i of the round trip through store and returns it
// as the store gives it back, with its token.
func seed(ctx context.Context, store *tokenstore.Store, i int) (finchconnect.Connection, error) {
	c := finchconnect.Connection{
		ConnectionID: fmt.Sprintf("conn-%05d", i), CustomerID: fmt.Sprintf("cust-%d", i%97), CustomerName: fmt.Sprintf("Customer %d", i),
		ProviderID: []string{"gusto", "adp_workforce_now", "rippling"}[i%3], Products: []string{"company", "directory"},
		EntityIDs: []string{fmt.Sprintf("ent-%d", i)}, ConnectionType: "provider", ClientType: "sandbox",
		Status: []string{"connected", "reauth"}[i%2], AccessToken: finchconnect.NewSecret(randomName("tok_")),
	}
	if err := store.Put(ctx, c); err != nil {
		return c, err
	}
	got, err := store.Lookup(ctx, c.ConnectionID)
	if err != nil {
		return c, err
	}
	got.AccessToken = c.AccessToken
	return got, nil
}
