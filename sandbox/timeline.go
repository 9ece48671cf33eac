package sandbox

import (
	"slices"
	"time"
)

// The employer's timeline.
//
// A connection's employer changes as the sandbox clock moves, the way a
// real one does between two syncs, and deterministically: the same seed
// and the same date give the same data, across restarts, with nothing
// stored but the seed. Finch refreshes a connection's data every 24 hours
// (finch-api-more.md §8.3); the sandbox does too, at the connection's
// creation time of day: refresh k happens at Created + k × 24 h, and the
// employer data routes serve the data as of the latest refresh.
//
// Refresh k applies the events drawn from rng(seed, k) to the employer
// of refresh k-1: 1 + (active people)/250 events, each a hire (15 %), a
// termination (15 %) or a raise (70 %), dated the refresh's UTC date, so
// that every day shows a difference. Pay runs whose pay date has come by a
// refresh's date appear at that refresh. Reads stay cheap: the employer of
// the latest refresh is cached per connection and moved forward event by
// event when the clock passes the next refresh; only a clock moved back,
// or a restart, replays from the connection's creation, and that replay
// stops at maxRefreshes.

// refreshEvery is Finch's data refresh cadence for automated connections.
const refreshEvery = 24 * time.Hour

// maxRefreshes bounds the timeline: after ten years of refreshes the
// employer stops changing (the payroll history still follows the clock).
const maxRefreshes = 3660

// maxNoticed is how many refreshes' webhooks one notice sends at most: a
// connection no one looked at for longer sends only its last month's.
const maxNoticed = 31

// maxNoticeEvents bounds the webhooks one notice sends, below the
// webhook queue's 1,024 so that one notice does not overflow it.
const maxNoticeEvents = 1000

// payrollState is what a connection remembers of its data beyond the
// seed: the sandbox data API's changes (bounded by the connection's people
// and maxSandboxPayments) and the last refresh whose webhooks were sent.
type payrollState struct {
	Individuals map[string]map[string]any `json:"individuals,omitempty"` // PUT /sandbox/individual/{id}, merged
	Employments map[string]map[string]any `json:"employments,omitempty"` // PUT /sandbox/employment/{id}, merged
	Payments    []sandboxPayment          `json:"payments,omitempty"`    // POST /sandbox/payment
	Seen        int                       `json:"refreshes_seen,omitempty"`

	gen int // counts changes, so that the cached view knows to rebuild
}

// sandboxPayment is a payment POST /sandbox/payment made, stored as the
// employer data routes show it.
type sandboxPayment struct {
	ID         string           `json:"id"`
	PayDate    string           `json:"pay_date"`
	Start      string           `json:"start_date"`
	End        string           `json:"end_date"`
	Entity     int              `json:"entity"`
	Payment    map[string]any   `json:"payment"`
	Statements []map[string]any `json:"statements"`
}

func (c *connection) payrollState() *payrollState {
	if c.Payroll == nil {
		c.Payroll = &payrollState{}
	}
	return c.Payroll
}

// tlEvent is one change the timeline made.
type tlEvent struct {
	Refresh int
	Kind    string // hire, termination or raise
	ID      string // the individual's
}

// timeline is a connection's generated employer after some refreshes,
// before the sandbox data API's changes.
type timeline struct {
	k      int
	people []person // the generated employer and its hires
	active []int    // indices in people of the active, whom events pick from
	hires  int
	log    []tlEvent
}

// refreshes is how many refreshes connection c has had by now.
func (c *connection) refreshes(now time.Time) int {
	if c.Created.IsZero() || !now.After(c.Created) {
		return 0
	}
	return int(min(now.Sub(c.Created)/refreshEvery, maxRefreshes))
}

// refreshTime is when refresh k happened.
func (c *connection) refreshTime(k int) time.Time {
	return c.Created.Add(time.Duration(k) * refreshEvery)
}

// newTimeline is the employer at connection time.
func (c *connection) newTimeline() *timeline {
	tl := &timeline{people: make([]person, 0, c.Employees)}
	for i := range c.Employees {
		p := c.genPerson(i)
		if p.Active && p.End == "" {
			tl.active = append(tl.active, i)
		}
		tl.people = append(tl.people, p)
	}
	return tl
}

// advance returns the timeline after refresh k (k ≥ tl.k), leaving tl as
// it was: the cached view may still be read.
func (tl *timeline) advance(c *connection, k int) *timeline {
	if k <= tl.k {
		return tl
	}
	next := &timeline{k: tl.k, people: slices.Clone(tl.people), active: slices.Clone(tl.active), hires: tl.hires, log: slices.Clip(tl.log)}
	for next.k < k {
		next.k++
		next.step(c, next.k, c.refreshTime(next.k).UTC().Format(time.DateOnly))
	}
	return next
}

