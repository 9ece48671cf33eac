package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// sandboxCall sends a JSON request to a running sandbox; auth is "basic:ID:SECRET",
// "bearer:TOKEN" or "".
func sandboxCall(t *testing.T, method, u, auth string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cred, ok := strings.CutPrefix(auth, "basic:"); ok {
		id, secret, _ := strings.Cut(cred, ":")
		req.SetBasicAuth(id, secret)
	} else if tok, ok := strings.CutPrefix(auth, "bearer:"); ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// TestRunSandbox_FlagsEnvAndShutdown: the first line is the real address;
// the credentials it prints are the ones it accepts, a flag beating its
// FINCHCONNECT_SANDBOX_ variable; -public-url shapes connect_url; a
// cancelled ctx stops it cleanly.
func TestRunSandbox_FlagsEnvAndShutdown(t *testing.T) {
	env := map[string]string{
		"FINCHCONNECT_SANDBOX_CLIENT_ID":     "env-id",
		"FINCHCONNECT_SANDBOX_CLIENT_SECRET": "env-secret",
		"FINCHCONNECT_SANDBOX_PUBLIC_URL":    "http://sandbox.example/finch",
		"FINCHCONNECT_ADDR":                  "127.0.0.1:1", // serve's, not the sandbox's
	}
	sb := start(t, env, "sandbox", "-addr", "127.0.0.1:0", "-client-secret", "flag-secret")
	if !strings.HasPrefix(sb.url, "http://127.0.0.1:") || strings.HasSuffix(sb.url, ":0") {
		t.Errorf("listening on %q, want the real loopback address", sb.url)
	}
	// start returns once the first line is out; the rest may still be on
	// its way.
	wants := []string{"FINCH_CLIENT_ID=env-id", "FINCH_CLIENT_SECRET=flag-secret", "FINCH_BASE_URL=http://sandbox.example/finch"}
	out := sb.stdout.String()
	for deadline := time.Now().Add(5 * time.Second); !containsAll(out, wants) && time.Now().Before(deadline); out = sb.stdout.String() {
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	session := map[string]any{"customer_id": "c1", "customer_name": "Acme", "products": []string{"company"}}
	if st, _ := sandboxCall(t, "POST", sb.url+"/connect/sessions", "basic:"+sandbox.DefaultClientID+":"+sandbox.DefaultClientSecret, session); st != 401 {
		t.Errorf("the default credentials = %d, want 401 once others are configured", st)
	}
	st, m := sandboxCall(t, "POST", sb.url+"/connect/sessions", "basic:env-id:flag-secret", session)
	if st != 201 || !strings.HasPrefix(m["connect_url"].(string), "http://sandbox.example/finch/authorize?session=") {
		t.Errorf("POST /connect/sessions with the printed credentials = %d %v, want 201 under -public-url", st, m)
	}
	if err := sb.stop(); err != nil {
		t.Errorf("run after ctx was cancelled = %v, want nil", err)
	}
	if _, err := http.Get(sb.url + "/_sandbox/stats"); err == nil {
		t.Error("the sandbox still answers after it stopped")
	}
}

// TestRunSandbox_DataFileAcrossRestarts: with -data, a token survives a
// restart of the command; without it, it does not.
func TestRunSandbox_DataFileAcrossRestarts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	basic := "basic:" + sandbox.DefaultClientID + ":" + sandbox.DefaultClientSecret
	first := start(t, nil, "sandbox", "-addr", "127.0.0.1:0", "-data", file)
	st, m := sandboxCall(t, "POST", first.url+"/sandbox/connections", basic, map[string]any{"provider_id": "gusto"})
	if st != 200 {
		t.Fatalf("POST /sandbox/connections = %d %v", st, m)
	}
	tok := m["access_token"].(string)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	second := start(t, map[string]string{"FINCHCONNECT_SANDBOX_DATA": file}, "sandbox", "-addr", "127.0.0.1:0")
	if st, m := sandboxCall(t, "GET", second.url+"/introspect", "bearer:"+tok, nil); st != 200 {
		t.Errorf("token after a restart with the same data file = %d %v, want 200", st, m)
	}
	memory := start(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	if st, _ := sandboxCall(t, "GET", memory.url+"/introspect", "bearer:"+tok, nil); st != 401 {
		t.Errorf("token on a sandbox without the data file = %d, want 401", st)
	}
}

// TestRunSandbox_Usage: -h names the sandbox's own variables; bad flags,
// stray arguments and bad variables are usage errors that name the culprit.
func TestRunSandbox_Usage(t *testing.T) {
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	if err := run(t.Context(), []string{"finchconnect", "sandbox", "-h"}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("sandbox -h = %v", err)
	}
	help := out.String()
	for _, want := range []string{"FINCHCONNECT_SANDBOX_ADDR", "FINCHCONNECT_SANDBOX_CLIENT_SECRET", "FINCHCONNECT_SANDBOX_REVOKE_ON_REUSE", "letmein"} {
		if !strings.Contains(help, want) {
			t.Errorf("sandbox -h lacks %q:\n%s", want, help)
		}
	}
	for _, wrong := range []string{"env: FINCHCONNECT_ADDR", "FINCH_CLIENT_ID,"} {
		if strings.Contains(help, wrong) {
			t.Errorf("sandbox -h names %q, which the sandbox does not read:\n%s", wrong, help)
		}
	}

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // in stderr
	}{
		{"unknown flag", []string{"-nope"}, nil, "-nope"},
		{"stray argument", []string{"extra"}, nil, `"extra"`},
		{"bad variable", nil, map[string]string{"FINCHCONNECT_SANDBOX_REVOKE_ON_REUSE": "maybe"}, "FINCHCONNECT_SANDBOX_REVOKE_ON_REUSE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), append([]string{"finchconnect", "sandbox"}, tt.args...), func(k string) string { return tt.env[k] }, nil, &out, &errOut)
			if !errors.Is(err, errUsage) {
				t.Errorf("run = %v, want errUsage", err)
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errOut.String())
			}
		})
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestRunSandbox_ShutdownEndsLatencyFaults: a request held by a latency
// fault, whose client hung up without sending its whole body (as a killed
// process does), does not hold the sandbox's shutdown for the fault's
// latency nor for the 10 s shutdown bound.
func TestRunSandbox_ShutdownEndsLatencyFaults(t *testing.T) {
	sb := start(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	addFault(t, sb.url, `{"route":"POST /auth/token","latency":"1m","count":1}`)
	conn, err := net.Dial("tcp", strings.TrimPrefix(sb.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers promise a body the client never finishes.
	fmt.Fprintf(conn, "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	waitForExchange(t, sb.url)
	conn.Close()

	begin := time.Now()
	if err := sb.stop(); err != nil {
		t.Fatalf("the sandbox stopped with %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("the sandbox took %v to stop with a request held by a latency fault, want far less than the 10 s bound", took)
	}
}
