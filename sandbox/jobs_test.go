package sandbox_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestAutomatedJobs_QuotaAndConcurrency: POST /jobs/automated runs one
// data_sync_all at a time (a second call gets the running job, 202, and
// uses no quota), allows Finch's one forced refresh per clock hour (then
// 429 with retry_at at the next hour, and X-Should-Retry: false so the
// SDK does not retry in vain), and its job moves pending → in_progress →
// complete on the clock with a job.data_sync_all.completed webhook.
func TestAutomatedJobs_QuotaAndConcurrency(t *testing.T) {
	hookURL, hooks := webhooks(t)
	start := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	e := newEnv(t, sandbox.Options{WebhookURL: hookURL, WebhookSecret: sessionWebhookSecret, Now: func() time.Time { return start }})
	auth, connID := e.conn("gusto", "", "company")

	r := e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"})
	first := want(t, "first sync", r, http.StatusCreated, "")
	jobID := first["job_id"].(string)
	if first["allowed_refreshes"] != 1.0 || first["remaining_refreshes"] != 0.0 || first["job_url"] != e.ts.URL+"/finch/jobs/automated/"+jobID {
		t.Fatalf("first sync = %s", r.body)
	}
	r = e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"})
	if again := want(t, "sync while one runs", r, http.StatusAccepted, ""); again["job_id"] != jobID {
		t.Fatalf("second sync = %s, want the running job %s", r.body, jobID)
	}
	job := want(t, "get", e.call("GET", "/jobs/automated/"+jobID, auth, nil), http.StatusOK, "")
	if job["status"] != "pending" || job["type"] != "data_sync_all" || job["started_at"] != nil || job["completed_at"] != nil || job["created_at"] != "2026-03-02T09:15:00Z" || job["params"] != nil {
		t.Fatalf("new job = %v", job)
	}
	e.advance(10 * time.Second)
	job = want(t, "get", e.call("GET", "/jobs/automated/"+jobID, auth, nil), http.StatusOK, "")
	if job["status"] != "in_progress" || job["started_at"] != "2026-03-02T09:15:10Z" {
		t.Fatalf("job after 10 s = %v, want in_progress", job)
	}
	hooks.none(t, "job.data_sync_all.completed")
	e.advance(2 * time.Minute)
	hook := hooks.next(t, "job.data_sync_all.completed")
	if d := hook["data"].(map[string]any); d["job_id"] != jobID || d["job_url"] != first["job_url"] || hook["connection_id"] != connID {
		t.Fatalf("webhook = %v", hook)
	}
	job = want(t, "get", e.call("GET", "/jobs/automated/"+jobID, auth, nil), http.StatusOK, "")
	if job["status"] != "complete" || job["completed_at"] != "2026-03-02T09:17:00Z" {
		t.Fatalf("finished job = %v", job)
	}

	// The hour's quota is spent.
	r = e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"})
	over := want(t, "sync over quota", r, http.StatusTooManyRequests, "")
	if over["retry_at"] != "2026-03-02T10:00:00Z" || over["remaining_refreshes"] != 0.0 || over["allowed_refreshes"] != 1.0 {
		t.Fatalf("429 body = %s", r.body)
	}
	if r.header.Get("X-Should-Retry") != "false" {
		t.Errorf("429 X-Should-Retry = %q, want false", r.header.Get("X-Should-Retry"))
	}
	list := want(t, "list", e.call("GET", "/jobs/automated", auth, nil), http.StatusOK, "")
	quota := list["meta"].(map[string]any)["quotas"].(map[string]any)["data_sync_all"].(map[string]any)
	if quota["allowed_refreshes"] != 1.0 || quota["remaining_refreshes"] != 0.0 {
		t.Fatalf("meta.quotas = %v", quota)
	}

	// A W-4 sync needs the documents product and an individual; it is
	// outside the quota.
	want(t, "w4 without documents", e.call("POST", "/jobs/automated", auth, map[string]any{"type": "w4_form_employee_sync", "params": map[string]any{"individual_id": "x"}}), http.StatusForbidden, "")
	docs, _ := e.conn("gusto", "", "documents", "directory")
	want(t, "w4 without params", e.call("POST", "/jobs/automated", docs, map[string]any{"type": "w4_form_employee_sync"}), http.StatusBadRequest, "invalid_request")
	want(t, "w4 of an unknown individual", e.call("POST", "/jobs/automated", docs, map[string]any{"type": "w4_form_employee_sync", "params": map[string]any{"individual_id": "00000000-0000-4000-8000-000000000000"}}), http.StatusNotFound, "individual_not_found")
	id := e.people(docs)[0]
	w4 := want(t, "w4", e.call("POST", "/jobs/automated", docs, map[string]any{"type": "w4_form_employee_sync", "params": map[string]any{"individual_id": id}}), http.StatusCreated, "")
	if w4["remaining_refreshes"] != 1.0 {
		t.Errorf("w4 used the data_sync_all quota: %v", w4)
	}
	want(t, "unknown type", e.call("POST", "/jobs/automated", docs, map[string]any{"type": "everything"}), http.StatusBadRequest, "invalid_request")
	e.advance(2 * time.Minute)
	hooks.next(t, "job.w4_form_employee_sync.completed")
	w4job := want(t, "get w4", e.call("GET", "/jobs/automated/"+w4["job_id"].(string), docs, nil), http.StatusOK, "")
	if w4job["params"].(map[string]any)["individual_id"] != id || w4job["status"] != "complete" {
		t.Fatalf("w4 job = %v", w4job)
	}
	want(t, "another connection's job", e.call("GET", "/jobs/automated/"+jobID, docs, nil), http.StatusNotFound, "item_not_found")

	// The next hour gives a new refresh; the list is newest first.
	e.advance(time.Hour)
	second := want(t, "sync in the next hour", e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"}), http.StatusCreated, "")
	list = want(t, "list", e.call("GET", "/jobs/automated", auth, nil), http.StatusOK, "")
	data := list["data"].([]any)
	if len(data) != 2 || data[0].(map[string]any)["job_id"] != second["job_id"] || data[1].(map[string]any)["job_id"] != jobID {
		t.Fatalf("list = %v, want the new job then the old", data)
	}
	page := want(t, "list page", e.call("GET", "/jobs/automated?limit=1&offset=1", auth, nil), http.StatusOK, "")
	if d := page["data"].([]any); len(d) != 1 || d[0].(map[string]any)["job_id"] != jobID {
		t.Fatalf("limit=1&offset=1 = %v, want the old job", d)
	}
	want(t, "list with a negative limit", e.call("GET", "/jobs/automated?limit=-1", auth, nil), http.StatusBadRequest, "invalid_request")
}

// TestAutomatedJobs_RefreshesPerHour: Options.RefreshesPerHour raises
// the quota.
func TestAutomatedJobs_RefreshesPerHour(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, sandbox.Options{RefreshesPerHour: 2, Now: func() time.Time { return start }})
	auth, _ := e.conn("gusto", "", "company")
	for i, remaining := range []float64{1, 0} {
		m := want(t, "sync", e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"}), http.StatusCreated, "")
		if m["allowed_refreshes"] != 2.0 || m["remaining_refreshes"] != remaining {
			t.Fatalf("sync %d = %v", i, m)
		}
		e.advance(3 * time.Minute)
	}
	want(t, "third sync", e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"}), http.StatusTooManyRequests, "")
}

// TestSandboxJobs_Configuration: PUT /sandbox/jobs/configuration decides
// how the next syncs finish; a reauth_error sync moves the connection to
// reauth (its data routes answer 401 reauthenticate_user) and sends
// account.updated. POST /sandbox/jobs starts a sync outside the quota.
func TestSandboxJobs_Configuration(t *testing.T) {
	hookURL, hooks := webhooks(t)
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, sandbox.Options{WebhookURL: hookURL, WebhookSecret: sessionWebhookSecret, Now: func() time.Time { return start }})
	auth, _ := e.conn("gusto", "", "company")

	cfg := array(t, e.call("GET", "/sandbox/jobs/configuration", auth, nil))
	if len(cfg) != 1 || cfg[0]["type"] != "data_sync_all" || cfg[0]["completion_status"] != "complete" {
		t.Fatalf("configuration = %v", cfg)
	}
	for _, bad := range []map[string]any{{"type": "data_sync_all"}, {"completion_status": "error"}, {"type": "w4_form_employee_sync", "completion_status": "error"}, {"type": "data_sync_all", "completion_status": "success"}} {
		want(t, "PUT configuration", e.call("PUT", "/sandbox/jobs/configuration", auth, bad), http.StatusBadRequest, "invalid_request")
	}
	want(t, "POST /sandbox/jobs of another type", e.call("POST", "/sandbox/jobs", auth, map[string]any{"type": "w4_form_employee_sync"}), http.StatusBadRequest, "invalid_request")

	// The sandbox's sync does not use the hour's quota.
	want(t, "forced sync", e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"}), http.StatusCreated, "")
	e.advance(3 * time.Minute)
	hooks.next(t, "job.data_sync_all.completed")

	for _, tc := range []struct{ outcome, connStatus string }{{"error", "connected"}, {"permissions_error", "error_permissions"}, {"reauth_error", "reauth"}} {
		put := want(t, "PUT configuration", e.call("PUT", "/sandbox/jobs/configuration", auth, map[string]any{"type": "data_sync_all", "completion_status": tc.outcome}), http.StatusOK, "")
		if put["completion_status"] != tc.outcome {
			t.Fatalf("PUT = %v", put)
		}
		if cfg := array(t, e.call("GET", "/sandbox/jobs/configuration", auth, nil)); cfg[0]["completion_status"] != tc.outcome {
			t.Fatalf("configuration after PUT = %v", cfg)
		}
		r := e.call("POST", "/sandbox/jobs", auth, map[string]any{"type": "data_sync_all"})
		job := want(t, "POST /sandbox/jobs", r, http.StatusOK, "")
		if job["job_id"] == nil || job["allowed_refreshes"] != 1.0 || job["remaining_refreshes"] != 0.0 {
			t.Fatalf("sandbox job = %s", r.body)
		}
		e.advance(3 * time.Minute)
		hooks.next(t, "job.data_sync_all.completed")
		got := want(t, "get", e.call("GET", "/jobs/automated/"+job["job_id"].(string), auth, nil), http.StatusOK, "")
		if got["status"] != tc.outcome {
			t.Fatalf("%s sync finished %v", tc.outcome, got["status"])
		}
		var status string
		e.sb.SettleJobs()
		switch r := e.call("GET", "/employer/company", auth, nil); r.status {
		case http.StatusOK:
			status = "connected"
		case http.StatusForbidden:
			status = "error_permissions"
		case http.StatusUnauthorized:
			if r.json(t)["finch_code"] == "reauthenticate_user" {
				status = "reauth"
			}
		}
		if status != tc.connStatus {
			t.Fatalf("after a %s sync the connection behaves as %q, want %q", tc.outcome, status, tc.connStatus)
		}
		if tc.connStatus != "connected" {
			hook := hooks.next(t, "account.updated")
			if d := hook["data"].(map[string]any); d["status"] != tc.connStatus || d["authentication_method"].(map[string]any)["benefits_support"] == nil {
				t.Fatalf("account.updated = %v", d)
			}
			e.call("PUT", "/sandbox/connections/accounts", auth, map[string]any{"connection_status": "connected"})
			hooks.next(t, "account.updated")
		}
	}
	// Set back to complete, syncs succeed again.
	want(t, "PUT configuration", e.call("PUT", "/sandbox/jobs/configuration", auth, map[string]any{"type": "data_sync_all", "completion_status": "complete"}), http.StatusOK, "")
	job := want(t, "POST /sandbox/jobs", e.call("POST", "/sandbox/jobs", auth, map[string]any{"type": "data_sync_all"}), http.StatusOK, "")
	if again := want(t, "POST /sandbox/jobs while one runs", e.call("POST", "/sandbox/jobs", auth, map[string]any{"type": "data_sync_all"}), http.StatusOK, ""); again["job_id"] != job["job_id"] {
		t.Fatalf("a second sandbox job while one runs = %v, want the running %v", again["job_id"], job["job_id"])
	}
	e.advance(3 * time.Minute)
	if got := want(t, "get", e.call("GET", "/jobs/automated/"+job["job_id"].(string), auth, nil), http.StatusOK, ""); got["status"] != "complete" {
		t.Fatalf("sync after setting complete = %v", got["status"])
	}
}

// TestJobs_Persist: jobs, benefits and the job configuration survive a
// restart with DataFile.
func TestJobs_Persist(t *testing.T) {
	file := t.TempDir() + "/state.json"
	e := newEnv(t, sandbox.Options{DataFile: file})
	auth, _ := e.conn("gusto", "", "benefits")
	m := want(t, "create", e.call("POST", "/employer/benefits", auth, map[string]any{"type": "fsa_medical", "description": "FSA"}), http.StatusCreated, "")
	job := want(t, "sync", e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"}), http.StatusCreated, "")
	want(t, "PUT configuration", e.call("PUT", "/sandbox/jobs/configuration", auth, map[string]any{"type": "data_sync_all", "completion_status": "error"}), http.StatusOK, "")
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, sandbox.Options{DataFile: file})
	e2.advance(3 * time.Minute)
	if j := e2.job(auth, m["job_id"].(string)); j["status"] != "complete" {
		t.Fatalf("create job after a restart = %v", j)
	}
	want(t, "benefit after a restart", e2.call("GET", "/employer/benefits/"+m["benefit_id"].(string), auth, nil), http.StatusOK, "")
	if got := want(t, "sync after a restart", e2.call("GET", "/jobs/automated/"+job["job_id"].(string), auth, nil), http.StatusOK, ""); got["status"] != "complete" {
		t.Fatalf("sync after a restart = %v", got)
	}
	if cfg := array(t, e2.call("GET", "/sandbox/jobs/configuration", auth, nil)); cfg[0]["completion_status"] != "error" {
		t.Fatalf("configuration after a restart = %v", cfg)
	}
}
