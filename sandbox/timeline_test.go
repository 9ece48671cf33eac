package sandbox_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// wall is the fixed wall clock of the timeline tests: a Monday morning.
var wall = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func fixedClock() func() time.Time { return func() time.Time { return wall } }

// snapshot is what a sync reads: the directory and every employment.
type snapshot struct {
	dir  map[string]map[string]any // by id
	emp  map[string]map[string]any
	body []byte // the directory's raw body
}

func (e *env) snapshot(tok string) snapshot {
	e.t.Helper()
	d := e.call("GET", "/employer/directory", "bearer:"+tok, nil)
	if d.status != http.StatusOK {
		e.t.Fatalf("directory = %d %s", d.status, d.body)
	}
	s := snapshot{dir: map[string]map[string]any{}, emp: map[string]map[string]any{}, body: d.body}
	var reqs []map[string]string
	for _, p := range d.json(e.t)["individuals"].([]any) {
		m := p.(map[string]any)
		s.dir[m["id"].(string)] = m
		reqs = append(reqs, map[string]string{"individual_id": m["id"].(string)})
	}
	r := e.call("POST", "/employer/employment", "bearer:"+tok, map[string]any{"requests": reqs})
	for _, x := range r.json(e.t)["responses"].([]any) {
		m := x.(map[string]any)
		if m["code"].(float64) != 200 {
			e.t.Fatalf("employment of %v = %v", m["individual_id"], m)
		}
		s.emp[m["individual_id"].(string)] = m["body"].(map[string]any)
	}
	return s
}

func amountOf(emp map[string]any) float64 {
	if inc, ok := emp["income"].(map[string]any); ok {
		return inc["amount"].(float64)
	}
	return 0
}

// TestTimeline_ADayChangesTheData: each day on the clock, after the
// connection's daily refresh, a second read differs from the first; over
// two months the differences include hires (new people starting that
// day), terminations (is_active false, end_date that day) and raises
// (a higher income, effective that day, on top of income_history); and
// nothing changes before the refresh is due.
func TestTimeline_ADayChangesTheData(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_simple")
	before := e.snapshot(tok)
	if len(before.dir) != 25 {
		t.Fatalf("authorized_simple has %d people at connection time, want 25", len(before.dir))
	}
	e.sb.Advance(23*time.Hour + 59*time.Minute)
	if same := e.snapshot(tok); string(same.body) != string(before.body) || !reflect.DeepEqual(same.emp, before.emp) {
		t.Fatal("the data changed before the connection's first daily refresh")
	}
	e.sb.Advance(time.Minute)
	hires, terms, raises := 0, 0, 0
	for d := 1; d <= 60; d++ {
		if d > 1 {
			e.sb.Advance(24 * time.Hour)
		}
		today := wall.AddDate(0, 0, d).Format(time.DateOnly)
		after := e.snapshot(tok)
		changed := false
		for id, emp := range after.emp {
			old, existed := before.emp[id]
			switch {
			case !existed:
				hires++
				changed = true
				if emp["start_date"] != today || emp["is_active"] != true || after.dir[id]["is_active"] != true {
					t.Errorf("day %d: new hire %s: start_date %v, is_active %v; want %s, true", d, id, emp["start_date"], emp["is_active"], today)
				}
			case old["is_active"] == true && emp["is_active"] == false:
				terms++
				changed = true
				if emp["end_date"] != today || emp["employment_status"] != "terminated" || after.dir[id]["is_active"] != false {
					t.Errorf("day %d: termination of %s: end_date %v, status %v, directory is_active %v", d, id, emp["end_date"], emp["employment_status"], after.dir[id]["is_active"])
				}
			case amountOf(emp) != amountOf(old):
				raises++
				changed = true
				hist := emp["income_history"].([]any)
				if amountOf(emp) < amountOf(old) || emp["income"].(map[string]any)["effective_date"] != today ||
					len(hist) != len(old["income_history"].([]any))+1 || !reflect.DeepEqual(hist[0], emp["income"]) {
					t.Errorf("day %d: raise of %s from %v to %v: income %v, history %v", d, id, amountOf(old), amountOf(emp), emp["income"], hist)
				}
			case !reflect.DeepEqual(emp, old):
				t.Errorf("day %d: %s changed in an unexpected way: %v → %v", d, id, old, emp)
			}
		}
		if !changed {
			t.Errorf("day %d: a day on the clock changed nothing a sync reads", d)
		}
		before = after
	}
	if hires == 0 || terms == 0 || raises == 0 {
		t.Errorf("60 days made %d hires, %d terminations, %d raises; want some of each", hires, terms, raises)
	}
}

