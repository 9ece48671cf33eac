package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/records"
	"github.com/finchconnect/finchconnect/server"
	"github.com/finchconnect/finchconnect/syncer"
)

// syncHarness is the harness with a records store, its audit trail and
// events recorded.
type syncHarness struct {
	*harness
	rs     *records.Store
	rsPath string
	kr     *keyring.Keyring
	events eventLog

	mu     sync.Mutex
	audits []finchconnect.AuditRecord
}

func newSyncHarness(t *testing.T) *syncHarness {
	t.Helper()
	k, err := keyring.Generate(7)
	if err != nil {
		t.Fatal(err)
	}
	sh := &syncHarness{rsPath: filepath.Join(t.TempDir(), "records.db")}
	if sh.kr, err = keyring.New(k); err != nil {
		t.Fatal(err)
	}
	if sh.rs, err = records.OpenSQLite(t.Context(), sh.rsPath, sh.kr, records.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.rs.Close() })
	sh.harness = newHarnessWith(t, harnessOptions{}, func(c *server.Config) {
		c.Records = sh.rs
		c.Notify = sh.events.notify
		c.WebhookSecrets = []finchconnect.Secret{finchconnect.NewSecret(hookSecret)}
		c.Audit = func(_ context.Context, r finchconnect.AuditRecord) {
			sh.mu.Lock()
			defer sh.mu.Unlock()
			sh.audits = append(sh.audits, r)
		}
	})
	return sh
}

// personalReads returns the audit records of personal reads.
func (sh *syncHarness) personalReads() []finchconnect.AuditRecord {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []finchconnect.AuditRecord
	for _, r := range sh.audits {
		if r.Action == server.AuditPersonalRead {
			out = append(out, r)
		}
	}
	return out
}

// connectAndSync connects a sandbox employer and syncs it into the records
// store with the syncer, as serve will.
func (sh *syncHarness) connectAndSync(customer string) (string, []records.Change) {
	sh.t.Helper()
	id := sh.finish(sh.client, sh.connect(sh.client, customer, "authorized_simple"))
	conn, err := sh.store.Get(sh.t.Context(), id)
	if err != nil {
		sh.t.Fatal(err)
	}
	fc := &finch.Client{BaseURL: sh.ts.URL + "/finch", ClientID: "sandbox-client-id", ClientSecret: finchconnect.NewSecret("sandbox-client-secret")}
	changes, err := (&syncer.Syncer{Client: fc, Store: sh.rs, PageSize: 3}).Run(sh.t.Context(), id, conn.AccessToken)
	if err != nil || len(changes) == 0 {
		sh.t.Fatalf("sync: %d changes, %v", len(changes), err)
	}
	return id, changes
}

type feedPage struct {
	Data []struct {
		Seq      int64  `json:"seq"`
		Kind     string `json:"kind"`
		RecordID string `json:"record_id"`
		Op       string `json:"op"`
	} `json:"data"`
	NextCursor string `json:"next_cursor"`
	HasMore    bool   `json:"has_more"`
}

func getJSON[T any](t *testing.T, api *apiClient, path string) (T, response) {
	t.Helper()
	var v T
	r := api.call("GET", path, "")
	if r.status == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return v, r
}

// readFeed follows the feed from cursor to its end, limit at a time.
func readFeed(t *testing.T, api *apiClient, id, cursor string, limit int) ([]string, string) {
	t.Helper()
	var got []string
	for range 1000 {
		p, r := getJSON[feedPage](t, api, "/v1/connections/"+id+"/changes?limit="+itoa(limit)+"&cursor="+url.QueryEscape(cursor))
		if r.status != http.StatusOK {
			t.Fatalf("GET changes = %d %s", r.status, r.body)
		}
		if len(p.Data) > limit {
			t.Fatalf("a page of %d changes, limit %d", len(p.Data), limit)
		}
		for _, c := range p.Data {
			got = append(got, c.Op+" "+c.Kind+" "+c.RecordID)
		}
		cursor = p.NextCursor
		if !p.HasMore {
			return got, cursor
		}
	}
	t.Fatal("the feed never ended")
	return nil, ""
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func opsOf(cs []records.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c.Op)+" "+string(c.Kind)+" "+c.RecordID)
	}
	return out
}

