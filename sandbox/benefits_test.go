package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// hookBox receives the sandbox's webhooks, parsed; events a test has
// not asked for yet wait in kept.
type hookBox struct {
	ch   chan map[string]any
	kept *[]map[string]any
}

// webhooks starts a receiver and returns its URL and what it receives.
func webhooks(t *testing.T) (string, hookBox) {
	t.Helper()
	box := hookBox{make(chan map[string]any, 256), new([]map[string]any)}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err == nil {
			box.ch <- m
		}
	}))
	t.Cleanup(recv.Close)
	return recv.URL, box
}

// next returns the first webhook of eventType, received or to come,
// keeping the others for later calls; it fails the test when none comes
// in 10 s (delivery is asynchronous; nothing here waits for the
// sandbox's clock).
func (b hookBox) next(t *testing.T, eventType string) map[string]any {
	t.Helper()
	for i, m := range *b.kept {
		if m["event_type"] == eventType {
			*b.kept = append((*b.kept)[:i], (*b.kept)[i+1:]...)
			return m
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-b.ch:
			if m["event_type"] == eventType {
				return m
			}
			*b.kept = append(*b.kept, m)
		case <-deadline:
			t.Fatalf("no %s webhook arrived", eventType)
			return nil
		}
	}
}

// none fails the test if a webhook of eventType has arrived.
func (b hookBox) none(t *testing.T, eventType string) {
	t.Helper()
	for {
		select {
		case m := <-b.ch:
			*b.kept = append(*b.kept, m)
		default:
			for _, m := range *b.kept {
				if m["event_type"] == eventType {
					t.Fatalf("unexpected %s webhook: %v", eventType, m)
				}
			}
			return
		}
	}
}

const sessionWebhookSecret = "5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"

// conn makes a connection with POST /sandbox/connections and returns its
// bearer auth ("bearer:TOKEN") and connection id.
func (e *env) conn(provider, authType string, products ...string) (string, string) {
	e.t.Helper()
	body := map[string]any{"provider_id": provider, "employee_size": 6, "products": products}
	if authType != "" {
		body["authentication_type"] = authType
	}
	r := e.call("POST", "/sandbox/connections", "basic", body)
	if r.status != http.StatusOK {
		e.t.Fatalf("POST /sandbox/connections = %d %s", r.status, r.body)
	}
	m := r.json(e.t)
	return "bearer:" + m["access_token"].(string), m["connection_id"].(string)
}

// people returns the connection's individual ids (it needs directory).
func (e *env) people(auth string) []string {
	e.t.Helper()
	r := e.call("GET", "/employer/directory", auth, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET /employer/directory = %d %s", r.status, r.body)
	}
	var ids []string
	for _, p := range r.json(e.t)["individuals"].([]any) {
		ids = append(ids, p.(map[string]any)["id"].(string))
	}
	return ids
}

// advance moves the sandbox's clock as a client would, with
// POST /_sandbox/clock, which also completes the jobs now due.
func (e *env) advance(d time.Duration) {
	e.t.Helper()
	if r := e.call("POST", "/_sandbox/clock", "", map[string]string{"advance": d.String()}); r.status != http.StatusOK {
		e.t.Fatalf("advance = %d %s", r.status, r.body)
	}
}

// want checks r's status and, for an error, its finch_code.
func want(t *testing.T, what string, r resp, status int, finchCode string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s = %d %s, want %d", what, r.status, r.body, status)
	}
	var m map[string]any
	if json.Unmarshal(r.body, &m) != nil {
		return nil
	}
	if finchCode != "" && m["finch_code"] != finchCode {
		t.Fatalf("%s: finch_code = %v, want %s (%s)", what, m["finch_code"], finchCode, r.body)
	}
	return m
}

func array(t *testing.T, r resp) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("body %s is not a JSON array of objects: %v", r.body, err)
	}
	return out
}

// job returns GET /jobs/manual/{id}.
func (e *env) job(auth, id string) map[string]any {
	e.t.Helper()
	return want(e.t, "GET /jobs/manual/"+id, e.call("GET", "/jobs/manual/"+id, auth, nil), http.StatusOK, "")
}

// items returns a finished job's body items by individual (or benefit) id.
func items(t *testing.T, job map[string]any) map[string]map[string]any {
	t.Helper()
	body, ok := job["body"].([]any)
	if !ok {
		t.Fatalf("job body = %v, want an array", job["body"])
	}
	out := map[string]map[string]any{}
	for _, x := range body {
		m := x.(map[string]any)
		id, _ := m["individual_id"].(string)
		if id == "" {
			id, _ = m["benefit_id"].(string)
		}
		out[id] = m
	}
	return out
}

