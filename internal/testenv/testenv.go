// Package testenv finds the services tests need: the test Redis and
// PostgreSQL, named by FINCHCONNECT_TEST_REDIS_URL and
// FINCHCONNECT_TEST_POSTGRES_URL. Without one a test skips, except under
// CI=true, where the service must be there and its absence fails the test.
package testenv

import (
	"os"
	"testing"
)

// RedisURL returns the test Redis's URL, or skips t (fails it under CI).
func RedisURL(t testing.TB) string {
	t.Helper()
	return url(t, "FINCHCONNECT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
}

// PostgresURL returns the test PostgreSQL's URL, or skips t (fails it
// under CI).
func PostgresURL(t testing.TB) string {
	t.Helper()
	return url(t, "FINCHCONNECT_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

func url(t testing.TB, env, example string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set under CI; .ci/run sets it", env)
		}
		t.Skipf("set %s (e.g. %s) to run these tests", env, example)
	}
	return u
}
