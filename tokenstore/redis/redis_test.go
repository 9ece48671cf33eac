package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/redis"
	"github.com/finchconnect/finchconnect/tokenstore/tokenstoretest"
	goredis "github.com/redis/go-redis/v9"
)

// testClient connects to the test Redis, skipping without one — except
// under CI, where Redis must be there.
func testClient(t testing.TB) *goredis.Client {
	t.Helper()
	u := os.Getenv("FINCHCONNECT_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FINCHCONNECT_TEST_REDIS_URL is not set under CI; .ci/run sets it")
		}
		t.Skip("set FINCHCONNECT_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the Redis tests")
	}
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// newTestBackend returns a backend under a prefix of its own, whose keys are
// deleted when the test ends; tests share the server but no data, and never
// flush it.
func newTestBackend(t testing.TB) (*redis.Backend, string) {
	t.Helper()
	c := testClient(t)
	prefix := testPrefix(t, c, "fctest-")
	return redis.New(c, redis.Options{Prefix: prefix}), prefix
}

// testPrefix returns a new key prefix starting with label, whose keys are
// deleted when the test ends.
func testPrefix(t testing.TB, c *goredis.Client, label string) string {
	var b [6]byte
	rand.Read(b[:])
	prefix := label + hex.EncodeToString(b[:])
	t.Cleanup(func() { deletePrefix(c, prefix) })
	return prefix
}

func deletePrefix(c *goredis.Client, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, "{"+prefix+"}*", 500).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

func TestBackend_Conformance(t *testing.T) {
	tokenstoretest.Run(t, func(t *testing.T) tokenstore.Backend {
		b, _ := newTestBackend(t)
		return b
	})
}

func TestBackend_Store(t *testing.T) {
	tokenstoretest.RunStore(t, func(t *testing.T) tokenstore.Backend {
		b, _ := newTestBackend(t)
		return b
	})
}

