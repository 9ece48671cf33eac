package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
)

// recentPayments is how many of an employee's latest pay statements the
// employee page shows, and payLookback how far back it looks for them.
const (
	recentPayments = 3
	payLookback    = 120 * 24 * time.Hour
	// payStatementPage is how many statements of a payment are read per
	// request while looking for the employee's; Finch allows 5,000.
	payStatementPage = 500
	// maxStatementReads bounds the requests one page makes for them.
	maxStatementReads = 10
)

// employeePage is one employee of one connection: the person, the job and
// recent pay. Everything in it is a display string built by the views, so
// no raw SSN reaches the template.
type employeePage struct {
	Conn       finchconnect.Connection
	ConnName   string
	ConnURL    string
	Name       string
	Individual *individualView
	Employment *employmentView
	Pay        []payView
	PayChecked bool   // pay statements were read (the connection has the products)
	PaySince   string // the first day searched for pay statements
	Problems   []string
}

// handleEmployee shows one employee of a connection, read from Finch with
// the stored token: POST /employer/individual (with the SSN when the
// connection has the ssn product, shown masked), /employer/employment, and
// the pay statements of the latest payments that include them.
func (s *Server) handleEmployee() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id, individual := r.PathValue("id"), r.PathValue("individual")
		if individual == "" || len(individual) > 255 {
			s.renderError(w, r, http.StatusNotFound, "No such employee.", "The link is not an employee's.")
			return
		}
		conn, err := s.store.Get(ctx, id)
		if err != nil {
			s.fail(w, r, false, storeFailure(err))
			return
		}
		token := conn.AccessToken
		conn.AccessToken = finchconnect.Secret{}
		page := employeePage{
			Conn:     conn,
			ConnName: cmp.Or(conn.CustomerName, conn.CustomerID),
			ConnURL:  s.link("/connections/" + url.PathEscape(id)),
		}
		s.audit(ctx, finchconnect.AuditDecrypted, id, "browser", "employee page")

		var (
			ind      *finch.IndividualDetail
			emp      *finch.Employment
			pay      []payView
			errs     = make([]error, 3)
			products = [3]bool{conn.HasProduct("individual"), conn.HasProduct("employment"), conn.HasProduct("pay_statement") && conn.HasProduct("payment")}
		)
		now := s.clock.Now().UTC()
		since := now.Add(-payLookback)
		runAll(
			func() {
				if products[0] {
					ind, errs[0] = s.readIndividual(ctx, token, individual, conn.HasProduct("ssn"))
				}
			},
			func() {
				if products[1] {
					emp, errs[1] = s.readEmployment(ctx, token, individual)
				}
			},
			func() {
				if products[2] {
					pay, errs[2] = s.readRecentPay(ctx, token, individual, since, now)
				}
			},
		)
		if ind != nil {
			page.Individual = newIndividualView(ind)
		}
		if emp != nil {
			page.Employment = newEmploymentView(emp)
		}
		page.Pay, page.PayChecked, page.PaySince = pay, products[2] && errs[2] == nil, since.Format("2 Jan 2006")
		page.Name = "Employee"
		switch {
		case ind != nil:
			page.Name = cmp.Or(joinNonEmpty(" ", cmp.Or(ind.PreferredName, ind.FirstName), ind.LastName), page.Name)
		case emp != nil:
			page.Name = cmp.Or(joinNonEmpty(" ", emp.FirstName, emp.LastName), page.Name)
		}
		notFound := 0
		cp := connectionPage{Conn: conn} // dataError records a re-authentication once
		for _, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, finchconnect.ErrNotFound):
				notFound++
			default:
				if msg := s.dataError(r, id, err, &cp); !slices.Contains(page.Problems, msg) {
					page.Problems = append(page.Problems, msg)
				}
			}
		}
		if notFound > 0 && ind == nil && emp == nil {
			s.renderError(w, r, http.StatusNotFound, "No such employee.", "Finch knows no employee with this id at this employer.")
			return
		}
		if !products[0] && !products[1] && !products[2] {
			page.Problems = append(page.Problems, "This connection was not granted the individual, employment or pay statement products.")
		}
		s.render(w, r, http.StatusOK, "employee", page.Name+" · "+page.ConnName, page)
	})
}

// runAll runs each function at once and waits for all of them. A panic in
// one is raised again in the caller's goroutine, where the server's
// recovery answers it.
func runAll(fns ...func()) {
	var wg sync.WaitGroup
	panics := make([]any, len(fns))
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			fn()
		}()
	}
	wg.Wait()
	for _, p := range panics {
		if p != nil {
			panic(p)
		}
	}
}

