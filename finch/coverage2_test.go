package finch_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/finch"
)

func TestAutomatedJobs(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client
	tok := e.sandboxToken("directory", "documents")

	created, err := c.CreateAutomatedJob(ctx, tok, finch.AutomatedJobRequest{Type: "data_sync_all"})
	if err != nil || created.JobID == "" || created.AllowedRefreshes == 0 || created.RemainingRefreshes >= created.AllowedRefreshes {
		t.Fatalf("CreateAutomatedJob = %+v, %v", created, err)
	}
	// While that sync runs, Finch answers a new one with it (202).
	again, err := c.CreateAutomatedJob(ctx, tok, finch.AutomatedJobRequest{Type: "data_sync_all"})
	if err != nil || again.JobID != created.JobID {
		t.Fatalf("CreateAutomatedJob while running = %+v, %v; want job %s", again, err, created.JobID)
	}
	job, err := c.AutomatedJob(ctx, tok, created.JobID)
	if err != nil || job.JobID != created.JobID || job.Type != "data_sync_all" || job.CreatedAt == "" || job.CompletedAt != "" {
		t.Fatalf("AutomatedJob = %+v, %v", job, err)
	}
	e.sb.Advance(time.Hour)
	if job, err = c.AutomatedJob(ctx, tok, created.JobID); err != nil || job.Status != "complete" || job.CompletedAt == "" {
		t.Fatalf("AutomatedJob after an hour = %+v, %v", job, err)
	}

	ids := e.firstIDs(tok, 1)
	w4, err := c.CreateAutomatedJob(ctx, tok, finch.AutomatedJobRequest{Type: "w4_form_employee_sync", Params: &finch.AutomatedParams{IndividualID: ids[0]}})
	if err != nil || w4.JobID == "" {
		t.Fatalf("CreateAutomatedJob(w4) = %+v, %v", w4, err)
	}
	list, err := c.AutomatedJobs(ctx, tok, 0, 0)
	if err != nil || len(list.Data) != 2 {
		t.Fatalf("AutomatedJobs = %+v, %v", list, err)
	}
	var got []string
	for _, j := range list.Data {
		got = append(got, j.JobID)
	}
	if !slices.Contains(got, created.JobID) || !slices.Contains(got, w4.JobID) {
		t.Errorf("AutomatedJobs ids = %v", got)
	}
	if q := list.Meta.Quotas; q == nil || q.DataSyncAll == nil || q.DataSyncAll.RemainingRefreshes == nil {
		t.Errorf("AutomatedJobs meta = %+v", list.Meta)
	}
	page, err := c.AutomatedJobs(ctx, tok, 1, 1)
	if err != nil || len(page.Data) != 1 || page.Data[0].JobID != list.Data[1].JobID {
		t.Fatalf("AutomatedJobs(1, 1) = %+v, %v", page, err)
	}
	var iterated []string
	for j, err := range c.AllAutomatedJobs(ctx, tok, 1) {
		if err != nil {
			t.Fatal(err)
		}
		iterated = append(iterated, j.JobID)
	}
	if !slices.Equal(iterated, got) {
		t.Errorf("AllAutomatedJobs = %v, want %v", iterated, got)
	}
	for _, err := range c.AllAutomatedJobs(ctx, tok, 0) {
		if err == nil {
			t.Error("page size 0 passed")
		}
	}
	for _, j := range list.Data {
		if j.Type == "w4_form_employee_sync" && (j.Params == nil || j.Params.IndividualID != ids[0]) {
			t.Errorf("w4 job params = %+v", j.Params)
		}
	}

	// Errors: an unknown job, a W-4 sync without documents, client checks.
	_, err = c.AutomatedJob(ctx, tok, "00000000-0000-4000-8000-000000000000")
	apiErr(t, err, http.StatusNotFound)
	noDocs := e.sandboxToken("directory")
	_, err = c.CreateAutomatedJob(ctx, noDocs, finch.AutomatedJobRequest{Type: "w4_form_employee_sync", Params: &finch.AutomatedParams{IndividualID: e.firstIDs(noDocs, 1)[0]}})
	apiErr(t, err, http.StatusForbidden)
	n := e.rec.total()
	for _, req := range []finch.AutomatedJobRequest{{}, {Type: "w4_form_employee_sync"}, {Type: "data_sync_all", Params: &finch.AutomatedParams{}}} {
		if _, err := c.CreateAutomatedJob(ctx, tok, req); err == nil {
			t.Errorf("CreateAutomatedJob(%+v) passed", req)
		}
	}
	if _, err := c.AutomatedJobs(ctx, tok, -1, 0); err == nil {
		t.Error("negative limit passed")
	}
	if e.rec.total() != n {
		t.Error("client-side checks sent requests")
	}
}

// TestAutomatedJobs_QuotaNotRetried: when the refresh quota is spent Finch
// answers 429 with a Retry-After far beyond a minute; the create is not
// sent again and the error carries the wait.
func TestAutomatedJobs_QuotaNotRetried(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tok := e.sandboxToken("directory")
	// Start at the top of the sandbox's hour, so the hourly quota does
	// not reset under the loop.
	e.sb.Advance(time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)) + time.Second)
	var err error
	for range 100 {
		if _, err = e.client.CreateAutomatedJob(ctx, tok, finch.AutomatedJobRequest{Type: "data_sync_all"}); err != nil {
			break
		}
		e.sb.Advance(3 * time.Minute) // past the running sync
	}
	ae := apiErr(t, err, http.StatusTooManyRequests)
	before := e.rec.count("POST", "/jobs/automated")
	_, err = e.client.CreateAutomatedJob(ctx, tok, finch.AutomatedJobRequest{Type: "data_sync_all"})
	apiErr(t, err, http.StatusTooManyRequests)
	if got := e.rec.count("POST", "/jobs/automated") - before; got != 1 {
		t.Errorf("a refused create was sent %d times", got)
	}
	if ae.RetryAfter <= 0 {
		t.Errorf("429 without RetryAfter: %+v", ae)
	}
}
