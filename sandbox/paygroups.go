package sandbox

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Pay groups and payroll history.
//
// Every entity of a connection has the same four pay groups, one per
// kind of worker, each on its own schedule, so that a client meets every
// common pay frequency:
//
//	Salaried     semi_monthly  full-time employees (and temp, seasonal)
//	Hourly       bi_weekly     part-time employees
//	Interns      weekly        interns
//	Contractors  monthly       individual contractors
//
// A group lists (individual_ids) its active members; a group with no one
// in it is still listed, since past payments can name it. Payments are the
// runs of each group on its schedule from January 1 two years before the
// data's as-of date up to that date: two full previous years and the
// current year, as Finch's initial sync pulls them. Each run pays the
// group's members employed on its pay date at the pay they had that day.

// groupKinds are the pay groups each entity has, in order.
var groupKinds = [...]struct{ name, freq string }{
	{"Salaried", "semi_monthly"}, {"Hourly", "bi_weekly"}, {"Interns", "weekly"}, {"Contractors", "monthly"},
}

// payFrequencies are the pay frequencies Finch's SDK knows.
var payFrequencies = []string{"annually", "bi_weekly", "daily", "monthly", "other", "quarterly", "semi_annually", "semi_monthly", "weekly"}

// payGroup is one pay group of a connection.
type payGroup struct {
	ID, Name, Freq string
	Entity         int // index in connection.Entities (0 without entities)
}

// groupKind is the index in groupKinds of the group a worker of subtype
// belongs to.
func groupKind(subtype string) int {
	switch subtype {
	case "part_time":
		return 1
	case "intern":
		return 2
	case "individual_contractor":
		return 3
	}
	return 0
}

// payGroups are the connection's pay groups: groupKinds for each entity.
// Entity 0's salaried group keeps the id payments always carried.
func (c *connection) payGroups() []payGroup {
	n := max(1, len(c.Entities))
	out := make([]payGroup, 0, n*len(groupKinds))
	for e := range n {
		for k, g := range groupKinds {
			name := g.name
			if len(c.Entities) > 1 {
				name += " — " + str(c.entityName(e))
			}
			out = append(out, payGroup{ID: c.stableID(6, e*len(groupKinds)+k), Name: name, Freq: g.freq, Entity: e})
		}
	}
	return out
}

// entityIndex is the index of entity id in c.Entities; 0 for "" (people
// of a connection without entities, and those POST /sandbox/directory
// added) or an id it does not have.
func (c *connection) entityIndex(id string) int {
	if id == "" {
		return 0
	}
	return max(0, slices.IndexFunc(c.Entities, func(e entity) bool { return e.ID == id }))
}

// groupOf is the index in payGroups of p's pay group.
func (c *connection) groupOf(p person) int {
	return c.entityIndex(p.Entity)*len(groupKinds) + groupKind(p.Subtype)
}

// period is one pay run's dates.
type period struct{ Pay, Start, End time.Time }

// day is t's UTC calendar date at midnight.
func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// businessDay is d, or the Friday before when d falls on a weekend: a
// run due on a Saturday or Sunday is paid early.
func businessDay(d time.Time) time.Time {
	switch d.Weekday() {
	case time.Saturday:
		return d.AddDate(0, 0, -1)
	case time.Sunday:
		return d.AddDate(0, 0, -2)
	}
	return d
}

// biWeeklyAnchor is a Friday every bi-weekly run is an even number of
// weeks from.
var biWeeklyAnchor = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)

