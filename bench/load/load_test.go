package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testClient() *http.Client {
	return &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func TestDrive(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		want       int
		n          int
		wantOK     bool // some requests succeed, none fail
		wantErrKey string
	}{
		{name: "redirects counted as successes", status: http.StatusFound, want: http.StatusFound, n: 100000, wantOK: true},
		{name: "another status is an error", status: http.StatusBadGateway, want: http.StatusFound, n: 100000, wantErrKey: "status 502"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "/company")
				w.WriteHeader(tt.status)
			}))
			defer ts.Close()
			res := drive(context.Background(), testClient(), prepareCodes(ts.URL, "t", tt.n), driveOptions{Concurrency: 4, Duration: 150 * time.Millisecond, WantStatus: tt.want})
			if tt.wantOK {
				if res.OK == 0 || res.Errors != 0 {
					t.Fatalf("got ok %d, errors %d (%v); want some ok and no errors", res.OK, res.Errors, res.ErrorKind)
				}
				if len(res.Latencies) != res.OK {
					t.Errorf("got %d latencies, want one per success (%d)", len(res.Latencies), res.OK)
				}
				if res.percentile(0.5) > res.percentile(0.99) || res.percentile(0.99) > res.percentile(1) {
					t.Errorf("got p50 %v, p99 %v, max %v; want them in order", res.percentile(0.5), res.percentile(0.99), res.percentile(1))
				}
			} else {
				if res.OK != 0 || res.ErrorKind[tt.wantErrKey] == 0 || res.ErrorKind[tt.wantErrKey] != res.Errors {
					t.Fatalf("got ok %d, errors %v; want only %q errors", res.OK, res.ErrorKind, tt.wantErrKey)
				}
			}
			if res.Exhausted {
				t.Errorf("got exhausted after %d requests of %d; want the duration to end the phase", res.OK+res.Errors, tt.n)
			}
			if res.Elapsed < 150*time.Millisecond {
				t.Errorf("got elapsed %v, want at least the 150ms duration", res.Elapsed)
			}
		})
	}
}

// TestDriveSendsEachRequestOnce checks that every prepared request is sent
// exactly once, so that no code is ever presented twice, and that running
// out of requests ends the phase.
func TestDriveSendsEachRequestOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Query().Get("code")]++
		mu.Unlock()
		http.Redirect(w, r, "/company", http.StatusFound)
	}))
	defer ts.Close()
	const n = 500
	res := drive(context.Background(), testClient(), prepareCodes(ts.URL, "once", n), driveOptions{Concurrency: 8, Duration: time.Minute, WantStatus: http.StatusFound})
	if !res.Exhausted || res.OK != n || res.Errors != 0 {
		t.Fatalf("got exhausted %v, ok %d, errors %d; want exhausted, %d ok, no errors", res.Exhausted, res.OK, res.Errors, n)
	}
	if len(seen) != n {
		t.Errorf("got %d distinct codes, want %d", len(seen), n)
	}
	for code, k := range seen {
		if k != 1 {
			t.Errorf("code %s sent %d times, want once", code, k)
		}
	}
}

// fakeBackend plays finchconnect's side of the browser flow: POST /connect
// sets the browser cookie and records a state bound to it; the callback
// accepts a state once, from the browser that started it.
type fakeBackend struct {
	mu     sync.Mutex
	states map[string]string // state → browser cookie value
	next   int
}

func (f *fakeBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/connect":
		if err := r.ParseForm(); err != nil || r.PostForm.Get("customer_id") == "" || len(r.PostForm["products"]) == 0 {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		browser := ""
		if c, err := r.Cookie("fc_browser"); err == nil {
			browser = c.Value
		} else {
			f.next++
			browser = fmt.Sprintf("browser-%d", f.next)
			http.SetCookie(w, &http.Cookie{Name: "fc_browser", Value: browser, Path: "/"})
		}
		f.next++
		state := fmt.Sprintf("st/%d+", f.next) // characters that need escaping
		f.states[state] = browser
		http.Redirect(w, r, "http://connect.test/authorize?session=s&state="+strings.NewReplacer("/", "%2F", "+", "%2B").Replace(state), http.StatusSeeOther)
	case r.Method == http.MethodGet && r.URL.Path == "/callback":
		state := r.URL.Query().Get("state")
		c, err := r.Cookie("fc_browser")
		if b, ok := f.states[state]; !ok || err != nil || c.Value != b {
			http.Error(w, "state mismatch", http.StatusBadRequest)
			return
		}
		delete(f.states, state)
		http.Redirect(w, r, "/connections/conn-"+r.URL.Query().Get("code"), http.StatusSeeOther)
	default:
		http.NotFound(w, r)
	}
}

