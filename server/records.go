package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/records"
)

// The local copy of each employer's data under /v1 (issue #19): the
// connection's change feed, and its records read from the records store,
// so that an app's reads spend none of Finch's budget. Personal fields are
// removed unless the API key is personal (apikey.Personal), and every read
// that returns one is audited.

// AuditPersonalRead is the audit action of a /v1 read that returned
// employees' personal fields (to a personal API key). The record names the
// connection, the key, and the kind and record ids read; never a field's
// value.
const AuditPersonalRead = "records.personal_read"

// recordKinds are the kinds the records routes serve, in the order the
// error message lists them.
var recordKinds = []records.Kind{
	records.Company, records.Directory, records.Individual, records.Employment, records.Payment,
	records.PayStatement, records.Benefit, records.Enrollment, records.Document,
}

// personalFields are, per kind, the fields of Finch's shapes
// (finch-api.md) that are an employee's personal data, as paths into the
// record's JSON object (a dot descends into an object). Besides these, an
// individual's emails and phone_numbers entries not of type "work" are
// personal.
var personalFields = map[records.Kind][]string{
	// The employer's bank accounts: account and routing numbers.
	records.Company:    {"accounts"},
	records.Individual: {"ssn", "encrypted_ssn", "dob", "gender", "ethnicity", "marital_status", "residence"},
	// custom_fields are free-form: a provider may put anything there.
	records.Employment:   {"income", "income_history", "custom_fields"},
	records.PayStatement: {"gross_pay", "net_pay", "earnings", "taxes", "employee_deductions", "employer_contributions"},
	records.Enrollment: {
		"configuration.employee_deduction", "configuration.company_contribution",
		"configuration.annual_maximum", "configuration.annual_contribution_limit",
	},
	// A W-4's contents, and the link that fetches the document.
	records.Document: {"data", "url"},
}

// personalContacts are the individual's contact lists whose non-work
// entries are personal.
var personalContacts = []string{"emails", "phone_numbers"}

// redact returns body without kind's personal fields (keep: with them)
// and the names of the personal fields it held, non-null. A body that is
// not a JSON object is returned as it is.
func redact(kind records.Kind, body []byte, keep bool) ([]byte, []string, error) {
	fields := personalFields[kind]
	if len(fields) == 0 && kind != records.Individual {
		return body, nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil || obj == nil {
		return body, nil, nil
	}
	var found []string
	for _, f := range fields {
		parent, name := obj, f
		for {
			head, rest, ok := strings.Cut(name, ".")
			if !ok {
				break
			}
			child, _ := parent[head].(map[string]any)
			if child == nil {
				parent = nil
				break
			}
			parent, name = child, rest
		}
		if parent == nil {
			continue
		}
		if v, ok := parent[name]; ok {
			if v != nil {
				found = append(found, f)
			}
			if !keep {
				delete(parent, name)
			}
		}
	}
	if kind == records.Individual {
		for _, f := range personalContacts {
			list, _ := obj[f].([]any)
			kept := make([]any, 0, len(list))
			for _, e := range list {
				if m, _ := e.(map[string]any); m != nil && m["type"] == "work" {
					kept = append(kept, e)
				}
			}
			if len(kept) < len(list) {
				found = append(found, f)
				if !keep {
					obj[f] = kept
				}
			}
		}
	}
	if keep || len(found) == 0 {
		return body, found, nil
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(obj); err != nil {
		return nil, nil, fmt.Errorf("server: re-encode a redacted record: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), found, nil
}

// recordJSON is one local record as /v1 shows it.
type recordJSON struct {
	Kind   string          `json:"kind"`
	ID     string          `json:"id"`
	Record json.RawMessage `json:"record"`
	// PersonalRemoved names the personal fields removed from Record
	// because the API key is not personal.
	PersonalRemoved []string `json:"personal_fields_removed,omitempty"`
}

// changeJSON is one entry of the change feed.
type changeJSON struct {
	Seq      int64     `json:"seq"`
	Kind     string    `json:"kind"`
	RecordID string    `json:"record_id"`
	Op       string    `json:"op"`
	SyncID   int64     `json:"sync_id"`
	At       time.Time `json:"at"`
}

// personalKey reports whether the request's API key is personal.
func personalKey(ctx context.Context) bool {
	p, _ := ctx.Value(apiKeyPersonalCtx).(bool)
	return p
}

// syncOff answers a records route on a server without a records store.
func (s *Server) syncOff(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Records != nil {
		return false
	}
	s.writeJSONError(w, r, http.StatusNotFound, "sync_off",
		"Sync is off on this server: the operator has not configured a records store, so there is no change feed or local copy to read.")
	return true
}

// knownConnection answers 404 (or 503) unless the connection id is stored;
// it opens no token.
func (s *Server) knownConnection(w http.ResponseWriter, r *http.Request, id string) bool {
	if _, err := s.store.Lookup(r.Context(), id); err != nil {
		s.fail(w, r, true, storeFailure(err))
		return false
	}
	return true
}

// pageLimit reads the limit query parameter: 1 to 500, default 100.
func (s *Server) pageLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		s.writeJSONError(w, r, http.StatusBadRequest, "invalid_request", "limit must be between 1 and 500")
		return 0, false
	}
	return n, true
}

// recordsFailure marks a records store error as the store being
// unavailable (503), unless it is a missing keyring key, which says so.
func recordsFailure(err error) error {
	var mk *keyring.MissingKeyError
	if errors.As(err, &mk) {
		return err
	}
	return fmt.Errorf("%w: records: %v", connect.ErrStoreDown, err)
}

// handleAPIChanges serves a connection's change feed: the changes after
// the cursor, in order. A sync's changes appear at once when it commits,
// so a cursor never skips one, and following next_cursor yields each
// change once.
func (s *Server) handleAPIChanges() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.syncOff(w, r) {
			return
		}
		id := r.PathValue("id")
		limit, ok := s.pageLimit(w, r)
		if !ok || !s.knownConnection(w, r, id) {
			return
		}
		cursor := r.URL.Query().Get("cursor")
		p, err := s.cfg.Records.Changes(r.Context(), id, cursor, limit)
		if errors.Is(err, records.ErrBadCursor) {
			s.writeJSONError(w, r, http.StatusBadRequest, "invalid_cursor", "cursor must be a next_cursor this feed returned, or empty for the start.")
			return
		}
		if err != nil {
			s.fail(w, r, true, recordsFailure(err))
			return
		}
		data := make([]changeJSON, len(p.Changes))
		for i, c := range p.Changes {
			data[i] = changeJSON{Seq: c.Seq, Kind: string(c.Kind), RecordID: c.RecordID, Op: string(c.Op), SyncID: c.SyncID, At: c.At}
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "next_cursor": p.NextCursor, "has_more": p.HasMore})
	})
}

