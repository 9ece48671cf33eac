package sandbox_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

type payGroup struct {
	ID            string
	Name          string
	Frequencies   []string `json:"pay_frequencies"`
	IndividualIDs []string `json:"individual_ids"`
}

func (e *env) payGroups(tok, query string) []payGroup {
	e.t.Helper()
	r := e.call("GET", "/employer/pay-groups"+query, "bearer:"+tok, nil)
	var out []payGroup
	if err := json.Unmarshal(r.body, &out); err != nil || r.status != http.StatusOK {
		e.t.Fatalf("pay groups%s = %d %s (%v)", query, r.status, r.body, err)
	}
	return out
}

// TestPayroll_TwoYearsOfHistory: payments go back to January 1 two years
// before today, every pay group runs on its schedule throughout, and
// every run pays only people employed on its pay date.
func TestPayroll_TwoYearsOfHistory(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_simple")
	pays := e.payments(tok, "2000-01-01", "2100-01-01")
	byGroup := map[string][]payment{}
	for _, p := range pays {
		byGroup[p.PayGroupIDs[0]] = append(byGroup[p.PayGroupIDs[0]], p)
	}
	groups := e.payGroups(tok, "")
	freq, staffed := map[string]string{}, map[string]bool{}
	for _, g := range groups {
		freq[g.ID] = g.Frequencies[0]
		var one payGroup
		json.Unmarshal(e.call("GET", "/employer/pay-groups/"+g.ID, "bearer:"+tok, nil).body, &one)
		staffed[g.ID] = len(one.IndividualIDs) > 0
	}
	snap := e.snapshot(tok)
	for g, runs := range byGroup {
		f, ok := freq[g]
		if !ok {
			t.Fatalf("payments name pay group %s, which GET /employer/pay-groups does not list", g)
		}
		first, last := mustDay(runs[0].PayDate), mustDay(runs[len(runs)-1].PayDate)
		// History starts two full years back; a group whose people all
		// came later starts later.
		if first.Before(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) || g == groups[0].ID && (first.Year() != 2024 || first.Month() != time.January) {
			t.Errorf("%s group: first run %s, want none before 2024 and the salaried group's in January 2024", f, runs[0].PayDate)
		}
		// A group whose people have all left stops running.
		if last.After(wall) || staffed[g] && wall.Sub(last) > 31*24*time.Hour {
			t.Errorf("%s group: last run %s, want one in the last month up to today", f, runs[len(runs)-1].PayDate)
		}
		for i, p := range runs {
			d := mustDay(p.PayDate)
			if p.Frequencies[0] != f {
				t.Errorf("payment %s: pay_frequencies %v, its group's is %s", p.ID, p.Frequencies, f)
			}
			if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
				t.Errorf("%s run paid on a %s (%s)", f, d.Weekday(), p.PayDate)
			}
			switch f {
			case "weekly", "bi_weekly":
				step := map[string]int{"weekly": 7, "bi_weekly": 14}[f]
				if d.Weekday() != time.Friday || i > 0 && d.Sub(mustDay(runs[i-1].PayDate)) != time.Duration(step)*24*time.Hour {
					t.Errorf("%s run on %s (%s), the one before on %s", f, p.PayDate, d.Weekday(), runs[max(i-1, 0)].PayDate)
				}
			case "semi_monthly":
				if end := mustDay(p.Period.End); end.Day() != 15 && end.AddDate(0, 0, 1).Day() != 1 || d.After(end) || end.Sub(d) > 2*24*time.Hour {
					t.Errorf("semi-monthly run paid %s for a period ending %s", p.PayDate, p.Period.End)
				}
			case "monthly":
				if end := mustDay(p.Period.End); end.AddDate(0, 0, 1).Day() != 1 || mustDay(p.Period.Start).Day() != 1 || d.After(end) {
					t.Errorf("monthly run paid %s for %s–%s", p.PayDate, p.Period.Start, p.Period.End)
				}
			}
			for _, id := range p.IndividualIDs {
				emp := snap.emp[id]
				if emp == nil || emp["start_date"].(string) > p.PayDate || emp["end_date"] != nil && emp["end_date"].(string) < p.PayDate {
					t.Errorf("payment of %s pays %s, not employed then (start %v, end %v)", p.PayDate, id, emp["start_date"], emp["end_date"])
				}
			}
		}
		if n := map[string]int{"weekly": 52, "bi_weekly": 26, "semi_monthly": 24, "monthly": 12}[f] * 2; g == groups[0].ID && len(runs) < n {
			t.Errorf("%s group: %d runs, want at least %d for two full years", f, len(runs), n)
		}
	}
	if _, ok := byGroup[groups[0].ID]; !ok {
		t.Error("the salaried group has no payments")
	}
}

