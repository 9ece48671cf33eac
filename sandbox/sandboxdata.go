package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Finch's sandbox data API beyond company and directory:
// PUT /sandbox/individual/{id}, PUT /sandbox/employment/{id} and
// POST /sandbox/payment, in the shapes of the SDK's
// src/resources/sandbox/*.ts. Every field is checked before anything
// changes: a bad body answers 400 bad_request / invalid_request naming
// each problem and changes nothing. Changes are kept in the connection's
// state (one merged record per person and kind; at most
// maxSandboxPayments payments and maxSandboxStatements statements per
// connection) and are visible on /employer/* at once (see docs/sandbox.md
// for why the sandbox does not hold them back until a refresh).

const (
	maxSandboxPayments   = 200
	maxSandboxStatements = 20000
)

var (
	employmentStatuses = []string{"active", "deceased", "leave", "onboarding", "prehire", "retired", "terminated"}
	employmentTypes    = []string{"employee", "contractor"}
	employmentSubtypes = []string{"full_time", "intern", "part_time", "temp", "seasonal", "individual_contractor"}
	flsaStatuses       = []string{"exempt", "non_exempt", "unknown"}
	incomeUnits        = []string{"yearly", "quarterly", "monthly", "semi_monthly", "bi_weekly", "weekly", "daily", "hourly", "fixed"}
	contactTypes       = []string{"work", "personal"}
	statementTypes     = []string{"off_cycle_payroll", "one_time_payment", "regular_payroll"}
	paymentMethods     = []string{"check", "direct_deposit", "other"}
	earningTypes       = []string{"bonus", "commission", "double_overtime", "other", "overtime", "pto", "reimbursement", "salary", "severance", "sick", "tips", "wage", "1099"}
	benefitTypes       = []string{"457", "401k", "401k_roth", "401k_loan", "403b", "403b_roth", "457_roth", "commuter", "custom_post_tax", "custom_pre_tax", "fsa_dependent_care", "fsa_medical", "hsa_post", "hsa_pre", "s125_dental", "s125_medical", "s125_vision", "simple", "simple_ira"}
	taxTypes           = []string{"federal", "fica", "local", "state"}
	locationFields     = []string{"line1", "line2", "city", "state", "postal_code", "country", "name", "source_id"}
)

// checker collects the problems of a request body.
type checker struct{ problems []string }

func (ck *checker) bad(format string, args ...any) {
	ck.problems = append(ck.problems, fmt.Sprintf(format, args...))
}

func (ck *checker) answer(w http.ResponseWriter) bool {
	if len(ck.problems) == 0 {
		return false
	}
	badRequest(w, strings.Join(ck.problems, "; ")+".")
	return true
}

func (ck *checker) str(name string, v any) {
	if _, ok := v.(string); !ok && v != nil {
		ck.bad("%s must be a string or null", name)
	}
}

func (ck *checker) enum(name string, v any, values []string) {
	if s, ok := v.(string); v != nil && (!ok || !slices.Contains(values, s)) {
		ck.bad("%s must be one of %s, or null", name, strings.Join(values, ", "))
	}
}

func (ck *checker) date(name string, v any) {
	if s, ok := v.(string); v != nil {
		if _, err := time.Parse(time.DateOnly, s); !ok || err != nil {
			ck.bad("%s must be a date (YYYY-MM-DD) or null", name)
		}
	}
}

func (ck *checker) boolean(name string, v any) {
	if _, ok := v.(bool); !ok && v != nil {
		ck.bad("%s must be true, false or null", name)
	}
}

// cents checks a non-negative whole number of cents.
func (ck *checker) cents(name string, v any, nullOK bool) {
	if v == nil && nullOK {
		return
	}
	if n, ok := toInt64(v); !ok || n < 0 {
		ck.bad("%s must be a non-negative whole number of cents", name)
	}
}

func (ck *checker) number(name string, v any) {
	if f, ok := toFloat(v); !ok || f < 0 {
		ck.bad("%s must be a non-negative number", name)
	}
}

// object checks that v is an object with only the given keys (or null
// when nullOK) and returns it.
func (ck *checker) object(name string, v any, nullOK bool, keys ...string) map[string]any {
	if v == nil && nullOK {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		if nullOK {
			ck.bad("%s must be an object or null", name)
		} else {
			ck.bad("%s must be an object", name)
		}
		return nil
	}
	for _, k := range sortedKeys(m) {
		if !slices.Contains(keys, k) {
			ck.bad("%s has an unknown field %q", name, k)
		}
	}
	return m
}