// recordKind reads the {kind} path value, answering 404 for an unknown one.
func (s *Server) recordKind(w http.ResponseWriter, r *http.Request) (records.Kind, bool) {
	k := records.Kind(r.PathValue("kind"))
	if slices.Contains(recordKinds, k) {
		return k, true
	}
	names := make([]string, len(recordKinds))
	for i, k := range recordKinds {
		names[i] = string(k)
	}
	s.writeJSONError(w, r, http.StatusNotFound, "not_found", "There is no such kind of record; kinds are "+strings.Join(names, ", ")+".")
	return "", false
}

// handleAPIListRecords serves one page of a connection's local records of
// one kind, in record id order.
func (s *Server) handleAPIListRecords() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.syncOff(w, r) {
			return
		}
		id := r.PathValue("id")
		kind, ok := s.recordKind(w, r)
		if !ok {
			return
		}
		limit, ok := s.pageLimit(w, r)
		if !ok {
			return
		}
		after := ""
		if c := r.URL.Query().Get("cursor"); c != "" {
			b, err := base64.RawURLEncoding.DecodeString(c)
			if err != nil || len(b) == 0 {
				s.writeJSONError(w, r, http.StatusBadRequest, "invalid_cursor", "cursor must be a next_cursor this listing returned, or empty for the start.")
				return
			}
			after = string(b)
		}
		if !s.knownConnection(w, r, id) {
			return
		}
		items, next, err := s.cfg.Records.List(r.Context(), id, kind, after, limit)
		if err != nil {
			s.fail(w, r, true, recordsFailure(err))
			return
		}
		keep := personalKey(r.Context())
		data := make([]recordJSON, len(items))
		personal := 0
		for i, it := range items {
			if data[i], err = s.recordOut(it, keep); err != nil {
				s.fail(w, r, true, err)
				return
			}
			if keep && data[i].PersonalRemoved != nil {
				personal++
				data[i].PersonalRemoved = nil
			}
		}
		if personal > 0 {
			s.audit(r.Context(), AuditPersonalRead, id, actor(r.Context()),
				"GET records/"+string(kind)+": "+strconv.Itoa(personal)+" of "+strconv.Itoa(len(items))+" records with personal fields")
		}
		cursor := ""
		if next != "" {
			cursor = base64.RawURLEncoding.EncodeToString([]byte(next))
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "next_cursor": cursor, "has_more": next != ""})
	})
}