// TestBenefits_DeductionJobLife follows deductions writes through their
// jobs: each answers at once, its job is pending, then in_progress, then
// complete on the sandbox's clock, only then does the write show in
// reads, and each completion sends job.benefit_*.completed with the job's
// id and URL.
func TestBenefits_DeductionJobLife(t *testing.T) {
	hookURL, hooks := webhooks(t)
	e := newEnv(t, sandbox.Options{WebhookURL: hookURL, WebhookSecret: sessionWebhookSecret})
	auth, connID := e.conn("gusto", "", "benefits", "directory")
	ids := e.people(auth)

	// Create.
	r := e.call("POST", "/employer/benefits", auth, map[string]any{"type": "hsa_pre", "description": "HSA", "frequency": "every_paycheck"})
	created := want(t, "create", r, http.StatusCreated, "")
	benefitID, jobID := created["benefit_id"].(string), created["job_id"].(string)
	if benefitID == "" || jobID == "" {
		t.Fatalf("create = %s, want benefit_id and job_id", r.body)
	}
	if j := e.job(auth, jobID); j["status"] != "pending" || j["body"] != nil || j["job_id"] != jobID {
		t.Fatalf("new job = %v, want pending with a null body", j)
	}
	want(t, "get before the job completes", e.call("GET", "/employer/benefits/"+benefitID, auth, nil), http.StatusNotFound, "benefit_not_found")
	e.sb.Advance(10 * time.Second)
	if j := e.job(auth, jobID); j["status"] != "in_progress" {
		t.Fatalf("job after 10 s = %v, want in_progress", j)
	}
	hooks.none(t, "job.benefit_create.completed")
	e.advance(50 * time.Second)
	hook := hooks.next(t, "job.benefit_create.completed")
	data := hook["data"].(map[string]any)
	if data["job_id"] != jobID || data["job_url"] != e.ts.URL+"/finch/jobs/manual/"+jobID || hook["connection_id"] != connID {
		t.Fatalf("webhook = %v, want job %s of connection %s with its /jobs/manual URL", hook, jobID, connID)
	}
	j := e.job(auth, jobID)
	if j["status"] != "complete" || items(t, j)[benefitID]["code"] != 201.0 {
		t.Fatalf("finished job = %v, want complete with a 201 item", j)
	}
	got := want(t, "get", e.call("GET", "/employer/benefits/"+benefitID, auth, nil), http.StatusOK, "")
	if got["type"] != "hsa_pre" || got["description"] != "HSA" || got["frequency"] != "every_paycheck" || got["company_contribution"] != nil {
		t.Fatalf("benefit = %v", got)
	}
	list := array(t, e.call("GET", "/employer/benefits", auth, nil))
	if !slices.ContainsFunc(list, func(m map[string]any) bool { return m["benefit_id"] == benefitID }) {
		t.Fatalf("list %v lacks the new benefit", list)
	}

	// Enroll two people and someone unknown.
	unknown := "00000000-0000-4000-8000-000000000000"
	enroll := []map[string]any{
		{"individual_id": ids[0], "configuration": map[string]any{"employee_deduction": map[string]any{"type": "fixed", "amount": 10000}, "annual_contribution_limit": "family"}},
		{"individual_id": ids[1], "configuration": map[string]any{"employee_deduction": map[string]any{"type": "fixed", "amount": 5000}, "company_contribution": map[string]any{"type": "fixed", "amount": 2500}}},
		{"individual_id": unknown},
	}
	r = e.call("POST", "/employer/benefits/"+benefitID+"/individuals", auth, enroll)
	jobID = want(t, "enroll", r, http.StatusOK, "")["job_id"].(string)
	if enrolled := want(t, "enrolled", e.call("GET", "/employer/benefits/"+benefitID+"/enrolled", auth, nil), http.StatusOK, ""); len(enrolled["individual_ids"].([]any)) != 0 {
		t.Fatalf("enrolled before the job completes = %v, want none", enrolled)
	}
	e.advance(time.Minute)
	if d := hooks.next(t, "job.benefit_enroll.completed")["data"].(map[string]any); d["job_id"] != jobID {
		t.Fatalf("enroll webhook for job %v, want %s", d["job_id"], jobID)
	}
	its := items(t, e.job(auth, jobID))
	if its[ids[0]]["code"] != 201.0 || its[ids[1]]["code"] != 201.0 || its[unknown]["code"] != 404.0 {
		t.Fatalf("enroll items = %v, want 201, 201 and 404", its)
	}
	if j := e.job(auth, jobID); j["status"] != "complete" {
		t.Fatalf("a job with some failed items = %v, want complete", j["status"])
	}
	enrolled := want(t, "enrolled", e.call("GET", "/employer/benefits/"+benefitID+"/enrolled", auth, nil), http.StatusOK, "")
	if got := enrolled["individual_ids"].([]any); len(got) != 2 || !slices.Contains(got, any(ids[0])) || !slices.Contains(got, any(ids[1])) {
		t.Fatalf("enrolled = %v, want %s and %s", got, ids[0], ids[1])
	}
	ind := array(t, e.call("GET", "/employer/benefits/"+benefitID+"/individuals?individual_ids="+ids[0]+","+ids[2], auth, nil))
	if len(ind) != 2 || ind[0]["code"] != 200.0 || ind[1]["code"] != 404.0 {
		t.Fatalf("individuals = %v, want 200 for the enrolled one, 404 for the other", ind)
	}
	body := ind[0]["body"].(map[string]any)
	if ed := body["employee_deduction"].(map[string]any); ed["type"] != "fixed" || ed["amount"] != 10000.0 || body["hsa_contribution_limit"] != "family" || body["company_contribution"] != nil {
		t.Fatalf("enrollment = %v", body)
	}
	if b := ind[1]["body"].(map[string]any); b["finch_code"] != "enrollment_not_found" {
		t.Fatalf("not enrolled = %v, want enrollment_not_found", b)
	}

	// Enroll again: an upsert that replaces the configuration whole.
	r = e.call("POST", "/employer/benefits/"+benefitID+"/individuals", auth, []map[string]any{
		{"individual_id": ids[0], "configuration": map[string]any{"employee_deduction": map[string]any{"type": "fixed", "amount": 20000}}},
	})
	jobID = want(t, "re-enroll", r, http.StatusOK, "")["job_id"].(string)
	e.advance(time.Minute)
	if its := items(t, e.job(auth, jobID)); its[ids[0]]["code"] != 200.0 {
		t.Fatalf("re-enroll = %v, want 200 (updated)", its)
	}
	ind = array(t, e.call("GET", "/employer/benefits/"+benefitID+"/individuals?individual_ids="+ids[0], auth, nil))
	body = ind[0]["body"].(map[string]any)
	if body["employee_deduction"].(map[string]any)["amount"] != 20000.0 || body["hsa_contribution_limit"] != nil {
		t.Fatalf("after the upsert = %v, want the new amount and no HSA limit (replaced whole)", body)
	}
	all := array(t, e.call("GET", "/employer/benefits/"+benefitID+"/individuals", auth, nil))
	if len(all) != 2 {
		t.Fatalf("individuals without individual_ids = %d items, want the 2 enrolled", len(all))
	}

	// Unenroll one enrolled person and one who is not enrolled.
	r = e.call("DELETE", "/employer/benefits/"+benefitID+"/individuals", auth, map[string]any{"individual_ids": []string{ids[1], ids[2]}})
	jobID = want(t, "unenroll", r, http.StatusOK, "")["job_id"].(string)
	e.advance(time.Minute)
	hooks.next(t, "job.benefit_unenroll.completed")
	its = items(t, e.job(auth, jobID))
	if its[ids[1]]["code"] != 200.0 || its[ids[2]]["code"] != 404.0 || its[ids[2]]["finch_code"] != "enrollment_not_found" {
		t.Fatalf("unenroll items = %v, want 200 and a 404 enrollment_not_found", its)
	}
	enrolled = want(t, "enrolled", e.call("GET", "/employer/benefits/"+benefitID+"/enrolled", auth, nil), http.StatusOK, "")
	if got := enrolled["individual_ids"].([]any); len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("enrolled after unenroll = %v, want only %s", got, ids[0])
	}

	// A job whose every item fails is an error.
	r = e.call("DELETE", "/employer/benefits/"+benefitID+"/individuals", auth, map[string]any{"individual_ids": []string{unknown}})
	jobID = want(t, "unenroll unknown", r, http.StatusOK, "")["job_id"].(string)
	e.advance(time.Minute)
	if j := e.job(auth, jobID); j["status"] != "error" {
		t.Fatalf("job whose only item failed = %v, want error", j)
	}

	// Update.
	r = e.call("POST", "/employer/benefits/"+benefitID, auth, map[string]any{"description": "Health savings"})
	updated := want(t, "update", r, http.StatusOK, "")
	if updated["benefit_id"] != benefitID {
		t.Fatalf("update = %v", updated)
	}
	if got := want(t, "get", e.call("GET", "/employer/benefits/"+benefitID, auth, nil), http.StatusOK, ""); got["description"] != "HSA" {
		t.Fatalf("description before the update job completes = %v, want HSA", got["description"])
	}
	e.advance(time.Minute)
	hooks.next(t, "job.benefit_update.completed")
	if got := want(t, "get", e.call("GET", "/employer/benefits/"+benefitID, auth, nil), http.StatusOK, ""); got["description"] != "Health savings" {
		t.Fatalf("description after the update = %v", got["description"])
	}
}

