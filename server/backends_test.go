package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/finchconnect/finchconnect/internal/testenv"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/postgres/postgrestest"
	"github.com/finchconnect/finchconnect/tokenstore/redis"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
	goredis "github.com/redis/go-redis/v9"
)

// everyBackend names a constructor for each backend the protocol runs on:
// memory and SQLite always; Redis and PostgreSQL when
// FINCHCONNECT_TEST_REDIS_URL and FINCHCONNECT_TEST_POSTGRES_URL are set,
// which they must be under CI=true (the test fails there without them).
// Each call returns a fresh, empty backend that the test's end cleans up.
var everyBackend = []struct {
	name string
	open func(t *testing.T) tokenstore.Backend
}{
	{"memory", func(t *testing.T) tokenstore.Backend { return tokenstore.NewMemory() }},
	{"sqlite", openSQLite},
	{"redis", openRedis},
	{"postgres", openPostgres},
}

func openSQLite(t *testing.T) tokenstore.Backend {
	t.Helper()
	b, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func randomLabel(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func openRedis(t *testing.T) tokenstore.Backend {
	t.Helper()
	opts, err := goredis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	prefix := randomLabel("fcsrv-")
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "{"+prefix+"}*", 500).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		c.Close()
	})
	return redis.New(c, redis.Options{Prefix: prefix})
}

func openPostgres(t *testing.T) tokenstore.Backend {
	t.Helper()
	return postgrestest.Open(t, testenv.PostgresURL(t), "fc_srv_", 4)
}