// schedule lists the runs of frequency freq paid from from to to
// (inclusive, both UTC midnights):
//   - weekly: every Friday, for the Monday–Sunday week ending 5 days before;
//   - bi_weekly: every other Friday, for the two weeks ending 5 days before;
//   - semi_monthly: the 15th (for the 1st–15th) and the month's last day
//     (for the 16th–last), paid the business day before when on a weekend;
//   - monthly: the month's last day (for the month), likewise.
func schedule(freq string, from, to time.Time) []period {
	var out []period
	switch freq {
	case "weekly", "bi_weekly":
		step, weeks := 7, 1
		if freq == "bi_weekly" {
			step, weeks = 14, 2
		}
		d := from.AddDate(0, 0, (int(time.Friday)-int(from.Weekday())+7)%7)
		if freq == "bi_weekly" {
			if n := int(d.Sub(biWeeklyAnchor).Hours()/24) % 14; n != 0 {
				d = d.AddDate(0, 0, (14-n+14)%14)
			}
		}
		for ; !d.After(to); d = d.AddDate(0, 0, step) {
			end := d.AddDate(0, 0, -5)
			out = append(out, period{Pay: d, Start: end.AddDate(0, 0, 1-7*weeks), End: end})
		}
	default: // semi_monthly, monthly
		for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(to); m = m.AddDate(0, 1, 0) {
			last := m.AddDate(0, 1, -1)
			var runs []period
			if freq == "semi_monthly" {
				mid := m.AddDate(0, 0, 14)
				runs = []period{{Pay: businessDay(mid), Start: m, End: mid}, {Pay: businessDay(last), Start: mid.AddDate(0, 0, 1), End: last}}
			} else {
				runs = []period{{Pay: businessDay(last), Start: m, End: last}}
			}
			for _, r := range runs {
				if !r.Pay.Before(from) && !r.Pay.After(to) {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// payroll is a connection's people with their pay groups and pay runs as
// of one date.
type payroll struct {
	people  []person
	index   map[string]int // person id → index in people
	groups  []payGroup
	members [][]int // by group: indices in people
	asOf    time.Time
	built   bool // runs and byID are laid out (see ensureRuns)
	runs    []payRun
	byID    map[string]int // payment id → index in runs
}

// payRun is one payment.
type payRun struct {
	ID              string
	Group           int // index in groups; -1 for a POST /sandbox/payment
	Entity          int
	Pay, Start, End string
	Sandbox         *sandboxPayment
	tot             payslip // summed over the run's statements
	count           int
}

// employedOn reports whether p was employed and paid on day d.
func employedOn(p person, d string) bool {
	if p.Income <= 0 || p.Start > d {
		return false
	}
	if p.End == "" {
		return p.Active
	}
	return d <= p.End
}

// historyStart is where payroll history as of asOf begins: January 1 two
// years before.
func historyStart(asOf time.Time) time.Time {
	return time.Date(asOf.UTC().Year()-2, 1, 1, 0, 0, 0, 0, time.UTC)
}

// buildPayroll lays out people's pay groups as of asOf; their pay runs
// are laid out by ensureRuns, when a route first needs them.
func (c *connection) buildPayroll(people []person, asOf time.Time) *payroll {
	v := &payroll{people: people, index: make(map[string]int, len(people)), groups: c.payGroups(), asOf: asOf}
	v.members = make([][]int, len(v.groups))
	for i, p := range people {
		v.index[p.ID] = i
		g := c.groupOf(p)
		v.members[g] = append(v.members[g], i)
	}
	return v
}

// ensureRuns lays out the pay runs up to v.asOf's date, with the
// connection's POST /sandbox/payment payments, unless done already, and
// returns v. Laying them out costs a payslip per person and run, so
// routes that need only people (directory, individual, employment) never
// do. s.mu must be held.
func (v *payroll) ensureRuns(c *connection) *payroll {
	if v.built {
		return v
	}
	v.built, v.byID = true, map[string]int{}
	people := v.people
	from, to := historyStart(v.asOf), day(v.asOf)
	v.runs = make([]payRun, 0, 64*len(v.groups)) // about the runs of groups with people in them
	for g, grp := range v.groups {
		if len(v.members[g]) == 0 {
			continue
		}
		for _, per := range schedule(grp.Freq, from, to) {
			d := per.Pay.Format(time.DateOnly)
			run := payRun{Group: g, Entity: grp.Entity, Pay: d, Start: per.Start.Format(time.DateOnly), End: per.End.Format(time.DateOnly)}
			for _, i := range v.members[g] {
				p := people[i]
				if !employedOn(p, d) {
					continue
				}
				s := p.payslipAt(d, grp.Freq)
				run.count++
				run.tot.gross += s.gross
				run.tot.net += s.net
				run.tot.fed += s.fed + s.state + s.ss + s.medicare // employee taxes
				run.tot.erSS += s.erSS + s.erMedicare              // employer taxes
				run.tot.match += s.match + s.erHealth              // employer contributions
			}
			if run.count == 0 {
				continue
			}
			days := int(per.Pay.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Hours() / 24)
			run.ID = c.stableID(7, g<<16|days&0xffff)
			v.runs = append(v.runs, run)
		}
	}
	if c.Payroll != nil {
		for i := range c.Payroll.Payments {
			sp := &c.Payroll.Payments[i]
			v.runs = append(v.runs, payRun{ID: sp.ID, Group: -1, Entity: sp.Entity, Pay: sp.PayDate, Start: sp.Start, End: sp.End, Sandbox: sp, count: len(sp.Statements)})
		}
	}
	sort.SliceStable(v.runs, func(i, j int) bool { return v.runs[i].Pay < v.runs[j].Pay })
	for i, r := range v.runs {
		v.byID[r.ID] = i
	}
	return v
}

func money(v int64) map[string]any { return map[string]any{"amount": v, "currency": "usd"} }

// paymentJSON is run i as GET /employer/payment shows it.
func (v *payroll) paymentJSON(c *connection, i int) map[string]any {
	run := v.runs[i]
	if run.Sandbox != nil {
		out := make(map[string]any, len(run.Sandbox.Payment))
		for k, x := range run.Sandbox.Payment {
			out[k] = x
		}
		return out
	}
	ids := make([]any, 0, run.count)
	for _, p := range v.statementPeople(i) {
		ids = append(ids, p.ID)
	}
	grp := v.groups[run.Group]
	pay, _ := time.Parse(time.DateOnly, run.Pay)
	return map[string]any{
		"id": run.ID, "pay_date": run.Pay, "debit_date": pay.AddDate(0, 0, -2).Format(time.DateOnly),
		"pay_period":    map[string]any{"start_date": run.Start, "end_date": run.End},
		"company_debit": money(run.tot.gross + run.tot.erSS + run.tot.match), "gross_pay": money(run.tot.gross), "net_pay": money(run.tot.net),
		"employer_taxes": money(run.tot.erSS), "employee_taxes": money(run.tot.fed),
		"individual_ids": ids, "pay_group_ids": []any{grp.ID}, "pay_frequencies": []any{grp.Freq},
	}
}

// statementPeople are the people run i of a group paid.
func (v *payroll) statementPeople(i int) []person {
	run := v.runs[i]
	if run.Group < 0 {
		return nil
	}
	out := make([]person, 0, run.count)
	for _, j := range v.members[run.Group] {
		if p := v.people[j]; employedOn(p, run.Pay) {
			out = append(out, p)
		}
	}
	return out
}

// statements are run i's pay statements, from offset, at most limit.
func (v *payroll) statements(i, offset, limit int) []any {
	run := v.runs[i]
	out := []any{}
	if run.Sandbox != nil {
		for _, st := range page(run.Sandbox.Statements, offset, limit) {
			out = append(out, st)
		}
		return out
	}
	freq := v.groups[run.Group].Freq
	for _, p := range page(v.statementPeople(i), offset, limit) {
		out = append(out, p.payStatementAt(run.Pay, freq))
	}
	return out
}

// groupJSON is pay group g as GET /employer/pay-groups/{id} shows it:
// with the ids of its active members.
func (v *payroll) groupJSON(g int, withMembers bool) map[string]any {
	grp := v.groups[g]
	out := map[string]any{"id": grp.ID, "name": grp.Name, "pay_frequencies": []any{grp.Freq}}
	if withMembers {
		ids := []any{}
		for _, i := range v.members[g] {
			if v.people[i].Active {
				ids = append(ids, v.people[i].ID)
			}
		}
		out["individual_ids"] = ids
	}
	return out
}

// entityVisible reports whether entity index e is served for a request
// that asked for entity (an id, or "" for every entity still connected).
func (c *connection) entityVisible(e int, entity string) bool {
	if len(c.Entities) == 0 {
		return true
	}
	if e >= len(c.Entities) {
		return false
	}
	if entity != "" {
		return c.Entities[e].ID == entity
	}
	return c.Entities[e].Status != "disconnected"
}

// handlePayGroups is GET /employer/pay-groups: a bare array of the pay
// groups, filtered by individual_id (the group that person is in) and
// pay_frequencies (groups paying at any of them).
func (s *Server) handlePayGroups(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	q := r.URL.Query()
	var freqs []string
	for _, k := range []string{"pay_frequencies[]", "pay_frequencies"} {
		for _, v := range q[k] {
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				} else if !slices.Contains(payFrequencies, f) {
					badRequest(w, "pay_frequencies must be among "+strings.Join(payFrequencies, ", ")+".")
					return
				}
				freqs = append(freqs, f)
			}
		}
	}
	individual := q.Get("individual_id")
	out := []any{}
	s.mu.Lock()
	v := s.viewOf(c)
	for g, grp := range v.groups {
		if !c.entityVisible(grp.Entity, entity) || len(freqs) > 0 && !slices.Contains(freqs, grp.Freq) {
			continue
		}
		if individual != "" {
			i, ok := v.index[individual]
			if !ok || c.groupOf(v.people[i]) != g {
				continue
			}
		}
		out = append(out, v.groupJSON(g, false))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handlePayGroup is GET /employer/pay-groups/{id}.
func (s *Server) handlePayGroup(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id := r.PathValue("id")
	var out map[string]any
	s.mu.Lock()
	v := s.viewOf(c)
	for g, grp := range v.groups {
		if grp.ID == id && c.entityVisible(grp.Entity, entity) {
			out = v.groupJSON(g, true)
		}
	}
	s.mu.Unlock()
	if out != nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "No pay group with this id.")
}