// TestBenefits_SeededPlans: a new connection already has the 401(k) and
// medical plans its pay statements deduct, with the people they deduct
// from enrolled.
func TestBenefits_SeededPlans(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth, _ := e.conn("gusto", "", "benefits", "pay_statement", "payment")
	list := array(t, e.call("GET", "/employer/benefits", auth, nil))
	var k401 string
	for _, b := range list {
		if b["type"] == "401k" {
			k401 = b["benefit_id"].(string)
		}
	}
	if len(list) != 2 || k401 == "" {
		t.Fatalf("benefits of a new connection = %v, want its 401(k) and medical plans", list)
	}
	enrolled := want(t, "enrolled", e.call("GET", "/employer/benefits/"+k401+"/enrolled", auth, nil), http.StatusOK, "")
	n := len(enrolled["individual_ids"].([]any))
	ind := array(t, e.call("GET", "/employer/benefits/"+k401+"/individuals", auth, nil))
	if n == 0 || len(ind) != n {
		t.Fatalf("401(k) enrolled %d, enrollments %d; want the same, more than 0", n, len(ind))
	}
	b := ind[0]["body"].(map[string]any)
	if ed := b["employee_deduction"].(map[string]any); ed["type"] != "percent" || ed["amount"] != 500.0 {
		t.Fatalf("401(k) enrollment = %v, want 5%% (500 bp), as the pay statements deduct", b)
	}
	// Unenrolling someone from a seeded plan, and enrolling them again.
	first := ind[0]["individual_id"].(string)
	jobID := want(t, "unenroll", e.call("DELETE", "/employer/benefits/"+k401+"/individuals", auth, map[string]any{"individual_ids": []string{first}}), http.StatusOK, "")["job_id"].(string)
	e.advance(time.Minute)
	if it := items(t, e.job(auth, jobID))[first]; it["code"] != 200.0 {
		t.Fatalf("unenroll from the seeded 401(k) = %v", it)
	}
	after := want(t, "enrolled", e.call("GET", "/employer/benefits/"+k401+"/enrolled", auth, nil), http.StatusOK, "")["individual_ids"].([]any)
	if len(after) != n-1 || slices.Contains(after, any(first)) {
		t.Fatalf("after unenrolling %s: %d enrolled (%v), want %d without them", first, len(after), after, n-1)
	}
	jobID = want(t, "enroll", e.call("POST", "/employer/benefits/"+k401+"/individuals", auth, []any{map[string]any{"individual_id": first}}), http.StatusOK, "")["job_id"].(string)
	e.advance(time.Minute)
	if it := items(t, e.job(auth, jobID))[first]; it["code"] != 201.0 {
		t.Fatalf("enroll again = %v, want 201 (a new enrollment)", it)
	}
	if again := want(t, "enrolled", e.call("GET", "/employer/benefits/"+k401+"/enrolled", auth, nil), http.StatusOK, "")["individual_ids"].([]any); len(again) != n {
		t.Fatalf("after enrolling again: %d enrolled, want %d", len(again), n)
	}

	// A connection of a provider without company contributions has none.
	auth, _ = e.conn("justworks", "", "benefits")
	list = array(t, e.call("GET", "/employer/benefits", auth, nil))
	if len(list) != 1 || list[0]["type"] != "401k" {
		t.Fatalf("justworks benefits = %v, want only the 401(k) (it has no s125_medical)", list)
	}
}

