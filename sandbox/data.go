package sandbox

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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
	ID, First, Middle, Last, Dept, Title, Entity, ManagerID string
	Active                                                  bool
	Income                                                  int64 // cents a year (for hourly people, rate × 2,080 h)
	HourlyRate                                              int64 // cents an hour; 0 for salaried people
	Start, End                                              string
	DOB                                                     string
	Gender, Ethnicity, Marital                              string
	Phone                                                   string
	Home, Work                                              address
	Subtype                                                 string  // full_time, part_time, intern or individual_contractor
	Saves401k                                               bool    // has a 401(k) deduction
	SSN                                                     string  // valid in form and issuance (see ssnOf)
	Index                                                   int     // generator number (see genPerson); -1 for POST /sandbox/directory's
	Raises                                                  []raise // after the pay the person started on
	StartPay, StartHourly                                   int64   // that pay, once there are raises
}

// raise is a change of pay from Date on: the timeline's raises and a
// PUT /sandbox/employment's income.
type raise struct {
	Date       string // YYYY-MM-DD
	Income     int64  // cents a year
	HourlyRate int64  // cents an hour; 0 for salaried people
}

// incomeAt is the person's pay (cents a year, and cents an hour for hourly
// people) on day d (YYYY-MM-DD).
func (p person) incomeAt(d string) (int64, int64) {
	income, hourly := p.Income, p.HourlyRate
	if len(p.Raises) > 0 {
		// Income is the latest pay; before the first raise it was the
		// pay the person started on.
		income, hourly = p.StartPay, p.StartHourly
		for _, r := range p.Raises {
			if r.Date <= d {
				income, hourly = r.Income, r.HourlyRate
			}
		}
	}
	return income, hourly
}

// addRaise makes income (and hourly, for hourly people) the person's pay
// from day d on. It never appends to a slice another person shares.
func (p *person) addRaise(d string, income, hourly int64) {
	if len(p.Raises) == 0 {
		p.StartPay, p.StartHourly = p.Income, p.HourlyRate
	}
	p.Raises = append(slices.Clip(p.Raises), raise{Date: d, Income: income, HourlyRate: hourly})
	// A raise can be dated before an earlier one (a PUT's effective_date):
	// keep them in date order, the latest being the current pay.
	slices.SortStableFunc(p.Raises, func(a, b raise) int { return strings.Compare(a.Date, b.Date) })
	last := p.Raises[len(p.Raises)-1]
	p.Income, p.HourlyRate = last.Income, last.HourlyRate
}

type address struct{ Line1, City, State, Zip string }

func (a address) location() map[string]any {
	if a.City == "" {
		return nil
	}
	return map[string]any{"line1": a.Line1, "line2": nil, "city": a.City, "state": a.State, "postal_code": a.Zip, "country": "US"}
}

var (
	genders     = []string{"female", "male", "female", "male", "other", "decline_to_specify"}
	ethnicities = []string{"asian", "white", "black_or_african_american", "hispanic_or_latino", "two_or_more_races", "native_hawaiian_or_pacific_islander", "american_indian_or_alaska_native", "decline_to_specify"}
	maritals    = []string{"single", "married", "married", "divorced", "widowed", "domestic_partner", "unknown"}
	areaCodes   = map[string]string{"CA": "415", "TX": "512", "NY": "212", "CO": "303", "IL": "312", "WA": "206"}
)

// people returns the connection's employees as they were when it was
// made, generated plus any added by POST /sandbox/directory (those have no
// entity restrictions). What the employer data routes serve moves on with
// the clock: see [Server.viewOf] (timeline.go).
func (c *connection) people() []person {
	out := make([]person, 0, c.Employees+len(c.Extra))
	for i := range c.Employees {
		out = append(out, c.genPerson(i))
	}
	return append(out, c.extraPeople()...)
}

