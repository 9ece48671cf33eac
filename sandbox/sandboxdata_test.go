package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

func (e *env) firstID(tok string) string {
	e.t.Helper()
	return e.call("GET", "/employer/directory", "bearer:"+tok, nil).json(e.t)["individuals"].([]any)[0].(map[string]any)["id"].(string)
}

func (e *env) individual(tok, id string) map[string]any {
	e.t.Helper()
	r := e.call("POST", "/employer/individual", "bearer:"+tok, map[string]any{"requests": []any{map[string]string{"individual_id": id}}, "options": map[string]any{"include": []string{"ssn"}}})
	return r.json(e.t)["responses"].([]any)[0].(map[string]any)["body"].(map[string]any)
}

func (e *env) employment(tok, id string) map[string]any {
	e.t.Helper()
	return e.snapshot(tok).emp[id]
}

// TestSandboxIndividual: PUT /sandbox/individual/{id} changes the given
// fields, answers with the whole individual, and the change shows on
// /employer/individual and /employer/directory; bad fields are 400s
// naming each problem, changing nothing, and an unknown id is 404.
func TestSandboxIndividual(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_simple", "directory", "individual", "employment", "ssn")
	id := e.firstID(tok)
	before := e.individual(tok, id)
	r := e.call("PUT", "/sandbox/individual/"+id, "bearer:"+tok, map[string]any{
		"first_name": "Zelda", "ssn": "123-45-6789", "gender": "other",
		"emails":    []any{map[string]any{"data": "zelda@example.org", "type": "work"}},
		"residence": map[string]any{"line1": "1 Elm St", "city": "Boise", "state": "ID", "postal_code": "83702", "country": "US"},
	})
	if r.status != http.StatusOK {
		t.Fatalf("PUT /sandbox/individual = %d %s", r.status, r.body)
	}
	out := r.json(t)
	if out["id"] != id || out["first_name"] != "Zelda" || out["last_name"] != before["last_name"] || out["ssn"] != "123-45-6789" {
		t.Errorf("answer = %v", out)
	}
	got := e.individual(tok, id)
	if got["first_name"] != "Zelda" || got["gender"] != "other" || got["ssn"] != "123-45-6789" || got["residence"].(map[string]any)["city"] != "Boise" ||
		got["emails"].([]any)[0].(map[string]any)["data"] != "zelda@example.org" || got["dob"] != before["dob"] {
		t.Errorf("/employer/individual after the PUT = %v", got)
	}
	if e.snapshot(tok).dir[id]["first_name"] != "Zelda" {
		t.Error("the directory does not show the new first name")
	}
	for _, bad := range []struct {
		body any
		want string
	}{
		{map[string]any{"ssn": "000-12-3456"}, "ssn"},
		{map[string]any{"gender": "robot", "dob": "yesterday"}, "gender"},
		{map[string]any{"emails": []any{map[string]any{"data": "nope"}}}, "emails[0].data"},
		{map[string]any{"favourite_colour": "blue"}, "favourite_colour"},
		{map[string]any{"id": "other"}, "id"},
		{`[1, 2]`, "JSON object"},
	} {
		r := e.call("PUT", "/sandbox/individual/"+id, "bearer:"+tok, bad.body)
		if m := r.json(t); r.status != http.StatusBadRequest || m["finch_code"] != "invalid_request" || !strings.Contains(m["message"].(string), bad.want) {
			t.Errorf("PUT %v = %d %s, want 400 invalid_request naming %s", bad.body, r.status, r.body, bad.want)
		}
	}
	if got2 := e.individual(tok, id); got2["gender"] != "other" || got2["dob"] != before["dob"] {
		t.Errorf("a refused PUT changed the individual: %v", got2)
	}
	if r := e.call("PUT", "/sandbox/individual/no-such-person", "bearer:"+tok, map[string]any{"first_name": "X"}); r.status != http.StatusNotFound {
		t.Errorf("PUT of an unknown individual = %d, want 404", r.status)
	}
	if r := e.call("PUT", "/sandbox/individual/"+id, "", map[string]any{"first_name": "X"}); r.status != http.StatusUnauthorized {
		t.Errorf("PUT without a token = %d, want 401", r.status)
	}
}

