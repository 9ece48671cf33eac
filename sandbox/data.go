package sandbox

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Data is generated from each connection's seed, so the same connection
// always shows the same employer, across restarts, without storing it.

var (
	firstNames = []string{"Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Priya", "Lucas", "Amara", "Diego", "Hana", "Omar", "Chloe", "Mateo", "Ines", "Kai", "Leila", "Jonah", "Sofia", "Ravi", "Nora", "Felix", "Yara", "Theo", "Mina", "Hugo", "Aisha", "Owen", "Lena", "Samir"}
	lastNames  = []string{"Nguyen", "Garcia", "Smith", "Okafor", "Patel", "Kim", "Johnson", "Rossi", "Silva", "Cohen", "Müller", "Brown", "Tanaka", "Dubois", "Khan", "Williams", "Novak", "Santos", "Lee", "Martin", "Haddad", "Larsen", "Moreau", "Ibrahim", "Walker", "Costa", "Fischer", "Reyes", "Ito", "O'Brien"}
	adjectives = []string{"Bluebird", "Granite", "Northwind", "Silverline", "Cedar", "Harbor", "Summit", "Lumen", "Evergreen", "Copperleaf", "Brightwater", "Ironwood"}
	nouns      = []string{"Logistics", "Health", "Robotics", "Foods", "Analytics", "Builders", "Outfitters", "Labs", "Media", "Energy", "Dental", "Freight"}
	suffixes   = []string{"LLC", "Inc.", "Co.", "Corporation", "Group"}
	depts      = []string{"Engineering", "Sales", "Operations", "Finance", "People", "Customer Success", "Marketing", "Legal"}
	cities     = []struct{ city, state, zip string }{{"San Francisco", "CA", "94105"}, {"Austin", "TX", "78701"}, {"New York", "NY", "10001"}, {"Denver", "CO", "80202"}, {"Chicago", "IL", "60601"}, {"Seattle", "WA", "98101"}}
	streets    = []string{"Market St", "Main St", "Congress Ave", "Broadway", "Larimer St", "Pine St"}
	titles     = []string{"Software Engineer", "Account Executive", "Operations Manager", "Accountant", "Recruiter", "Support Specialist", "Designer", "Counsel"}
)

func (c *connection) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(c.Seed, stream))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// stableID is a UUID-shaped id derived from the connection's seed.
func (c *connection) stableID(kind uint64, n int) string {
	r := c.rng(kind<<32 | uint64(n))
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0x3fff|0x8000, r.Uint64()&0xffffffffffff)
}

// company is the company of the connection's entity number i (0 when the
// connection has one). Entity 0 is the primary: it carries the connection's
// company_id and any PUT /sandbox/company. The others are sister companies
// of the same brand, each with its own id, legal name, EIN and account.
func (c *connection) company(i int) map[string]any {
	base := c.primaryCompany()
	if i <= 0 {
		return base
	}
	r := c.rng(5000 + uint64(i))
	brand := c.brand()
	region := []string{"West", "East", "Central", "North", "South"}[(i-1)%5]
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	out["id"] = c.stableID(4, i)
	out["legal_name"] = brand + " " + region + " LLC"
	out["entity"] = map[string]any{"type": "llc", "subtype": nil}
	out["ein"] = fmt.Sprintf("%02d-%07d", 10+r.IntN(89), r.IntN(10000000))
	out["accounts"] = []any{map[string]any{
		"account_name": region + " operating account", "account_number": fmt.Sprintf("%010d", r.Int64N(1e10)),
		"account_type": "checking", "institution_name": "First Sandbox Bank", "routing_number": fmt.Sprintf("%09d", r.IntN(1e9)),
	}}
	return out
}

// brand is the name the connection's companies share: the primary's
// generated legal name without its legal form.
func (c *connection) brand() string {
	r := c.rng(1)
	return pick(r, adjectives) + " " + pick(r, nouns)
}

// entityName is what /introspect calls entity i: its company's legal name.
func (c *connection) entityName(i int) any {
	return c.company(i)["legal_name"]
}

