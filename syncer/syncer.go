// Package syncer fetches one connection's employer data from Finch into a
// [records.Store], checkpointing as it goes (issue #19).
//
// # What exists
//
// [Syncer.Run] syncs one connection: the company, then the directory page
// by page together with each page's employments, and with
// [Syncer.Individuals] its individuals (with [Syncer.SSN], their SSNs),
// one [records.Sync.Stage] per page, so a page's records and its
// checkpoint are written at once. An open run begun with other options is
// abandoned and started over, so that no page lacking a kind is committed.
// [Syncer.OnCommit] is told each committed run's changes (the
// data.changed event).
// Every call runs in the budget's Background lane. A run resumes the
// connection's open run from its checkpoints, so a crash or a cancelled
// context loses and repeats nothing, and it is committed (its changes put
// in the feed) only once every product is done.
//
// A 202 (Finch still fetching the employer's data, data_sync_in_progress)
// stops the run with [ErrDataSyncInProgress], leaving it open to resume
// later. A reauth or a 401 stops it with a *[StopError] saying why; the run
// stays open, for a resume after the employer reconnects, or for
// [records.Sync.Abandon].
//
// # What is next
//
// The other products (payments and pay statements, benefits and enrollments, documents), scheduling on Finch's
// cadence and webhooks, sharing work across replicas, and a directory
// that changes between two pages of one run (today a hire mid-run can
// shift offsets; the next run catches up).
package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/records"
)

// ErrDataSyncInProgress: Finch answered 202, it is still fetching the
// employer's data; run again later.
var ErrDataSyncInProgress = errors.New("syncer: Finch is still fetching the employer's data (data_sync_in_progress)")

// StopError says why a run stopped for good until someone acts.
type StopError struct {
	Reason string // "reauth" or "unauthorized"
	Err    error
}

func (e *StopError) Error() string { return "syncer: stopped (" + e.Reason + "): " + e.Err.Error() }
func (e *StopError) Unwrap() error { return e.Err }

// The products a run lists, as checkpointed.
const (
	productCompany   = "company"
	productDirectory = "directory"
)

// Syncer syncs connections. Its zero PageSize means 100.
type Syncer struct {
	Client   *finch.Client
	Store    *records.Store
	PageSize int

	// Individuals fetches each directory page's individuals too (kind
	// individual: names, dates of birth, personal contacts, home
	// addresses), one batch per page. Set it for connections with the
	// individual product.
	Individuals bool
	// SSN asks Finch for the individuals' SSNs (options.include ["ssn"]);
	// Finch sends them only to connections with the ssn product. They are
	// stored sealed like every field, and /v1 shows them only to personal
	// API keys.
	SSN bool
	// NoEmployments skips the employments of each directory page, for
	// connections without the employment product.
	NoEmployments bool

	// OnCommit, if set, is told the changes of each run that committed
	// some (the server's PublishChanges, for the data.changed event). It
	// runs after the commit: an error is returned by Run with the
	// changes, and the changes stay in the feed, which is the record; a
	// crash between the two loses the event, not the changes.
	OnCommit func(ctx context.Context, conn string, changes []records.Change) error

	// afterStage, if set (tests only), runs after each staged page; an
	// error stops the run there, as a crash would.
	afterStage func(product string) error
}

// Run syncs connection conn with token and returns the changes it
// committed.
func (s *Syncer) Run(ctx context.Context, conn string, token finchconnect.Secret) ([]records.Change, error) {
	ctx = budget.WithConnection(budget.WithLane(ctx, budget.Background), conn)
	y, _, err := s.Store.Begin(ctx, conn)
	if err != nil {
		return nil, err
	}
	cps, err := y.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	directory := s.directoryProduct()
	for p := range cps {
		if p != productCompany && p != directory {
			// An open run begun with other options (individuals, SSNs):
			// its pages do not hold what this run lists, so its removals
			// would be wrong. Start over.
			if err := y.Abandon(ctx); err != nil {
				return nil, err
			}
			if y, _, err = s.Store.Begin(ctx, conn); err != nil {
				return nil, err
			}
			cps = map[string]records.Checkpoint{}
			break
		}
	}
	if !cps[productCompany].Done {
		c, err := s.Client.Company(ctx, token)
		if err != nil {
			return nil, classify(err)
		}
		it, err := item(records.Company, c.ID, c)
		if err != nil {
			return nil, err
		}
		if err := s.stage(ctx, y, productCompany, []records.Item{it}, records.Checkpoint{Done: true}); err != nil {
			return nil, err
		}
	}
	if cp := cps[directory]; !cp.Done {
		offset := 0
		if cp.Next != "" {
			if offset, err = strconv.Atoi(cp.Next); err != nil {
				return nil, fmt.Errorf("syncer: bad directory checkpoint")
			}
		}
		for {
			done, next, err := s.directoryPage(ctx, y, token, offset)
			if err != nil {
				return nil, err
			}
			if done {
				break
			}
			offset = next
		}
	}
	complete := []records.Kind{records.Company, records.Directory}
	if !s.NoEmployments {
		complete = append(complete, records.Employment)
	}
	if s.Individuals {
		complete = append(complete, records.Individual)
	}
	changes, err := y.Commit(ctx, complete)
	if err != nil || len(changes) == 0 || s.OnCommit == nil {
		return changes, err
	}
	if err := s.OnCommit(ctx, conn, changes); err != nil {
		return changes, fmt.Errorf("syncer: committed %d changes, but OnCommit failed: %w", len(changes), err)
	}
	return changes, nil
}