// TestPayGroups: GET /employer/pay-groups is a bare array of
// {id, name, pay_frequencies}, filtered by pay_frequencies and
// individual_id; GET /employer/pay-groups/{id} adds individual_ids, the
// group's active members, each once, all in exactly one group, and those
// of the group their employment says.
func TestPayGroups(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_complex")
	groups := e.payGroups(tok, "")
	if len(groups) != 12 {
		t.Fatalf("%d pay groups, want 12 (four for each of three entities)", len(groups))
	}
	raw := e.call("GET", "/employer/pay-groups", "bearer:"+tok, nil)
	var shapes []map[string]any
	json.Unmarshal(raw.body, &shapes)
	for _, g := range shapes {
		if len(g) != 3 || g["id"] == nil || g["name"] == "" || g["pay_frequencies"] == nil {
			t.Errorf("list item %v, want exactly id, name, pay_frequencies", g)
		}
	}
	snap := e.snapshot(tok)
	kind := map[string]string{"semi_monthly": "full_time", "bi_weekly": "part_time", "weekly": "intern", "monthly": "individual_contractor"}
	member := map[string]string{}
	for _, g := range groups {
		r := e.call("GET", "/employer/pay-groups/"+g.ID, "bearer:"+tok, nil)
		var one payGroup
		if err := json.Unmarshal(r.body, &one); err != nil || r.status != http.StatusOK || one.ID != g.ID || one.Name != g.Name || one.IndividualIDs == nil {
			t.Fatalf("pay group %s = %d %s", g.ID, r.status, r.body)
		}
		for _, id := range one.IndividualIDs {
			if other, dup := member[id]; dup {
				t.Errorf("%s is in pay groups %s and %s", id, other, g.ID)
			}
			member[id] = g.ID
			emp := snap.emp[id]
			if emp == nil || emp["is_active"] != true {
				t.Errorf("pay group %s lists %s, who is not an active employee", g.ID, id)
				continue
			}
			if sub := emp["employment"].(map[string]any)["subtype"]; sub != kind[g.Frequencies[0]] {
				t.Errorf("%s (%v) is in the %s group", id, sub, g.Frequencies[0])
			}
			if by := e.payGroups(tok, "?individual_id="+id); len(by) != 1 || by[0].ID != g.ID {
				t.Errorf("pay groups of individual %s = %v, want [%s]", id, by, g.ID)
			}
		}
	}
	for id, emp := range snap.emp {
		if _, ok := member[id]; emp["is_active"] == true && !ok {
			t.Errorf("active %s is in no pay group", id)
		}
	}
	weekly := e.payGroups(tok, "?pay_frequencies[]=weekly&pay_frequencies[]=monthly")
	if len(weekly) != 6 || slices.ContainsFunc(weekly, func(g payGroup) bool { return g.Frequencies[0] != "weekly" && g.Frequencies[0] != "monthly" }) {
		t.Errorf("pay_frequencies weekly, monthly gave %v", weekly)
	}
	intro := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)
	ent := intro["entities"].([]any)[1].(map[string]any)["id"].(string)
	if of := e.payGroups(tok, "?entity_ids[]="+ent); len(of) != 4 {
		t.Errorf("pay groups of one entity: %d, want 4", len(of))
	} else if r := e.call("GET", "/employer/pay-groups/"+groups[0].ID+"?entity_ids[]="+ent, "bearer:"+tok, nil); r.status != http.StatusNotFound {
		t.Errorf("another entity's pay group asked for with entity_ids = %d, want 404", r.status)
	}
	if r := e.call("GET", "/employer/pay-groups?pay_frequencies=fortnightly", "bearer:"+tok, nil); r.status != http.StatusBadRequest {
		t.Errorf("an unknown pay frequency = %d %s, want 400", r.status, r.body)
	}
	if r := e.call("GET", "/employer/pay-groups/no-such-group", "bearer:"+tok, nil); r.status != http.StatusNotFound || r.json(t)["name"] != "not_found_error" {
		t.Errorf("an unknown pay group = %d %s, want 404 not_found_error", r.status, r.body)
	}
	noPay := e.token("authorized_simple", "company", "directory")
	if r := e.call("GET", "/employer/pay-groups", "bearer:"+noPay, nil); r.status != http.StatusForbidden {
		t.Errorf("pay groups without the payment product = %d, want 403", r.status)
	}
}

