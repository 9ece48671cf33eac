package redisbudget_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
	"github.com/finchconnect/finchconnect/budget/redisbudget"
)

// testClient connects to the test Redis, skipping without one — except
// under CI, where Redis must be there.
func testClient(t *testing.T) *redis.Client {
	t.Helper()
	u := os.Getenv("FINCHCONNECT_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FINCHCONNECT_TEST_REDIS_URL is not set under CI; .ci/run sets it")
		}
		t.Skip("set FINCHCONNECT_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the Redis tests")
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestShared(t *testing.T) {
	c := testClient(t)
	budgettest.Run(t, func(t *testing.T) budget.Shared {
		var b [6]byte
		rand.Read(b[:])
		prefix := "fctest-budget-" + hex.EncodeToString(b[:]) + ":"
		t.Cleanup(func() {
			ctx := context.Background()
			keys, _ := c.Keys(ctx, prefix+"*").Result()
			if len(keys) > 0 {
				c.Del(ctx, keys...)
			}
		})
		return redisbudget.New(c, prefix)
	})
}
