package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeStep says what TestREADME does with one command of README.md.
type readmeStep struct {
	run   bool   // run it; it must exit 0
	serve string // start it in the background; it must listen on this address
	skip  string // why it cannot run offline here (it is then not run)
	// instance is a synopsis filled in: the command run in its place, to
	// check that the flags and arguments README names are what the
	// binary takes. It must exit instanceExit (not 2, a usage error) with
	// instanceSays in its output.
	instance     string
	instanceExit int
	instanceSays string
	after        func(t *testing.T, out string)
}

// readmeSteps lists every command in README.md's sh blocks. A command
// README gains must be added here: to run, or with the reason it cannot.
func readmeSteps(t *testing.T, dir string, env func() map[string]string) map[string]readmeStep {
	// A synopsis with placeholders runs as an instance of itself, on the
	// demo's store. No connection is there yet: the commands that take an
	// ID get one that does not exist, and must say so, which shows they
	// took their flags and argument.
	noConn := `no connection "no-such-connection"`
	synopsis := func(instance string, exit int, says string) readmeStep {
		return readmeStep{instance: instance, instanceExit: exit, instanceSays: says}
	}
	return map[string]readmeStep{
		"go build -o finchconnect ./cmd/finchconnect":                                                                             {run: true},
		"go install github.com/finchconnect/finchconnect/cmd/finchconnect@latest":                                                 {skip: "needs the module proxy to serve the published module"},
		"go run ./cmd/finchconnect":                                                                                               {serve: "127.0.0.1:3000"},
		"go run ./cmd/finchconnect sandbox -addr 127.0.0.1:4000":                                                                  {serve: "127.0.0.1:4000"},
		"go run ./cmd/finchconnect sandbox -addr 127.0.0.1:4000 &":                                                                {serve: "127.0.0.1:4000"},
		"export FINCH_BASE_URL=http://127.0.0.1:4000 FINCH_CLIENT_ID=sandbox-client-id FINCH_CLIENT_SECRET=sandbox-client-secret": {run: true},
		"bash .ci/run": {skip: "it is CI itself, which runs this test"},
		"export FINCH_CLIENT_ID=… FINCH_CLIENT_SECRET=…": {skip: "needs real Finch credentials"},
		"(umask 077 && go run ./cmd/finchconnect keygen > finchconnect-keys)": {run: true, after: func(t *testing.T, _ string) {
			fi, err := os.Stat(filepath.Join(dir, "finchconnect-keys"))
			if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 40 {
				t.Errorf("finchconnect-keys after keygen: %v, %v; want a key, mode 0600", fi, err)
			}
		}},
		"go run ./cmd/finchconnect serve -keys-file finchconnect-keys -public-url https://app.example.com": {skip: "needs real Finch credentials and a public URL"},
		"finchconnect token list [-customer ID] [-provider ID] [-status S] [-json]":                        synopsis("finchconnect token list -customer acme -provider gusto -status connected -json", 0, "[]"),
		"finchconnect token get ID":              synopsis("finchconnect token get no-such-connection", 1, noConn),
		"finchconnect token get -reveal ID":      synopsis("finchconnect token get -reveal no-such-connection", 1, noConn),
		"finchconnect token delete ID":           synopsis("finchconnect token delete no-such-connection", 1, noConn),
		"finchconnect token delete -forget ID":   synopsis("finchconnect token delete -forget no-such-connection", 1, noConn),
		"finchconnect keygen -keys-file KEYS":    synopsis("finchconnect keygen -keys-file finchconnect-keys", 0, "2:"),
		"finchconnect keys status|rotate|retire": synopsis("finchconnect keys status && finchconnect keys retire -h && finchconnect keys rotate -h", 0, "KEY ID"),
		"finchconnect migrate -from sqlite:///…/tokens.db -to postgres://…": synopsis(
			"finchconnect migrate -from sqlite://$PWD/finchconnect-data/finchconnect.db -to sqlite://$PWD/copy.db", 0, "IN SOURCE"),
		`finchconnect apikey create -scope read -name "payroll sync"`: {run: true},
		"finchconnect audit -since 24h":                               {run: true},
		"finchconnect sandbox -addr 127.0.0.1:4000":                   {serve: "127.0.0.1:4000"},
		"test -f embed-keys || (umask 077 && go run ./cmd/finchconnect keygen > embed-keys)": {run: true, after: func(t *testing.T, _ string) {
			fi, err := os.Stat(filepath.Join(dir, "embed-keys"))
			if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 40 {
				t.Errorf("embed-keys after keygen: %v, %v; want a key, mode 0600", fi, err)
			}
		}},
		`export FINCHCONNECT_KEYS="$(cat embed-keys)" STAFF_PASSWORD='choose a long one' APP_PUBLIC_URL=http://127.0.0.1:8080`: {run: true, after: func(t *testing.T, _ string) {
			if k := env()["FINCHCONNECT_KEYS"]; !strings.HasPrefix(k, "1:") {
				t.Errorf("FINCHCONNECT_KEYS = %q, want the key in embed-keys", k)
			}
		}},
		"go run ./examples/embed":             {serve: "127.0.0.1:8080"},
		"export FC_URL=http://127.0.0.1:3000": {run: true},
		`export KEY="$(go run ./cmd/finchconnect apikey create -scope write -name 'my app')"`: {run: true, after: func(t *testing.T, _ string) {
			if k := env()["KEY"]; !strings.HasPrefix(k, "fck_") {
				t.Fatalf("KEY = %q, want an API key", k)
			}
		}},
		`curl -s -X POST $FC_URL/v1/connect/sessions -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"customer_id":"acme","customer_name":"Acme Inc.","products":["company","directory"],"return_url":"'$FC_URL'/"}'`: {run: true, after: func(t *testing.T, out string) {
			// The employer's browser, at connect_url: the sandbox's Connect
			// page, then the callback, then return_url.
			var s struct {
				ConnectURL string `json:"connect_url"`
			}
			if err := json.Unmarshal([]byte(out), &s); err != nil || s.ConnectURL == "" {
				t.Fatalf("the session answer %q has no connect_url: %v", out, err)
			}
			b := newBrowser(t)
			status, back, body := b.do("GET", signInAtSandbox(t, b, s.ConnectURL), nil)
			if status != http.StatusSeeOther || !strings.HasPrefix(back, "http://127.0.0.1:3000/?connection_id=") {
				t.Fatalf("callback = %d to %q, want 303 to return_url?connection_id=…; body:\n%s", status, back, body)
			}
			if status, _, _ := b.do("GET", back, nil); status != http.StatusOK {
				t.Fatalf("return_url %s = %d, want 200", back, status)
			}
		}},
		`export CONNECTION_ID="$(curl -s "$FC_URL/v1/connections?customer_id=acme" -H "Authorization: Bearer $KEY" | sed -n 's/.*"connection_id":"\([^"]*\)".*/\1/p')"`: {run: true, after: func(t *testing.T, _ string) {
			if id := env()["CONNECTION_ID"]; len(id) < 32 {
				t.Fatalf("CONNECTION_ID = %q, want the connection's id", id)
			}
		}},
		`curl -s $FC_URL/v1/connections/$CONNECTION_ID/finch/employer/company -H "Authorization: Bearer $KEY"`: {run: true, after: func(t *testing.T, out string) {
			if !strings.Contains(out, `"legal_name"`) {
				t.Fatalf("the proxy's company = %q, want the employer's company", out)
			}
		}},
		`curl -s -X POST $FC_URL/v1/connections/$CONNECTION_ID/reauthenticate -H "Authorization: Bearer $KEY" -d '{}'`: {run: true, after: func(t *testing.T, out string) {
			if !strings.Contains(out, `"connect_url"`) {
				t.Fatalf("reauthenticate = %q, want a connect_url", out)
			}
		}},
	}
}

