package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress reports a long operation: a redrawn bar on a terminal, a log line
// every few seconds otherwise (CI logs, files).
type progress struct {
	w     io.Writer
	label string
	tty   bool
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, label string) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, label: label, tty: tty, start: time.Now()}
}

// update reports done out of total (total 0: unknown).
func (p *progress) update(done, total int) {
	now := time.Now()
	if p.tty {
		if now.Sub(p.last) < 100*time.Millisecond && done != total {
			return
		}
		p.last = now
		const width = 30
		bar := strings.Repeat(" ", width)
		pct := 0.0
		if total > 0 {
			pct = float64(done) / float64(total)
			n := int(pct * width)
			bar = strings.Repeat("█", n) + strings.Repeat("░", width-n)
		}
		fmt.Fprintf(p.w, "\r%s [%s] %d/%d %3.0f%% %s", p.label, bar, done, total, pct*100, p.rate(done))
		return
	}
	if now.Sub(p.last) < 2*time.Second && done != total {
		return
	}
	p.last = now
	fmt.Fprintf(p.w, "%s: %d/%d %s\n", p.label, done, total, p.rate(done))
}

func (p *progress) rate(done int) string {
	secs := time.Since(p.start).Seconds()
	if secs <= 0 {
		return ""
	}
	return fmt.Sprintf("(%.0f/s)", float64(done)/secs)
}

// finish ends the bar's line on a terminal.
func (p *progress) finish() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