func TestBrowserFlows(t *testing.T) {
	fake := &fakeBackend{states: map[string]string{}}
	ts := httptest.NewServer(fake)
	defer ts.Close()
	const n, browsers = 300, 7
	reqs, err := prepareBrowserFlows(context.Background(), testClient(), ts.URL, "bf", n, browsers)
	if err != nil {
		t.Fatal(err)
	}
	cookies := map[string]bool{}
	for _, r := range reqs {
		cookies[r.Cookie] = true
	}
	if len(cookies) != browsers {
		t.Errorf("got %d distinct browser cookies, want %d", len(cookies), browsers)
	}
	res := drive(context.Background(), testClient(), reqs, driveOptions{
		Concurrency: 8, Duration: time.Minute, WantStatus: http.StatusSeeOther, IDFromLocation: connectionFromLocation,
	})
	if res.OK != n || res.Errors != 0 || res.Distinct != n {
		t.Fatalf("got ok %d, errors %v, distinct connections %d; want %d ok, no errors, %d distinct", res.OK, res.ErrorKind, res.Distinct, n, n)
	}
}

func TestBrowserFlowsReportsRefusal(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "rate limited", http.StatusTooManyRequests)
	}))
	defer ts.Close()
	_, err := prepareBrowserFlows(context.Background(), testClient(), ts.URL, "x", 10, 2)
	if err == nil || !strings.Contains(err.Error(), "status 429") {
		t.Errorf("got error %v, want one naming status 429", err)
	}
}

func TestPrepareReads(t *testing.T) {
	got := prepareReads("http://t", "/connections/{id}", []string{"a", "b/c"}, "Bearer k", 3)
	want := []request{
		{URL: "http://t/connections/a", Auth: "Bearer k"},
		{URL: "http://t/connections/b%2Fc", Auth: "Bearer k"},
		{URL: "http://t/connections/a", Auth: "Bearer k"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("prepareReads (-want +got):\n%s", diff)
	}
}

func TestPercentile(t *testing.T) {
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	r := result{Latencies: lat}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{0, time.Millisecond},
	}
	for _, tt := range tests {
		if got := r.percentile(tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := (result{}).percentile(0.99); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", stat: "1234 (node) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 11 0 5 100 200", want: 2870 * time.Millisecond},
		{name: "name with spaces and parentheses", stat: "99 (a) b (c) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 100 200", want: 100 * time.Millisecond},
		{name: "truncated", stat: "99 (x) R 1 2", wantErr: true},
		{name: "no name", stat: "garbage", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStatusField(t *testing.T) {
	status := "Name:\tfinchconnect\nVmPeak:\t 2000 kB\nVmHWM:\t   38400 kB\nVmRSS:\t 30000 kB\n"
	got, err := parseStatusField([]byte(status), "VmHWM")
	if err != nil || got != 38400<<10 {
		t.Errorf("got %d, %v; want %d", got, err, 38400<<10)
	}
	if _, err := parseStatusField([]byte(status), "VmSwap"); err == nil {
		t.Error("got no error for a missing field, want one")
	}
}

// TestProcOfSelf reads this test process's own /proc entries, as load
// reads a target's.
func TestProcOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the clock moves by at least a tick. A fixed spin of
	// wall time is not enough on a loaded machine, where the process may
	// be given no CPU at all for it; 10 s of wall time is far more than a
	// tick of CPU needs even then.
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	var after time.Duration
	for {
		for range 1 << 20 {
			x++
		}
		var err error
		if after, err = cpuTime(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after > before || time.Now().After(deadline) {
			break
		}
	}
	if after <= before {
		t.Errorf("got CPU time %v after %v of spinning (x=%d), want it to grow", after, before, x)
	}
	peak, err := peakRSS(os.Getpid())
	if err != nil || peak < 1<<20 {
		t.Errorf("got peak RSS %d, %v; want at least 1 MiB", peak, err)
	}
}

func TestConnectionFromLocation(t *testing.T) {
	for loc, want := range map[string]string{
		"/connections/conn-1":              "conn-1",
		"/app/connections/conn-2?x=1":      "conn-2",
		"/company":                         "",
		"http://a.test/connections/conn-3": "conn-3",
	} {
		if got := connectionFromLocation(loc); got != want {
			t.Errorf("connectionFromLocation(%q) = %q, want %q", loc, got, want)
		}
	}
}

// TestRun drives a stand-in target through the command's own entry point
// and checks the JSON line it prints.
func TestRun(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/company" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"legal_name":"Acme"}`))
	}))
	defer ts.Close()
	var out, errOut bytes.Buffer
	args := []string{"-mode", "read", "-target", ts.URL, "-path", "/company", "-c", "2", "-d", "100ms", "-pid", fmt.Sprint(os.Getpid()), "-label", "smoke"}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("run: %v (stderr %q)", err, errOut.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if rep.Label != "smoke" || rep.OK == 0 || rep.Errors != 0 || rep.RPS <= 0 || rep.PeakRSSMiB <= 0 {
		t.Errorf("got %+v; want label smoke, some ok, no errors, a rate and a peak RSS", rep)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-target", "http://x", "-mode", "write"},
		{"-target", "http://x", "-kind", "nginx"},
		{"-target", "http://x", "-c", "0"},
	} {
		if err := run(context.Background(), args, new(bytes.Buffer), new(bytes.Buffer)); err == nil {
			t.Errorf("run(%q): got no error, want one", args)
		}
	}
}
