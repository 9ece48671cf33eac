package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestServe_RefusesToStartWithoutKeys: with Finch credentials and no key,
// or a malformed key, serve stops at start-up with an error that names the
// setting — it never stores a token it cannot seal.
func TestServe_RefusesToStartWithoutKeys(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no key", map[string]string{}, "no encryption keys"},
		{"malformed key", map[string]string{"FINCHCONNECT_KEYS": "1:not-base64!"}, "FINCHCONNECT_KEYS"},
		{"short key", map[string]string{"FINCHCONNECT_KEYS": "1:c2hvcnQ="}, "FINCHCONNECT_KEYS"},
		{"one credential", map[string]string{"FINCH_CLIENT_SECRET": ""}, "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"FINCH_CLIENT_ID": "id", "FINCH_CLIENT_SECRET": "secret"}
			for k, v := range tt.env {
				env[k] = v
			}
			var out, errOut bytes.Buffer
			err := run(t.Context(), []string{"finchconnect", "-addr", "127.0.0.1:0", "-data-dir", t.TempDir()},
				func(k string) string { return env[k] }, nil, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve = %v, want an error mentioning %q", err, tt.want)
			}
			if strings.Contains(out.String(), "listening on") {
				t.Error("serve started listening")
			}
			if err != nil && strings.Contains(err.Error(), "not-base64") {
				t.Error("the error echoes key material")
			}
		})
	}
}

func TestRun_HelpAndUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "help"}, func(string) string { return "" }, nil, &out, &errOut); err != nil || !strings.Contains(out.String(), "finchconnect sandbox") {
		t.Errorf("help = %v, %q", err, out.String())
	}
	if err := run(t.Context(), []string{"finchconnect", "frobnicate"}, func(string) string { return "" }, nil, &out, &errOut); err == nil || exitCode(err) != 2 {
		t.Errorf("unknown command = %v, want a usage error (exit 2)", err)
	}
	out.Reset()
	if err := run(t.Context(), []string{"finchconnect", "serve", "-h"}, func(string) string { return "" }, nil, &out, &errOut); err != nil || !strings.Contains(out.String(), "FINCHCONNECT_PUBLIC_URL") {
		t.Errorf("serve -h = %v; want every flag with its variable:\n%s", err, out.String())
	}
}
