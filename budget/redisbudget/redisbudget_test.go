package redisbudget_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
	"github.com/finchconnect/finchconnect/budget/redisbudget"
	"github.com/finchconnect/finchconnect/internal/testenv"
)

// testClient connects to the test Redis, skipping without one — except
// under CI, where Redis must be there.
func testClient(t *testing.T) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(testenv.RedisURL(t))
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
