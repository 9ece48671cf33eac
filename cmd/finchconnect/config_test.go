package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/keyring"
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

// credentials is a production-looking environment: Finch credentials and
// a key.
func credentials(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	key, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FINCH_CLIENT_ID": "id", "FINCH_CLIENT_SECRET": "secret", "FINCHCONNECT_KEYS": key.Encode()}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// TestServe_DemoOnlyWhenLocal: without Finch credentials the demo runs
// only on a loopback address with an http loopback public URL, or when
// asked for with -demo; anywhere else serve refuses to start, naming the
// missing credentials.
func TestServe_DemoOnlyWhenLocal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // "" for a demo that starts
		warn bool   // the demo warns that it is reachable beyond this machine
	}{
		{"defaults", nil, nil, "", false},
		{"localhost", nil, []string{"-addr", "localhost:0"}, "", false},
		{"loopback public URL", nil, []string{"-public-url", "http://localhost:3000"}, "", false},
		{"all interfaces", nil, []string{"-addr", "0.0.0.0:0"}, "FINCH_CLIENT_SECRET", false},
		{"unspecified host", nil, []string{"-addr", ":0"}, "FINCH_CLIENT_ID", false},
		{"https public URL", nil, []string{"-public-url", "https://app.example.com"}, "-demo", false},
		{"http public URL elsewhere", nil, []string{"-public-url", "http://app.example.com"}, "-demo", false},
		{"empty secret from a failed mount", map[string]string{"FINCH_CLIENT_SECRET": "", "FINCHCONNECT_PUBLIC_URL": "https://app.example.com"}, nil, "no Finch credentials", false},
		{"-demo anywhere", nil, []string{"-demo", "-addr", "0.0.0.0:0", "-public-url", "http://demo.example.com"}, "", true},
		{"FINCHCONNECT_DEMO", map[string]string{"FINCHCONNECT_DEMO": "true"}, []string{"-public-url", "https://demo.example.com"}, "", false},
		{"-demo with credentials", map[string]string{"FINCH_CLIENT_ID": "id", "FINCH_CLIENT_SECRET": "s"}, []string{"-demo"}, "-demo", false},
		{"client id alone", map[string]string{"FINCH_CLIENT_ID": "id"}, nil, "FINCH_CLIENT_SECRET", false},
		{"client secret alone", map[string]string{"FINCH_CLIENT_SECRET": "s"}, nil, "FINCH_CLIENT_ID", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-data-dir", t.TempDir()}, tt.args...)
			if !slices.Contains(args, "-addr") {
				args = append(args, "-addr", "127.0.0.1:0")
			}
			stdout, stderr, err := runBriefly(t, tt.env, args...)
			if tt.want == "" {
				if err != nil || !strings.Contains(stdout, "finchconnect demo") {
					t.Fatalf("serve %v = %v, want the demo to start; stdout:\n%s\nstderr:\n%s", tt.args, err, stdout, stderr)
				}
				if got := strings.Contains(stderr, "level=WARN msg=\"the demo"); got != tt.warn {
					t.Errorf("warned about a demo beyond loopback: %v, want %v; stderr:\n%s", got, tt.warn, stderr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve %v = %v, want an error mentioning %q", tt.args, err, tt.want)
			}
			if strings.Contains(stdout, "listening on") {
				t.Error("serve started listening")
			}
		})
	}
}