func (c *connection) primaryCompany() map[string]any {
	if c.Company != nil {
		out := map[string]any{"id": c.CompanyID}
		for k, v := range c.Company {
			out[k] = v
		}
		return out
	}
	r := c.rng(1)
	name := pick(r, adjectives) + " " + pick(r, nouns) + " " + pick(r, suffixes)
	var locations []any
	for i := range 2 {
		loc := pick(r, cities)
		locations = append(locations, map[string]any{
			"line1": fmt.Sprintf("%d %s", 100+r.IntN(900), pick(r, streets)), "line2": nil,
			"city": loc.city, "state": loc.state, "postal_code": loc.zip, "country": "US",
			"name": []string{"Headquarters", "Branch office"}[i], "source_id": nil,
		})
	}
	var departments []any
	for _, d := range depts[:4+r.IntN(4)] {
		departments = append(departments, map[string]any{"name": d, "parent": nil})
	}
	return map[string]any{
		"id":                   c.CompanyID,
		"legal_name":           name,
		"entity":               entityOf(r),
		"ein":                  fmt.Sprintf("%02d-%07d", 10+r.IntN(89), r.IntN(10000000)),
		"primary_email":        "payroll@" + fmt.Sprintf("example%d.com", r.IntN(1000)),
		"primary_phone_number": fmt.Sprintf("+1555%07d", r.IntN(10000000)),
		"departments":          departments,
		"locations":            locations,
		"accounts": []any{map[string]any{
			"account_name": "Operating account", "account_number": fmt.Sprintf("%010d", r.Int64N(1e10)),
			"account_type": "checking", "institution_name": "First Sandbox Bank", "routing_number": fmt.Sprintf("%09d", r.IntN(1e9)),
		}},
	}
}

// entityOf is a company's legal form; only corporations have a subtype.
func entityOf(r *rand.Rand) map[string]any {
	if r.IntN(2) == 0 {
		return map[string]any{"type": "llc", "subtype": nil}
	}
	return map[string]any{"type": "corporation", "subtype": pick(r, []string{"s_corporation", "c_corporation"})}
}

// person is one employee, enough to derive every endpoint's shape.
type person struct {
	ID, First, Last, Dept, Title, Entity, ManagerID string
	Active                                          bool
	Income                                          int64 // cents a year
	Start                                           string
	DOB                                             string
}