// genPerson is generated employee number i: numbers below c.Employees are
// the employer at connection time, later ones the timeline's hires.
func (c *connection) genPerson(i int) person {
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
	// Everything below comes from a stream of its own, so that the
	// fields above stay what they were before it was added.
	x := c.rng(20000 + uint64(i))
	if x.IntN(3) == 0 {
		p.Middle = pick(x, firstNames)
	}
	p.Gender, p.Ethnicity, p.Marital = pick(x, genders), pick(x, ethnicities), pick(x, maritals)
	work := pick(x, cities)
	p.Work = address{fmt.Sprintf("%d %s", 100+x.IntN(900), pick(x, streets)), work.city, work.state, work.zip}
	p.Home = address{fmt.Sprintf("%d %s", 1+x.IntN(9999), pick(x, streets)), work.city, work.state, work.zip}
	p.Phone = fmt.Sprintf("+1%s55501%02d", areaCodes[work.state], x.IntN(100)) // 555-0100…0199 are fictional
	p.Saves401k = x.IntN(10) < 7
	kind := x.IntN(20)
	if k, ok := c.forcedKind(i); ok {
		kind, p.Active = k, true
		// The forced full-timer also saves in the 401(k), so that every
		// employer big enough for the forced roles has someone enrolled
		// in each seeded plan (medical and 401(k)), whatever its seed.
		p.Saves401k = p.Saves401k || k == 19
	}
	switch {
	case kind == 0:
		p.Subtype, p.Title = "individual_contractor", "Contractor"
	case kind == 1:
		p.Subtype, p.Title = "intern", "Intern"
	case kind < 4:
		p.Subtype = "part_time"
	default:
		p.Subtype = "full_time"
	}
	if p.Subtype != "full_time" {
		p.HourlyRate = int64(18+x.IntN(28)) * 100
		p.Income = p.HourlyRate * 2080
	}
	if !p.Active {
		start, _ := time.Parse(time.DateOnly, p.Start)
		p.End = start.AddDate(1+x.IntN(3), x.IntN(12), 0).Format(time.DateOnly)
		// Someone who had left when the connection was made left by
		// then, not on a date still to come.
		if made := c.Created.UTC().Format(time.DateOnly); !c.Created.IsZero() && p.End > made {
			p.End = max(made, p.Start)
		}
	}
	p.SSN = ssnOf(c.rng(30000 + uint64(i)))
	p.Index = i
	return p
}

// forcedKind is the kind draw (0 contractor, 1 intern, 2–3 part-time,
// above full-time) that employee i must have, if any, so that every
// entity's four pay groups have an active member and every provider large
// enough meets every pay frequency (see paygroups.go) whatever its
// connection's random draw: the first employee of each entity is
// full-time, the last three of each a part-timer, an intern and a
// contractor, all active. Employers with fewer than four people per
// entity keep their draw.
func (c *connection) forcedKind(i int) (int, bool) {
	n := max(1, len(c.Entities))
	if i >= c.Employees || c.Employees < 4*n {
		return 0, false
	}
	base := c.Employees - 3*n
	switch {
	case i < n:
		return 19, true
	case i >= base:
		return [...]int{2, 1, 0}[(i-base)/n], true
	}
	return 0, false
}

// extraPeople are the people POST /sandbox/directory added.
func (c *connection) extraPeople() []person {
	var out []person
	for _, x := range c.Extra {
		p := person{ID: fmt.Sprint(x["id"]), First: str(x["first_name"]), Middle: str(x["middle_name"]), Last: str(x["last_name"]),
			Title: str(x["title"]), Active: true, Start: "2024-01-01", Subtype: "full_time", Index: -1}
		if d, ok := x["department"].(map[string]any); ok {
			p.Dept = str(d["name"])
		}
		if inc, ok := x["income"].(map[string]any); ok {
			if a, ok := inc["amount"].(float64); ok && str(inc["unit"]) == "yearly" {
				p.Income = int64(a)
			}
		}
		if v, ok := x["ssn"].(string); ok && validSSN(v) {
			p.SSN = v
		} else {
			p.SSN = ssnOf(c.rng(40000 + uint64(len(out))))
		}
		out = append(out, p)
	}
	return out
}

// ssnOf draws a Social Security number that is valid in form and in
// issuance rules: ddd-dd-dddd, area 001–899 but not 666, group 01–99,
// serial 0001–9999.
func ssnOf(r *rand.Rand) string {
	area := 1 + r.IntN(898) // 1…898
	if area >= 666 {
		area++ // skips 666; 899 at most
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, 1+r.IntN(99), 1+r.IntN(9999))
}