func (s *Server) readIndividual(ctx context.Context, token finchconnect.Secret, id string, ssn bool) (*finch.IndividualDetail, error) {
	res, err := s.finch.Individuals(ctx, token, []string{id}, finch.IndividualOptions{IncludeSSN: ssn})
	if err != nil {
		return nil, err
	}
	for _, it := range res {
		if it.IndividualID == id || len(res) == 1 {
			if it.Err != nil {
				return nil, itemError(it.Code, it.Err)
			}
			return it.Individual, nil
		}
	}
	return nil, fmt.Errorf("server: individual: %w", finchconnect.ErrNotFound)
}

func (s *Server) readEmployment(ctx context.Context, token finchconnect.Secret, id string) (*finch.Employment, error) {
	res, err := s.finch.Employments(ctx, token, []string{id})
	if err != nil {
		return nil, err
	}
	for _, it := range res {
		if it.IndividualID == id || len(res) == 1 {
			if it.Err != nil {
				return nil, itemError(it.Code, it.Err)
			}
			return it.Employment, nil
		}
	}
	return nil, fmt.Errorf("server: employment: %w", finchconnect.ErrNotFound)
}

// itemError is a failed batch item's error, a 404 made ErrNotFound (the
// page then says there is no such employee).
func itemError(code int, err error) error {
	if code == http.StatusNotFound && !errors.Is(err, finchconnect.ErrNotFound) {
		return fmt.Errorf("%w: %v", finchconnect.ErrNotFound, err)
	}
	return err
}