// TestTimeline_SameAcrossRestarts: the data as of a date does not depend
// on the path to it: read daily or at once, before a restart or after,
// the directory and employments are the same.
func TestTimeline_SameAcrossRestarts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, sandbox.Options{Now: fixedClock(), DataFile: file})
	tok := e.token("authorized_simple")
	for range 10 {
		e.sb.Advance(24 * time.Hour)
		e.snapshot(tok) // moves the cached employer forward day by day
	}
	daily := e.snapshot(tok)
	pays := e.call("GET", "/employer/payment?start_date=2020-01-01&end_date=2030-01-01", "bearer:"+tok, nil).body
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, sandbox.Options{Now: fixedClock(), DataFile: file})
	e2.sb.Advance(10 * 24 * time.Hour)
	once := e2.snapshot(tok)
	if string(once.body) != string(daily.body) || !reflect.DeepEqual(once.emp, daily.emp) {
		t.Error("after a restart, the data as of the same date differs from the data read day by day")
	}
	if again := e2.call("GET", "/employer/payment?start_date=2020-01-01&end_date=2030-01-01", "bearer:"+tok, nil).body; string(again) != string(pays) {
		t.Error("after a restart, the payments as of the same date differ")
	}
	// Moving the clock back shows the older data again.
	e2.sb.Advance(-10 * 24 * time.Hour)
	if back := e2.snapshot(tok); len(back.dir) != 25 {
		t.Errorf("with the clock back at connection time, %d people, want 25", len(back.dir))
	}
}

// TestTimeline_DataRetrievedHeader: employer data responses say when the
// data was refreshed: at connection time, then every 24 hours.
func TestTimeline_DataRetrievedHeader(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_simple")
	e.sb.Advance(50 * time.Hour)
	r := e.call("GET", "/employer/company", "bearer:"+tok, nil)
	if got, want := r.header.Get("Finch-Data-Retrieved"), wall.Add(48*time.Hour).Format(time.RFC3339); got != want {
		t.Errorf("Finch-Data-Retrieved = %q, want %q (the second daily refresh)", got, want)
	}
}

// payment is the part of a payment the tests read.
type payment struct {
	ID            string
	PayDate       string   `json:"pay_date"`
	DebitDate     string   `json:"debit_date"`
	IndividualIDs []string `json:"individual_ids"`
	PayGroupIDs   []string `json:"pay_group_ids"`
	Frequencies   []string `json:"pay_frequencies"`
	Period        struct {
		Start string `json:"start_date"`
		End   string `json:"end_date"`
	} `json:"pay_period"`
	Gross struct{ Amount int64 } `json:"gross_pay"`
}

func (e *env) payments(tok, from, to string) []payment {
	e.t.Helper()
	r := e.call("GET", "/employer/payment?start_date="+from+"&end_date="+to, "bearer:"+tok, nil)
	var out []payment
	if err := json.Unmarshal(r.body, &out); err != nil || r.status != http.StatusOK {
		e.t.Fatalf("payments = %d %s (%v)", r.status, r.body, err)
	}
	return out
}

// TestTimeline_PayRunAppearsOnSchedule: a pay run appears at the first
// refresh on or after its pay date, not before, for each pay group.
func TestTimeline_PayRunAppearsOnSchedule(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_complex")
	far := "2100-01-01"
	seen := map[string]bool{}
	for _, p := range e.payments(tok, "2000-01-01", far) {
		if p.PayDate > wall.Format(time.DateOnly) {
			t.Fatalf("payment %s is dated %s, after today %s", p.ID, p.PayDate, wall.Format(time.DateOnly))
		}
		seen[p.ID] = true
	}
	byGroup, freqOf := map[string][]string{}, map[string]string{}
	for d := 1; d <= 40; d++ {
		e.sb.Advance(24 * time.Hour)
		today := wall.AddDate(0, 0, d).Format(time.DateOnly)
		for _, p := range e.payments(tok, wall.Format(time.DateOnly), far) {
			if seen[p.ID] {
				continue
			}
			seen[p.ID] = true
			if p.PayDate != today {
				t.Errorf("day %d: payment %s dated %s appeared, want only today's (%s)", d, p.ID, p.PayDate, today)
			}
			if len(p.PayGroupIDs) != 1 || len(p.Frequencies) != 1 {
				t.Fatalf("payment %s: pay_group_ids %v, pay_frequencies %v; want one of each", p.ID, p.PayGroupIDs, p.Frequencies)
			}
			g := p.PayGroupIDs[0]
			byGroup[g], freqOf[g] = append(byGroup[g], p.PayDate), p.Frequencies[0]
		}
	}
	if len(byGroup) != 12 {
		t.Errorf("runs of %d pay groups appeared, want 12 (four in each of three entities)", len(byGroup))
	}
	// 2026-03-02 + 40 days: Fridays Mar 6 … Apr 10; the 15th and month
	// ends (Mar 13 for Sunday the 15th, Mar 31, Apr 10 not yet); March 31.
	want := map[string][]string{
		"weekly":       {"2026-03-06", "2026-03-13", "2026-03-20", "2026-03-27", "2026-04-03", "2026-04-10"},
		"semi_monthly": {"2026-03-13", "2026-03-31"},
		"monthly":      {"2026-03-31"},
	}
	for g, dates := range byGroup {
		freq := freqOf[g]
		if freq == "bi_weekly" {
			if len(dates) != 3 || dates[1] != mustDay(dates[0]).AddDate(0, 0, 14).Format(time.DateOnly) || mustDay(dates[0]).Weekday() != time.Friday {
				t.Errorf("bi_weekly group %s: runs %v, want three Fridays, 14 days apart", g, dates)
			}
		} else if !reflect.DeepEqual(dates, want[freq]) {
			t.Errorf("%s group %s: runs %v, want %v", freq, g, dates, want[freq])
		}
	}
}

func mustDay(s string) time.Time {
	d, _ := time.Parse(time.DateOnly, s)
	return d
}
