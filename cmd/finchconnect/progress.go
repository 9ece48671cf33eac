package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// progress reports a long operation: a bar redrawn in place with count,
// total, rate and time left on a terminal, a plain line every few seconds
// otherwise (CI logs, files).
type progress struct {
	w     io.Writer
	label string
	tty   bool
	start time.Time
	last  time.Time
	now   func() time.Time
	drawn bool
}

func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, label: label, tty: isTerminal(w), start: time.Now(), now: time.Now}
}

// update reports done out of total (total 0: not known yet).
func (p *progress) update(done, total int) {
	now := p.now()
	every := 2 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if !p.last.IsZero() && now.Sub(p.last) < every && done != total {
		return
	}
	p.last = now
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %s\n", p.label, p.counts(done, total, now))
		return
	}
	const width = 30
	bar := strings.Repeat("░", width)
	if total > 0 {
		n := min(width, done*width/total)
		bar = strings.Repeat("█", n) + strings.Repeat("░", width-n)
	}
	fmt.Fprintf(p.w, "\r\033[K%s [%s] %s", p.label, bar, p.counts(done, total, now))
	p.drawn = true
}

// minRateWindow is how long an operation runs before its rate and time
// left are shown: the first record a millisecond in is not "1150748/s".
const minRateWindow = time.Second

// counts is "120/3011 (4%), 850/s, 3s left"; without a total, "120, 850/s".
// Within the first second there is no rate yet: "1/3011 (0%)".
func (p *progress) counts(done, total int, now time.Time) string {
	elapsed := now.Sub(p.start)
	rate, perSec := 0.0, ""
	if elapsed >= minRateWindow {
		rate = float64(done) / elapsed.Seconds()
		perSec = fmt.Sprintf(", %.0f/s", rate)
	}
	if total <= 0 || done > total {
		return fmt.Sprintf("%d%s", done, perSec)
	}
	s := fmt.Sprintf("%d/%d (%d%%)%s", done, total, done*100/total, perSec)
	switch {
	case done == total:
		s += ", done in " + roundDuration(elapsed)
	case rate > 0:
		s += fmt.Sprintf(", %s left", (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second))
	}
	return s
}

// roundDuration is d to a precision a person reads: milliseconds below ten
// seconds, whole seconds from there, and "<1ms" rather than "0s".
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "<1ms"
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// finish ends the bar's line on a terminal.
func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// summary is the result of a long operation: a table for people, JSON for
// machines (-json).
type summary interface{ rows() [][2]string }

func printSummary(w io.Writer, asJSON bool, s summary) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range s.rows() {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