// TestAPI_SyncOff: without a records store, the three routes answer 404
// sync_off (after authenticating), not 500 or an empty feed.
func TestAPI_SyncOff(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	api := h.api(apikey.ScopeRead)
	for _, p := range []string{"/v1/connections/c/changes", "/v1/connections/c/records/directory", "/v1/connections/c/records/directory/x"} {
		r := api.call("GET", p, "")
		if r.status != http.StatusNotFound || !strings.Contains(r.body, `"finch_code":"sync_off"`) {
			t.Errorf("GET %s without a records store = %d %s; want 404 sync_off", p, r.status, r.body)
		}
		if r := h.api("").call("GET", p, ""); r.status != http.StatusUnauthorized {
			t.Errorf("GET %s without a key = %d; want 401", p, r.status)
		}
	}
}

// TestAPI_ChangeFeed: a read key follows the feed of a synced connection
// page by page and sees exactly the sync's changes, once, in order; a run
// in progress adds nothing until it commits, and then only its change.
func TestAPI_ChangeFeed(t *testing.T) {
	sh := newSyncHarness(t)
	api := sh.api(apikey.ScopeRead)
	id, changes := sh.connectAndSync("feed-1")

	got, cursor := readFeed(t, api, id, "", 2)
	if want := opsOf(changes); !slices.Equal(got, want) {
		t.Fatalf("feed = %v\nwant the sync's changes %v", got, want)
	}
	if again, c2 := readFeed(t, api, id, cursor, 2); len(again) != 0 || c2 != cursor {
		t.Errorf("at the end of the feed: %v, cursor %q → %q; want nothing, the same cursor", again, cursor, c2)
	}

	// A sync in progress: a page staged, not committed.
	y, _, err := sh.rs.Begin(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Stage(t.Context(), "company", []records.Item{{Kind: records.Company, ID: changes[0].RecordID, Body: []byte(`{"legal_name":"Renamed"}`)}}, records.Checkpoint{Done: true}); err != nil {
		t.Fatal(err)
	}
	if during, _ := readFeed(t, api, id, cursor, 2); len(during) != 0 {
		t.Errorf("feed while a sync runs = %v; want nothing until it commits", during)
	}
	committed, err := y.Commit(t.Context(), nil)
	if err != nil || len(committed) != 1 {
		t.Fatalf("Commit = %v, %v", committed, err)
	}
	if after, _ := readFeed(t, api, id, cursor, 2); !slices.Equal(after, opsOf(committed)) {
		t.Errorf("feed after the commit = %v; want %v", after, opsOf(committed))
	}

	for _, tt := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/connections/nope/changes", http.StatusNotFound, "not_found"},
		{"/v1/connections/" + id + "/changes?cursor=abc", http.StatusBadRequest, "invalid_cursor"},
		{"/v1/connections/" + id + "/changes?limit=0", http.StatusBadRequest, "invalid_request"},
		{"/v1/connections/" + id + "/changes?limit=501", http.StatusBadRequest, "invalid_request"},
	} {
		if r := api.call("GET", tt.path, ""); r.status != tt.status || !strings.Contains(r.body, `"finch_code":"`+tt.code+`"`) {
			t.Errorf("GET %s = %d %s; want %d %s", tt.path, r.status, r.body, tt.status, tt.code)
		}
	}
}

type recordOut struct {
	Kind            string         `json:"kind"`
	ID              string         `json:"id"`
	Record          map[string]any `json:"record"`
	PersonalRemoved []string       `json:"personal_fields_removed"`
}

type recordsPage struct {
	Data       []recordOut `json:"data"`
	NextCursor string      `json:"next_cursor"`
	HasMore    bool        `json:"has_more"`
}

