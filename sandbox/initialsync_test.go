package sandbox_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestWebhooks_InitialSync: a new connection's first sync is announced as
// Finch announces it: job.initial_data_sync_org.succeeded, and
// job.initial_data_sync_payroll.succeeded with a payroll product, each
// once, with a job_url that GET /jobs/automated/{job_id} answers (a
// finished data_sync_all) but that the list leaves out and that uses no
// refresh quota. An automated connection sends them when it is made (the
// code exchange, POST /sandbox/connections); an assisted one when its
// timeline reaches connected; a re-authentication sends none.
func TestWebhooks_InitialSync(t *testing.T) {
	hookURL, hooks := webhooks(t)
	e := newEnv(t, sandbox.Options{WebhookURL: hookURL, WebhookSecret: sessionWebhookSecret, Now: fixedNow()})

	jobOf := func(auth string, ev map[string]any) map[string]any {
		t.Helper()
		data := ev["data"].(map[string]any)
		u, err := url.Parse(data["job_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if u.Path != "/finch/jobs/automated/"+data["job_id"].(string) {
			t.Fatalf("job_url %s, want the sandbox's /jobs/automated/%s", data["job_url"], data["job_id"])
		}
		r := e.call("GET", "/jobs/automated/"+data["job_id"].(string), auth, nil)
		job := want(t, "the first sync's job", r, http.StatusOK, "")
		if job["type"] != "data_sync_all" || job["status"] != "complete" {
			t.Fatalf("the first sync's job = %v, want a complete data_sync_all", job)
		}
		return job
	}

	// POST /sandbox/connections with payroll: both events.
	auth, conn := e.conn("gusto", "", "company", "directory", "payment")
	org, payroll := hooks.next(t, "job.initial_data_sync_org.succeeded"), hooks.next(t, "job.initial_data_sync_payroll.succeeded")
	for _, ev := range []map[string]any{org, payroll} {
		if ev["connection_id"] != conn {
			t.Fatalf("%v: connection_id, want %s", ev, conn)
		}
		jobOf(auth, ev)
	}
	if org["data"].(map[string]any)["job_id"] == payroll["data"].(map[string]any)["job_id"] {
		t.Error("org and payroll share one job")
	}
	list := want(t, "GET /jobs/automated", e.call("GET", "/jobs/automated", auth, nil), http.StatusOK, "")
	if jobs := list["data"].([]any); len(jobs) != 0 {
		t.Errorf("GET /jobs/automated lists %v, want no job the app did not ask for", jobs)
	}
	r := e.call("POST", "/jobs/automated", auth, map[string]any{"type": "data_sync_all"})
	if m := want(t, "the first refresh", r, http.StatusCreated, ""); m["remaining_refreshes"] != 0.0 || m["allowed_refreshes"] != 1.0 {
		t.Errorf("the first refresh = %v, want the hour's one refresh used by it alone", m)
	}

	// Without a payroll product: org only.
	_, conn2 := e.conn("gusto", "", "company", "directory")
	if ev := hooks.next(t, "job.initial_data_sync_org.succeeded"); ev["connection_id"] != conn2 {
		t.Fatalf("org event %v, want connection %s", ev, conn2)
	}

	// A Connect connection: at the exchange; a re-authentication sends none.
	tok := e.token("authorized_simple", "company", "directory", "pay_statement")
	in := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)
	conn3 := in["connection_id"].(string)
	for _, typ := range []string{"job.initial_data_sync_org.succeeded", "job.initial_data_sync_payroll.succeeded"} {
		if ev := hooks.next(t, typ); ev["connection_id"] != conn3 {
			t.Fatalf("%s %v, want connection %s", typ, ev, conn3)
		}
	}
	rs := e.call("POST", "/connect/sessions/reauthenticate", "basic", map[string]any{"connection_id": conn3, "redirect_uri": cb})
	mustStatus(t, "reauthenticate", rs, http.StatusCreated)
	u, _ := url.Parse(rs.json(t)["connect_url"].(string))
	mustStatus(t, "exchange", e.exchange(e.signIn(u.Query(), "authorized_simple"), cb), http.StatusOK)

	// Assisted: nothing until connected, then org (benefits only: no payroll).
	aAuth, aConn := e.conn("gusto", "assisted", "company", "benefits")
	e.advance(sandbox.DefaultAssistedPending + sandbox.DefaultAssistedProcessing - time.Second)
	// Everything so far has arrived once the processing step's account.updated has.
	for {
		ev := hooks.next(t, "account.updated")
		if ev["connection_id"] == aConn && ev["data"].(map[string]any)["status"] == "processing" {
			break
		}
	}
	hooks.none(t, "job.initial_data_sync_org.succeeded") // neither conn3's reauth nor the pending assisted one
	e.advance(time.Second)
	ev := hooks.next(t, "job.initial_data_sync_org.succeeded")
	if ev["connection_id"] != aConn {
		t.Fatalf("org event %v, want the assisted connection %s", ev, aConn)
	}
	jobOf(aAuth, ev)
	// Sent after the org event would have been: a marker that comes after.
	if err := e.sb.SendWebhook(aConn, "test", nil); err != nil {
		t.Fatal(err)
	}
	hooks.next(t, "test")
	hooks.none(t, "job.initial_data_sync_payroll.succeeded")
}