// TestSandboxEmployment: PUT /sandbox/employment/{id} terminates
// (is_active false, end_date) and raises (income): the directory shows
// the termination, income_history the raise, and pay runs after the
// effective date pay the new income while earlier ones keep the old.
func TestSandboxEmployment(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_simple")
	snap := e.snapshot(tok)
	var raised, fired string
	for id, emp := range snap.emp {
		if emp["is_active"] == true && emp["employment"].(map[string]any)["subtype"] == "full_time" {
			if raised == "" {
				raised = id
			} else if fired == "" {
				fired = id
			}
		}
	}
	old := amountOf(snap.emp[raised])
	r := e.call("PUT", "/sandbox/employment/"+raised, "bearer:"+tok, map[string]any{
		"income": map[string]any{"amount": int64(old) + 1200000, "currency": "usd", "unit": "yearly", "effective_date": "2026-01-01"},
		"title":  "Staff Engineer", "class_code": "X1",
	})
	if r.status != http.StatusOK {
		t.Fatalf("PUT /sandbox/employment = %d %s", r.status, r.body)
	}
	if m := r.json(t); m["id"] != raised || m["title"] != "Staff Engineer" || m["class_code"] != "X1" || amountOf(m) != old+1200000 {
		t.Errorf("answer = %v", m)
	}
	emp := e.employment(tok, raised)
	hist := emp["income_history"].([]any)
	if amountOf(emp) != old+1200000 || len(hist) != 2 || hist[1].(map[string]any)["amount"].(float64) != old {
		t.Errorf("employment after the raise: income %v, history %v", emp["income"], hist)
	}
	r = e.call("PUT", "/sandbox/employment/"+fired, "bearer:"+tok, map[string]any{"is_active": false, "end_date": "2026-02-13", "employment_status": "terminated"})
	if r.status != http.StatusOK {
		t.Fatalf("termination = %d %s", r.status, r.body)
	}
	after := e.snapshot(tok)
	if after.dir[fired]["is_active"] != false || after.emp[fired]["end_date"] != "2026-02-13" {
		t.Errorf("after the termination: directory %v, employment end_date %v", after.dir[fired], after.emp[fired]["end_date"])
	}
	// Pay: the raise from 2026-01-01, nobody pays the leaver after 2026-02-13.
	grossOf := func(payDate, id string) int64 {
		for _, p := range e.payments(tok, payDate, payDate) {
			if !slices.Contains(p.IndividualIDs, id) {
				return -1
			}
			r := e.call("POST", "/employer/pay-statement", "bearer:"+tok, map[string]any{"requests": []any{map[string]any{"payment_id": p.ID, "limit": 5000}}})
			for _, s := range r.json(t)["responses"].([]any)[0].(map[string]any)["body"].(map[string]any)["pay_statements"].([]any) {
				if s.(map[string]any)["individual_id"] == id {
					return int64(s.(map[string]any)["gross_pay"].(map[string]any)["amount"].(float64))
				}
			}
		}
		return -1
	}
	if before, after := grossOf("2025-12-31", raised), grossOf("2026-01-15", raised); before != int64(old)/24 || after != (int64(old)+1200000)/24 {
		t.Errorf("semi-monthly gross before the raise %d (want %d), after %d (want %d)", before, int64(old)/24, after, (int64(old)+1200000)/24)
	}
	if g := grossOf("2026-02-13", fired); g <= 0 {
		t.Errorf("the leaver's last pay day (2026-02-13) paid %d", g)
	}
	if g := grossOf("2026-02-27", fired); g != -1 {
		t.Errorf("a run after the leaver's end_date still pays them (%d)", g)
	}
	for _, bad := range []struct {
		body any
		want string
	}{
		{map[string]any{"employment_status": "fired"}, "employment_status"},
		{map[string]any{"income": map[string]any{"amount": 12.5, "unit": "yearly"}}, "income.amount"},
		{map[string]any{"income": map[string]any{"amount": 100, "unit": "per_fortnight"}}, "income.unit"},
		{map[string]any{"manager": map[string]any{"id": "nobody"}}, "manager.id"},
		{map[string]any{"start_date": "2026-05-01", "end_date": "2026-04-01"}, "end_date"},
		{map[string]any{"is_active": "yes"}, "is_active"},
		{map[string]any{"employment": map[string]any{"subtype": "gig"}}, "employment.subtype"},
	} {
		r := e.call("PUT", "/sandbox/employment/"+raised, "bearer:"+tok, bad.body)
		if m := r.json(t); r.status != http.StatusBadRequest || !strings.Contains(m["message"].(string), bad.want) {
			t.Errorf("PUT %v = %d %s, want 400 naming %s", bad.body, r.status, r.body, bad.want)
		}
	}
	if amountOf(e.employment(tok, raised)) != old+1200000 {
		t.Error("a refused PUT changed the employment")
	}
}

