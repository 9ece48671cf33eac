package syncer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/records"
	"github.com/google/go-cmp/cmp"
)

// individuals reads every individual of the employer independently of the
// syncer, with SSNs.
func (e *env) individuals(t *testing.T) map[string]*finch.IndividualDetail {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for ind, err := range e.fc.Directory(ctx, e.token, finch.DirectoryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ind.ID)
	}
	res, err := e.fc.Individuals(ctx, e.token, ids, finch.IndividualOptions{IncludeSSN: true})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*finch.IndividualDetail{}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		m[r.IndividualID] = r.Individual
	}
	return m
}

// TestIndividualsWithSSN: with Individuals and SSN, every individual is
// stored with its SSN (as Finch sent it, not redacted), sealed: neither
// an SSN nor a date of birth is in the store's files. Without SSN, none
// is stored.
func TestIndividualsWithSSN(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 8, "company", "directory", "individual", "employment", "ssn")
	want := e.individuals(t)
	s, path := newStoreAt(t, filepath.Join(t.TempDir(), "r.db"))
	changes, err := (&Syncer{Client: e.fc, Store: s, PageSize: 3, Individuals: true, SSN: true}).Run(ctx, e.conn, e.token)
	if err != nil {
		t.Fatal(err)
	}
	added := 0
	for _, c := range changes {
		if c.Kind == records.Individual && c.Op == records.Added {
			added++
		}
	}
	if added != len(want) {
		t.Errorf("%d individuals added; want %d", added, len(want))
	}
	files := func() []byte {
		var all []byte
		for _, p := range []string{path, path + "-wal"} {
			b, _ := os.ReadFile(p)
			all = append(all, b...)
		}
		return all
	}()
	ssns := 0
	for id, w := range want {
		body, err := s.Get(ctx, e.conn, records.Individual, id)
		if err != nil {
			t.Fatalf("individual %s: %v", id, err)
		}
		var got struct {
			SSN       string `json:"ssn"`
			DOB       string `json:"dob"`
			FirstName string `json:"first_name"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.SSN != w.SSN.Reveal() || got.DOB != w.DOB || got.FirstName != w.FirstName {
			t.Errorf("individual %s stored as %s; want ssn %q, dob %q", id, body, w.SSN.Reveal(), w.DOB)
		}
		for _, v := range []string{w.SSN.Reveal(), w.DOB} {
			if v != "" && bytes.Contains(files, []byte(v)) {
				t.Errorf("%q in plaintext in the store's files", v)
			}
		}
		if w.SSN.Reveal() != "" {
			ssns++
		}
	}
	if ssns == 0 {
		t.Fatal("the sandbox sent no SSN: the checks above prove nothing")
	}

	s2 := newStore(t)
	if _, err := (&Syncer{Client: e.fc, Store: s2, Individuals: true}).Run(ctx, e.conn, e.token); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		body, _ := s2.Get(ctx, e.conn, records.Individual, id)
		if bytes.Contains(body, []byte(`"ssn"`)) {
			t.Errorf("without SSN, individual %s stored with one: %s", id, body)
		}
	}
}

// TestOptionsChangedMidRun: a run interrupted without individuals and
// resumed with them starts over instead of committing pages that lack
// them; the feed then holds every record added once, none removed.
func TestOptionsChangedMidRun(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 8)
	s := newStore(t)
	sy := &Syncer{Client: e.fc, Store: s, PageSize: 3}
	n := 0
	sy.afterStage = func(string) error {
		if n++; n == 3 {
			return errCrash
		}
		return nil
	}
	if _, err := sy.Run(ctx, e.conn, e.token); !errors.Is(err, errCrash) {
		t.Fatalf("first run = %v; want the crash", err)
	}
	sy = &Syncer{Client: e.fc, Store: s, PageSize: 3, Individuals: true}
	got, err := sy.Run(ctx, e.conn, e.token)
	if err != nil {
		t.Fatal(err)
	}
	inds := e.individuals(t)
	want := diff(nil, e.snapshot(t))
	for id := range inds {
		want = append(want, op{records.Added, Rec{records.Individual, id}})
	}
	sortOps(want)
	if !cmp.Equal(ops(got), want) {
		t.Errorf("resumed with individuals (-want +got):\n%s", cmp.Diff(want, ops(got)))
	}
}

// TestOnCommit: OnCommit is told each committed run's changes, once, and
// not a run without changes; its failure is returned with the changes,
// which stay in the feed.
func TestOnCommit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 5)
	s := newStore(t)
	var told [][]records.Change
	fail := false
	sy := &Syncer{Client: e.fc, Store: s, OnCommit: func(_ context.Context, conn string, cs []records.Change) error {
		if conn != e.conn {
			t.Errorf("OnCommit for %q", conn)
		}
		told = append(told, cs)
		if fail {
			return errors.New("outbox down")
		}
		return nil
	}}
	first, err := sy.Run(ctx, e.conn, e.token)
	if err != nil || len(told) != 1 || !cmp.Equal(told[0], first) {
		t.Fatalf("first run: %v; told %d times", err, len(told))
	}
	if _, err := sy.Run(ctx, e.conn, e.token); err != nil || len(told) != 1 {
		t.Errorf("unchanged run: %v; told %d times, want still 1", err, len(told))
	}
	for day := 0; day < 30; day++ {
		e.sb.Advance(24 * time.Hour)
		fail = true
		cs, err := sy.Run(ctx, e.conn, e.token)
		if len(cs) == 0 {
			continue
		}
		if err == nil || len(told) != 2 {
			t.Fatalf("OnCommit failing: Run = %d changes, %v; told %d times", len(cs), err, len(told))
		}
		if inFeed, _ := feedSince(t, s, e.conn, ""); len(inFeed) != len(first)+len(cs) {
			t.Errorf("the feed holds %d changes; want %d", len(inFeed), len(first)+len(cs))
		}
		return
	}
	t.Fatal("30 days without a change")
}

// TestNoEmployments: a connection without the employment product syncs
// its company and directory, and asks Finch for no employments (which it
// would refuse with 403).
func TestNoEmployments(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 6, "company", "directory")
	s := newStore(t)
	changes, err := (&Syncer{Client: e.fc, Store: s, NoEmployments: true}).Run(ctx, e.conn, e.token)
	if err != nil {
		t.Fatalf("sync of a company+directory connection: %v", err)
	}
	kinds := map[records.Kind]int{}
	for _, c := range changes {
		kinds[c.Kind]++
	}
	if kinds[records.Company] != 1 || kinds[records.Directory] == 0 || kinds[records.Employment] != 0 {
		t.Errorf("changes by kind = %v, want the company, the directory, no employments", kinds)
	}
	if _, err := (&Syncer{Client: e.fc, Store: s}).Run(ctx, e.conn, e.token); err == nil {
		t.Error("with employments asked for, the sync of a connection without the product succeeded: the test proves nothing")
	}
}
