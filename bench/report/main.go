// Command report turns the JSON lines that bench/load printed during one
// run of bench/run.sh into the Markdown of bench/results/latest.md: the
// machine, a table per path, the check that stored connections equal
// successful callbacks, and the ratios against the targets of issue #8.
//
// Each line's "role" names the target and the phase: floor, peer, fc-sqlite,
// fc-redis and fc-redis-ap (autopipelined); callback, read, page and proxy (e.g. "fc-redis.page").
// Stored counts come as -stored ROLE=N flags. It exits with status 2 when a
// stored count differs from its run's successful callbacks, after writing
// the report.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// errMismatch reports a stored count that differs from the successes.
var errMismatch = errors.New("stored connections differ from successful callbacks")

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout)
	if errors.Is(err, errMismatch) {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// phase is one line of bench/load's output.
type phase struct {
	Label      string         `json:"label"`
	Role       string         `json:"role"`
	OK         int            `json:"ok"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds"`
	Seconds    float64        `json:"seconds"`
	Exhausted  bool           `json:"exhausted"`
	RPS        float64        `json:"rps"`
	P50        float64        `json:"p50_ms"`
	P99        float64        `json:"p99_ms"`
	Max        float64        `json:"max_ms"`
	Distinct   int            `json:"distinct_connections"`
	CPU        float64        `json:"cpu_us_per_req"`
	PeakRSS    float64        `json:"peak_rss_mib"`
	UpCPU      float64        `json:"upstream_cpu_us_per_req"`
	StoreCPU   float64        `json:"store_cpu_us_per_req"`
	WarmupOK   int            `json:"warmup_ok"`
	WarmupErrs int            `json:"warmup_errors"`
	LoadCPU    float64        `json:"load_cpu_us_per_req"`
}

// coresBusy is how many cores the processes of a phase kept busy: the
// target, the upstream, Redis and the load generator, all on the same
// machine.
// The CPU columns are per request sent, failed ones included.
func (p phase) coresBusy() float64 {
	if p.Seconds <= 0 {
		return 0
	}
	sent := float64(p.OK+p.Errors) / p.Seconds
	return sent * (p.CPU + p.UpCPU + p.StoreCPU + p.LoadCPU) / 1e6
}

// storedFlags collects -stored ROLE=N.
type storedFlags map[string]int

func (s storedFlags) String() string { return fmt.Sprint(map[string]int(s)) }

func (s storedFlags) Set(v string) error {
	role, n, ok := strings.Cut(v, "=")
	k, err := strconv.Atoi(n)
	if !ok || err != nil || role == "" {
		return fmt.Errorf("want ROLE=N, got %q", v)
	}
	s[role] = k
	return nil
}

func run(args []string, in io.Reader, out io.Writer) error {
	stored := storedFlags{}
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.Var(stored, "stored", "ROLE=N: connections stored after that callback run (repeatable)")
	notes := fs.String("notes", "", "a line about the settings (concurrency, duration, upstream, Redis)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var phases []phase
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var p phase
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			return fmt.Errorf("line %q: %v", line, err)
		}
		phases = append(phases, p)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	md, err := render(phases, stored, machine(), *notes, time.Now())
	fmt.Fprint(out, md)
	return err
}

// render writes the report. It returns errMismatch (after the whole report)
// when a callback run's stored count differs from its successes.
func render(phases []phase, stored map[string]int, mach, notes string, now time.Time) (string, error) {
	by := map[string]phase{}
	for _, p := range phases {
		by[p.Role] = p
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Load run %s\n\n", now.UTC().Format("2006-01-02T15:04Z"))
	fmt.Fprintf(&b, "Machine: %s.", mach)
	if notes != "" {
		fmt.Fprintf(&b, " %s", notes)
	}
	b.WriteString("\n\n")

	var mismatch []string
	table := func(title, phaseName string) {
		var rows []phase
		for _, p := range phases {
			if strings.HasSuffix(p.Role, "."+phaseName) {
				rows = append(rows, p)
			}
		}
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(&b, "## %s\n\n", title)
		b.WriteString("| run | ok | errors | req/s | p50 ms | p99 ms | max ms | target CPU µs/req | target peak RSS MiB | upstream CPU µs/req | Redis CPU µs/req | load generator CPU µs/req | cores busy |")
		if phaseName == "callback" {
			b.WriteString(" stored |")
		}
		b.WriteString("\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		if phaseName == "callback" {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, p := range rows {
			label := p.Label
			if p.Exhausted {
				label += " (ran out of prepared requests)"
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f |", label, p.OK, errorCell(p), p.RPS, p.P50, p.P99, p.Max, p.CPU, p.PeakRSS, p.UpCPU, p.StoreCPU, p.LoadCPU, p.coresBusy())
			if phaseName == "callback" {
				cell := "— (no store)"
				if n, ok := stored[p.Role]; ok {
					// The warm-up's callbacks are stored too.
					all := p.OK + p.WarmupOK
					cell = fmt.Sprintf("%d = ok", n)
					if p.WarmupOK > 0 {
						cell = fmt.Sprintf("%d = ok + %d warm-up", n, p.WarmupOK)
					}
					if p.WarmupErrs > 0 {
						cell += fmt.Sprintf(" (%d warm-up errors)", p.WarmupErrs)
					}
					if n != all || (p.Distinct > 0 && p.Distinct != all) {
						cell = fmt.Sprintf("**%d ≠ %d ok + %d warm-up**", n, p.OK, p.WarmupOK)
						mismatch = append(mismatch, fmt.Sprintf("%s: %d stored, %d ok (%d in the warm-up), %d distinct", p.Role, n, all, p.WarmupOK, p.Distinct))
					}
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	table("Callbacks", "callback")
	table("Reads", "read")
	table("Reads: finchconnect's company page", "page")
	table("Reads: finchconnect's /v1 proxy (GET /employer/company)", "proxy")

	b.WriteString("## Against the targets of issue #8\n\n| target | measured | met? |\n|---|---|---|\n")
	ratio := func(target string, num, den string, field func(phase) float64, want float64, atMost bool) {
		n, ok1 := by[num]
		d, ok2 := by[den]
		if !ok1 || !ok2 || field(d) == 0 {
			fmt.Fprintf(&b, "| %s | not measured | — |\n", target)
			return
		}
		r := field(n) / field(d)
		met := r >= want
		if atMost {
			met = r <= want
		}
		fmt.Fprintf(&b, "| %s | %s / %s = %.2f | %s |\n", target, num3(field(n)), num3(field(d)), r, yesNo(met))
	}
	rps := func(p phase) float64 { return p.RPS }
	p99 := func(p phase) float64 { return p.P99 }
	ratio("callbacks on Redis ≥ 0.8 × the floor's", "fc-redis.callback", "floor.callback", rps, 0.8, false)
	ratio("callbacks on Redis ≥ 4 × the peer's", "fc-redis.callback", "peer.callback", rps, 4, false)
	ratio("callback p99 on Redis ≤ 1/3 of the peer's", "fc-redis.callback", "peer.callback", p99, 1.0/3, true)
	ratio("callbacks on Redis, autopipelined ≥ 0.8 × the floor's", "fc-redis-ap.callback", "floor.callback", rps, 0.8, false)
	ratio("callbacks on Redis, autopipelined ≥ 4 × the peer's", "fc-redis-ap.callback", "peer.callback", rps, 4, false)
	ratio("callback p99 on Redis, autopipelined ≤ 1/3 of the peer's", "fc-redis-ap.callback", "peer.callback", p99, 1.0/3, true)
	ratio("callbacks on SQLite (durable) ≥ 3 × the peer's", "fc-sqlite.callback", "peer.callback", rps, 3, false)
	ratio("company page (Redis) ≥ 4 × the peer's company route", "fc-redis.page", "peer.read", rps, 4, false)
	ratio("company page (SQLite) ≥ 4 × the peer's company route", "fc-sqlite.page", "peer.read", rps, 4, false)
	ratio("company page (Redis, autopipelined) ≥ 4 × the peer's company route", "fc-redis-ap.page", "peer.read", rps, 4, false)
	ratio("/v1 proxy company (Redis) ≥ 4 × the peer's company route", "fc-redis.proxy", "peer.read", rps, 4, false)
	ratio("/v1 proxy company (Redis, autopipelined) ≥ 4 × the peer's company route", "fc-redis-ap.proxy", "peer.read", rps, 4, false)
	ratio("/v1 proxy company (SQLite) ≥ 4 × the peer's company route", "fc-sqlite.proxy", "peer.read", rps, 4, false)
	fcPeak, peerPeak := 0.0, 0.0
	for _, p := range phases {
		switch {
		case strings.HasPrefix(p.Role, "fc-"):
			fcPeak = max(fcPeak, p.PeakRSS)
		case strings.HasPrefix(p.Role, "peer."):
			peerPeak = max(peerPeak, p.PeakRSS)
		}
	}
	if fcPeak > 0 && peerPeak > 0 {
		r := fcPeak / peerPeak
		fmt.Fprintf(&b, "| finchconnect's peak memory ≤ 1/4 of the peer's (highest of any phase) | %.0f / %.0f MiB = %.2f | %s |\n", fcPeak, peerPeak, r, yesNo(r <= 0.25))
	}
	b.WriteString("\n")
	if len(mismatch) > 0 {
		fmt.Fprintf(&b, "**Stored connections differ from successful callbacks:** %s.\n", strings.Join(mismatch, "; "))
		return b.String(), fmt.Errorf("%w: %s", errMismatch, strings.Join(mismatch, "; "))
	}
	b.WriteString("Stored connections equal successful callbacks (and, for finchconnect, distinct connection ids in the redirects) in every callback run that has a store.\n")
	return b.String(), nil
}

func errorCell(p phase) string {
	if p.Errors == 0 {
		return "0"
	}
	var kinds []string
	for k, v := range p.ErrorKinds {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, v))
	}
	return fmt.Sprintf("%d (%s)", p.Errors, strings.Join(kinds, ", "))
}

// num3 prints a figure to about three significant digits, without an
// exponent.
func num3(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// machine describes this machine: cores, memory, CPU model, load.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				mem = fmt.Sprintf(", %.1f GiB RAM", kb/(1<<20))
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = fmt.Sprintf(", load average %s %s %s when the report was written", f[0], f[1], f[2])
		}
	}
	return fmt.Sprintf("%d cores (%s)%s%s", runtime.NumCPU(), model, mem, load)
}