// TestServe_LeftoverDemoKey: with Finch credentials, the demo's key file in
// the data folder is used only when -keys-file names it; operator commands
// still read the demo's vault with it, and say so.
func TestServe_LeftoverDemoKey(t *testing.T) {
	dir := t.TempDir()
	key, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "keys")
	if err := os.WriteFile(keyFile, []byte(key.Encode()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := credentials(t, nil)
	delete(env, "FINCHCONNECT_KEYS")

	_, _, err = runBriefly(t, env, "-addr", "127.0.0.1:0", "-data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "no encryption keys") || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("serve with credentials and only the demo's key file = %v, want a refusal naming %s", err, keyFile)
	}
	if _, stderr, err := runBriefly(t, env, "-addr", "127.0.0.1:0", "-data-dir", dir, "-keys-file", keyFile); err != nil {
		t.Errorf("serve -keys-file %s = %v, want it to start; stderr:\n%s", keyFile, err, stderr)
	}
	_, stderr, err := runBriefly(t, nil, "token", "list", "-data-dir", dir)
	if err != nil {
		t.Fatalf("token list = %v", err)
	}
	if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, keyFile) {
		t.Errorf("token list used the demo's key file without a warning; stderr:\n%s", stderr)
	}
}

// TestServe_FlagChecks: settings that cannot work together, or cannot work
// at all, stop serve at start-up with an error naming them.
func TestServe_FlagChecks(t *testing.T) {
	dir := t.TempDir()
	key, err := keyring.Generate(2)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "keyfile")
	if err := os.WriteFile(keyFile, []byte(key.Encode()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // "" to start
	}{
		{"recover-after below a callback's life", []string{"-recover-after", "2s"}, "-recover-after"},
		{"recover-after just below the floor", []string{"-recover-after", "2m29s"}, "-recover-after"},
		{"recover-after default", nil, ""},
		{"recover-after at the floor", []string{"-recover-after", "2m30s"}, ""},
		{"keys and keys-file", []string{"-keys-file", keyFile}, "-keys-file"},
		{"all interfaces without public URL", []string{"-addr", "0.0.0.0:0"}, "-public-url"},
		{"unspecified host without public URL", []string{"-addr", ":0"}, "-public-url"},
		{"all interfaces with public URL", []string{"-addr", "0.0.0.0:0", "-public-url", "https://app.example.com"}, ""},
		{"trusted proxies", []string{"-trusted-proxies", "10.0.0.0/8, 192.168.1.7,fd00::/8"}, ""},
		{"bad trusted proxy", []string{"-trusted-proxies", "10.0.0.0/8,lb.internal"}, "lb.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-data-dir", t.TempDir()}, tt.args...)
			if !slices.Contains(args, "-addr") {
				args = append(args, "-addr", "127.0.0.1:0")
			}
			stdout, stderr, err := runBriefly(t, credentials(t, nil), args...)
			if tt.want == "" {
				if err != nil || !strings.Contains(stdout, "listening on") {
					t.Errorf("serve %v = %v, want it to start; stderr:\n%s", tt.args, err, stderr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve %v = %v, want an error mentioning %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestRun_SecretFlagsWarn: a secret given as a flag is visible to every
// user of the machine (ps); finchconnect says so, and says nothing when the
// secret comes from the environment.
func TestRun_SecretFlagsWarn(t *testing.T) {
	key, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	serve := []string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir()}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		warn string // "" for no warning
	}{
		{"client-secret", map[string]string{"FINCH_CLIENT_ID": "id"}, append([]string{"-client-secret", "s3cret"}, serve...), "-client-secret"},
		{"client-secret from env", map[string]string{"FINCH_CLIENT_ID": "id", "FINCH_CLIENT_SECRET": "s3cret"}, serve, ""},
		{"webhook-secret", nil, append([]string{"-webhook-secret", "c2VjcmV0", "-client-id", "id"}, serve...), "-webhook-secret"},
		{"events-secret", nil, append([]string{"-events-secret", "c2VjcmV0", "-client-id", "id"}, serve...), "-events-secret"},
		{"keys", nil, []string{"token", "list", "-store", "memory:", "-keys", key.Encode()}, "-keys"},
		{"keys from env", map[string]string{"FINCHCONNECT_KEYS": key.Encode()}, []string{"token", "list", "-store", "memory:"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, _ := runBriefly(t, tt.env, tt.args...)
			if tt.warn == "" {
				if strings.Contains(stderr, "command line") {
					t.Errorf("warned about a secret from the environment:\n%s", stderr)
				}
				return
			}
			if !strings.Contains(stderr, "warning: "+tt.warn+" ") || !strings.Contains(stderr, "command line") {
				t.Errorf("stderr lacks a warning that %s was given on the command line:\n%s", tt.warn, stderr)
			}
			for _, s := range []string{"s3cret", "c2VjcmV0", key.Encode()} {
				if strings.Contains(stderr, s) {
					t.Errorf("the warning echoes the secret %q", s)
				}
			}
		})
	}
}

func TestRun_HelpListsKeysRetire(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"finchconnect", "help"}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "keys status|rotate|retire") {
		t.Errorf("help does not list keys retire:\n%s", out.String())
	}
}