// array checks that v is an array (or null when nullOK) and returns it.
func (ck *checker) array(name string, v any, nullOK bool) []any {
	if v == nil && nullOK {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		ck.bad("%s must be an array", name)
	}
	return a
}

func (ck *checker) location(name string, v any) {
	m := ck.object(name, v, true, locationFields...)
	for _, k := range locationFields {
		ck.str(name+"."+k, m[k])
	}
}

func (ck *checker) income(name string, v any) {
	m := ck.object(name, v, true, "amount", "currency", "effective_date", "unit")
	if m == nil {
		return
	}
	ck.cents(name+".amount", m["amount"], true)
	ck.str(name+".currency", m["currency"])
	ck.date(name+".effective_date", m["effective_date"])
	ck.enum(name+".unit", m["unit"], incomeUnits)
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}

// decodeObject reads a JSON object body (numbers kept exact), of at most
// maxBody bytes, with nothing after it.
func decodeObject(r *http.Request) (map[string]any, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, false
	}
	return m, true
}

// sandboxPerson finds individual id of connection c and returns the view;
// it answers 404 when c has no such person. s.mu must be held.
func (s *Server) sandboxPerson(c *connection, id string) (*view, int, bool) {
	v := s.viewOf(c)
	i, ok := v.index[id]
	return v, i, ok
}

var individualFields = []string{"first_name", "middle_name", "last_name", "preferred_name", "dob", "gender", "ethnicity", "marital_status", "emails", "phone_numbers", "residence", "ssn", "encrypted_ssn"}

// checkIndividual checks a PUT /sandbox/individual body.
func checkIndividual(body map[string]any) *checker {
	ck := &checker{}
	if _, ok := body["id"]; ok {
		ck.bad("id cannot be changed: the individual is the one in the path")
		delete(body, "id")
	}
	ck.object("the body", body, false, individualFields...)
	for _, k := range []string{"first_name", "middle_name", "last_name", "preferred_name", "encrypted_ssn"} {
		ck.str(k, body[k])
	}
	ck.date("dob", body["dob"])
	ck.enum("gender", body["gender"], genders)
	ck.enum("ethnicity", body["ethnicity"], ethnicities)
	ck.enum("marital_status", body["marital_status"], []string{"single", "married", "divorced", "widowed", "domestic_partner", "unknown"})
	for i, e := range ck.array("emails", body["emails"], true) {
		name := fmt.Sprintf("emails[%d]", i)
		m := ck.object(name, e, false, "data", "type")
		if d, ok := m["data"].(string); m != nil && (!ok || !strings.Contains(d, "@")) {
			ck.bad("%s.data must be an email address", name)
		}
		ck.enum(name+".type", m["type"], contactTypes)
	}
	for i, e := range ck.array("phone_numbers", body["phone_numbers"], true) {
		name := fmt.Sprintf("phone_numbers[%d]", i)
		m := ck.object(name, e, true, "data", "type")
		ck.str(name+".data", m["data"])
		ck.enum(name+".type", m["type"], contactTypes)
	}
	ck.location("residence", body["residence"])
	if v, ok := body["ssn"].(string); ok && !validSSN(v) {
		ck.bad("ssn must be a valid SSN, ddd-dd-dddd (not area 000, 666 or 900–999, group 00 or serial 0000)")
	} else {
		ck.str("ssn", body["ssn"])
	}
	return ck
}

var employmentFields = []string{"first_name", "middle_name", "last_name", "title", "class_code", "source_id", "union_code", "union_local", "custom_fields", "department", "employment", "employment_status", "start_date", "end_date", "latest_rehire_date", "flsa_status", "highly_compensated_employee", "key_employee", "is_active", "income", "income_history", "location", "manager"}