// handleAPIGetRecord serves one local record.
func (s *Server) handleAPIGetRecord() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.syncOff(w, r) {
			return
		}
		id, rid := r.PathValue("id"), r.PathValue("record_id")
		kind, ok := s.recordKind(w, r)
		if !ok || !s.knownConnection(w, r, id) {
			return
		}
		body, err := s.cfg.Records.Get(r.Context(), id, kind, rid)
		if errors.Is(err, records.ErrNotFound) {
			s.writeJSONError(w, r, http.StatusNotFound, "not_found", "There is no such record in the connection's local copy.")
			return
		}
		if err != nil {
			s.fail(w, r, true, recordsFailure(err))
			return
		}
		keep := personalKey(r.Context())
		out, err := s.recordOut(records.Item{Kind: kind, ID: rid, Body: body}, keep)
		if err != nil {
			s.fail(w, r, true, err)
			return
		}
		if keep && out.PersonalRemoved != nil {
			out.PersonalRemoved = nil
			s.audit(r.Context(), AuditPersonalRead, id, actor(r.Context()), "GET records/"+string(kind)+"/"+rid)
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// recordOut is it as /v1 shows it; with keep, PersonalRemoved names the
// personal fields it holds (kept), for the caller to audit.
func (s *Server) recordOut(it records.Item, keep bool) (recordJSON, error) {
	body, found, err := redact(it.Kind, it.Body, keep)
	if err != nil {
		return recordJSON{}, err
	}
	return recordJSON{Kind: string(it.Kind), ID: it.ID, Record: body, PersonalRemoved: found}, nil
}

// shredRecords destroys a disconnected connection's local records. It
// runs after the connection's row is deleted or marked disconnected, and
// never fails the disconnect: a failure is logged, and
// [Server.ShredOrphans] finishes the job.
func (s *Server) shredRecords(ctx context.Context, id string) {
	if s.cfg.Records == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.cfg.Records.Shred(ctx, id); err != nil {
		s.log.Error("the records of a disconnected connection were not shredded; ShredOrphans will retry",
			"connection_id", id, "err", err)
	}
}

// ShredOrphans shreds the local records of every connection that is no
// longer stored or is disconnected: those whose shred at disconnect
// failed or was cut short by a crash, and those deleted by another path
// (finchconnect delete). It returns how many it shredded. The binary runs
// it at start and then periodically; it is a no-op without a records
// store. A failure for one connection is logged and the others are still
// tried; the first error is returned.
func (s *Server) ShredOrphans(ctx context.Context) (int, error) {
	if s.cfg.Records == nil {
		return 0, nil
	}
	ids, err := s.cfg.Records.Connections(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, id := range ids {
		conn, err := s.store.Lookup(ctx, id)
		switch {
		case errors.Is(err, finchconnect.ErrNotFound), err == nil && conn.Status == finchconnect.StatusDisconnected:
		case err != nil:
			first = cmpErr(first, err)
			continue
		default:
			continue
		}
		if err := s.cfg.Records.Shred(ctx, id); err != nil {
			s.log.Error("shred the records of a disconnected connection", "connection_id", id, "err", err)
			first = cmpErr(first, err)
			continue
		}
		n++
	}
	return n, first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// maxChangesInEvent bounds the changes a data.changed event lists; past
// it, the event gives counts and the cursors only, and the app reads the
// feed.
const maxChangesInEvent = 100

// PublishChanges tells the app, through Notify, that a sync committed
// changes to a connection's local copy: a connection.data_changed event
// whose data is {source: "sync", count, kinds: {kind: {op: n}}, from_seq,
// to_seq, changes: [{kind, record_id, op}] (up to 100; truncated says when
// more)}, ids and kinds only, never a record's content. It publishes
// nothing for no changes. Wire it as the syncer's OnCommit.
func (s *Server) PublishChanges(ctx context.Context, connID string, changes []records.Change) error {
	if len(changes) == 0 {
		return nil
	}
	conn, err := s.store.Lookup(ctx, connID)
	if err != nil {
		return fmt.Errorf("server: publish the changes of %s: %w", connID, err)
	}
	kinds := map[string]map[string]int{}
	list := make([]map[string]string, 0, min(len(changes), maxChangesInEvent))
	for _, c := range changes {
		if kinds[string(c.Kind)] == nil {
			kinds[string(c.Kind)] = map[string]int{}
		}
		kinds[string(c.Kind)][string(c.Op)]++
		if len(list) < maxChangesInEvent {
			list = append(list, map[string]string{"kind": string(c.Kind), "record_id": c.RecordID, "op": string(c.Op)})
		}
	}
	data := map[string]any{
		"source": "sync", "count": len(changes), "kinds": kinds,
		"from_seq": changes[0].Seq, "to_seq": changes[len(changes)-1].Seq,
		"changes": list, "truncated": len(changes) > len(list),
	}
	return s.publish(ctx, finchconnect.EventDataChanged, conn, data)
}
