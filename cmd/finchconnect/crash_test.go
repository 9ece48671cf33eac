package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The binaries the real-process tests run, built once per test binary run
// into binDir, which TestMain removes.
var (
	binMu    sync.Mutex
	binDir   string
	binBuild = map[string]*builtBinary{}
)

// builtBinary is one build of finchconnect: done is closed once path is
// built, or err says why not.
type builtBinary struct {
	done chan struct{}
	path string
	err  error
}

// prebuiltTags are the build tags of the binary the tests named in
// prebuiltFor run. TestMain starts building it before the first test when
// the run may reach one of them: the build (mostly compiling this package
// again with the tags, and linking) then overlaps the sequential tests, on
// a core they leave idle, instead of delaying the parallel ones.
const prebuiltTags = "failpoints"

var prebuiltFor = []string{"TestCrash_KillAtEachPoint", "TestMain_SecondSignalForcesExit"}

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() && runMayMatch(prebuiltFor) {
		startBuild(prebuiltTags)
	}
	code := m.Run()
	binMu.Lock()
	builds := binBuild
	binMu.Unlock()
	for _, b := range builds {
		<-b.done // a build still running writes into binDir
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// runMayMatch reports whether -test.run may select one of the top-level
// tests names (it may be unset, or not a plain pattern for them).
func runMayMatch(names []string) bool {
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	top, _, _ := strings.Cut(f.Value.String(), "/")
	re, err := regexp.Compile(top)
	if err != nil {
		return true
	}
	for _, n := range names {
		if re.MatchString(n) {
			return true
		}
	}
	return false
}

// startBuild starts compiling finchconnect with tags in the background,
// once per test binary run, and returns the build.
func startBuild(tags string) *builtBinary {
	binMu.Lock()
	defer binMu.Unlock()
	if b, ok := binBuild[tags]; ok {
		return b
	}
	b := &builtBinary{done: make(chan struct{})}
	binBuild[tags] = b
	if binDir == "" {
		dir, err := os.MkdirTemp("", "finchconnect-bin-")
		if err != nil {
			b.err = err
			close(b.done)
			return b
		}
		binDir = dir
	}
	b.path = filepath.Join(binDir, "finchconnect-"+strings.ReplaceAll(tags, ",", "-"))
	go func() {
		defer close(b.done)
		cmd := exec.Command("go", "build", "-tags", tags, "-o", b.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build -tags %s: %v\n%s", tags, err, out)
		}
	}()
	return b
}

// buildBinary returns finchconnect compiled with the given build tags,
// once per test binary run: the tests that run the real process share it,
// as linking it is most of their CPU time.
func buildBinary(t *testing.T, tags string) string {
	t.Helper()
	b := startBuild(tags)
	<-b.done
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// proc is a finchconnect process started from a built binary.
type proc struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan error
}

func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("%s %v: no listening line: %v\nstderr:\n%s", bin, args, err, p.stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("first line = %q", line)
	}
	p.url = addr
	waitForReady(t, p.url+healthPath(args))
	return p
}