// TestSandboxPayment: POST /sandbox/payment answers {payment_id,
// pay_date}; the payment then shows on /employer/payment, totalled from
// its statements, with the pay groups of its people, and its statements
// on /employer/pay-statement; bad statements are 400s and add nothing.
func TestSandboxPayment(t *testing.T) {
	e := newEnv(t, sandbox.Options{Now: fixedClock()})
	tok := e.token("authorized_simple")
	id := e.firstID(tok)
	body := map[string]any{"start_date": "2026-02-16", "end_date": "2026-02-28", "pay_statements": []any{map[string]any{
		"individual_id": id, "type": "off_cycle_payroll", "payment_method": "check", "total_hours": 10,
		"earnings":               []any{map[string]any{"amount": 150000, "hours": 10, "name": "Bonus", "type": "bonus"}},
		"employee_deductions":    []any{map[string]any{"amount": 5000, "name": "401(k)", "pre_tax": true, "type": "401k", "currency": "usd"}},
		"employer_contributions": []any{map[string]any{"amount": 2500, "name": "401(k) match", "type": "401k"}},
		"taxes": []any{
			map[string]any{"amount": 20000, "employer": false, "name": "Federal", "type": "federal"},
			map[string]any{"amount": 9300, "employer": true, "name": "Social Security (employer)", "type": "fica"},
		},
	}}}
	r := e.call("POST", "/sandbox/payment", "bearer:"+tok, body)
	if r.status != http.StatusOK {
		t.Fatalf("POST /sandbox/payment = %d %s", r.status, r.body)
	}
	m := r.json(t)
	pid, _ := m["payment_id"].(string)
	if pid == "" || m["pay_date"] != "2026-03-02" || len(m) != 2 {
		t.Fatalf("answer = %v, want {payment_id, pay_date today}", m)
	}
	var found map[string]any
	raw := e.call("GET", "/employer/payment?start_date=2026-03-02&end_date=2026-03-02", "bearer:"+tok, nil)
	var list []map[string]any
	json.Unmarshal(raw.body, &list)
	for _, p := range list {
		if p["id"] == pid {
			found = p
		}
	}
	if found == nil {
		t.Fatalf("the payment is not on /employer/payment: %s", raw.body)
	}
	amt := func(k string) float64 { return found[k].(map[string]any)["amount"].(float64) }
	if amt("gross_pay") != 150000 || amt("net_pay") != 150000-5000-20000 || amt("employee_taxes") != 20000 || amt("employer_taxes") != 9300 ||
		amt("company_debit") != 150000+9300+2500 || found["pay_period"].(map[string]any)["start_date"] != "2026-02-16" {
		t.Errorf("payment = %v", found)
	}
	groups := found["pay_group_ids"].([]any)
	if len(groups) != 1 || e.call("GET", "/employer/pay-groups/"+groups[0].(string), "bearer:"+tok, nil).status != http.StatusOK {
		t.Errorf("pay_group_ids %v do not name a pay group", groups)
	}
	ps := e.call("POST", "/employer/pay-statement", "bearer:"+tok, map[string]any{"requests": []any{map[string]any{"payment_id": pid}}}).json(t)
	res := ps["responses"].([]any)[0].(map[string]any)
	stmts := res["body"].(map[string]any)["pay_statements"].([]any)
	if res["code"].(float64) != 200 || len(stmts) != 1 {
		t.Fatalf("pay statements = %v", res)
	}
	st := stmts[0].(map[string]any)
	if st["individual_id"] != id || st["type"] != "off_cycle_payroll" || st["payment_method"] != "check" ||
		st["earnings"].([]any)[0].(map[string]any)["currency"] != "usd" || st["net_pay"].(map[string]any)["amount"].(float64) != 125000 {
		t.Errorf("statement = %v", st)
	}
	for _, bad := range []struct {
		body any
		want string
	}{
		{map[string]any{"pay_statements": []any{map[string]any{"individual_id": "nobody"}}}, "individual_id"},
		{map[string]any{"pay_statements": []any{map[string]any{"individual_id": id}, map[string]any{"individual_id": id}}}, "twice"},
		{map[string]any{"pay_statements": []any{map[string]any{"individual_id": id, "gross_pay": -5}}}, "gross_pay"},
		{map[string]any{"pay_statements": []any{map[string]any{"individual_id": id, "taxes": []any{map[string]any{"amount": 1, "type": "fica"}}}}}, "name is required"},
		{map[string]any{"pay_statements": []any{map[string]any{"individual_id": id, "earnings": []any{map[string]any{"amount": 1, "name": "x", "type": "salary_ish"}}}}}, "earnings[0].type"},
		{map[string]any{"start_date": "2026-03-01", "end_date": "2026-02-01"}, "start_date"},
		{map[string]any{"end_date": "soon"}, "end_date"},
	} {
		r := e.call("POST", "/sandbox/payment", "bearer:"+tok, bad.body)
		if m := r.json(t); r.status != http.StatusBadRequest || !strings.Contains(m["message"].(string), bad.want) {
			t.Errorf("POST %v = %d %s, want 400 naming %s", bad.body, r.status, r.body, bad.want)
		}
	}
	json.Unmarshal(e.call("GET", "/employer/payment?start_date=2026-03-02&end_date=2026-03-02", "bearer:"+tok, nil).body, &list)
	n := 0
	for _, p := range list {
		if slices.Contains(p["pay_group_ids"].([]any), any(groups[0])) && p["id"] != pid && len(p["individual_ids"].([]any)) == 1 {
			n++
		}
	}
	if n != 0 {
		t.Errorf("refused payments were added (%d)", n)
	}
}