// readRecentPay finds the employee's statements in the latest payments
// between since and now that include them, newest first.
func (s *Server) readRecentPay(ctx context.Context, token finchconnect.Secret, id string, since, now time.Time) ([]payView, error) {
	payments, err := s.finch.Payments(ctx, token, since.Format(time.DateOnly), now.Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	// A payment that lists its individuals and not this one is skipped;
	// one that lists none may hold them.
	payments = slices.DeleteFunc(payments, func(p finch.Payment) bool {
		return len(p.IndividualIDs) > 0 && !slices.Contains(p.IndividualIDs, id) || p.ID == ""
	})
	slices.SortFunc(payments, func(a, b finch.Payment) int { return cmp.Compare(b.PayDate, a.PayDate) })
	payments = payments[:min(len(payments), recentPayments)]
	byID := map[string]finch.Payment{}
	offsets := map[string]int{}
	found := map[string]finch.PayStatement{}
	for _, p := range payments {
		byID[p.ID] = p
		offsets[p.ID] = 0
	}
	for range maxStatementReads {
		var reqs []finch.PayStatementRequest
		for pid, off := range offsets {
			reqs = append(reqs, finch.PayStatementRequest{PaymentID: pid, Limit: payStatementPage, Offset: off})
		}
		if len(reqs) == 0 {
			break
		}
		slices.SortFunc(reqs, func(a, b finch.PayStatementRequest) int { return cmp.Compare(a.PaymentID, b.PaymentID) })
		res, err := s.finch.PayStatements(ctx, token, reqs)
		if err != nil {
			return nil, err
		}
		for _, pr := range res {
			off, asked := offsets[pr.PaymentID]
			if !asked {
				continue
			}
			delete(offsets, pr.PaymentID) // unless paged on below
			if pr.Err != nil {
				continue // not yet synced, or gone: the others still show
			}
			for _, st := range pr.PayStatements {
				if st.IndividualID == id {
					found[pr.PaymentID] = st
				}
			}
			_, ok := found[pr.PaymentID]
			next := off + len(pr.PayStatements)
			if !ok && pr.Paging != nil && len(pr.PayStatements) > 0 && next < pr.Paging.Count {
				offsets[pr.PaymentID] = next
			}
		}
	}
	var out []payView
	for _, p := range payments {
		if st, ok := found[p.ID]; ok {
			out = append(out, newPayView(p, st))
		}
	}
	return out, nil
}

// individualView is an individual as the employee page shows it, the SSN
// masked to its last four digits.
type individualView struct {
	Name, PreferredName, DOB, Gender, Ethnicity, MaritalStatus string
	SSN                                                        string
	Emails, Phones                                             []string
	Residence                                                  string
}

func newIndividualView(in *finch.IndividualDetail) *individualView {
	v := &individualView{
		Name:          orDash(joinNonEmpty(" ", in.FirstName, in.MiddleName, in.LastName)),
		PreferredName: orDash(in.PreferredName),
		DOB:           orDash(in.DOB),
		Gender:        orDash(humanWords(in.Gender, false)),
		Ethnicity:     orDash(humanWords(in.Ethnicity, false)),
		MaritalStatus: orDash(humanWords(in.MaritalStatus, false)),
		SSN:           "—",
		Residence:     "—",
	}
	switch {
	case !in.SSN.IsZero():
		v.SSN = maskSSN(in.SSN.Reveal())
	case in.EncryptedSSN != "":
		v.SSN = "encrypted by Finch; not shown"
	}
	for _, e := range in.Emails {
		if e.Data != "" {
			v.Emails = append(v.Emails, joinNonEmpty(" ", e.Data, parenthesized(e.Type)))
		}
	}
	for _, p := range in.PhoneNumbers {
		if p.Data != "" {
			v.Phones = append(v.Phones, joinNonEmpty(" ", p.Data, parenthesized(p.Type)))
		}
	}
	if l := in.Residence; l != nil {
		v.Residence = orDash(formatLocation(*l))
	}
	return v
}

func parenthesized(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

func formatLocation(l finch.Location) string {
	return joinNonEmpty(", ", l.Name, l.Line1, l.Line2, l.City, joinNonEmpty(" ", l.State, l.PostalCode), l.Country)
}

// maskSSN shows an SSN as •••-••-1234, whatever its stored format (with
// or without dashes). A value too short to be one is hidden whole.
func maskSSN(ssn string) string {
	var kept []byte
	for i := 0; i < len(ssn); i++ {
		if c := ssn[i]; c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			kept = append(kept, c)
		}
	}
	if len(kept) < 8 {
		return "•••-••-••••"
	}
	return "•••-••-" + string(kept[len(kept)-4:])
}

// employmentView is an employment as the employee page shows it.
type employmentView struct {
	Title, Department, Kind, Status, Start, End, Manager, Location, Income, FLSA string
}

func newEmploymentView(e *finch.Employment) *employmentView {
	v := &employmentView{
		Title:    orDash(e.Title),
		Start:    orDash(e.StartDate),
		End:      orDash(e.EndDate),
		Manager:  "—",
		Location: "—",
		Income:   "—",
		FLSA:     orDash(flsaNames[e.FLSAStatus]),
		Status:   orDash(humanWords(e.EmploymentStatus, false)),
	}
	if v.FLSA == "—" && e.FLSAStatus != "" {
		v.FLSA = humanWords(e.FLSAStatus, false)
	}
	if v.Status == "—" && e.IsActive != nil {
		v.Status = map[bool]string{true: "Active", false: "Inactive"}[*e.IsActive]
	}
	v.Department = "—"
	if e.Department != nil && e.Department.Name != "" {
		v.Department = e.Department.Name
	}
	if t := e.Employment; t != nil {
		v.Kind = joinNonEmpty(", ", humanWords(t.Type, false), strings.ToLower(humanWords(t.Subtype, false)))
	}
	v.Kind = orDash(v.Kind)
	if e.Manager != nil && e.Manager.ID != "" {
		v.Manager = e.Manager.ID
	}
	if e.Location != nil {
		v.Location = orDash(formatLocation(*e.Location))
	}
	if in := e.Income; in != nil && in.Amount != nil {
		v.Income = joinNonEmpty(" ", money(*in.Amount, in.Currency), incomeUnits[in.Unit])
		if in.EffectiveDate != "" {
			v.Income += " since " + in.EffectiveDate
		}
	}
	return v
}

var flsaNames = map[string]string{"exempt": "Exempt", "non_exempt": "Non-exempt", "unknown": "Unknown"}

var incomeUnits = map[string]string{
	"yearly": "a year", "quarterly": "a quarter", "monthly": "a month", "semi_monthly": "twice a month",
	"bi_weekly": "every two weeks", "weekly": "a week", "daily": "a day", "hourly": "an hour", "fixed": "fixed",
}

// payView is one pay statement as the employee page shows it.
type payView struct {
	PayDate, Period, Type, Method, Hours, Gross, Net string
}

func newPayView(p finch.Payment, st finch.PayStatement) payView {
	v := payView{
		PayDate: orDash(p.PayDate),
		Period:  "—",
		Type:    orDash(humanWords(st.Type, false)),
		Method:  orDash(humanWords(st.PaymentMethod, false)),
		Hours:   "—",
		Gross:   "—",
		Net:     "—",
	}
	if pp := p.PayPeriod; pp != nil && (pp.StartDate != "" || pp.EndDate != "") {
		v.Period = pp.StartDate + " – " + pp.EndDate
	}
	if st.TotalHours != nil {
		v.Hours = strconv.FormatFloat(*st.TotalHours, 'f', -1, 64)
	}
	if m := st.GrossPay; m != nil && m.Amount != nil {
		v.Gross = money(*m.Amount, m.Currency)
	}
	if m := st.NetPay; m != nil && m.Amount != nil {
		v.Net = money(*m.Amount, m.Currency)
	}
	return v
}

// money writes an amount in cents: "$1,234.56" in dollars, "1,234.56 EUR"
// in another currency.
func money(cents int64, currency string) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	s := num(int(cents/100)) + fmt.Sprintf(".%02d", cents%100)
	cur := strings.ToUpper(currency)
	if cur == "" || cur == "USD" {
		s = "$" + s
	} else {
		s += " " + cur
	}
	if neg {
		s = "−" + s
	}
	return s
}