// directoryProduct names the directory's checkpoint after what each of
// its pages holds.
func (s *Syncer) directoryProduct() string {
	p := productDirectory
	if !s.NoEmployments {
		p += "+employment"
	}
	switch {
	case s.Individuals && s.SSN:
		p += "+individual+ssn"
	case s.Individuals:
		p += "+individual"
	}
	return p
}

func (s *Syncer) stage(ctx context.Context, y *records.Sync, product string, items []records.Item, cp records.Checkpoint) error {
	if err := y.Stage(ctx, product, items, cp); err != nil {
		return err
	}
	if s.afterStage != nil {
		return s.afterStage(product)
	}
	return nil
}

// directoryPage stages the directory page at offset with its people's
// employments.
func (s *Syncer) directoryPage(ctx context.Context, y *records.Sync, token finchconnect.Secret, offset int) (done bool, next int, err error) {
	limit := s.PageSize
	if limit <= 0 {
		limit = 100
	}
	p, err := s.Client.DirectoryPage(ctx, token, finch.DirectoryOptions{Limit: limit, Offset: offset})
	if err != nil {
		return false, 0, classify(err)
	}
	var items []records.Item
	ids := make([]string, 0, len(p.Individuals))
	for _, ind := range p.Individuals {
		it, err := item(records.Directory, ind.ID, ind)
		if err != nil {
			return false, 0, err
		}
		items = append(items, it)
		ids = append(ids, ind.ID)
	}
	if len(ids) > 0 && !s.NoEmployments {
		emps, err := s.Client.Employments(ctx, token, ids)
		if err != nil {
			return false, 0, classify(err)
		}
		for _, e := range emps {
			if e.Err != nil {
				return false, 0, classify(e.Err)
			}
			it, err := item(records.Employment, e.IndividualID, e.Employment)
			if err != nil {
				return false, 0, err
			}
			items = append(items, it)
		}
	}
	if len(ids) > 0 && s.Individuals {
		inds, err := s.Client.Individuals(ctx, token, ids, finch.IndividualOptions{IncludeSSN: s.SSN})
		if err != nil {
			return false, 0, classify(err)
		}
		for _, r := range inds {
			if r.Err != nil {
				return false, 0, classify(r.Err)
			}
			if r.Individual == nil {
				continue
			}
			it, err := item(records.Individual, r.IndividualID, individualBody{r.Individual, r.Individual.SSN.Reveal()})
			if err != nil {
				return false, 0, err
			}
			items = append(items, it)
		}
	}
	next = offset + len(p.Individuals)
	done = len(p.Individuals) == 0 || p.Paging.Count == 0 || next >= p.Paging.Count
	cp := records.Checkpoint{Next: strconv.Itoa(next), Done: done}
	return done, next, s.stage(ctx, y, s.directoryProduct(), items, cp)
}

// individualBody is an individual as stored: Finch's shape, with the SSN
// itself (the finch type's SSN is a Secret, which marshals redacted). It
// is sealed in the store and shown only to personal API keys.
type individualBody struct {
	*finch.IndividualDetail
	SSN string `json:"ssn,omitempty"`
}

func item(kind records.Kind, id string, v any) (records.Item, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return records.Item{}, fmt.Errorf("syncer: %v", err)
	}
	return records.Item{Kind: kind, ID: id, Body: b}, nil
}

// classify turns Finch's answers that stop a run into the package's errors.
func classify(err error) error {
	var ae *finch.APIError
	switch {
	case errors.As(err, &ae) && ae.StatusCode == http.StatusAccepted:
		return fmt.Errorf("%w: %v", ErrDataSyncInProgress, err)
	case errors.Is(err, finchconnect.ErrReauthRequired):
		return &StopError{Reason: "reauth", Err: err}
	case errors.Is(err, finchconnect.ErrUnauthorized):
		return &StopError{Reason: "unauthorized", Err: err}
	}
	return err
}