// TestSandboxData_Persists: the sandbox data API's changes survive a
// restart.
func TestSandboxData_Persists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, sandbox.Options{Now: fixedClock(), DataFile: file})
	tok := e.token("authorized_simple")
	id := e.firstID(tok)
	e.call("PUT", "/sandbox/individual/"+id, "bearer:"+tok, map[string]any{"last_name": "Persisted"})
	e.call("PUT", "/sandbox/employment/"+id, "bearer:"+tok, map[string]any{"title": "Keeper"})
	pid := e.call("POST", "/sandbox/payment", "bearer:"+tok, map[string]any{"pay_statements": []any{map[string]any{"individual_id": id, "gross_pay": 1000}}}).json(t)["payment_id"]
	e.sb.Close()
	e2 := newEnv(t, sandbox.Options{Now: fixedClock(), DataFile: file})
	if got := e2.individual(tok, id)["last_name"]; got != "Persisted" {
		t.Errorf("last_name after a restart = %v", got)
	}
	if got := e2.employment(tok, id)["title"]; got != "Keeper" {
		t.Errorf("title after a restart = %v", got)
	}
	if pays := e2.payments(tok, "2026-03-02", "2026-03-02"); !slices.ContainsFunc(pays, func(p payment) bool { return p.ID == pid }) {
		t.Errorf("the sandbox payment is gone after a restart")
	}
}

// hookRecorder collects webhooks by event type.
type hookRecorder struct {
	mu     sync.Mutex
	events []map[string]any
	got    chan struct{}
}

