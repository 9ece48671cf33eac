package main

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// TestAPIKeyCommand runs apikey create, list and revoke through run() on
// one data directory: the key is printed once and never listed, a revoked
// key is shown as such, and mistakes are usage errors.
func TestAPIKeyCommand(t *testing.T) {
	data := t.TempDir()
	newStore(t, data)
	noenv := func(string) string { return "" }
	apikeyCmd := func(args ...string) (string, string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(t.Context(), append([]string{"finchconnect", "apikey"}, args...), noenv, strings.NewReader(""), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	keyRe := regexp.MustCompile(`^fck_([0-9a-f]{12})_([A-Za-z0-9_-]{43})\n$`)

	out, errOut, err := apikeyCmd("create", "-scope", "write", "-name", "onboarding", "-data-dir", data)
	m := keyRe.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("apikey create = %q, %v (stderr %q); want one fck_ key line", out, err, errOut)
	}
	writeID, writeSecret := m[1], m[2]
	if !strings.Contains(errOut, writeID) || strings.Contains(errOut, writeSecret) {
		t.Errorf("create's stderr = %q, want the key id and not its secret", errOut)
	}
	out, _, err = apikeyCmd("create", "-scope", "read", "-data-dir", data)
	m = keyRe.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("apikey create -scope read = %q, %v", out, err)
	}
	readID := m[1]

	if _, _, err := apikeyCmd("revoke", "-data-dir", data, readID); err != nil {
		t.Fatalf("apikey revoke: %v", err)
	}
	_, personalOut, err := apikeyCmd("create", "-scope", "read", "-personal", "-name", "hr-sync", "-data-dir", data)
	if err != nil || !strings.Contains(personalOut, "read, personal key") {
		t.Fatalf("apikey create -personal = %v, %q; want it to say it made a personal key", err, personalOut)
	}
	list, _, err := apikeyCmd("list", "-data-dir", data)
	if err != nil {
		t.Fatalf("apikey list: %v", err)
	}
	if strings.Contains(list, writeSecret) || strings.Contains(list, "fck_") {
		t.Errorf("apikey list shows a key:\n%s", list)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n")[1:] {
		f := strings.Fields(line)
		rows[f[0]] = f
	}
	if w := rows[writeID]; len(w) < 3 || w[1] != "write" || w[2] != "onboarding" || w[len(w)-1] != "-" {
		t.Errorf("list row of the write key = %q, want write, onboarding, not revoked", w)
	}
	if !strings.Contains(list, "read+personal") {
		t.Errorf("apikey list does not mark the personal key:\n%s", list)
	}
	if r := rows[readID]; len(r) < 2 || r[1] != "read" || r[len(r)-1] == "-" {
		t.Errorf("list row of the revoked read key = %q, want read and a revocation time", r)
	}

	for _, tt := range []struct {
		name      string
		args      []string
		wantUsage bool
	}{
		{"no subcommand", nil, true},
		{"unknown subcommand", []string{"rotate"}, true},
		{"revoke without an id", []string{"revoke", "-data-dir", data}, true},
		{"create with an argument", []string{"create", "-data-dir", data, "extra"}, true},
		{"unknown scope", []string{"create", "-scope", "admin", "-data-dir", data}, true},
		{"revoke an unknown id", []string{"revoke", "-data-dir", data, "000000000000"}, false},
	} {
		out, _, err := apikeyCmd(tt.args...)
		if err == nil || errors.Is(err, errUsage) != tt.wantUsage {
			t.Errorf("%s: err = %v, want an error (usage: %v)", tt.name, err, tt.wantUsage)
		}
		if strings.Contains(out, "fck_") {
			t.Errorf("%s printed a key: %q", tt.name, out)
		}
	}
}
