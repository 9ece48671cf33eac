package syncer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/records"
	"github.com/finchconnect/finchconnect/sandbox"
	"github.com/google/go-cmp/cmp"
)

var wall = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type env struct {
	sb    *sandbox.Server
	fc    *finch.Client
	token finchconnect.Secret
	conn  string
}

func newEnv(t *testing.T, employees int, products ...string) *env {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{Now: func() time.Time { return wall }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	fc := &finch.Client{BaseURL: ts.URL, ClientID: sandbox.DefaultClientID,
		ClientSecret: finchconnect.NewSecret(sandbox.DefaultClientSecret), MaxRetries: -1}
	c, err := fc.SandboxCreateConnection(context.Background(), finch.SandboxConnectionRequest{ProviderID: "gusto", EmployeeSize: employees, Products: products})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sb: sb, fc: fc, token: c.AccessToken, conn: c.ConnectionID}
}

func newStore(t *testing.T) *records.Store {
	t.Helper()
	s, _ := newStoreAt(t, filepath.Join(t.TempDir(), "r.db"))
	return s
}

func newStoreAt(t *testing.T, path string) (*records.Store, string) {
	t.Helper()
	k, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := records.OpenSQLite(context.Background(), path, kr, records.Options{Clock: clock.NewFake(wall)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestNothingPersonalInTheFiles: after a sync of the sandbox employer,
// no field name of a body and no person's name is in the store's files;
// after Shred, not even a record id is.
func TestNothingPersonalInTheFiles(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 20)
	s, path := newStoreAt(t, filepath.Join(t.TempDir(), "r.db"))
	if _, err := (&Syncer{Client: e.fc, Store: s}).Run(ctx, e.conn, e.token); err != nil {
		t.Fatal(err)
	}
	raw := func() []byte {
		var all []byte
		for _, p := range []string{path, path + "-wal"} {
			b, _ := os.ReadFile(p)
			all = append(all, b...)
		}
		return all
	}
	needles := []string{`"first_name"`, `"income"`, `"legal_name"`}
	var someID string
	for ind, err := range e.fc.Directory(ctx, e.token, finch.DirectoryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		someID = ind.ID
		for _, n := range []string{ind.FirstName + `"`, ind.LastName + `"`} {
			if len(n) >= 6 {
				needles = append(needles, n)
			}
		}
	}
	files := raw()
	if !bytes.Contains(files, []byte(someID)) {
		t.Fatal("record ids not in the files: the scan below would prove nothing")
	}
	for _, n := range needles {
		if bytes.Contains(files, []byte(n)) {
			t.Errorf("%q in plaintext in the store's files", n)
		}
	}
	if err := s.Shred(ctx, e.conn); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw(), []byte(someID)) {
		t.Error("a record id is still in the files after Shred")
	}
}

type Rec struct {
	Kind records.Kind
	ID   string
}

type op struct {
	Op records.Op
	Rec
}

// snapshot reads the employer independently of the syncer: every
// directory entry and employment, canonical.
func (e *env) snapshot(t *testing.T) map[Rec]string {
	t.Helper()
	ctx := context.Background()
	m := map[Rec]string{}
	var ids []string
	for ind, err := range e.fc.Directory(ctx, e.token, finch.DirectoryOptions{Limit: 7}) {
		if err != nil {
			t.Fatal(err)
		}
		it, _ := item(records.Directory, ind.ID, ind)
		b, _ := records.Canonical(it.Body)
		m[Rec{records.Directory, ind.ID}] = string(b)
		ids = append(ids, ind.ID)
	}
	emps, err := e.fc.Employments(ctx, e.token, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range emps {
		it, _ := item(records.Employment, r.IndividualID, r.Employment)
		b, _ := records.Canonical(it.Body)
		m[Rec{records.Employment, r.IndividualID}] = string(b)
	}
	return m
}

func diff(before, after map[Rec]string) []op {
	var out []op
	for k, v := range after {
		switch old, ok := before[k]; {
		case !ok:
			out = append(out, op{records.Added, k})
		case old != v:
			out = append(out, op{records.Modified, k})
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, op{records.Removed, k})
		}
	}
	sortOps(out)
	return out
}

func sortOps(o []op) {
	sort.Slice(o, func(i, j int) bool {
		if o[i].Kind != o[j].Kind {
			return o[i].Kind < o[j].Kind
		}
		return o[i].ID < o[j].ID
	})
}

func ops(cs []records.Change) []op {
	var out []op
	for _, c := range cs {
		if c.Kind == records.Company {
			continue
		}
		out = append(out, op{c.Op, Rec{c.Kind, c.RecordID}})
	}
	sortOps(out)
	return out
}

func feedSince(t *testing.T, s *records.Store, conn, cursor string) ([]records.Change, string) {
	t.Helper()
	var all []records.Change
	for {
		p, err := s.Changes(context.Background(), conn, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		all, cursor = append(all, p.Changes...), p.NextCursor
		if !p.HasMore {
			return all, cursor
		}
	}
}

// TestDaysOnTheClock: day after day of the sandbox's changing employer,
// the feed reports exactly the differences an independent read sees
// (hires as added, terminations and raises as modified employments), each
// once; an unchanged second sync reports nothing.
func TestDaysOnTheClock(t *testing.T) {
	e := newEnv(t, 20)
	s := newStore(t)
	sy := &Syncer{Client: e.fc, Store: s, PageSize: 6}
	ctx := context.Background()
	before := e.snapshot(t)
	if _, err := sy.Run(ctx, e.conn, e.token); err != nil {
		t.Fatal(err)
	}
	all, cursor := feedSince(t, s, e.conn, "")
	if got, want := ops(all), diff(nil, before); !cmp.Equal(got, want) {
		t.Fatalf("first sync (-want +got):\n%s", cmp.Diff(want, got))
	}
	var hires, terms, raises int
	for day := 1; day <= 40 && (hires == 0 || terms == 0 || raises == 0); day++ {
		e.sb.Advance(24 * time.Hour)
		after := e.snapshot(t)
		if _, err := sy.Run(ctx, e.conn, e.token); err != nil {
			t.Fatal(err)
		}
		if got, err := sy.Run(ctx, e.conn, e.token); err != nil || len(got) != 0 {
			t.Fatalf("day %d: unchanged second sync = %v, %v; want no change", day, ops(got), err)
		}
		var got []records.Change
		got, cursor = feedSince(t, s, e.conn, cursor)
		want := diff(before, after)
		if !cmp.Equal(ops(got), want) {
			t.Fatalf("day %d (-want +got):\n%s", day, cmp.Diff(want, ops(got)))
		}
		for _, o := range want {
			if o.Kind != records.Employment {
				continue
			}
			switch {
			case o.Op == records.Added:
				hires++
			case o.Op == records.Modified && isActive(t, after[o.Rec]) != isActive(t, before[o.Rec]):
				terms++
			case o.Op == records.Modified:
				raises++
			}
		}
		before = after
	}
	t.Logf("%d hires, %d terminations, %d raises", hires, terms, raises)
	if hires == 0 || terms == 0 || raises == 0 {
		t.Errorf("saw %d hires, %d terminations, %d raises; want some of each", hires, terms, raises)
	}
}

func isActive(t *testing.T, body string) bool {
	t.Helper()
	var v struct {
		IsActive *bool `json:"is_active"`
	}
	if err := jsonUnmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v.IsActive != nil && *v.IsActive
}

var errCrash = errors.New("crash")

// TestKilledAtEveryPoint: a run stopped after each staged page in turn,
// then resumed, reports exactly the day's differences once; the stopped
// run put nothing in the feed.
func TestKilledAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	for stopAt := 1; ; stopAt++ {
		e := newEnv(t, 20)
		s := newStore(t)
		sy := &Syncer{Client: e.fc, Store: s, PageSize: 6}
		if _, err := sy.Run(ctx, e.conn, e.token); err != nil {
			t.Fatal(err)
		}
		_, cursor := feedSince(t, s, e.conn, "")
		before := e.snapshot(t)
		e.sb.Advance(24 * time.Hour)
		after := e.snapshot(t)

		n := 0
		sy.afterStage = func(string) error {
			if n++; n == stopAt {
				return errCrash
			}
			return nil
		}
		_, err := sy.Run(ctx, e.conn, e.token)
		if err == nil {
			if stopAt < 3 {
				t.Fatalf("the run staged fewer than %d pages", stopAt)
			}
			t.Logf("stopped after each of %d pages", stopAt-1)
			return // past the last page: every point was tried
		}
		if !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		if got, _ := feedSince(t, s, e.conn, cursor); len(got) != 0 {
			t.Fatalf("stop at %d: the interrupted run put %v in the feed", stopAt, ops(got))
		}
		sy.afterStage = nil
		if _, err := sy.Run(ctx, e.conn, e.token); err != nil {
			t.Fatal(err)
		}
		got, _ := feedSince(t, s, e.conn, cursor)
		if want := diff(before, after); !cmp.Equal(ops(got), want) {
			t.Fatalf("stop at %d, resumed (-want +got):\n%s", stopAt, cmp.Diff(want, ops(got)))
		}
	}
}

// TestStops: 202 data_sync_in_progress says retry later; reauth says
// stop, and why; neither commits; once connected again the run completes.
func TestStops(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 5)
	s := newStore(t)
	// The syncer's own client checks that every call is in the
	// Background lane of the budget.
	lanes := &laneCheck{t: t, next: httpDefault()}
	sc := &finch.Client{BaseURL: e.fc.BaseURL, HTTPClient: &http.Client{Transport: lanes}, MaxRetries: -1}
	sy := &Syncer{Client: sc, Store: s}
	for _, tc := range []struct {
		status string
		check  func(error) bool
	}{
		{"processing", func(err error) bool { return errors.Is(err, ErrDataSyncInProgress) }},
		{"reauth", func(err error) bool {
			var se *StopError
			return errors.As(err, &se) && se.Reason == "reauth"
		}},
	} {
		if _, err := e.fc.SandboxUpdateAccount(ctx, e.token, tc.status); err != nil {
			t.Fatal(err)
		}
		if _, err := sy.Run(ctx, e.conn, e.token); !tc.check(err) {
			t.Errorf("status %s: Run err = %v", tc.status, err)
		}
		if p, _ := s.Changes(ctx, e.conn, "", 10); len(p.Changes) != 0 {
			t.Errorf("status %s: feed has %d changes", tc.status, len(p.Changes))
		}
	}
	if _, err := e.fc.SandboxUpdateAccount(ctx, e.token, "connected"); err != nil {
		t.Fatal(err)
	}
	got, err := sy.Run(ctx, e.conn, e.token)
	if err != nil || len(got) != 1+2*5 {
		t.Fatalf("Run once connected = %d changes, %v; want 11", len(got), err)
	}
	if lanes.n == 0 {
		t.Fatal("no call went through the syncer's client")
	}
}

type laneCheck struct {
	t    *testing.T
	next http.RoundTripper
	n    int
}

func (l *laneCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	l.n++
	if lane := budget.LaneOf(r.Context()); lane != budget.Background {
		l.t.Errorf("%s %s in lane %v, want Background", r.Method, r.URL.Path, lane)
	}
	return l.next.RoundTrip(r)
}

func httpDefault() http.RoundTripper { return finch.NewTransport() }

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