// newAutopipelinedBackend is newTestBackend opened through Open with
// autopipeline=true, as an operator would configure it.
func newAutopipelinedBackend(t *testing.T) tokenstore.Backend {
	t.Helper()
	prefix := testPrefix(t, testClient(t), "fctest-ap-")
	u, err := url.Parse(os.Getenv("FINCHCONNECT_TEST_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("prefix", prefix)
	q.Set("autopipeline", "true")
	u.RawQuery = q.Encode()
	b, err := redis.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBackend_ConformanceAutopipeline holds the autopipelined client to the
// whole contract, races included.
func TestBackend_ConformanceAutopipeline(t *testing.T) {
	tokenstoretest.Run(t, newAutopipelinedBackend)
	tokenstoretest.RunStore(t, newAutopipelinedBackend)
}

func TestOpen_BadAutopipeline(t *testing.T) {
	_, err := redis.Open(context.Background(), "redis://127.0.0.1:1/0?autopipeline=maybe")
	if err == nil || !strings.Contains(err.Error(), "autopipeline") {
		t.Errorf("Open(autopipeline=maybe) err = %v, want one naming autopipeline", err)
	}
}

// TestBackend_KeysShareOneSlot checks the hash tag: every key of a
// namespace hashes to one Redis Cluster slot, so the Lua scripts are legal
// on a cluster.
func TestBackend_KeysShareOneSlot(t *testing.T) {
	b, prefix := newTestBackend(t)
	c := testClient(t)
	ctx := t.Context()
	if _, err := b.PutRow(ctx, tokenstore.Row{ID: "c1", CustomerID: "cu", ProviderID: "p", Status: "connected", Meta: []byte("{}"), Sealed: []byte{1}}, tokenstore.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "state/x", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	var keys []string
	iter := c.Scan(ctx, 0, "*"+prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) < 5 {
		t.Fatalf("found %d keys, want the row, its indexes and the entry: %v", len(keys), keys)
	}
	slots := map[int]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{"+prefix+"}:") {
			t.Errorf("key %q lacks the hash tag {%s}", k, prefix)
		}
		slots[keySlot(k)] = true
	}
	if len(slots) != 1 {
		t.Errorf("keys span %d slots, want 1", len(slots))
	}
}

// keySlot is Redis Cluster's slot of a key: CRC16 (XMODEM) of its hash
// tag, or of the whole key without one, modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, c := range []byte(key) {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

func TestKeySlot_KnownValues(t *testing.T) {
	// Values from the Redis Cluster specification's examples and
	// CLUSTER KEYSLOT on a cluster.
	for key, want := range map[string]int{"123456789": 0x31C3 % 16384, "foo": 12182, "{user1000}.following": 3443, "{user1000}.followers": 3443} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestOpen_BadURLKeepsPasswordOut(t *testing.T) {
	_, err := redis.Open(context.Background(), "redis://user:s3cr3tpass@host:port/x?bogus=1")
	if err == nil {
		t.Fatal("Open with a malformed URL succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3tpass") {
		t.Errorf("error %q contains the password", err)
	}
}

// TestBackend_MarkerNeverInValues writes a known token through the Store
// and dumps every key of the namespace, whatever its type: the token is not
// in any value.
func TestBackend_MarkerNeverInValues(t *testing.T) {
	b, prefix := newTestBackend(t)
	c := testClient(t)
	ctx := t.Context()
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	store := tokenstore.New(b, kr)
	const marker = "tok_REDIS_MARKER_3b9d7a61"
	conn := finchconnect.Connection{ConnectionID: "c1", CustomerID: "cu", ProviderID: "gusto", Status: "connected", AccessToken: finchconnect.NewSecret(marker)}
	if err := store.Put(ctx, conn); err != nil {
		t.Fatal(err)
	}
	staged, err := store.SealStaged(conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, "callback/x", staged, time.Hour); err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	iter := c.Scan(ctx, 0, "{"+prefix+"}*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		raw, err := c.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		dump.WriteString(k + "=" + raw + "\n")
		switch typ := c.Type(ctx, k).Val(); typ {
		case "hash":
			fmt.Fprintln(&dump, c.HGetAll(ctx, k).Val())
		case "string":
			fmt.Fprintln(&dump, c.Get(ctx, k).Val())
		case "zset":
			fmt.Fprintln(&dump, c.ZRange(ctx, k, 0, -1).Val())
		}
	}
	if !strings.Contains(dump.String(), "gusto") {
		t.Fatalf("the dump holds no row; the check would prove nothing:\n%s", dump.String())
	}
	if strings.Contains(dump.String(), marker) {
		t.Error("a Redis value contains the plaintext token")
	}
}

// TestBackend_VersionStoredAsDigits: a version with many trailing zeros
// (a Store's clock in microseconds can be one) is stored as plain digits.
// Redis 7.2.0-7.2.4 format such a Lua number as 1.7723664e+15 on their
// own, which GetRow could not read back.
func TestBackend_VersionStoredAsDigits(t *testing.T) {
	b, prefix := newTestBackend(t)
	ctx := t.Context()
	const start = 1772366400000000 // 2026-03-01T12:00:00Z in µs
	row := tokenstore.Row{ID: "c1", CustomerID: "acme", ProviderID: "gusto", Status: "connected", Meta: []byte("{}"), Sealed: []byte("s"), Version: start}
	if v, err := b.PutRow(ctx, row, 0); err != nil || v != start {
		t.Fatalf("PutRow = %d, %v; want %d", v, err, start)
	}
	raw, err := testClient(t).HGet(ctx, "{"+prefix+"}:row:c1", "version").Result()
	if err != nil || raw != "1772366400000000" {
		t.Errorf("stored version = %q (%v), want 1772366400000000", raw, err)
	}
	if got, err := b.GetRow(ctx, "c1"); err != nil || got.Version != start {
		t.Errorf("GetRow = version %d, %v; want %d", got.Version, err, start)
	}
}