// people returns the connection's employees, generated plus any added by
// POST /sandbox/directory (those have no entity restrictions).
func (c *connection) people() []person {
	out := make([]person, 0, c.Employees)
	for i := range c.Employees {
		r := c.rng(1000 + uint64(i))
		p := person{
			ID: c.stableID(2, i), First: pick(r, firstNames), Last: pick(r, lastNames),
			Dept: pick(r, depts), Title: pick(r, titles), Active: r.IntN(10) != 0,
			Income: int64(50000+r.IntN(150000)) * 100,
			Start:  time.Date(2015+r.IntN(10), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
			DOB:    time.Date(1960+r.IntN(40), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
		}
		if len(c.Entities) > 0 {
			p.Entity = c.Entities[i%len(c.Entities)].ID
		}
		if i > 0 {
			p.ManagerID = c.stableID(2, r.IntN(min(i, 5)))
		}
		out = append(out, p)
	}
	for i, x := range c.Extra {
		p := person{ID: fmt.Sprint(x["id"]), First: str(x["first_name"]), Last: str(x["last_name"]), Active: true, Income: 0, Start: "2024-01-01"}
		if d, ok := x["department"].(map[string]any); ok {
			p.Dept = str(d["name"])
		}
		_ = i
		out = append(out, p)
	}
	return out
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func (p person) directoryItem() map[string]any {
	var mgr any
	if p.ManagerID != "" {
		mgr = map[string]any{"id": p.ManagerID}
	}
	return map[string]any{
		"id": p.ID, "first_name": p.First, "middle_name": nil, "last_name": p.Last,
		"is_active": p.Active, "department": map[string]any{"name": p.Dept}, "manager": mgr,
	}
}

func (p person) individual(withSSN bool) map[string]any {
	email := fmt.Sprintf("%s.%s@example.com", lower(p.First), lower(p.Last))
	out := map[string]any{
		"id": p.ID, "first_name": p.First, "middle_name": nil, "last_name": p.Last, "preferred_name": nil,
		"dob": p.DOB, "gender": "decline_to_specify", "ethnicity": "decline_to_specify", "marital_status": nil,
		"phone_numbers": []any{map[string]any{"data": "+15555550100", "type": "work"}},
		"emails":        []any{map[string]any{"data": email, "type": "work"}},
		"residence":     map[string]any{"line1": "1 Sandbox Way", "line2": nil, "city": "Austin", "state": "TX", "postal_code": "78701", "country": "US"},
		"encrypted_ssn": nil,
	}
	if withSSN {
		out["ssn"] = "000-00-" + p.ID[len(p.ID)-4:]
	}
	return out
}

func (p person) employment() map[string]any {
	var mgr any
	if p.ManagerID != "" {
		mgr = map[string]any{"id": p.ManagerID}
	}
	status := "active"
	if !p.Active {
		status = "terminated"
	}
	income := map[string]any{"amount": p.Income, "currency": "usd", "effective_date": p.Start, "unit": "yearly"}
	return map[string]any{
		"id": p.ID, "first_name": p.First, "middle_name": nil, "last_name": p.Last, "title": p.Title,
		"start_date": p.Start, "end_date": nil, "latest_rehire_date": nil, "is_active": p.Active, "employment_status": status,
		"employment": map[string]any{"type": "employee", "subtype": "full_time"},
		"department": map[string]any{"name": p.Dept}, "manager": mgr,
		"location":    map[string]any{"line1": "1 Sandbox Way", "line2": nil, "city": "Austin", "state": "TX", "postal_code": "78701", "country": "US"},
		"flsa_status": "exempt", "class_code": nil, "income": income, "income_history": []any{income},
		"custom_fields": []any{}, "source_id": nil,
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// payments are semi-monthly pay runs over the last year, relative to now.
func (c *connection) payments(now time.Time, people []person) []map[string]any {
	var out []map[string]any
	var ids []any
	var gross int64
	for _, p := range people {
		if p.Active {
			ids = append(ids, p.ID)
			gross += p.Income / 24
		}
	}
	day := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := range 24 {
		pay := day.AddDate(0, -i/2, 0)
		if i%2 == 1 {
			pay = pay.AddDate(0, 0, 14)
		}
		if pay.After(now) {
			continue
		}
		money := func(v int64) map[string]any { return map[string]any{"amount": v, "currency": "usd"} }
		out = append(out, map[string]any{
			"id": c.stableID(3, i), "pay_date": pay.Format(time.DateOnly), "debit_date": pay.AddDate(0, 0, -2).Format(time.DateOnly),
			"pay_period":    map[string]any{"start_date": pay.AddDate(0, 0, -15).Format(time.DateOnly), "end_date": pay.AddDate(0, 0, -1).Format(time.DateOnly)},
			"company_debit": money(gross + gross/13), "gross_pay": money(gross), "net_pay": money(gross * 7 / 10),
			"employer_taxes": money(gross / 13), "employee_taxes": money(gross * 3 / 10),
			"individual_ids": ids, "pay_group_ids": []any{}, "pay_frequencies": []any{"semi_monthly"},
		})
	}
	return out
}

func (p person) payStatement() map[string]any {
	gross := p.Income / 24
	money := func(v int64) map[string]any { return map[string]any{"amount": v, "currency": "usd"} }
	return map[string]any{
		"individual_id": p.ID, "type": "regular_payroll", "payment_method": "direct_deposit", "total_hours": 80,
		"gross_pay": money(gross), "net_pay": money(gross * 7 / 10),
		"earnings":               []any{map[string]any{"amount": gross, "currency": "usd", "hours": 80, "name": "Salary", "type": "salary"}},
		"employee_deductions":    []any{map[string]any{"amount": gross / 20, "currency": "usd", "name": "401(k)", "pre_tax": true, "type": "401k"}},
		"employer_contributions": []any{map[string]any{"amount": gross / 40, "currency": "usd", "name": "401(k) match", "type": "401k"}},
		"taxes": []any{
			map[string]any{"amount": gross * 15 / 100, "currency": "usd", "employer": false, "name": "Federal Income Tax", "type": "federal"},
			map[string]any{"amount": gross * 62 / 1000, "currency": "usd", "employer": true, "name": "Social Security", "type": "fica"},
		},
	}
}

// providers are the payroll providers the Connect page offers.
var providers = []struct{ ID, Name string }{
	{"gusto", "Gusto"}, {"adp_workforce_now", "ADP Workforce Now"}, {"bamboo_hr", "BambooHR"},
	{"paychex_flex", "Paychex Flex"}, {"rippling", "Rippling"}, {"justworks", "Justworks"},
	{"paylocity", "Paylocity"}, {"workday", "Workday"},
}

func providerName(id string) string {
	for _, p := range providers {
		if p.ID == id {
			return p.Name
		}
	}
	return ""
}