// waitKilled waits for the process to die and checks that SIGKILL did it.
func (p *proc) waitKilled(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("process exited with %v, want killed by SIGKILL", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("process exited with %v, want killed by SIGKILL", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the process did not die at the failpoint")
	}
}

type sandboxStats struct {
	TokenExchanges  int `json:"token_exchanges"`
	FailedExchanges int `json:"failed_exchanges"`
}

func getStats(t *testing.T, sandboxURL string) sandboxStats {
	t.Helper()
	res, err := http.Get(sandboxURL + "/_sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	var s sandboxStats
	if err := decodeJSON(res, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCrash_KillAtEachPoint kills the real process with SIGKILL at every
// named point of a callback, restarts it, lets the user retry, and checks the
// invariants: no code is sent to Finch twice, no plaintext token is on disk,
// every exchanged token is stored (none orphaned), and the retry lands on a
// clear page.
func TestCrash_KillAtEachPoint(t *testing.T) {
	t.Parallel() // its own processes, ports and folders; mostly waiting
	if testing.Short() {
		t.Skip("builds a binary and runs real processes; skipped with -short")
	}
	bin := buildBinary(t, "failpoints")
	sb := startProc(t, bin, nil, "sandbox", "-addr", "127.0.0.1:0")
	var key bytes.Buffer
	if err := run(context.Background(), []string{"finchconnect", "keygen"}, nil, nil, &key, io.Discard); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"FINCH_CLIENT_ID=sandbox-client-id", "FINCH_CLIENT_SECRET=sandbox-client-secret",
		"FINCH_BASE_URL=" + sb.url, "FINCHCONNECT_KEYS=" + strings.TrimSpace(key.String()),
		"FINCHCONNECT_RECOVER_AFTER=1s", "FINCHCONNECT_CONNECT_LIMIT=0",
	}

	points := []struct {
		name string
		// stored: the retry after the restart must show the connection
		// (true), or a page asking to connect again (false).
		stored bool
		// reauth: the killed callback re-authenticates a stored
		// connection. A new connection goes into the vault in one write;
		// only a write that finds the connection stored (or fails) takes
		// the write-ahead path, where "after-stage" is.
		reauth bool
	}{
		{"before-exchange", false, false},
		{"after-stage", true, true},
		{"after-commit", true, false},
		{"before-response", true, false},
	}
	for _, pt := range points {
		name := pt.name
		if pt.reauth {
			name += "/reauth"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"-addr", "127.0.0.1:0", "-data-dir", dir}
			app := startProc(t, bin, append(env, "FINCHCONNECT_FAILPOINT="+pt.name), args...)
			b := newBrowser(t)
			cb := connectThroughSandbox(t, b, app.url, "crash-"+pt.name)
			oldToken := ""
			if pt.reauth {
				var id string
				id, cb = reauthenticateThroughSandbox(t, b, app.url, cb)
				oldToken = revealToken(t, dir, key.String(), id)
			}
			before := getStats(t, sb.url)
			if _, err := b.c.Get(cb); err == nil {
				t.Fatalf("the callback got an answer; want the process killed at %s", pt.name)
			}
			app.waitKilled(t)

			app2 := startProc(t, bin, env, args...)
			retry := strings.Replace(cb, app.url, app2.url, 1)
			status, loc, body := b.do("GET", retry, nil)
			after := getStats(t, sb.url)
			if got := after.FailedExchanges - before.FailedExchanges; got != 0 {
				t.Errorf("Finch saw %d failed exchanges: a code was sent twice", got)
			}
			exchanged := after.TokenExchanges - before.TokenExchanges
			if pt.stored {
				if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/connections/") {
					t.Fatalf("retry after restart = %d → %q, want the connection; body:\n%s\nstderr:\n%s", status, loc, body, app2.stderr.String())
				}
				if _, _, page := b.do("GET", app2.url+loc, nil); !strings.Contains(page, `id="legal-name"`) {
					t.Errorf("the recovered connection's page shows no company:\n%s", page)
				}
				if oldToken != "" && revealToken(t, dir, key.String(), strings.TrimPrefix(loc, "/connections/")) == oldToken {
					t.Error("the vault still holds the token from before the re-authentication; want the recovered new one")
				}
			} else if status < 400 || !strings.Contains(body, `id="error"`) || !strings.Contains(body, "connect") {
				t.Errorf("retry after restart = %d, want a clear error page asking to connect again; body:\n%s", status, body)
			}

			// Every token Finch issued is in the vault: none orphaned.
			var out bytes.Buffer
			envMap := map[string]string{"FINCHCONNECT_KEYS": strings.TrimSpace(key.String())}
			if err := run(context.Background(), []string{"finchconnect", "token", "list", "-json", "-data-dir", dir},
				func(k string) string { return envMap[k] }, nil, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if stored := strings.Count(out.String(), `"connection_id"`); stored != exchanged {
				t.Errorf("Finch exchanged %d codes, the vault holds %d connections", exchanged, stored)
			}
			if exchanged > 0 {
				assertNoPlaintextTokens(t, dir, key.String())
			}
		})
	}
}

// reauthenticateThroughSandbox finishes the callback cb of a new
// connection, starts its re-authentication from the app and signs in again
// at the sandbox. It returns the connection's id and the re-authentication's
// callback URL, not yet visited.
func reauthenticateThroughSandbox(t *testing.T, b *browser, base, cb string) (id, reauthCallback string) {
	t.Helper()
	status, loc, body := b.do("GET", cb, nil)
	id, ok := strings.CutPrefix(loc, "/connections/")
	if status != http.StatusSeeOther || !ok {
		t.Fatalf("callback of the new connection = %d → %q; body:\n%s", status, loc, body)
	}
	status, loc, body = b.do("POST", base+"/connections/"+id+"/reauthenticate", url.Values{})
	if status != http.StatusSeeOther {
		t.Fatalf("POST reauthenticate = %d; body:\n%s", status, body)
	}
	_, _, creds := b.do("GET", loc, nil)
	action, vals := hiddenFields(t, creds, `id="password"`)
	vals.Set("username", "authorized_simple")
	vals.Set("password", "letmein")
	status, loc, body = b.do("POST", action, vals)
	if status != http.StatusFound && status != http.StatusSeeOther {
		t.Fatalf("sign in again = %d; body:\n%s", status, body)
	}
	return id, loc
}

// revealToken is the operator's `token get -reveal` of connection id.
func revealToken(t *testing.T, dir, keys, id string) string {
	t.Helper()
	envMap := map[string]string{"FINCHCONNECT_KEYS": strings.TrimSpace(keys)}
	var tok bytes.Buffer
	if err := run(context.Background(), []string{"finchconnect", "token", "get", "-reveal", "-data-dir", dir, id},
		func(k string) string { return envMap[k] }, nil, &tok, io.Discard); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(tok.String())
}

// assertNoPlaintextTokens reveals every stored token with the operator
// command and checks that no file of the data folder contains one.
func assertNoPlaintextTokens(t *testing.T, dir, keys string) {
	t.Helper()
	envMap := map[string]string{"FINCHCONNECT_KEYS": strings.TrimSpace(keys)}
	getenv := func(k string) string { return envMap[k] }
	var list bytes.Buffer
	if err := run(context.Background(), []string{"finchconnect", "token", "list", "-json", "-data-dir", dir}, getenv, nil, &list, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(list.String(), "\n") {
		id, ok := strings.CutPrefix(strings.TrimSpace(line), `"connection_id": "`)
		if !ok {
			continue
		}
		id = strings.TrimSuffix(strings.TrimSuffix(id, ","), `"`)
		var tok bytes.Buffer
		if err := run(context.Background(), []string{"finchconnect", "token", "get", "-reveal", "-data-dir", dir, id}, getenv, nil, &tok, io.Discard); err != nil {
			t.Fatal(err)
		}
		token := strings.TrimSpace(tok.String())
		err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(token)) {
				t.Errorf("%s contains a plaintext token", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
