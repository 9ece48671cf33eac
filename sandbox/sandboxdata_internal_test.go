package sandbox

import (
	"reflect"
	"regexp"
	"testing"
	"time"
)

var ssnForm = regexp.MustCompile(`^\d{3}-\d{2}-\d{4}$`)

// TestSSN_Valid: the SSNs of thousands of generated people — at
// connection time and hired later — are all ddd-dd-dddd with an issued
// area (not 000, 666 or 900–999), a non-zero group and serial; they are
// not one number repeated.
func TestSSN_Valid(t *testing.T) {
	seen := map[string]bool{}
	n := 0
	for seed := range uint64(40) {
		c := &connection{ID: "c", Seed: seed*7919 + 1, Employees: 100, Created: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
		for _, p := range c.newTimeline().advance(c, 60).people {
			n++
			area, group, serial := p.SSN[:3], p.SSN[4:6], p.SSN[7:]
			if !ssnForm.MatchString(p.SSN) || area == "000" || area == "666" || area[0] == '9' || group == "00" || serial == "0000" {
				t.Fatalf("person %d of seed %d: SSN %q is not a valid SSN", p.Index, seed, p.SSN)
			}
			seen[p.SSN] = true
		}
	}
	if n < 4000 || len(seen) < n*99/100 {
		t.Errorf("%d people, %d distinct SSNs; want thousands, nearly all distinct", n, len(seen))
	}
	for _, tc := range []struct {
		ssn string
		ok  bool
	}{
		{"123-45-6789", true}, {"899-99-9999", true}, {"001-01-0001", true},
		{"000-12-3456", false}, {"666-12-3456", false}, {"900-12-3456", false}, {"999-12-3456", false},
		{"123-00-4567", false}, {"123-45-0000", false}, {"123456789", false}, {"12-345-6789", false}, {"12a-45-6789", false}, {"", false},
	} {
		if got := validSSN(tc.ssn); got != tc.ok {
			t.Errorf("validSSN(%q) = %v, want %v", tc.ssn, got, tc.ok)
		}
	}
}

// TestTimeline_Deterministic: the employer after k refreshes is the same
// whether replayed at once or refresh by refresh, and a different seed
// gives a different employer.
func TestTimeline_Deterministic(t *testing.T) {
	c := &connection{ID: "c", Seed: 12345, Employees: 320, Created: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	once := c.newTimeline().advance(c, 90)
	step := c.newTimeline()
	for k := 1; k <= 90; k++ {
		step = step.advance(c, k)
	}
	if !reflect.DeepEqual(once.people, step.people) || !reflect.DeepEqual(once.log, step.log) {
		t.Fatal("replaying 90 refreshes at once and one by one give different employers")
	}
	if again := c.newTimeline().advance(c, 90); !reflect.DeepEqual(once.people, again.people) {
		t.Fatal("the same seed and date gave different employers")
	}
	d := &connection{ID: "d", Seed: 54321, Employees: 320, Created: c.Created}
	if other := d.newTimeline().advance(d, 90); reflect.DeepEqual(other.log, once.log) {
		t.Fatal("another seed made the same events")
	}
	// A step must not change the timeline it started from: the cached
	// view may still be read by a request in flight.
	before := c.newTimeline().advance(c, 10)
	copyPeople := append([]person(nil), before.people...)
	before.advance(c, 40)
	if !reflect.DeepEqual(before.people, copyPeople) {
		t.Fatal("advancing a timeline changed it")
	}
	kinds := map[string]int{}
	for _, ev := range once.log {
		kinds[ev.Kind]++
	}
	if kinds["hire"] == 0 || kinds["termination"] == 0 || kinds["raise"] == 0 || len(once.log) < 90 {
		t.Errorf("90 refreshes made %v; want at least one event a refresh, of every kind", kinds)
	}
}

// TestTimeline_Bounded: however far the clock moves, the timeline stops at
// maxRefreshes and the payroll history covers two years and the current.
func TestTimeline_Bounded(t *testing.T) {
	c := &connection{ID: "c", Seed: 7, Employees: 25, Created: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	if k := c.refreshes(c.Created.Add(100 * 365 * 24 * time.Hour)); k != maxRefreshes {
		t.Errorf("refreshes after 100 years = %d, want maxRefreshes (%d)", k, maxRefreshes)
	}
	if k := c.refreshes(c.Created.Add(-time.Hour)); k != 0 {
		t.Errorf("refreshes before creation = %d, want 0", k)
	}
	asOf := time.Date(2040, 6, 1, 0, 0, 0, 0, time.UTC)
	v := c.buildPayroll(c.people(), asOf).ensureRuns(c)
	if len(v.runs) == 0 {
		t.Fatal("no pay runs as of 2040")
	}
	if first := v.runs[0].Pay; first < "2038-01-01" {
		t.Errorf("history as of 2040-06-01 starts %s, want 2038-01-01 or later", first)
	}
}

// TestSeededPlans_SomeoneEnrolled: every employer big enough for the
// forced roles (four or more people) has someone in its seeded 401(k)
// and its seeded medical plan, whatever its seed; with 70% savers drawn
// at random, about 1 in 100 five-person employers had nobody in the
// 401(k), and the SDK test of enrolledIDs failed on them.
func TestSeededPlans_SomeoneEnrolled(t *testing.T) {
	for seed := range uint64(2000) {
		for _, size := range []int{4, 5, 6} {
			c := &connection{ID: "c", ProviderID: "gusto", Seed: seed*7919 + 1, Employees: size, Created: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
			saver, fullTime := false, false
			for _, p := range c.people() {
				saver = saver || (p.Saves401k && p.Subtype != "individual_contractor")
				fullTime = fullTime || p.Subtype == "full_time"
			}
			if !saver || !fullTime {
				t.Fatalf("seed %d, %d people: a 401(k) saver %v, a full-timer %v; want both", seed, size, saver, fullTime)
			}
		}
	}
}