// TestBenefits_Idempotent: a create with the type, frequency and
// description of a benefit that exists returns that benefit (with a job
// of its own); a different frequency is another benefit.
func TestBenefits_Idempotent(t *testing.T) {
	hookURL, hooks := webhooks(t)
	e := newEnv(t, sandbox.Options{WebhookURL: hookURL, WebhookSecret: sessionWebhookSecret})
	auth, _ := e.conn("rippling", "", "benefits")
	body := map[string]any{"type": "commuter", "description": "Transit", "frequency": "monthly"}
	first := want(t, "create", e.call("POST", "/employer/benefits", auth, body), http.StatusCreated, "")
	again := want(t, "create again while pending", e.call("POST", "/employer/benefits", auth, body), http.StatusCreated, "")
	if again["benefit_id"] != first["benefit_id"] || again["job_id"] == first["job_id"] {
		t.Fatalf("repeat = %v, first = %v: want the same benefit_id and a new job_id", again, first)
	}
	e.advance(time.Minute)
	hooks.next(t, "job.benefit_create.completed")
	hooks.next(t, "job.benefit_create.completed")
	third := want(t, "create again after", e.call("POST", "/employer/benefits", auth, body), http.StatusCreated, "")
	if third["benefit_id"] != first["benefit_id"] {
		t.Fatalf("repeat after completion = %v, want benefit %v", third, first["benefit_id"])
	}
	e.advance(time.Minute)
	if it := items(t, e.job(auth, third["job_id"].(string)))[first["benefit_id"].(string)]; it["code"] != 200.0 {
		t.Fatalf("repeat job item = %v, want 200 (already exists)", it)
	}
	body["frequency"] = "every_paycheck"
	other := want(t, "create with another frequency", e.call("POST", "/employer/benefits", auth, body), http.StatusCreated, "")
	if other["benefit_id"] == first["benefit_id"] {
		t.Fatal("a different frequency returned the same benefit")
	}
	e.advance(time.Minute)
	n := 0
	for _, b := range array(t, e.call("GET", "/employer/benefits", auth, nil)) {
		if b["type"] == "commuter" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d commuter benefits, want 2", n)
	}
}