var trailingComment = regexp.MustCompile(`\s+# [^'"]*$`)

// readmeCommands returns README.md's shell commands in order: each line
// of its sh blocks that is not a comment, with its continuation lines,
// and without a trailing comment.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		cmd := ""
		for _, line := range strings.Split(block[1], "\n") {
			if cmd == "" && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")) {
				continue
			}
			if cmd != "" {
				cmd += "\n"
			}
			cmd += line
			if strings.HasSuffix(cmd, `\`) {
				continue
			}
			if loc := trailingComment.FindStringIndex(cmd); loc != nil {
				cmd = cmd[:loc[0]]
			}
			out = append(out, strings.TrimSpace(cmd))
			cmd = ""
		}
	}
	return out
}

// TestREADME runs README.md's commands as written, in order, in a copy of
// the repository (symlinks, so that no demo data lands in the checkout),
// with one shell environment carried from command to command: the build,
// the demo and the sandbox, the key file, the operator commands, the
// embedded example, and the app-side flow through /v1, with a browser
// signing in where README's reader would. Commands that need Finch itself
// or the network are listed with the reason.
func TestREADME(t *testing.T) {
	// Its commands run in their own folder (no t.Chdir) on the ports
	// README names, which no other test uses; it mostly waits for them.
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: TestREADME builds and starts the binary several times")
	}
	for _, tool := range []string{"bash", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	for _, addr := range []string{"127.0.0.1:3000", "127.0.0.1:4000", "127.0.0.1:8080"} {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Fatalf("%s is in use; README's commands need it free", addr)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case ".git", "finchconnect-data", "finchconnect", "finchconnect-keys", "finch.db", "embed-keys", "copy.db":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	commands := readmeCommands(t)

	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "FINCH") {
			env[k] = v
		}
	}
	delete(env, "PWD")                                             // the commands run in dir, not here
	env["PATH"] = dir + string(os.PathListSeparator) + env["PATH"] // where `go build -o finchconnect` put it
	env["GOFLAGS"] = "-buildvcs=false -trimpath"                   // the copy has no .git; -trimpath keeps the build cache valid across copies
	steps := readmeSteps(t, dir, func() map[string]string { return env })
	servers := map[string]*exec.Cmd{}
	t.Cleanup(func() {
		for _, c := range servers {
			syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
			c.Wait()
		}
	})
	for _, cmd := range commands {
		step, ok := steps[cmd]
		if !ok {
			t.Fatalf("README.md has a command TestREADME does not know; add it to readmeSteps:\n%s", cmd)
		}
		switch {
		case step.skip != "":
			t.Logf("not run (%s): %s", step.skip, cmd)
			continue
		case step.instance != "":
			out, code := runREADMEInstance(t, dir, env, step.instance)
			if code != step.instanceExit || !strings.Contains(out, step.instanceSays) {
				t.Errorf("README's synopsis %q, run as %q: exit %d, want %d with %q in its output:\n%s",
					cmd, step.instance, code, step.instanceExit, step.instanceSays, out)
			}
			continue
		case step.serve != "":
			if old := servers[step.serve]; old != nil { // README starts the sandbox twice
				syscall.Kill(-old.Process.Pid, syscall.SIGTERM)
				old.Wait()
			}
			servers[step.serve] = startREADMEServer(t, dir, env, strings.TrimSuffix(cmd, " &"), step.serve)
			continue
		}
		out := runREADMECommand(t, dir, env, cmd)
		if step.after != nil {
			step.after(t, out)
		}
	}
}

// runREADMECommand runs cmd with bash in dir and env, fails the test unless it
// exits 0, updates env with what it exported, and returns its stdout.
func runREADMECommand(t *testing.T, dir string, env map[string]string, cmd string) string {
	t.Helper()
	// A cold build of the binary on a busy 2-core machine has taken over
	// 3 minutes; the limit is there to end a hung command, not to time one.
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-e", "-c", cmd+"\nprintf '\\0ENV\\0'; env -0")
	c.Dir = dir
	c.Env = envList(env)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("README command failed: %v\n%s\nstderr:\n%s", err, cmd, stderr.String())
	}
	out, vars, _ := strings.Cut(stdout.String(), "\x00ENV\x00")
	clear(env)
	for _, kv := range strings.Split(vars, "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "_" && k != "SHLVL" && k != "PWD" {
			env[k] = v
		}
	}
	t.Logf("ran: %s", cmd)
	if stderr.Len() > 0 {
		t.Logf("its stderr: %s", stderr.String())
	}
	return out
}

// runREADMEInstance runs cmd with bash in dir and env, and returns its
// stdout and stderr together, and its exit code.
func runREADMEInstance(t *testing.T, dir string, env map[string]string, cmd string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-c", cmd)
	c.Dir = dir
	c.Env = envList(env)
	c.Stdin = nil // no terminal: a command that must ask refuses
	out, err := c.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	t.Logf("ran the instance %s: exit %d", cmd, code)
	return string(out), code
}

// startREADMEServer starts cmd in the background, in its own process
// group, and waits until addr accepts connections.
func startREADMEServer(t *testing.T, dir string, env map[string]string, cmd, addr string) *exec.Cmd {
	t.Helper()
	c := exec.Command("bash", "-c", "exec "+cmd)
	c.Dir = dir
	c.Env = envList(env)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(6 * time.Minute) // go run may compile first
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) || c.ProcessState != nil {
			t.Fatalf("%s never listened on %s; output:\n%s", cmd, addr, out.String())
		}
		time.Sleep(100 * time.Millisecond) // polling a port, not waiting out a TTL
	}
	t.Logf("started: %s (on %s)", cmd, addr)
	return c
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