// checkEmployment checks a PUT /sandbox/employment body against the
// connection's people (v.index, for manager.id).
func checkEmployment(body map[string]any, v *view, self string) *checker {
	ck := &checker{}
	if _, ok := body["id"]; ok {
		ck.bad("id cannot be changed: the individual is the one in the path")
		delete(body, "id")
	}
	ck.object("the body", body, false, employmentFields...)
	for _, k := range []string{"first_name", "middle_name", "last_name", "title", "class_code", "source_id", "union_code", "union_local"} {
		ck.str(k, body[k])
	}
	for i, f := range ck.array("custom_fields", body["custom_fields"], true) {
		m := ck.object(fmt.Sprintf("custom_fields[%d]", i), f, false, "name", "value")
		ck.str(fmt.Sprintf("custom_fields[%d].name", i), m["name"])
	}
	if m := ck.object("department", body["department"], true, "name"); m != nil {
		ck.str("department.name", m["name"])
	}
	if m := ck.object("employment", body["employment"], true, "type", "subtype"); m != nil {
		ck.enum("employment.type", m["type"], employmentTypes)
		ck.enum("employment.subtype", m["subtype"], employmentSubtypes)
	}
	ck.enum("employment_status", body["employment_status"], employmentStatuses)
	for _, k := range []string{"start_date", "end_date", "latest_rehire_date"} {
		ck.date(k, body[k])
	}
	if s, ok := body["start_date"].(string); ok {
		if e, ok := body["end_date"].(string); ok && e < s {
			ck.bad("end_date must not be before start_date")
		}
	}
	ck.enum("flsa_status", body["flsa_status"], flsaStatuses)
	for _, k := range []string{"highly_compensated_employee", "key_employee", "is_active"} {
		ck.boolean(k, body[k])
	}
	ck.income("income", body["income"])
	for i, inc := range ck.array("income_history", body["income_history"], true) {
		ck.income(fmt.Sprintf("income_history[%d]", i), inc)
	}
	ck.location("location", body["location"])
	if m := ck.object("manager", body["manager"], true, "id"); m != nil {
		id, ok := m["id"].(string)
		if _, known := v.index[id]; !ok || !known {
			ck.bad("manager.id must be the id of one of this connection's individuals")
		} else if id == self {
			ck.bad("manager.id must not be the individual itself")
		}
	}
	return ck
}

// merge returns old with body's fields set over it.
func merge(old, body map[string]any) map[string]any {
	out := make(map[string]any, len(old)+len(body))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range body {
		out[k] = v
	}
	return out
}

// overlay returns generated with the fields of edit set over it: what a
// PUT set is shown as it was set.
func overlay(generated, edit map[string]any, skip ...string) map[string]any {
	for k, v := range edit {
		if !slices.Contains(skip, k) {
			generated[k] = v
		}
	}
	return generated
}

// individualJSON is person i of v as POST /employer/individual shows it.
func (c *connection) individualJSON(p person, withSSN bool) map[string]any {
	out := p.individual(withSSN)
	if c.Payroll != nil {
		if e, ok := c.Payroll.Individuals[p.ID]; ok {
			skip := []string{}
			if !withSSN {
				skip = append(skip, "ssn")
			}
			out = overlay(out, e, skip...)
		}
	}
	return out
}

// employmentJSON is p as POST /employer/employment shows it.
func (c *connection) employmentJSON(p person) map[string]any {
	out := p.employment()
	if c.Payroll != nil {
		if e, ok := c.Payroll.Employments[p.ID]; ok {
			// income and income_history follow the person's pay, which
			// a PUT's income changed.
			out = overlay(out, e, "income", "income_history")
			if h, ok := e["income_history"]; ok {
				out["income_history"] = h
			}
		}
	}
	return out
}

func strOrEmpty(v any) string { s, _ := v.(string); return s }

// applyIndividualEdit applies a PUT /sandbox/individual's fields to the
// person the routes derive from.
func applyIndividualEdit(p *person, e map[string]any) {
	for k, v := range e {
		switch s := strOrEmpty(v); k {
		case "first_name":
			p.First = s
		case "middle_name":
			p.Middle = s
		case "last_name":
			p.Last = s
		case "dob":
			p.DOB = s
		case "gender":
			p.Gender = s
		case "ethnicity":
			p.Ethnicity = s
		case "marital_status":
			p.Marital = s
		case "ssn":
			p.SSN = s
		}
	}
}

// yearly converts an income to cents a year (and cents an hour for
// hourly pay).
func yearly(amount int64, unit string) (int64, int64) {
	switch unit {
	case "hourly":
		return amount * 2080, amount
	case "daily":
		return amount * 260, 0
	case "weekly":
		return amount * 52, 0
	case "bi_weekly":
		return amount * 26, 0
	case "semi_monthly":
		return amount * 24, 0
	case "monthly":
		return amount * 12, 0
	case "quarterly":
		return amount * 4, 0
	}
	return amount, 0 // yearly, fixed
}