// TestBenefits_Validation: every refusal of the deductions routes, with
// Finch's status and finch_code.
func TestBenefits_Validation(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	gusto, _ := e.conn("gusto", "", "benefits", "directory")
	bamboo, _ := e.conn("bamboo_hr", "", "benefits", "directory")
	justworks, _ := e.conn("justworks", "", "benefits", "directory")
	workday, _ := e.conn("workday", "", "benefits", "directory")
	other, _ := e.conn("gusto", "", "benefits")

	// A visible benefit per connection.
	mk := func(auth string, body map[string]any) string {
		t.Helper()
		m := want(t, "create", e.call("POST", "/employer/benefits", auth, body), http.StatusCreated, "")
		return m["benefit_id"].(string)
	}
	g401 := mk(gusto, map[string]any{"type": "401k", "description": "Retirement", "frequency": "every_paycheck"})
	b401 := mk(bamboo, map[string]any{"type": "401k", "description": "Retirement", "frequency": "every_paycheck"})
	jw := mk(justworks, map[string]any{"type": "commuter", "description": "Transit", "frequency": "every_paycheck"})
	wd := mk(workday, map[string]any{"type": "401k", "description": "Retirement", "frequency": "every_paycheck"})
	e.advance(time.Minute)
	gIDs := e.people(gusto)
	unknownBenefit := "11111111-1111-4111-8111-111111111111"

	tests := []struct {
		name, auth, method, path string
		body                     any
		status                   int
		finchCode                string
	}{
		{"create without a type", gusto, "POST", "/employer/benefits", map[string]any{"description": "X"}, 400, "invalid_request"},
		{"create with an unknown type", gusto, "POST", "/employer/benefits", map[string]any{"type": "pension", "description": "X"}, 400, "invalid_request"},
		{"create without a description", gusto, "POST", "/employer/benefits", map[string]any{"type": "401k"}, 400, "invalid_request"},
		{"create with a non-string description", gusto, "POST", "/employer/benefits", map[string]any{"type": "401k", "description": 5}, 400, "invalid_request"},
		{"create with an unknown frequency", gusto, "POST", "/employer/benefits", map[string]any{"type": "401k", "description": "X", "frequency": "weekly"}, 400, "invalid_request"},
		{"create with a malformed match", gusto, "POST", "/employer/benefits", map[string]any{"type": "401k", "description": "X", "company_contribution": map[string]any{"type": "fixed"}}, 400, "invalid_request"},
		{"create with descending tiers", gusto, "POST", "/employer/benefits", map[string]any{"type": "401k", "description": "X", "company_contribution": map[string]any{"type": "match", "tiers": []any{map[string]any{"match": 10000, "threshold": 300}, map[string]any{"match": 5000, "threshold": 200}}}}, 400, "invalid_request"},
		{"create with a body that is not JSON", gusto, "POST", "/employer/benefits", "{", 400, "invalid_request"},
		{"create of a type the provider lacks", bamboo, "POST", "/employer/benefits", map[string]any{"type": "403b", "description": "X"}, 422, "unsupported_parameters"},
		{"create with a frequency the provider lacks", bamboo, "POST", "/employer/benefits", map[string]any{"type": "401k", "description": "X", "frequency": "one_time"}, 422, "unsupported_parameters"},
		{"create with a match the provider lacks", gusto, "POST", "/employer/benefits", map[string]any{"type": "401k", "description": "X", "company_contribution": map[string]any{"type": "match", "tiers": []any{map[string]any{"match": 10000, "threshold": 300}}}}, 422, "unsupported_parameters"},
		{"create with a description too long for Justworks", justworks, "POST", "/employer/benefits", map[string]any{"type": "commuter", "description": strings.Repeat("x", 31)}, 422, "unsupported_parameters"},
		{"register on an automated connection", gusto, "POST", "/employer/benefits/register", map[string]any{"type": "401k", "description": "X"}, 501, ""},
		{"get with a bad uuid", gusto, "GET", "/employer/benefits/not-a-uuid", nil, 400, "invalid_request"},
		{"get an unknown benefit", gusto, "GET", "/employer/benefits/" + unknownBenefit, nil, 404, "benefit_not_found"},
		{"get another connection's benefit", other, "GET", "/employer/benefits/" + g401, nil, 404, "benefit_not_found"},
		{"update an unknown benefit", gusto, "POST", "/employer/benefits/" + unknownBenefit, map[string]any{"description": "Y"}, 404, "benefit_not_found"},
		{"update without a description", gusto, "POST", "/employer/benefits/" + g401, map[string]any{}, 400, "invalid_request"},
		{"update where the provider cannot", justworks, "POST", "/employer/benefits/" + jw, map[string]any{"description": "Y"}, 422, "not_supported_by_provider"},
		{"enrolled with a bad uuid", gusto, "GET", "/employer/benefits/nope/enrolled", nil, 400, "invalid_request"},
		{"enrolled of an unknown benefit", gusto, "GET", "/employer/benefits/" + unknownBenefit + "/enrolled", nil, 404, "benefit_not_found"},
		{"individuals of an unknown benefit", gusto, "GET", "/employer/benefits/" + unknownBenefit + "/individuals", nil, 404, "benefit_not_found"},
		{"enroll in an unknown benefit", gusto, "POST", "/employer/benefits/" + unknownBenefit + "/individuals", []any{}, 404, "benefit_not_found"},
		{"enroll with an object body", gusto, "POST", "/employer/benefits/" + g401 + "/individuals", map[string]any{"individual_id": gIDs[0]}, 400, "invalid_request"},
		{"enroll without individual_id", gusto, "POST", "/employer/benefits/" + g401 + "/individuals", []any{map[string]any{}}, 400, "invalid_request"},
		{"enroll with a bad individual uuid", gusto, "POST", "/employer/benefits/" + g401 + "/individuals", []any{map[string]any{"individual_id": "x"}}, 400, "invalid_request"},
		{"enroll with an unknown deduction type", gusto, "POST", "/employer/benefits/" + g401 + "/individuals", []any{map[string]any{"individual_id": gIDs[0], "configuration": map[string]any{"employee_deduction": map[string]any{"type": "tiered", "amount": 1}}}}, 400, "invalid_request"},
		{"enroll with a negative amount", gusto, "POST", "/employer/benefits/" + g401 + "/individuals", []any{map[string]any{"individual_id": gIDs[0], "configuration": map[string]any{"employee_deduction": map[string]any{"type": "fixed", "amount": -1}}}}, 400, "invalid_request"},
		{"enroll with a fractional amount", gusto, "POST", "/employer/benefits/" + g401 + "/individuals", []any{map[string]any{"individual_id": gIDs[0], "configuration": map[string]any{"employee_deduction": map[string]any{"type": "fixed", "amount": 1.5}}}}, 400, "invalid_request"},
		{"enroll with effective_date on an automated connection", gusto, "POST", "/employer/benefits/" + g401 + "/individuals", []any{map[string]any{"individual_id": gIDs[0], "configuration": map[string]any{"effective_date": "2026-01-01"}}}, 422, "unsupported_parameters"},
		{"unenroll with no individual_ids", gusto, "DELETE", "/employer/benefits/" + g401 + "/individuals", map[string]any{}, 400, "invalid_request"},
		{"unenroll with a bad uuid", gusto, "DELETE", "/employer/benefits/" + g401 + "/individuals", map[string]any{"individual_ids": []string{"x"}}, 400, "invalid_request"},
		{"unenroll where Finch cannot", workday, "DELETE", "/employer/benefits/" + wd + "/individuals", map[string]any{"individual_ids": []string{gIDs[0]}}, 422, "not_supported_by_provider"},
		{"an unknown job", gusto, "GET", "/jobs/manual/" + unknownBenefit, nil, 404, "item_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.on(t).call(tc.method, tc.path, tc.auth, tc.body)
			m := want(t, tc.name, r, tc.status, tc.finchCode)
			if m["code"] != float64(tc.status) || m["name"] == nil || m["message"] == nil {
				t.Fatalf("error body %s lacks Finch's code, name and message", r.body)
			}
		})
	}

	// The messages name the field, as Finch's do.
	r := e.call("POST", "/employer/benefits", gusto, map[string]any{"type": "401k", "description": 5})
	if m := r.json(t); m["message"] != "[body:description]: Not a valid string." {
		t.Errorf("message = %v", m["message"])
	}

	// Another connection's job is not found.
	jobID := want(t, "update", e.call("POST", "/employer/benefits/"+g401, gusto, map[string]any{"description": "Y"}), http.StatusOK, "")["job_id"].(string)
	want(t, "another connection's job", e.call("GET", "/jobs/manual/"+jobID, other, nil), http.StatusNotFound, "item_not_found")

	// What the provider refuses per individual fails that item.
	bIDs := e.people(bamboo)
	r = e.call("POST", "/employer/benefits/"+b401+"/individuals", bamboo, []any{
		map[string]any{"individual_id": bIDs[0], "configuration": map[string]any{"company_contribution": map[string]any{"type": "percent", "amount": 300}}},
		map[string]any{"individual_id": bIDs[1], "configuration": map[string]any{"employee_deduction": map[string]any{"type": "percent", "amount": 20000}}},
		map[string]any{"individual_id": bIDs[2], "configuration": map[string]any{"catch_up": true, "annual_maximum": 100}},
		map[string]any{"individual_id": bIDs[3], "configuration": map[string]any{"annual_contribution_limit": "individual"}},
	})
	jobID = want(t, "enroll", r, http.StatusOK, "")["job_id"].(string)
	e.advance(time.Minute)
	j := e.job(bamboo, jobID)
	for id, it := range items(t, j) {
		if it["code"] != 422.0 || it["finch_code"] != "invalid_employee_enrollment" {
			t.Errorf("item %s = %v, want 422 invalid_employee_enrollment", id, it)
		}
	}
	if j["status"] != "error" {
		t.Errorf("a job whose every item failed = %v, want error", j["status"])
	}
	enrolled := want(t, "enrolled", e.call("GET", "/employer/benefits/"+b401+"/enrolled", bamboo, nil), http.StatusOK, "")
	if got := enrolled["individual_ids"].([]any); len(got) != 0 {
		t.Errorf("refused items enrolled %v", got)
	}
}