// TestRun_UnexpectedArguments: an argument a command does not take is a
// usage error, not silently ignored.
func TestRun_UnexpectedArguments(t *testing.T) {
	tests := [][]string{
		{"token", "list", "acme"},
		{"token", "list", "-json", "acme"},
		{"token", "list", "--", "acme"},
		{"token", "get", "a", "b"},
		{"token", "get", "a", "--", "b"},
		{"token", "delete", "a", "b"},
		{"apikey", "list", "x"},
		{"keys", "status", "x"},
		{"audit", "x"},
		{"migrate", "-from", "memory:", "-to", "memory:", "x"},
		{"keygen", "x"},
		{"serve", "x"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, _, err := runBriefly(t, nil, append(args, "-store", "memory:")...)
			if args[0] == "keygen" || args[0] == "migrate" {
				_, _, err = runBriefly(t, nil, args...)
			}
			if err == nil || exitCode(err) != 2 {
				t.Errorf("finchconnect %v = %v, want a usage error (exit 2)", args, err)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		in      string
		want    []netip.Prefix
		wantErr string
	}{
		{"", nil, ""},
		{"10.0.0.0/8", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ""},
		{"10.1.2.3/8", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ""},
		{"192.168.1.7", []netip.Prefix{netip.MustParsePrefix("192.168.1.7/32")}, ""},
		{" 10.0.0.0/8 , fd00::/8,2001:db8::1", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("2001:db8::1/128")}, ""},
		{"::ffff:10.0.0.0/104", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ""},
		{"::ffff:10.0.0.1", []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}, ""},
		{"lb.internal", nil, `"lb.internal"`},
		{"10.0.0.0/33", nil, `"10.0.0.0/33"`},
		{"10.0.0.0/8,,", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTrustedProxies(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "-trusted-proxies") {
					t.Errorf("parseTrustedProxies(%q) = %v, %v; want an error mentioning -trusted-proxies and %s", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("parseTrustedProxies(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestServe_TrustedProxies: behind a trusted proxy, each client address
// in X-Forwarded-For has its own rate limit; from anywhere else the header
// is ignored.
func TestServe_TrustedProxies(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			args := []string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-connect-limit", "1"}
			if trusted {
				args = append(args, "-trusted-proxies", "127.0.0.0/8")
			}
			app := start(t, nil, args...)
			var statuses []int
			for _, client := range []string{"203.0.113.1", "203.0.113.2"} {
				req, _ := http.NewRequest("POST", app.url+"/connect", strings.NewReader("customer_id=c&customer_name=C&products=company"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", client)
				res, err := newBrowser(t).c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				statuses = append(statuses, res.StatusCode)
			}
			limited := statuses[1] == http.StatusTooManyRequests
			if statuses[0] != http.StatusSeeOther || limited == trusted {
				t.Errorf("POST /connect from two clients behind 127.0.0.1 = %v; want 303 and then %s", statuses,
					map[bool]string{true: "303 (each client has its own limit)", false: "429 (one limit for the peer)"}[trusted])
			}
		})
	}
}
