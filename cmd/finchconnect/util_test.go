package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

// newStore creates the empty SQLite store of data folder dir, as serve's
// first start does.
func newStore(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "finchconnect.db")
	b, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	return path
}

func decodeJSON(res *http.Response, v any) error {
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