// TestBenefits_Assisted: an assisted connection cannot read deductions
// (501), can register an existing benefit (which takes Finch's staff
// two days), and cannot start automated jobs (400).
func TestBenefits_Assisted(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth, _ := e.conn("gusto", "assisted", "benefits")
	e.call("PUT", "/sandbox/connections/accounts", auth, map[string]any{"connection_status": "connected"})
	for _, path := range []string{"/employer/benefits", "/employer/benefits/11111111-1111-4111-8111-111111111111", "/employer/benefits/11111111-1111-4111-8111-111111111111/enrolled", "/employer/benefits/11111111-1111-4111-8111-111111111111/individuals"} {
		r := e.call("GET", path, auth, nil)
		if m := want(t, "GET "+path, r, http.StatusNotImplemented, ""); m["name"] != "not_implemented_error" {
			t.Errorf("GET %s = %s, want not_implemented_error", path, r.body)
		}
	}
	if meta := array(t, e.call("GET", "/employer/benefits/meta", auth, nil)); len(meta) == 0 {
		t.Error("meta of an assisted connection is empty")
	}
	r := e.call("POST", "/employer/benefits/register", auth, map[string]any{"type": "401k", "description": "Existing 401(k)", "frequency": "every_paycheck"})
	jobID := want(t, "register", r, http.StatusCreated, "")["job_id"].(string)
	e.advance(24 * time.Hour)
	if j := e.job(auth, jobID); j["status"] != "in_progress" {
		t.Errorf("assisted job after a day = %v, want in_progress (Finch's staff take 2 days)", j["status"])
	}
	e.advance(24 * time.Hour)
	if j := e.job(auth, jobID); j["status"] != "complete" {
		t.Errorf("assisted job after 2 days = %v, want complete", j["status"])
	}
	r = e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"})
	if m := want(t, "POST /jobs/automated", r, http.StatusBadRequest, ""); m["message"] != "cannot create automated job for Assisted Connect token" {
		t.Errorf("message = %v", m["message"])
	}
	r = e.call("POST", "/sandbox/jobs", auth, map[string]any{"type": "data_sync_all"})
	if m := want(t, "POST /sandbox/jobs", r, http.StatusOK, ""); m["job_id"] != nil || m["job_url"] != nil {
		t.Errorf("sandbox job of an assisted connection = %s, want job_id and job_url null", r.body)
	}
}