// applyEmploymentEdit applies a PUT /sandbox/employment's fields to the
// person; an income without effective_date takes effect on today, the
// day of the data's latest refresh.
func applyEmploymentEdit(p *person, e map[string]any, today string) {
	_, activeSet := e["is_active"]
	for k, v := range e {
		switch s := strOrEmpty(v); k {
		case "first_name":
			p.First = s
		case "middle_name":
			p.Middle = s
		case "last_name":
			p.Last = s
		case "title":
			p.Title = s
		case "department":
			m, _ := v.(map[string]any)
			p.Dept = strOrEmpty(m["name"])
		case "manager":
			m, _ := v.(map[string]any)
			p.ManagerID = strOrEmpty(m["id"])
		case "is_active":
			b, _ := v.(bool)
			p.Active = b
		case "employment_status":
			if !activeSet && s != "" {
				p.Active = s == "active" || s == "leave"
			}
		case "start_date":
			if s != "" {
				p.Start = s
			}
		case "end_date":
			p.End = s
		case "employment":
			m, _ := v.(map[string]any)
			if sub := strOrEmpty(m["subtype"]); sub != "" {
				p.Subtype = sub
			} else if strOrEmpty(m["type"]) == "contractor" {
				p.Subtype = "individual_contractor"
			}
		case "income":
			m, _ := v.(map[string]any)
			amount, ok := toInt64(m["amount"])
			if !ok {
				continue
			}
			income, hourly := yearly(amount, strOrEmpty(m["unit"]))
			from := strOrEmpty(m["effective_date"])
			if from == "" {
				from = today
			}
			p.addRaise(from, income, hourly)
		}
	}
}