func newHookRecorder(t *testing.T) (*hookRecorder, string) {
	h := &hookRecorder{got: make(chan struct{}, 10000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		json.NewDecoder(r.Body).Decode(&ev)
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
		h.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// wait waits until pred holds for the events received (or fails after
// 10 s of no progress).
func (h *hookRecorder) wait(t *testing.T, what string, pred func([]map[string]any) bool) {
	t.Helper()
	for {
		h.mu.Lock()
		ok := pred(h.events)
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s webhook arrived", what)
		}
	}
}

func hasEvent(typ string, match func(data map[string]any) bool) func([]map[string]any) bool {
	return func(evs []map[string]any) bool {
		return slices.ContainsFunc(evs, func(ev map[string]any) bool {
			d, _ := ev["data"].(map[string]any)
			return ev["event_type"] == typ && d != nil && match(d)
		})
	}
}

// TestWebhooks_DataChanges: a day on the clock sends the webhooks of what
// the refresh changed — with ids only — noticed by the next request; the
// sandbox data API sends its own.
func TestWebhooks_DataChanges(t *testing.T) {
	h, url := newHookRecorder(t)
	e := newEnv(t, sandbox.Options{Now: fixedClock(), WebhookURL: url, WebhookSecret: "c2VjcmV0"})
	tok := e.token("authorized_complex")
	before := e.snapshot(tok)
	// To Friday 2026-03-06's refresh: weekly runs are paid that day.
	e.sb.Advance(4 * 24 * time.Hour)
	after := e.snapshot(tok)
	var hired, leaver string
	for id, emp := range after.emp {
		if before.emp[id] == nil {
			hired = id
		} else if before.emp[id]["is_active"] == true && emp["is_active"] == false {
			leaver = id
		}
	}
	is := func(id string) func(map[string]any) bool {
		return func(d map[string]any) bool { return d["individual_id"] == id && len(d) == 1 }
	}
	if hired != "" {
		h.wait(t, "directory.created", hasEvent("directory.created", is(hired)))
		h.wait(t, "employment.created", hasEvent("employment.created", is(hired)))
		h.wait(t, "individual.created", hasEvent("individual.created", is(hired)))
	}
	if leaver != "" {
		h.wait(t, "directory.updated", hasEvent("directory.updated", is(leaver)))
	}
	if hired == "" && leaver == "" {
		h.wait(t, "employment.updated", hasEvent("employment.updated", func(d map[string]any) bool { return d["individual_id"] != nil }))
	}
	var weekly payment
	for _, p := range e.payments(tok, "2026-03-06", "2026-03-06") {
		if p.Frequencies[0] == "weekly" {
			weekly = p
		}
	}
	if weekly.ID == "" {
		t.Fatal("no weekly run on Friday 2026-03-06")
	}
	h.wait(t, "payment.created", hasEvent("payment.created", func(d map[string]any) bool {
		return d["payment_id"] == weekly.ID && d["pay_date"] == "2026-03-06" && len(d) == 2
	}))
	h.wait(t, "pay_statement.created", hasEvent("pay_statement.created", func(d map[string]any) bool {
		return d["payment_id"] == weekly.ID && d["individual_id"] == weekly.IndividualIDs[0]
	}))
	// Nothing from before the connection: no payment.created for older runs.
	h.mu.Lock()
	for _, ev := range h.events {
		if d, _ := ev["data"].(map[string]any); ev["event_type"] == "payment.created" && d["pay_date"].(string) <= "2026-03-02" {
			t.Errorf("payment.created for a run of %v, already there at connection time", d["pay_date"])
		}
		if ev["connection_id"] == nil || ev["company_id"] == nil || ev["account_id"] == nil {
			t.Errorf("event without Finch's envelope: %v", ev)
		}
	}
	h.mu.Unlock()
	id := e.firstID(tok)
	e.call("PUT", "/sandbox/employment/"+id, "bearer:"+tok, map[string]any{"title": "Changed"})
	h.wait(t, "employment.updated of the PUT", hasEvent("employment.updated", is(id)))
	e.call("PUT", "/sandbox/individual/"+id, "bearer:"+tok, map[string]any{"first_name": "Changed"})
	h.wait(t, "individual.updated", hasEvent("individual.updated", is(id)))
	pid := e.call("POST", "/sandbox/payment", "bearer:"+tok, map[string]any{"pay_statements": []any{map[string]any{"individual_id": id, "gross_pay": 1000}}}).json(t)["payment_id"]
	h.wait(t, "payment.created of the POST", hasEvent("payment.created", func(d map[string]any) bool { return d["payment_id"] == pid }))
	h.wait(t, "pay_statement.created of the POST", hasEvent("pay_statement.created", func(d map[string]any) bool { return d["payment_id"] == pid && d["individual_id"] == id }))
}

// TestSSN_OverHTTP: with the ssn product and options.include ["ssn"],
// every individual of a large employer has a valid SSN; without the
// option there is no ssn at all.
func TestSSN_OverHTTP(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_complex", "directory", "individual", "ssn")
	var reqs []map[string]string
	for _, p := range e.call("GET", "/employer/directory", "bearer:"+tok, nil).json(t)["individuals"].([]any) {
		reqs = append(reqs, map[string]string{"individual_id": p.(map[string]any)["id"].(string)})
	}
	valid := regexp.MustCompile(`^(00[1-9]|0[1-9]\d|[1-5]\d\d|6[0-57-9]\d|66[0-57-9]|[78]\d\d)-(0[1-9]|[1-9]\d)-(000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d\d\d)$`)
	with := e.call("POST", "/employer/individual", "bearer:"+tok, map[string]any{"requests": reqs, "options": map[string]any{"include": []string{"ssn"}}}).json(t)
	distinct := map[any]bool{}
	for _, r := range with["responses"].([]any) {
		ssn, _ := r.(map[string]any)["body"].(map[string]any)["ssn"].(string)
		if !valid.MatchString(ssn) {
			t.Errorf("SSN %q is not a valid SSN", ssn)
		}
		distinct[ssn] = true
	}
	if len(reqs) != 320 || len(distinct) < 315 {
		t.Errorf("%d people, %d distinct SSNs", len(reqs), len(distinct))
	}
	without := e.call("POST", "/employer/individual", "bearer:"+tok, map[string]any{"requests": reqs[:5]}).json(t)
	for _, r := range without["responses"].([]any) {
		if _, ok := r.(map[string]any)["body"].(map[string]any)["ssn"]; ok {
			t.Error("an SSN without options.include [\"ssn\"]")
		}
	}
}
