package sandbox_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestPayroll_Reconciles: a payment's totals are the sums of its pay
// statements, and each statement's net pay is its gross less the
// employee's taxes and deductions.
func TestPayroll_Reconciles(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	now := time.Now()
	r := e.call("GET", "/employer/payment?start_date="+now.AddDate(0, -2, 0).Format(time.DateOnly)+"&end_date="+now.Format(time.DateOnly), "bearer:"+tok, nil)
	type money struct{ Amount int64 }
	var payments []struct {
		ID            string
		IndividualIDs []string `json:"individual_ids"`
		Gross         money    `json:"gross_pay"`
		Net           money    `json:"net_pay"`
		EmpTaxes      money    `json:"employee_taxes"`
	}
	if err := json.Unmarshal(r.body, &payments); err != nil || r.status != http.StatusOK || len(payments) == 0 {
		t.Fatalf("payments = %d %s (%v)", r.status, r.body, err)
	}
	pay := payments[0]
	ps := e.call("POST", "/employer/pay-statement", "bearer:"+tok, map[string]any{"requests": []map[string]any{{"payment_id": pay.ID, "limit": 5000}}})
	var body struct {
		Responses []struct {
			Body struct {
				Paging        struct{ Count int }
				PayStatements []struct {
					IndividualID string  `json:"individual_id"`
					Gross        money   `json:"gross_pay"`
					Net          money   `json:"net_pay"`
					Deductions   []money `json:"employee_deductions"`
					Taxes        []struct {
						Amount   int64
						Employer bool
					}
				} `json:"pay_statements"`
			}
		}
	}
	if err := json.Unmarshal(ps.body, &body); err != nil || len(body.Responses) != 1 {
		t.Fatalf("pay statements = %s (%v)", ps.body, err)
	}
	stmts := body.Responses[0].Body.PayStatements
	if len(stmts) != len(pay.IndividualIDs) || body.Responses[0].Body.Paging.Count != len(stmts) {
		t.Errorf("%d pay statements (paging.count %d) for a payment of %d people", len(stmts), body.Responses[0].Body.Paging.Count, len(pay.IndividualIDs))
	}
	var gross, net, empTaxes int64
	for _, s := range stmts {
		withheld := int64(0)
		for _, d := range s.Deductions {
			withheld += d.Amount
		}
		for _, tx := range s.Taxes {
			if !tx.Employer {
				withheld += tx.Amount
				empTaxes += tx.Amount
			}
		}
		if s.Net.Amount != s.Gross.Amount-withheld {
			t.Errorf("statement of %s: net %d, want gross %d less %d withheld", s.IndividualID, s.Net.Amount, s.Gross.Amount, withheld)
		}
		gross += s.Gross.Amount
		net += s.Net.Amount
	}
	if gross != pay.Gross.Amount || net != pay.Net.Amount || empTaxes != pay.EmpTaxes.Amount {
		t.Errorf("statements sum to gross %d, net %d, employee taxes %d; payment says %d, %d, %d",
			gross, net, empTaxes, pay.Gross.Amount, pay.Net.Amount, pay.EmpTaxes.Amount)
	}
}

// TestIndividuals_Vary: people differ in more than their names — phones,
// homes and employment types are not one value copied to everyone.
func TestIndividuals_Vary(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_complex")
	dir := e.call("GET", "/employer/directory", "bearer:"+tok, nil).json(t)
	var reqs []map[string]string
	for _, p := range dir["individuals"].([]any) {
		reqs = append(reqs, map[string]string{"individual_id": p.(map[string]any)["id"].(string)})
	}
	phones, cities, subtypes := map[any]bool{}, map[any]bool{}, map[any]bool{}
	ind := e.call("POST", "/employer/individual", "bearer:"+tok, map[string]any{"requests": reqs}).json(t)
	for _, r := range ind["responses"].([]any) {
		b := r.(map[string]any)["body"].(map[string]any)
		phones[b["phone_numbers"].([]any)[0].(map[string]any)["data"]] = true
		cities[b["residence"].(map[string]any)["city"]] = true
	}
	emp := e.call("POST", "/employer/employment", "bearer:"+tok, map[string]any{"requests": reqs}).json(t)
	for _, r := range emp["responses"].([]any) {
		subtypes[r.(map[string]any)["body"].(map[string]any)["employment"].(map[string]any)["subtype"]] = true
	}
	if len(phones) < 20 || len(cities) < 3 || len(subtypes) < 3 {
		t.Errorf("%d people have %d phone numbers, %d home cities, %d employment subtypes; want variety", len(reqs), len(phones), len(cities), len(subtypes))
	}
}