// TestProviders_BenefitsSupport: each provider in GET /providers carries
// benefits_support with all 19 benefit types (null when unsupported),
// providers differ, and a connection's /employer/benefits/meta lists the
// same types with the same features.
func TestProviders_BenefitsSupport(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	var providers []map[string]any
	if err := json.Unmarshal(e.call("GET", "/providers", "", nil).body, &providers); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, p := range providers {
		id := p["id"].(string)
		if products := p["products"].([]any); !slices.Contains(products, any("benefits")) || !slices.Contains(products, any("ssn")) {
			t.Errorf("%s products = %v, want benefits and ssn among them", id, products)
		}
		support := p["authentication_methods"].([]any)[0].(map[string]any)["benefits_support"].(map[string]any)
		if len(support) != 19 {
			t.Errorf("%s benefits_support has %d keys, want the 19 benefit types", id, len(support))
		}
		supported := map[string]map[string]any{}
		for k, v := range support {
			if v != nil {
				supported[k] = v.(map[string]any)
				ops := supported[k]["supported_operations"].(map[string]any)
				if ops["company_benefits"] == nil || ops["individual_benefits"] == nil {
					t.Errorf("%s %s supported_operations = %v", id, k, ops)
				}
			}
		}
		fingerprint, _ := json.Marshal(support)
		if prev, dup := seen[string(fingerprint)]; dup {
			t.Errorf("%s and %s have the same benefits_support; providers should differ", prev, id)
		}
		seen[string(fingerprint)] = id

		auth, _ := e.conn(id, "", "benefits")
		meta := array(t, e.call("GET", "/employer/benefits/meta", auth, nil))
		if len(meta) != len(supported) {
			t.Errorf("%s: meta lists %d types, benefits_support supports %d", id, len(meta), len(supported))
		}
		for _, m := range meta {
			typ := m["type"].(string)
			f, ok := supported[typ]
			if !ok {
				t.Errorf("%s: meta lists %s, which benefits_support has null", id, typ)
				continue
			}
			features := f["supported_features"].(map[string]any)
			delete(m, "type")
			a, _ := json.Marshal(m)
			b, _ := json.Marshal(features)
			if string(a) != string(b) {
				t.Errorf("%s %s: meta %s, benefits_support %s", id, typ, a, b)
			}
		}
	}
	if len(seen) < 8 {
		t.Errorf("%d providers, want the 8 of the Connect page", len(seen))
	}
}