// TestPayroll_StatementsMatchPayments: every payment's statements are
// those of its individual_ids, summing to its gross pay, in older years
// as today.
func TestPayroll_StatementsMatchPayments(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_simple")
	pays := e.payments(tok, "2024-01-01", "2024-03-31")
	if len(pays) == 0 {
		t.Fatal("no payments in early 2024")
	}
	var reqs []map[string]any
	for _, p := range pays[:min(10, len(pays))] {
		reqs = append(reqs, map[string]any{"payment_id": p.ID, "limit": 5000})
	}
	r := e.call("POST", "/employer/pay-statement", "bearer:"+tok, map[string]any{"requests": reqs})
	var body struct {
		Responses []struct {
			PaymentID string `json:"payment_id"`
			Code      int
			Body      struct {
				PayStatements []struct {
					IndividualID string                 `json:"individual_id"`
					Gross        struct{ Amount int64 } `json:"gross_pay"`
				} `json:"pay_statements"`
			}
		}
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Responses) != len(reqs) {
		t.Fatalf("pay statements = %s", r.body)
	}
	for i, res := range body.Responses {
		p := pays[i]
		var ids []string
		var gross int64
		for _, s := range res.Body.PayStatements {
			ids = append(ids, s.IndividualID)
			gross += s.Gross.Amount
		}
		if res.Code != 200 || !slices.Equal(ids, p.IndividualIDs) || gross != p.Gross.Amount {
			t.Errorf("payment %s of %s: statements of %v summing to %d; payment lists %v, gross %d", p.ID, p.PayDate, ids, gross, p.IndividualIDs, p.Gross.Amount)
		}
	}
}

// TestPayGroups_EveryGroupStaffed: whatever a connection's random draw,
// every pay group of a provider large enough has an active member, so a
// client always meets every pay frequency (a draw with no intern in one
// entity once made the timeline test fail one run in twenty).
func TestPayGroups_EveryGroupStaffed(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	for range 20 {
		for _, user := range []string{"authorized_simple", "authorized_complex"} {
			tok := e.token(user)
			for _, g := range e.payGroups(tok, "") {
				var one payGroup
				if r := e.call("GET", "/employer/pay-groups/"+g.ID, "bearer:"+tok, nil); json.Unmarshal(r.body, &one) != nil || len(one.IndividualIDs) == 0 {
					t.Fatalf("%s: pay group %q (%v) has no active member: %d %s", user, g.Name, g.Frequencies, r.status, r.body)
				}
			}
		}
	}
}