// validSSN reports whether v is a Social Security number of valid form
// and issuance: ddd-dd-dddd with no area 000, 666 or 900–999, no group
// 00 and no serial 0000.
func validSSN(v string) bool {
	if len(v) != 11 || v[3] != '-' || v[6] != '-' {
		return false
	}
	num := func(s string) int {
		n := 0
		for _, ch := range []byte(s) {
			if ch < '0' || ch > '9' {
				return -1
			}
			n = n*10 + int(ch-'0')
		}
		return n
	}
	area, group, serial := num(v[:3]), num(v[4:6]), num(v[7:])
	return area > 0 && area != 666 && area < 900 && group > 0 && serial > 0
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
		"id": p.ID, "first_name": p.First, "middle_name": nullable(p.Middle), "last_name": p.Last,
		"is_active": p.Active, "department": map[string]any{"name": nullable(p.Dept)}, "manager": mgr,
	}
}

func (p person) individual(withSSN bool) map[string]any {
	handle := lower(p.First) + "." + lower(p.Last)
	var phones, emails []any
	if p.Phone != "" {
		phones = []any{map[string]any{"data": p.Phone, "type": "personal"}}
	}
	if p.First != "" {
		emails = []any{map[string]any{"data": handle + "@example.com", "type": "work"}, map[string]any{"data": handle + "@example.net", "type": "personal"}}
	}
	out := map[string]any{
		"id": p.ID, "first_name": p.First, "middle_name": nullable(p.Middle), "last_name": p.Last, "preferred_name": nil,
		"dob": nullable(p.DOB), "gender": nullable(p.Gender), "ethnicity": nullable(p.Ethnicity), "marital_status": nullable(p.Marital),
		"phone_numbers": phones, "emails": emails, "residence": p.Home.location(), "encrypted_ssn": nil,
	}
	if withSSN {
		out["ssn"] = nullable(p.SSN)
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
	kind, flsa := "employee", "exempt"
	switch p.Subtype {
	case "individual_contractor":
		kind, flsa = "contractor", "unknown"
	case "part_time", "intern":
		flsa = "non_exempt"
	}
	var income, history any
	if p.Income > 0 {
		pay := func(yearly, hourly int64, from string) map[string]any {
			if hourly > 0 {
				return map[string]any{"amount": hourly, "currency": "usd", "effective_date": from, "unit": "hourly"}
			}
			return map[string]any{"amount": yearly, "currency": "usd", "effective_date": from, "unit": "yearly"}
		}
		cur := pay(p.Income, p.HourlyRate, p.Start)
		hist := []any{cur}
		if len(p.Raises) > 0 {
			// Newest first, as providers list it; the first entry is
			// the pay the person started on.
			hist = []any{}
			for i := len(p.Raises) - 1; i >= 0; i-- {
				r := p.Raises[i]
				hist = append(hist, pay(r.Income, r.HourlyRate, r.Date))
			}
			hist = append(hist, pay(p.StartPay, p.StartHourly, p.Start))
			cur = hist[0].(map[string]any)
		}
		income, history = cur, hist
	}
	return map[string]any{
		"id": p.ID, "first_name": p.First, "middle_name": nullable(p.Middle), "last_name": p.Last, "title": nullable(p.Title),
		"start_date": p.Start, "end_date": nullable(p.End), "latest_rehire_date": nil, "is_active": p.Active, "employment_status": status,
		"employment": map[string]any{"type": kind, "subtype": nullable(p.Subtype)},
		"department": map[string]any{"name": nullable(p.Dept)}, "manager": mgr, "location": p.Work.location(),
		"flsa_status": flsa, "class_code": nil, "union_code": nil, "union_local": nil,
		"highly_compensated_employee": p.Income >= 15000000, "key_employee": false,
		"income": income, "income_history": history, "custom_fields": []any{}, "source_id": nil,
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

// payslip is one person's pay for one semi-monthly run, in cents. Net pay
// is gross less the employee's taxes and deductions, and a payment's totals
// are the sums of its payslips, so the numbers reconcile the way a payroll
// register does.
type payslip struct {
	gross, net, hours                      int64 // hours in hundredths
	fed, state, ss, medicare, k401, health int64 // withheld from the employee
	erSS, erMedicare, match, erHealth      int64 // paid by the employer
}

// periodsPerYear is how many pay runs a pay frequency makes in a year.
func periodsPerYear(freq string) int64 {
	switch freq {
	case "weekly":
		return 52
	case "bi_weekly":
		return 26
	case "monthly":
		return 12
	}
	return 24 // semi_monthly
}

// payslipAt is the person's pay for a run of frequency freq paid on day
// d (YYYY-MM-DD), at the pay they had that day.
func (p person) payslipAt(d, freq string) payslip {
	var s payslip
	income, _ := p.incomeAt(d)
	periods := periodsPerYear(freq)
	s.gross = income / periods
	s.hours = 208000 / periods // 2,080 h a year, in hundredths
	if p.Subtype == "part_time" {
		s.gross, s.hours = s.gross/2, s.hours/2
	}
	if p.Subtype == "individual_contractor" {
		s.net = s.gross // a 1099 contractor: nothing withheld
		return s
	}
	if p.Saves401k {
		s.k401 = s.gross * 5 / 100
		s.match = s.k401 / 2
	}
	if p.Subtype == "full_time" {
		// Medical premiums are monthly: 95 $ and 350 $ a month, spread
		// over the month's runs.
		s.health, s.erHealth = 9500*12/periods, 35000*12/periods
	}
	taxable := s.gross - s.k401 - s.health
	s.fed = taxable * 12 / 100
	if p.Work.State != "TX" && p.Work.State != "WA" { // no state income tax there
		s.state = taxable * 5 / 100
	}
	s.ss, s.medicare = s.gross*62/1000, s.gross*145/10000
	s.erSS, s.erMedicare = s.ss, s.medicare
	s.net = s.gross - s.fed - s.state - s.ss - s.medicare - s.k401 - s.health
	return s
}

// payments are the pay runs of people over the payroll history as of now
// (see [connection.payRuns]), as GET /employer/payment shows them.
func (c *connection) payments(now time.Time, people []person) []map[string]any {
	v := c.buildPayroll(people, now).ensureRuns(c)
	out := make([]map[string]any, 0, len(v.runs))
	for i := range v.runs {
		out = append(out, v.paymentJSON(c, i))
	}
	return out
}

func (p person) payStatement() map[string]any { return p.payStatementAt("9999-12-31", "semi_monthly") }

// payStatementAt is the person's statement of a run of frequency freq
// paid on day d.
func (p person) payStatementAt(d, freq string) map[string]any {
	s := p.payslipAt(d, freq)
	money := func(v int64) map[string]any { return map[string]any{"amount": v, "currency": "usd"} }
	hours := float64(s.hours) / 100
	earning := map[string]any{"amount": s.gross, "currency": "usd", "hours": hours, "name": "Salary", "type": "salary"}
	method := "direct_deposit"
	switch {
	case p.Subtype == "individual_contractor":
		earning["name"], earning["type"], earning["hours"] = "Contract services", "1099", nil
		method = "check"
	case p.HourlyRate > 0:
		earning["name"], earning["type"] = "Regular hours", "wage"
	}
	deductions, contributions, taxes := []any{}, []any{}, []any{}
	if s.k401 > 0 {
		deductions = append(deductions, map[string]any{"amount": s.k401, "currency": "usd", "name": "401(k)", "pre_tax": true, "type": "401k"})
		contributions = append(contributions, map[string]any{"amount": s.match, "currency": "usd", "name": "401(k) match", "type": "401k"})
	}
	if s.health > 0 {
		deductions = append(deductions, map[string]any{"amount": s.health, "currency": "usd", "name": "Medical", "pre_tax": true, "type": "s125_medical"})
		contributions = append(contributions, map[string]any{"amount": s.erHealth, "currency": "usd", "name": "Medical", "type": "s125_medical"})
	}
	tax := func(amount int64, employer bool, name, kind string) {
		if amount > 0 {
			taxes = append(taxes, map[string]any{"amount": amount, "currency": "usd", "employer": employer, "name": name, "type": kind})
		}
	}
	tax(s.fed, false, "Federal Income Tax", "federal")
	tax(s.state, false, p.Work.State+" State Income Tax", "state")
	tax(s.ss, false, "Social Security", "fica")
	tax(s.medicare, false, "Medicare", "fica")
	tax(s.erSS, true, "Social Security (employer)", "fica")
	tax(s.erMedicare, true, "Medicare (employer)", "fica")
	return map[string]any{
		"individual_id": p.ID, "type": "regular_payroll", "payment_method": method, "total_hours": earning["hours"],
		"gross_pay": money(s.gross), "net_pay": money(s.net),
		"earnings": []any{earning}, "employee_deductions": deductions, "employer_contributions": contributions, "taxes": taxes,
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