// TestBenefits_JobsApplyInOrder: jobs asked for at one instant complete
// in the order they were asked for, so that an enroll followed by an
// unenroll leaves the person unenrolled, and the reverse enrolled.
func TestBenefits_JobsApplyInOrder(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth, _ := e.conn("gusto", "", "benefits", "directory")
	ids := e.people(auth)
	m := want(t, "create", e.call("POST", "/employer/benefits", auth, map[string]any{"type": "fsa_medical", "description": "FSA"}), http.StatusCreated, "")
	b := m["benefit_id"].(string)
	e.advance(time.Minute)
	for i := range 20 { // job ids are random: any order by id would show within 20 tries
		enroll := []any{map[string]any{"individual_id": ids[0]}}
		unenroll := map[string]any{"individual_ids": []string{ids[0]}}
		first, second := "POST", "DELETE"
		if i%2 == 1 {
			first, second = second, first
		}
		for _, method := range []string{first, second} {
			var body any = enroll
			if method == "DELETE" {
				body = unenroll
			}
			want(t, method, e.call(method, "/employer/benefits/"+b+"/individuals", auth, body), http.StatusOK, "")
		}
		e.advance(time.Minute)
		got := want(t, "enrolled", e.call("GET", "/employer/benefits/"+b+"/enrolled", auth, nil), http.StatusOK, "")["individual_ids"].([]any)
		if enrolled := len(got) == 1; enrolled != (second == "POST") {
			t.Fatalf("round %d: %s then %s left enrolled = %v", i, first, second, got)
		}
	}
}

// TestBenefits_SeededPlansNotStored: a large employer's own plans are
// derived from its people, not written to DataFile, so the file stays
// small however many are enrolled.
func TestBenefits_SeededPlansNotStored(t *testing.T) {
	file := t.TempDir() + "/state.json"
	e := newEnv(t, sandbox.Options{DataFile: file})
	r := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "employee_size": 3000, "products": []string{"benefits"}})
	auth := "bearer:" + r.json(t)["access_token"].(string)
	n := 0
	for _, b := range array(t, e.call("GET", "/employer/benefits", auth, nil)) {
		n += len(want(t, "enrolled", e.call("GET", "/employer/benefits/"+b["benefit_id"].(string)+"/enrolled", auth, nil), http.StatusOK, "")["individual_ids"].([]any))
	}
	if n < 3000 {
		t.Fatalf("%d enrollments in the seeded plans of 3,000 people, want more", n)
	}
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 20000 {
		t.Errorf("DataFile is %d bytes after reading %d seeded enrollments; they should not be stored", st.Size(), n)
	}
}

// TestBenefits_EnrollAHire: enrollments follow the employer as of its
// latest refresh, so someone hired since the connection was made can be
// enrolled (200 days of daily refreshes make a hire all but certain:
// each refresh's event is a hire with probability 0.15).
func TestBenefits_EnrollAHire(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth, _ := e.conn("gusto", "", "benefits", "directory")
	before := e.people(auth)
	e.advance(200 * 24 * time.Hour)
	var hire string
	for _, id := range e.people(auth) {
		if !slices.Contains(before, id) {
			hire = id
		}
	}
	if hire == "" {
		t.Fatal("no hire in 200 days of refreshes")
	}
	m := want(t, "create", e.call("POST", "/employer/benefits", auth, map[string]any{"type": "fsa_medical", "description": "FSA"}), http.StatusCreated, "")
	e.advance(time.Minute)
	jobID := want(t, "enroll", e.call("POST", "/employer/benefits/"+m["benefit_id"].(string)+"/individuals", auth, []any{map[string]any{"individual_id": hire}}), http.StatusOK, "")["job_id"].(string)
	e.advance(time.Minute)
	if it := items(t, e.job(auth, jobID))[hire]; it["code"] != 201.0 {
		t.Fatalf("enrolling the hire %s = %v, want 201", hire, it)
	}
}

// seededReader is a deterministic Options.Rand, so that a test's
// connections (their ids, hence their seeds) are the same on every run.
type seededReader struct{ n byte }

func (r *seededReader) Read(p []byte) (int, error) {
	for i := range p {
		r.n = r.n*31 + 7
		p[i] = r.n
	}
	return len(p), nil
}

// TestBenefits_EnrollmentsMoveWithTheClock: the employer's own 401(k)
// follows its people as the clock moves: after months of daily
// refreshes its enrolled list has someone hired since the connection was
// made (hires who save are enrolled, as their pay statements deduct it).
func TestBenefits_EnrollmentsMoveWithTheClock(t *testing.T) {
	e := newEnv(t, sandbox.Options{Rand: &seededReader{}})
	auth, _ := e.conn("gusto", "", "benefits", "directory")
	var k401 string
	for _, b := range array(t, e.call("GET", "/employer/benefits", auth, nil)) {
		if b["type"] == "401k" {
			k401 = b["benefit_id"].(string)
		}
	}
	enrolled := func() []any {
		return want(t, "enrolled", e.call("GET", "/employer/benefits/"+k401+"/enrolled", auth, nil), http.StatusOK, "")["individual_ids"].([]any)
	}
	before, people := enrolled(), e.people(auth)
	e.advance(365 * 24 * time.Hour)
	var hired []any
	for _, id := range enrolled() {
		if !slices.Contains(people, id.(string)) {
			hired = append(hired, id)
		}
	}
	if len(hired) == 0 {
		t.Fatalf("after a year the 401(k) enrolls %v (before: %v); want a hire among them", enrolled(), before)
	}
}