// TestAPI_LocalRecords: the records routes page through the local copy
// (no Finch call: the sandbox is not asked), and read one record; personal
// fields are removed for an ordinary key, kept for a personal one, and
// only a read that returns one is audited, without any value in the trail.
func TestAPI_LocalRecords(t *testing.T) {
	sh := newSyncHarness(t)
	id, _ := sh.connectAndSync("records-1")
	const ssn, dob, homeMail, workMail = "078-05-1120", "1970-04-01", "zeb@home.example", "zeb@work.example"
	// An individual as Finch returns it (the syncer does not fetch
	// individuals yet), committed as a sync would.
	y, _, err := sh.rs.Begin(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	ind := `{"id":"ind-1","first_name":"Zeb","ssn":"` + ssn + `","dob":"` + dob + `","residence":{"city":"Oslo"},
		"emails":[{"data":"` + homeMail + `","type":"personal"},{"data":"` + workMail + `","type":"work"}],"phone_numbers":null}`
	if err := y.Stage(t.Context(), "individual", []records.Item{{Kind: records.Individual, ID: "ind-1", Body: []byte(ind)}}, records.Checkpoint{Done: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Commit(t.Context(), nil); err != nil {
		t.Fatal(err)
	}

	read := sh.api(apikey.ScopeWrite) // not personal, whatever its scope
	dirIDs, err := sh.rs.IDs(t.Context(), id, records.Directory)
	if err != nil || len(dirIDs) < 4 {
		t.Fatalf("directory ids = %v, %v; want a few", dirIDs, err)
	}
	before := sh.sb.Stats()
	var listed []string
	cursor := ""
	for range 100 {
		p, r := getJSON[recordsPage](t, read, "/v1/connections/"+id+"/records/directory?limit=3&cursor="+url.QueryEscape(cursor))
		if r.status != http.StatusOK || len(p.Data) > 3 {
			t.Fatalf("GET records/directory = %d %s", r.status, r.body)
		}
		for _, d := range p.Data {
			if d.Kind != "directory" || d.Record["id"] != d.ID || d.PersonalRemoved != nil {
				t.Errorf("directory record %+v", d)
			}
			listed = append(listed, d.ID)
		}
		if !p.HasMore {
			break
		}
		cursor = p.NextCursor
	}
	if !slices.Equal(listed, dirIDs) {
		t.Errorf("listed %v; want %v", listed, dirIDs)
	}
	if after := sh.sb.Stats(); !maps.Equal(after.Requests, before.Requests) {
		t.Errorf("local reads reached Finch: sandbox stats %+v → %+v", before, after)
	}

	// Employments hold income: removed for the ordinary key.
	emp, r := getJSON[recordOut](t, read, "/v1/connections/"+id+"/records/employment/"+dirIDs[0])
	if r.status != http.StatusOK {
		t.Fatalf("GET an employment = %d %s", r.status, r.body)
	}
	if _, ok := emp.Record["income"]; ok || !slices.Contains(emp.PersonalRemoved, "income") {
		t.Errorf("employment for a plain key: income present or not reported removed: %+v", emp)
	}
	got, _ := getJSON[recordOut](t, read, "/v1/connections/"+id+"/records/individual/ind-1")
	b, _ := json.Marshal(got.Record)
	for _, v := range []string{ssn, dob, homeMail, "Oslo"} {
		if strings.Contains(string(b), v) {
			t.Errorf("individual for a plain key holds %q: %s", v, b)
		}
	}
	if !strings.Contains(string(b), workMail) || got.Record["first_name"] != "Zeb" {
		t.Errorf("individual for a plain key lost a non-personal field: %s", b)
	}
	if want := []string{"ssn", "dob", "residence", "emails"}; !slices.Equal(got.PersonalRemoved, want) {
		t.Errorf("personal_fields_removed = %v; want %v", got.PersonalRemoved, want)
	}
	if n := len(sh.personalReads()); n != 0 {
		t.Errorf("%d personal reads audited for reads that returned none", n)
	}

	// A personal key gets them, and each such read is audited.
	key, rec, err := apikey.Create(t.Context(), sh.backend, "hr", apikey.ScopeRead, apikey.Personal())
	if err != nil {
		t.Fatal(err)
	}
	personal := sh.api("")
	personal.key = key.Reveal()
	got, _ = getJSON[recordOut](t, personal, "/v1/connections/"+id+"/records/individual/ind-1")
	if got.Record["ssn"] != ssn || got.Record["dob"] != dob || got.PersonalRemoved != nil {
		t.Errorf("individual for a personal key: %+v", got)
	}
	if p, _ := getJSON[recordsPage](t, personal, "/v1/connections/"+id+"/records/employment?limit=500"); len(p.Data) != len(dirIDs) || p.Data[0].Record["income"] == nil {
		t.Errorf("employments for a personal key: %d, first %+v", len(p.Data), p.Data)
	}
	getJSON[recordsPage](t, personal, "/v1/connections/"+id+"/records/directory") // nothing personal: not audited
	audits := sh.personalReads()
	if len(audits) != 2 {
		t.Fatalf("personal reads audited: %+v; want the individual and the employments", audits)
	}
	for _, a := range audits {
		if a.ConnectionID != id || a.Actor != "api:"+rec.ID {
			t.Errorf("audit %+v: wrong connection or actor", a)
		}
		ab, _ := json.Marshal(a)
		for _, v := range []string{ssn, dob, homeMail, "Zeb", "Oslo"} {
			if strings.Contains(string(ab), v) {
				t.Errorf("audit record holds personal data %q: %s", v, ab)
			}
		}
	}

	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/v1/connections/" + id + "/records/salaries", http.StatusNotFound},
		{"/v1/connections/" + id + "/records/individual/nobody", http.StatusNotFound},
		{"/v1/connections/nope/records/directory", http.StatusNotFound},
		{"/v1/connections/" + id + "/records/directory?cursor=!!", http.StatusBadRequest},
	} {
		if r := read.call("GET", tt.path, ""); r.status != tt.status {
			t.Errorf("GET %s = %d %s; want %d", tt.path, r.status, r.body, tt.status)
		}
	}
}

// rawRows counts, on the records store's file itself, the rows the store
// holds for conn: its data key and its records.
func rawRows(t *testing.T, path, conn string) (keys, recs int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT count(*) FROM data_keys WHERE connection_id = ?`, conn).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM records WHERE connection_id = ?`, conn).Scan(&recs); err != nil {
		t.Fatal(err)
	}
	return keys, recs
}

// unreadable checks, on a second store opened on the same file with the
// same keyring, that conn's records cannot be read.
func (sh *syncHarness) unreadable(conn string, someID string) {
	sh.t.Helper()
	other, err := records.OpenSQLite(sh.t.Context(), sh.rsPath, sh.kr, records.Options{})
	if err != nil {
		sh.t.Fatal(err)
	}
	defer other.Close()
	if body, err := other.Get(sh.t.Context(), conn, records.Directory, someID); err == nil {
		sh.t.Errorf("record still readable on the raw store: %s", body)
	}
	if keys, _ := rawRows(sh.t, sh.rsPath, conn); keys != 0 {
		sh.t.Errorf("the connection's data key is still in the file")
	}
}

// TestAPI_DisconnectShredsRecords: DELETE /v1/connections/{id}, the
// connection page's disconnect and Finch's account.updated "disconnected"
// each leave the connection's records unreadable at once, on the raw
// store; another connection's records are untouched.
func TestAPI_DisconnectShredsRecords(t *testing.T) {
	sh := newSyncHarness(t)
	write := sh.api(apikey.ScopeWrite)
	kept, _ := sh.connectAndSync("kept")
	keptIDs, _ := sh.rs.IDs(t.Context(), kept, records.Directory)

	paths := map[string]func(id string){
		"DELETE /v1": func(id string) {
			if r := write.call("DELETE", "/v1/connections/"+id, ""); r.status != http.StatusNoContent {
				t.Fatalf("DELETE = %d %s", r.status, r.body)
			}
		},
		"connection page": func(id string) {
			if r := sh.do(sh.client, "POST", "/connections/"+id+"/disconnect", url.Values{"confirm": {"yes"}}); r.status != http.StatusSeeOther {
				t.Fatalf("POST disconnect = %d %s", r.status, r.body)
			}
		},
		"Finch webhook": func(id string) {
			body := `{"event_type":"account.updated","connection_id":"` + id + `","data":{"status":"disconnected"}}`
			if r := sh.postWebhook(hookSecret, "msg_"+id, time.Now(), body, false); r.status != http.StatusOK {
				t.Fatalf("webhook = %d", r.status)
			}
		},
	}
	for name, disconnect := range paths {
		id, _ := sh.connectAndSync("gone-" + strings.ReplaceAll(name, " ", "-"))
		ids, _ := sh.rs.IDs(t.Context(), id, records.Directory)
		if keys, recs := rawRows(t, sh.rsPath, id); keys != 1 || recs == 0 || len(ids) == 0 {
			t.Fatalf("%s: before: %d keys, %d records; the check below would prove nothing", name, keys, recs)
		}
		disconnect(id)
		sh.unreadable(id, ids[0])
		if _, recs := rawRows(t, sh.rsPath, id); recs != 0 {
			t.Errorf("%s: %d records left in the file", name, recs)
		}
	}
	if _, err := sh.rs.Get(t.Context(), kept, records.Directory, keptIDs[0]); err != nil {
		t.Errorf("the connection still connected lost its records: %v", err)
	}
}

// TestShredFailureNeverBlocksTheDisconnect: with the records store
// failing, the disconnect still succeeds; a connection deleted by another
// path (the vault only) is shredded by ShredOrphans, which leaves
// connected ones alone.
func TestShredFailureNeverBlocksTheDisconnect(t *testing.T) {
	sh := newSyncHarness(t)
	write := sh.api(apikey.ScopeWrite)
	kept, _ := sh.connectAndSync("kept")
	orphan, _ := sh.connectAndSync("orphan")
	orphanIDs, _ := sh.rs.IDs(t.Context(), orphan, records.Directory)

	// Deleted from the vault only, as finchconnect delete does.
	if err := sh.store.Delete(t.Context(), orphan); err != nil {
		t.Fatal(err)
	}
	if n, err := sh.srv.ShredOrphans(t.Context()); err != nil || n != 1 {
		t.Fatalf("ShredOrphans = %d, %v; want 1", n, err)
	}
	sh.unreadable(orphan, orphanIDs[0])
	if n, err := sh.srv.ShredOrphans(t.Context()); err != nil || n != 0 {
		t.Errorf("ShredOrphans again = %d, %v; want 0", n, err)
	}
	if ids, _ := sh.rs.IDs(t.Context(), kept, records.Directory); len(ids) == 0 {
		t.Error("ShredOrphans shredded a connected connection")
	}

	sh.rs.Close() // every shred now fails
	if r := write.call("DELETE", "/v1/connections/"+kept, ""); r.status != http.StatusNoContent {
		t.Errorf("DELETE with the records store down = %d %s; want 204", r.status, r.body)
	}
	if _, err := sh.store.Lookup(t.Context(), kept); err == nil {
		t.Error("the connection is still stored")
	}
}

// TestPublishChanges: a committed sync's changes become one
// connection.data_changed event through Notify, with ids, kinds and
// counts only: no record's content.
func TestPublishChanges(t *testing.T) {
	sh := newSyncHarness(t)
	id, changes := sh.connectAndSync("events")
	body, err := sh.rs.Get(t.Context(), id, records.Directory, changes[len(changes)-1].RecordID)
	if err != nil {
		t.Fatal(err)
	}
	var person struct {
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
	}
	if err := json.Unmarshal(body, &person); err != nil || person.LastName == "" {
		t.Fatalf("directory record %s: %v", body, err)
	}
	n := len(sh.events.types())
	if err := sh.srv.PublishChanges(t.Context(), id, nil); err != nil || len(sh.events.types()) != n {
		t.Errorf("PublishChanges(no changes) = %v, published %d", err, len(sh.events.types())-n)
	}
	if err := sh.srv.PublishChanges(t.Context(), id, changes); err != nil {
		t.Fatal(err)
	}
	sh.events.mu.Lock()
	e := sh.events.events[len(sh.events.events)-1]
	sh.events.mu.Unlock()
	if e.Type != finchconnect.EventDataChanged || e.ConnectionID != id || e.Data["source"] != "sync" || e.Data["count"] != len(changes) {
		t.Fatalf("event = %+v", e)
	}
	eb, _ := json.Marshal(e)
	if strings.Contains(string(eb), person.LastName) || !strings.Contains(string(eb), changes[0].RecordID) {
		t.Errorf("event holds a record's content, or not its ids: %s", eb)
	}
	kinds := e.Data["kinds"].(map[string]map[string]int)
	if kinds["directory"]["added"] == 0 || kinds["company"]["added"] != 1 {
		t.Errorf("kinds = %v", kinds)
	}
}