// step applies refresh j's events, dated d.
func (tl *timeline) step(c *connection, j int, d string) {
	r := c.rng(1<<48 | uint64(j))
	n := 1 + len(tl.active)/250
	for range n {
		x := r.IntN(20)
		switch {
		case x < 3 || len(tl.active) == 0:
			i := c.Employees + tl.hires
			tl.hires++
			p := c.genPerson(i)
			p.Active, p.Start, p.End = true, d, ""
			tl.active = append(tl.active, len(tl.people))
			tl.people = append(tl.people, p)
			tl.log = append(tl.log, tlEvent{j, "hire", p.ID})
		case x < 6 && len(tl.active) > 1:
			a := r.IntN(len(tl.active))
			p := &tl.people[tl.active[a]]
			tl.active[a] = tl.active[len(tl.active)-1]
			tl.active = tl.active[:len(tl.active)-1]
			p.Active, p.End = false, max(d, p.Start)
			tl.log = append(tl.log, tlEvent{j, "termination", p.ID})
		default:
			p := &tl.people[tl.active[r.IntN(len(tl.active))]]
			income, hourly := p.Income, p.HourlyRate
			if hourly > 0 {
				hourly += int64(25 * (1 + r.IntN(8))) // 0.25 $ to 2 $ an hour more
				income = hourly * 2080
			} else {
				income = (income*int64(103+r.IntN(8))/100 + 5000) / 10000 * 10000 // 3–10 %, in whole 100 $
			}
			p.addRaise(d, income, hourly)
			tl.log = append(tl.log, tlEvent{j, "raise", p.ID})
		}
	}
}

// view is what the employer data routes serve for a connection: its
// employer as of its latest refresh, with the sandbox data API's changes.
type view struct {
	key viewKey
	tl  *timeline
	*payroll
}

type viewKey struct{ k, employees, extra, gen int }

// viewOf returns connection c's data as of its latest refresh, from the
// cache when nothing changed since. s.mu must be held; the view must not
// be changed.
func (s *Server) viewOf(c *connection) *view {
	k := c.refreshes(s.now())
	gen := 0
	if c.Payroll != nil {
		gen = c.Payroll.gen
	}
	key := viewKey{k, c.Employees, len(c.Extra), gen}
	if c.view != nil && c.view.key == key {
		return c.view
	}
	var tl *timeline
	if old := c.view; old != nil && old.key.employees == c.Employees && old.tl.k <= k {
		tl = old.tl.advance(c, k)
	} else {
		tl = c.newTimeline().advance(c, k)
	}
	people := make([]person, 0, len(tl.people)+len(c.Extra))
	people = append(append(people, tl.people...), c.extraPeople()...)
	if st := c.Payroll; st != nil && (len(st.Individuals) > 0 || len(st.Employments) > 0) {
		for i := range people {
			p := &people[i]
			if e, ok := st.Individuals[p.ID]; ok {
				applyIndividualEdit(p, e)
			}
			if e, ok := st.Employments[p.ID]; ok {
				applyEmploymentEdit(p, e, c.refreshTime(k).UTC().Format(time.DateOnly))
			}
		}
	}
	c.view = &view{key: key, tl: tl, payroll: c.buildPayroll(people, c.refreshTime(k))}
	return c.view
}

// noticeRefresh sends the webhooks of the refreshes connection c had
// since the last notice: directory, individual and employment events for
// the timeline's hires, terminations and raises, payment.created and
// pay_statement.created for the pay runs that appeared. It runs on each
// employer data request and on the background tick, so that a refresh
// is noticed by the first of the two after it happens. s.mu must be held.
func (s *Server) noticeRefresh(c *connection) {
	if !s.hooks.enabled.Load() || c.Status == "disconnected" {
		return
	}
	k := c.refreshes(s.now())
	st := c.payrollState()
	if k <= st.Seen {
		return
	}
	from := max(st.Seen, k-maxNoticed)
	st.Seen = k
	s.dirty = true
	v := s.viewOf(c)
	sent := 0
	send := func(eventType string, data map[string]any) {
		if sent < maxNoticeEvents {
			s.emit(c, eventType, data)
			sent++
		}
	}
	// The log is in refresh order: walk back to the first event after
	// refresh from.
	start := len(v.tl.log)
	for start > 0 && v.tl.log[start-1].Refresh > from {
		start--
	}
	for _, ev := range v.tl.log[start:] {
		id := map[string]any{"individual_id": ev.ID}
		switch ev.Kind {
		case "hire":
			send("directory.created", id)
			send("individual.created", id)
			send("employment.created", id)
		case "termination":
			send("directory.updated", id)
			send("employment.updated", id)
		case "raise":
			send("employment.updated", id)
		}
	}
	after, upTo := c.refreshTime(from).UTC().Format(time.DateOnly), c.refreshTime(k).UTC().Format(time.DateOnly)
	v.ensureRuns(c)
	for i, run := range v.runs {
		if run.Sandbox != nil || run.Pay <= after || run.Pay > upTo {
			continue
		}
		send("payment.created", map[string]any{"payment_id": run.ID, "pay_date": run.Pay})
		for _, p := range v.statementPeople(i) {
			send("pay_statement.created", map[string]any{"payment_id": run.ID, "individual_id": p.ID})
		}
	}
}

// noticeRefreshes runs noticeRefresh for every connection, from the
// background tick. Without a webhook URL it does nothing.
func (s *Server) noticeRefreshes() {
	if !s.hooks.enabled.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.st.Connections {
		s.noticeRefresh(c)
	}
}
