package sandbox

import (
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// data wraps an employer data route: the token, the connection's status
// (see [statusError]), the product scope and the entity.
func (s *Server) data(product string, h func(w http.ResponseWriter, r *http.Request, c *connection, entity string)) http.HandlerFunc {
	return s.bearer(func(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
		status, hasProduct := s.countDataCall(c, product)
		// The data is that of the connection's latest daily refresh
		// (timeline.go).
		w.Header().Set("Finch-Data-Retrieved", c.refreshTime(c.refreshes(s.now())).UTC().Format(time.RFC3339))
		if statusError(w, status) {
			return
		}
		if !hasProduct {
			writeError(w, http.StatusForbidden, "insufficient_scope_error", "", "This connection was not granted the "+product+" product.")
			return
		}
		entity, ok := s.entity(w, r, c)
		if !ok {
			return
		}
		h(w, r, c, entity)
	})
}

// countDataCall counts a data call of the reauthorization scenario, and
// returns the connection's status and whether it has product.
func (s *Server) countDataCall(c *connection, product string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Only the reauthorization scenario counts data calls: counting
	// every call would mark the state dirty on the hot path and have
	// a load test rewrite DataFile several times a second.
	if c.Scenario == "reauthorization" && c.Status == "connected" {
		c.DataCalls++
		if c.DataCalls > reauthAfter {
			c.Status = "reauth"
			s.emitStatus(c)
		}
		s.dirty = true
	}
	s.noticeRefresh(c)
	return c.Status, c.hasProduct(product)
}

// hasProduct is c.hasProduct under s.mu: a re-authentication may be
// replacing c.Products.
func (s *Server) hasProduct(c *connection, product string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.hasProduct(product)
}

// statusError answers for a connection whose status keeps data from being
// read, and reports whether it did:
//   - reauth: 401 authentication_error / reauthenticate_user;
//   - error_no_account_setup: 401 authentication_error /
//     account_setup_required (finch-api.md §8);
//   - error_permissions: 403 error_permissions /
//     insufficient_account_permissions;
//   - pending, processing (an assisted connection before its first sync):
//     202 with the body Finch gives pay statements still being fetched,
//     so clients can practise retrying with backoff.
func statusError(w http.ResponseWriter, status string) bool {
	switch status {
	case "reauth":
		writeError(w, http.StatusUnauthorized, "authentication_error", "reauthenticate_user", "Please reauthenticate user")
	case "error_no_account_setup":
		writeError(w, http.StatusUnauthorized, "authentication_error", "account_setup_required", "The employer has not finished setting up access for this connection.")
	case "error_permissions":
		writeError(w, http.StatusForbidden, "error_permissions", "insufficient_account_permissions", "The account Finch was given lacks the permissions this data needs.")
	case "pending", "processing":
		writeJSON(w, http.StatusAccepted, map[string]any{"code": http.StatusAccepted, "name": "accepted", "finch_code": "data_sync_in_progress",
			"message": "The data for this connection is being fetched. Please check back later."})
	default:
		return false
	}
	return true
}

// entity reads entity_ids (entity_ids[]=x, entity_ids=x or a comma list):
// at most one, and one of the connection's.
func (s *Server) entity(w http.ResponseWriter, r *http.Request, c *connection) (string, bool) {
	q := r.URL.Query()
	var ids []string
	for _, k := range []string{"entity_ids[]", "entity_ids"} {
		for _, v := range q[k] {
			for _, id := range strings.Split(v, ",") {
				if id = strings.TrimSpace(id); id != "" {
					ids = append(ids, id)
				}
			}
		}
	}
	switch {
	case len(ids) == 0:
		return "", true
	case len(ids) > 1:
		badRequest(w, "At most one entity_id per request.")
		return "", false
	}
	i, disconnected := s.findEntity(c, ids[0])
	switch {
	case i < 0:
		badRequest(w, "entity_ids names an entity this connection does not have.")
		return "", false
	case disconnected:
		badRequest(w, "entity_ids names an entity that was disconnected from this connection (POST /disconnect-entity); a re-authentication session restores it.")
		return "", false
	}
	return ids[0], true
}

// findEntity returns the index of connection c's entity id (-1 if none)
// and whether it is disconnected.
func (s *Server) findEntity(c *connection, id string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(c.Entities, func(e entity) bool { return e.ID == id })
	return i, i >= 0 && c.Entities[i].Status == "disconnected"
}

func (s *Server) peopleOf(c *connection, entity string) []person {
	all, gone := s.peopleAndGone(c)
	if entity == "" && len(gone) == 0 {
		return all
	}
	// Without entity_ids a multi-entity connection answers for all of its
	// entities still connected.
	var out []person
	for _, p := range all {
		if entity == "" && !gone[p.Entity] || entity != "" && p.Entity == entity {
			out = append(out, p)
		}
	}
	return out
}

// peopleAndGone returns connection c's people and its disconnected
// entities.
func (s *Server) peopleAndGone(c *connection) ([]person, map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := map[string]bool{}
	for _, e := range c.Entities {
		if e.Status == "disconnected" {
			gone[e.ID] = true
		}
	}
	return s.viewOf(c).people, gone
}

// handleCompany is GET /employer/company: the company of the entity asked
// for; without entity_ids, of the first entity still connected. When every
// entity is disconnected there is no company to give: the answer is the
// 400 of a disconnected entity (Finch does not document this case; see
// docs/sandbox.md).
func (s *Server) handleCompany(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	body, ok := s.companyOf(c, entity)
	if !ok {
		badRequest(w, "Every entity of this connection was disconnected (POST /disconnect-entity); a re-authentication session restores them.")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// companyOf returns the company of entity (the first entity still
// connected for ""), and false when there is none.
func (s *Server) companyOf(c *connection, entity string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(c.Entities) == 0 {
		return c.company(0), true // a connection from before entities
	}
	for i, e := range c.Entities {
		if entity == "" && e.Status != "disconnected" || entity != "" && e.ID == entity {
			return c.company(i), true
		}
	}
	return nil, false
}

// handleDirectory is GET /employer/directory with limit/offset paging.
func (s *Server) handleDirectory(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	people := s.peopleOf(c, entity)
	q := r.URL.Query()
	offset, limit := 0, len(people)
	if v := q.Get("offset"); v != "" {
		n, ok := nonNegative(v)
		if !ok {
			badRequest(w, "offset must be a non-negative integer.")
			return
		}
		offset = n
	}
	if v := q.Get("limit"); v != "" {
		n, ok := nonNegative(v)
		if !ok {
			badRequest(w, "limit must be a non-negative integer.")
			return
		}
		limit = n
	}
	items := []any{}
	for _, p := range page(people, offset, limit) {
		items = append(items, p.directoryItem())
	}
	writeJSON(w, http.StatusOK, map[string]any{"paging": map[string]int{"count": len(people), "offset": offset}, "individuals": items})
}

// nonNegative parses a non-negative decimal integer; one too large for an
// int counts as math.MaxInt, which pages the same as any number past the
// end.
func nonNegative(v string) (int, bool) {
	n, err := strconv.ParseInt(v, 10, 0)
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		return math.MaxInt, true
	}
	if err != nil || n < 0 {
		return 0, false
	}
	return int(n), true
}

// page returns the items of xs from offset, at most limit of them, without
// computing offset+limit, which a client can make overflow. offset and
// limit must not be negative.
func page[T any](xs []T, offset, limit int) []T {
	start := min(offset, len(xs))
	return xs[start : start+min(limit, len(xs)-start)]
}

type batchRequest struct {
	Requests []struct {
		IndividualID string `json:"individual_id"`
		PaymentID    string `json:"payment_id"`
		Limit        int    `json:"limit"`
		Offset       int    `json:"offset"`
	} `json:"requests"`
	Options *struct {
		Include []string `json:"include"`
	} `json:"options"`
}

func (s *Server) batch(w http.ResponseWriter, r *http.Request, max int) (batchRequest, bool) {
	var req batchRequest
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be {\"requests\": [...]}.")
		return req, false
	}
	if len(req.Requests) > max {
		badRequest(w, "Too many requests in one batch (at most "+strconv.Itoa(max)+").")
		return req, false
	}
	return req, true
}

func notFoundItem(id, finchCode string) map[string]any {
	return map[string]any{"code": 404, "name": "not_found_error", "finch_code": finchCode, "message": "No such item: " + id}
}

func (s *Server) handleIndividuals(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	req, ok := s.batch(w, r, 10000)
	if !ok {
		return
	}
	ssn := req.Options != nil && slices.Contains(req.Options.Include, "ssn") && s.hasProduct(c, "ssn")
	byID := map[string]person{}
	for _, p := range s.peopleOf(c, entity) {
		byID[p.ID] = p
	}
	out := []any{}
	s.mu.Lock() // the sandbox data API's changes are read under the lock
	for _, q := range req.Requests {
		if p, ok := byID[q.IndividualID]; ok {
			out = append(out, map[string]any{"individual_id": q.IndividualID, "code": 200, "body": c.individualJSON(p, ssn)})
		} else {
			out = append(out, map[string]any{"individual_id": q.IndividualID, "code": 404, "body": notFoundItem(q.IndividualID, "individual_not_found")})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"responses": out})
}

func (s *Server) handleEmployments(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	req, ok := s.batch(w, r, 10000)
	if !ok {
		return
	}
	byID := map[string]person{}
	for _, p := range s.peopleOf(c, entity) {
		byID[p.ID] = p
	}
	out := []any{}
	s.mu.Lock() // the sandbox data API's changes are read under the lock
	for _, q := range req.Requests {
		if p, ok := byID[q.IndividualID]; ok {
			out = append(out, map[string]any{"individual_id": q.IndividualID, "code": 200, "body": c.employmentJSON(p)})
		} else {
			out = append(out, map[string]any{"individual_id": q.IndividualID, "code": 404, "body": notFoundItem(q.IndividualID, "individual_not_found")})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"responses": out})
}

// handlePayments is GET /employer/payment?start_date&end_date (both
// required, inclusive, on pay_date): a bare array of the payroll history
// as of the latest refresh (paygroups.go), of the entity asked for or of
// every entity still connected.
func (s *Server) handlePayments(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	q := r.URL.Query()
	start, err1 := time.Parse(time.DateOnly, q.Get("start_date"))
	end, err2 := time.Parse(time.DateOnly, q.Get("end_date"))
	if err1 != nil || err2 != nil {
		badRequest(w, "start_date and end_date (YYYY-MM-DD) are required.")
		return
	}
	from, to := start.Format(time.DateOnly), end.Format(time.DateOnly)
	out := []any{}
	s.mu.Lock()
	v := s.viewOf(c).ensureRuns(c)
	for i, run := range v.runs {
		if run.Pay >= from && run.Pay <= to && c.entityVisible(run.Entity, entity) {
			out = append(out, v.paymentJSON(c, i))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handlePayStatements(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	req, ok := s.batch(w, r, 10)
	if !ok {
		return
	}
	// Finch's SDK documents limit (default 100, at most 5000) and offset
	// but no negative values; refuse them for the whole batch, as any
	// other malformed request.
	for _, q := range req.Requests {
		if q.Limit < 0 || q.Offset < 0 {
			badRequest(w, "limit and offset of each pay statement request must not be negative.")
			return
		}
	}
	out := []any{}
	dates := map[string]string{} // pay date by payment id, for the rules' labels
	s.mu.Lock()
	v := s.viewOf(c).ensureRuns(c)
	for _, q := range req.Requests {
		i, ok := v.byID[q.PaymentID]
		if !ok || !c.entityVisible(v.runs[i].Entity, entity) {
			out = append(out, map[string]any{"payment_id": q.PaymentID, "code": 404, "body": notFoundItem(q.PaymentID, "payment_not_found")})
			continue
		}
		dates[q.PaymentID] = v.runs[i].Pay
		limit := q.Limit
		if limit == 0 {
			limit = 100 // Finch's default
		}
		limit = min(limit, 5000) // Finch's maximum
		out = append(out, map[string]any{"payment_id": q.PaymentID, "code": 200, "body": map[string]any{
			"paging": map[string]int{"offset": q.Offset, "count": v.runs[i].count}, "pay_statements": v.statements(i, q.Offset, limit),
		}})
	}
	s.mu.Unlock()
	s.labelPayStatements(c, entity, dates, out) // sb-items: rule metadata
	writeJSON(w, http.StatusOK, map[string]any{"responses": out})
}