// handleSandboxIndividual is PUT /sandbox/individual/{id}: it changes the
// fields the body gives and answers with the individual as
// POST /employer/individual now shows it (with its ssn, when set).
func (s *Server) handleSandboxIndividual(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	body, ok := decodeObject(r)
	if !ok {
		badRequest(w, "The body must be a JSON object of individual fields.")
		return
	}
	ck := checkIndividual(body)
	id := r.PathValue("id")
	s.mu.Lock()
	_, _, found := s.sandboxPerson(c, id)
	if !found {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found_error", "individual_not_found", "No individual with this id in this connection.")
		return
	}
	if len(ck.problems) > 0 {
		s.mu.Unlock()
		ck.answer(w)
		return
	}
	st := c.payrollState()
	if st.Individuals == nil {
		st.Individuals = map[string]map[string]any{}
	}
	st.Individuals[id] = merge(st.Individuals[id], body)
	st.gen++
	s.dirty = true
	v := s.viewOf(c)
	p := v.people[v.index[id]]
	out := c.individualJSON(p, true)
	s.emit(c, "individual.updated", map[string]any{"individual_id": id})
	if hasAny(body, "first_name", "middle_name", "last_name") {
		s.emit(c, "directory.updated", map[string]any{"individual_id": id})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func hasAny(m map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// handleSandboxEmployment is PUT /sandbox/employment/{id}: it changes the
// fields the body gives (is_active false with an end_date is a
// termination; an income is a raise from its effective_date, which pay
// runs from then on pay) and answers with the employment as
// POST /employer/employment now shows it.
func (s *Server) handleSandboxEmployment(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	body, ok := decodeObject(r)
	if !ok {
		badRequest(w, "The body must be a JSON object of employment fields.")
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	v, _, found := s.sandboxPerson(c, id)
	if !found {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found_error", "individual_not_found", "No individual with this id in this connection.")
		return
	}
	if ck := checkEmployment(body, v, id); len(ck.problems) > 0 {
		s.mu.Unlock()
		ck.answer(w)
		return
	}
	st := c.payrollState()
	if st.Employments == nil {
		st.Employments = map[string]map[string]any{}
	}
	st.Employments[id] = merge(st.Employments[id], body)
	st.gen++
	s.dirty = true
	v = s.viewOf(c)
	out := c.employmentJSON(v.people[v.index[id]])
	s.emit(c, "employment.updated", map[string]any{"individual_id": id})
	if hasAny(body, "first_name", "middle_name", "last_name", "is_active", "employment_status", "department", "manager") {
		s.emit(c, "directory.updated", map[string]any{"individual_id": id})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handleSandboxPayment is POST /sandbox/payment: a payment paid today
// (the sandbox clock's date) for the pay period start_date–end_date
// (default: the two weeks to today), with the given pay statements.
// Amounts are whole cents. A statement's gross_pay defaults to the sum of
// its earnings and its net_pay to gross less its deductions and employee
// taxes; the payment's totals are the sums of its statements, and its
// pay_group_ids and pay_frequencies those of its people's pay groups.
func (s *Server) handleSandboxPayment(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	body, ok := decodeObject(r)
	if !ok {
		badRequest(w, "The body must be a JSON object: {start_date?, end_date?, pay_statements?}.")
		return
	}
	ck := &checker{}
	ck.object("the body", body, false, "start_date", "end_date", "pay_statements")
	ck.date("start_date", body["start_date"])
	ck.date("end_date", body["end_date"])
	stmts := ck.array("pay_statements", body["pay_statements"], true)
	if len(stmts) > 10000 {
		ck.bad("pay_statements holds at most 10,000 statements")
		stmts = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	today := day(s.now())
	start, end := today.AddDate(0, 0, -13), today
	if v, ok := body["end_date"].(string); ok {
		end, _ = time.Parse(time.DateOnly, v)
		start = end.AddDate(0, 0, -13)
	}
	if v, ok := body["start_date"].(string); ok {
		start, _ = time.Parse(time.DateOnly, v)
		if _, ok := body["end_date"].(string); !ok && start.After(end) {
			end = start
		}
	}
	if start.After(end) {
		ck.bad("start_date must not be after end_date")
	}
	v := s.viewOf(c)
	st := c.payrollState()
	total := 0
	for _, p := range st.Payments {
		total += len(p.Statements)
	}
	if len(st.Payments) >= maxSandboxPayments || total+len(stmts) > maxSandboxStatements {
		ck.bad("this connection holds as many sandbox payments as the sandbox keeps (%d payments, %d statements)", maxSandboxPayments, maxSandboxStatements)
	}
	payDate := today.Format(time.DateOnly)
	var out []map[string]any
	var sum payslip // gross, net, fed = employee taxes, erSS = employer taxes, match = contributions
	ids, groups, freqs := []any{}, []any{}, []any{}
	seen := map[string]bool{}
	entity := -1
	for i, x := range stmts {
		name := fmt.Sprintf("pay_statements[%d]", i)
		m := ck.object(name, x, false, "individual_id", "type", "payment_method", "gross_pay", "net_pay", "total_hours", "earnings", "employee_deductions", "employer_contributions", "taxes")
		if m == nil {
			continue
		}
		id, _ := m["individual_id"].(string)
		pi, known := v.index[id]
		switch {
		case !known:
			ck.bad("%s.individual_id must be the id of one of this connection's individuals", name)
			continue
		case seen[id]:
			ck.bad("%s.individual_id appears twice in one payment", name)
			continue
		}
		seen[id] = true
		stmt, tot := checkStatement(ck, name, m)
		out = append(out, stmt)
		sum.gross += tot.gross
		sum.net += tot.net
		sum.fed += tot.fed
		sum.erSS += tot.erSS
		sum.match += tot.match
		ids = append(ids, id)
		g := c.groupOf(v.people[pi])
		if entity < 0 {
			entity = v.groups[g].Entity
		}
		if !slices.Contains(groups, any(v.groups[g].ID)) {
			groups = append(groups, v.groups[g].ID)
		}
		if !slices.Contains(freqs, any(v.groups[g].Freq)) {
			freqs = append(freqs, v.groups[g].Freq)
		}
	}
	if ck.answer(w) {
		return
	}
	if out == nil {
		out = []map[string]any{}
	}
	pid := s.id()
	sp := sandboxPayment{ID: pid, PayDate: payDate, Start: start.Format(time.DateOnly), End: end.Format(time.DateOnly), Entity: max(entity, 0), Statements: out}
	sp.Payment = map[string]any{
		"id": pid, "pay_date": payDate, "debit_date": today.AddDate(0, 0, -2).Format(time.DateOnly),
		"pay_period":    map[string]any{"start_date": sp.Start, "end_date": sp.End},
		"company_debit": money(sum.gross + sum.erSS + sum.match), "gross_pay": money(sum.gross), "net_pay": money(sum.net),
		"employer_taxes": money(sum.erSS), "employee_taxes": money(sum.fed),
		"individual_ids": ids, "pay_group_ids": groups, "pay_frequencies": freqs,
	}
	st.Payments = append(st.Payments, sp)
	st.gen++
	s.dirty = true
	s.emit(c, "payment.created", map[string]any{"payment_id": pid, "pay_date": payDate})
	for _, id := range ids {
		s.emit(c, "pay_statement.created", map[string]any{"payment_id": pid, "individual_id": id})
	}
	writeJSON(w, http.StatusOK, map[string]any{"payment_id": pid, "pay_date": payDate})
}

// checkStatement checks one sandbox pay statement and returns it as
// POST /employer/pay-statement shows it, with its totals.
func checkStatement(ck *checker, name string, m map[string]any) (map[string]any, payslip) {
	var tot payslip
	ck.enum(name+".type", m["type"], statementTypes)
	ck.enum(name+".payment_method", m["payment_method"], paymentMethods)
	amount := func(field string, v any) int64 {
		ck.cents(field, v, true)
		n, _ := toInt64(v)
		return n
	}
	// items checks a list of earnings, deductions, contributions or
	// taxes, each {amount, name, type, …}: name is required with a type.
	items := func(list string, kinds []string, extra ...string) ([]any, int64) {
		out, sum := []any{}, int64(0)
		keys := append([]string{"amount", "name", "type", "currency"}, extra...)
		for j, x := range ck.array(name+"."+list, m[list], true) {
			field := fmt.Sprintf("%s.%s[%d]", name, list, j)
			it := ck.object(field, x, false, keys...)
			if it == nil {
				continue
			}
			a := amount(field+".amount", it["amount"])
			ck.str(field+".name", it["name"])
			ck.enum(field+".type", it["type"], kinds)
			if it["type"] != nil && strOrEmpty(it["name"]) == "" {
				ck.bad("%s.name is required when type is set", field)
			}
			item := map[string]any{"amount": a, "currency": "usd", "name": it["name"], "type": it["type"]}
			for _, k := range extra {
				switch k {
				case "hours":
					if it[k] != nil {
						ck.number(field+".hours", it[k])
					}
					h, _ := toFloat(it[k])
					item[k] = nil
					if it[k] != nil {
						item[k] = h
					}
				default: // pre_tax, employer
					ck.boolean(field+"."+k, it[k])
					b, _ := it[k].(bool)
					item[k] = b
				}
			}
			out = append(out, item)
			sum += a
		}
		return out, sum
	}
	earnings, earned := items("earnings", earningTypes, "hours")
	deductions, deducted := items("employee_deductions", benefitTypes, "pre_tax")
	contributions, contributed := items("employer_contributions", benefitTypes)
	taxes, _ := items("taxes", taxTypes, "employer")
	var empTaxes, erTaxes int64
	for _, t := range taxes {
		t := t.(map[string]any)
		if t["employer"] == true {
			erTaxes += t["amount"].(int64)
		} else {
			empTaxes += t["amount"].(int64)
		}
	}
	tot.gross = earned
	if m["gross_pay"] != nil {
		tot.gross = amount(name+".gross_pay", m["gross_pay"])
	}
	tot.net = tot.gross - deducted - empTaxes
	if m["net_pay"] != nil {
		tot.net = amount(name+".net_pay", m["net_pay"])
	}
	if tot.net > tot.gross {
		ck.bad("%s.net_pay must not exceed gross_pay", name)
	}
	tot.fed, tot.erSS, tot.match = empTaxes, erTaxes, contributed
	var hours any
	if m["total_hours"] != nil {
		ck.number(name+".total_hours", m["total_hours"])
		hours, _ = toFloat(m["total_hours"])
	} else {
		var h float64
		for _, e := range earnings {
			if x, ok := e.(map[string]any)["hours"].(float64); ok {
				h += x
			}
		}
		if h > 0 {
			hours = h
		}
	}
	kind, method := m["type"], m["payment_method"]
	if kind == nil {
		kind = "regular_payroll"
	}
	if method == nil {
		method = "direct_deposit"
	}
	return map[string]any{
		"individual_id": m["individual_id"], "type": kind, "payment_method": method, "total_hours": hours,
		"gross_pay": money(tot.gross), "net_pay": money(tot.net),
		"earnings": earnings, "employee_deductions": deductions, "employer_contributions": contributions, "taxes": taxes,
	}, tot
}
