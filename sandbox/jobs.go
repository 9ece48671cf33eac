package sandbox

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Automated jobs (/jobs/automated), Finch's sandbox jobs (/sandbox/jobs)
// and the settling of every job on the sandbox's clock.

// Timing of automated jobs on the sandbox's clock: queued, then running,
// then finished a couple of minutes after they were asked for.
const (
	autoStart = 10 * time.Second
	autoDone  = 2 * time.Minute
)

// DefaultRefreshesPerHour is Finch's quota of forced data_sync_all jobs a
// connection may start in a (fixed, clock-aligned) hour: the SDK's "1
// forced refresh per hour per connection".
const DefaultRefreshesPerHour = 1

// jobRetention is how long a finished job is kept once the sandbox holds
// more than maxJobs jobs; older ones are forgotten first.
const (
	jobRetention = 30 * 24 * time.Hour
	maxJobs      = 10000
)

var syncOutcomes = []string{"complete", "reauth_error", "permissions_error", "error"}

// autoJob is an automated job: data_sync_all or w4_form_employee_sync.
type autoJob struct {
	ID           string    `json:"id"`
	ConnectionID string    `json:"connection_id"`
	Type         string    `json:"type"`
	IndividualID string    `json:"individual_id,omitempty"` // w4_form_employee_sync
	URL          string    `json:"url"`
	Seq          int64     `json:"seq"` // orders jobs created at one instant
	Created      time.Time `json:"created"`
	Starts       time.Time `json:"starts"`
	Completes    time.Time `json:"completes"`
	Outcome      string    `json:"outcome"` // the final status, decided when it was created
	Done         bool      `json:"done"`
	Initial      bool      `json:"initial,omitempty"` // a first sync (initialSync): not listed
}

func (j *autoJob) status(now time.Time) string {
	switch {
	case j.Done:
		return j.Outcome
	case now.Before(j.Starts):
		return "pending"
	}
	return "in_progress"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (j *autoJob) wire(now time.Time) map[string]any {
	var params, started, completed any
	if j.IndividualID != "" {
		params = map[string]any{"individual_id": j.IndividualID}
	}
	if !now.Before(j.Starts) {
		started = stamp(j.Starts)
	}
	if j.Done {
		completed = stamp(j.Completes)
	}
	return map[string]any{
		"job_id": j.ID, "job_url": j.URL, "type": j.Type, "status": j.status(now), "params": params,
		"created_at": stamp(j.Created), "scheduled_at": nil, "started_at": started, "completed_at": completed,
	}
}

// refreshesPerHour is the data_sync_all quota (Options.RefreshesPerHour).
func (s *Server) refreshesPerHour() int {
	if n := s.opts.RefreshesPerHour; n > 0 {
		return n
	}
	return DefaultRefreshesPerHour
}

// quota returns c's allowed and remaining refreshes in the current hour,
// and when the next hour starts. s.mu must be held.
func (s *Server) quota(c *connection) (allowed, remaining int, next time.Time) {
	now := s.now().UTC()
	hour := now.Truncate(time.Hour)
	allowed = s.refreshesPerHour()
	used := 0
	if c.RefreshWindow.Equal(hour) {
		used = c.Refreshes
	}
	return allowed, max(allowed-used, 0), hour.Add(time.Hour)
}

// useRefresh counts one forced refresh of c in the current hour. s.mu
// must be held.
func (s *Server) useRefresh(c *connection) {
	hour := s.now().UTC().Truncate(time.Hour)
	if !c.RefreshWindow.Equal(hour) {
		c.RefreshWindow, c.Refreshes = hour, 0
	}
	c.Refreshes++
}

// runningSync is c's data_sync_all job that has not finished, or nil.
// s.mu must be held.
func (s *Server) runningSync(c *connection) *autoJob {
	for _, j := range s.st.AutoJobs {
		if j.ConnectionID == c.ID && j.Type == "data_sync_all" && !j.Done {
			return j
		}
	}
	return nil
}

// newAutoJob adds an automated job of c. s.mu must be held.
func (s *Server) newAutoJob(r *http.Request, c *connection, typ, individual string) *autoJob {
	s.settleJobs()
	if s.st.AutoJobs == nil {
		s.st.AutoJobs = map[string]*autoJob{}
	}
	now := s.now()
	s.st.JobSeq++
	j := &autoJob{ID: s.id(), ConnectionID: c.ID, Type: typ, IndividualID: individual, Seq: s.st.JobSeq,
		Created: now, Starts: now.Add(autoStart), Completes: now.Add(autoDone), Outcome: "complete"}
	j.URL = s.publicURL(r) + "/jobs/automated/" + j.ID
	switch {
	case c.Status == "reauth":
		j.Outcome = "reauth_error"
	case c.Status == "error_permissions":
		j.Outcome = "permissions_error"
	case typ == "data_sync_all" && c.SyncOutcome != "":
		j.Outcome = c.SyncOutcome
	}
	s.st.AutoJobs[j.ID] = j
	s.pruneJobs()
	s.dirty = true
	return j
}

// initialSync is connection c's first sync, once c is first connected
// (at the exchange of its first code, at POST /sandbox/connections, or
// when an assisted connection reaches connected): with a webhook URL set,
// it sends job.initial_data_sync_org.succeeded and, for a connection with
// payment or pay_statement, job.initial_data_sync_payroll.succeeded, each
// with the job_url of a finished data_sync_all job that
// GET /jobs/automated/{job_id} answers but the list leaves out (Finch
// does not say whether it lists them) and that uses no refresh quota.
// base is the sandbox's public URL ("": the one recorded when c was
// made). s.mu must be held.
func (s *Server) initialSync(c *connection, base string) {
	if base != "" && c.BaseURL == "" {
		c.BaseURL = base
	}
	if c.InitialSynced || c.Status != "connected" {
		return
	}
	c.InitialSynced = true
	s.dirty = true
	if !s.hooks.enabled.Load() {
		return // no job records for events nobody receives
	}
	if base == "" {
		base = c.BaseURL
	}
	if base == "" {
		base = s.opts.PublicURL // a connection kept from before BaseURL was recorded
	}
	kinds := []string{"org"}
	if c.hasProduct("payment") || c.hasProduct("pay_statement") {
		kinds = append(kinds, "payroll")
	}
	if s.st.AutoJobs == nil {
		s.st.AutoJobs = map[string]*autoJob{}
	}
	now := s.now()
	for _, kind := range kinds {
		s.st.JobSeq++
		j := &autoJob{ID: s.id(), ConnectionID: c.ID, Type: "data_sync_all", Seq: s.st.JobSeq,
			Created: now, Starts: now, Completes: now, Outcome: "complete", Done: true, Initial: true}
		j.URL = base + "/jobs/automated/" + j.ID
		s.st.AutoJobs[j.ID] = j
		s.emit(c, "job.initial_data_sync_"+kind+".succeeded", map[string]any{"job_id": j.ID, "job_url": j.URL})
	}
	s.pruneJobs()
}

// handleAutomatedCreate is POST /jobs/automated: 201 with a new job, 202
// with the data_sync_all job already running (no quota used), 429 with
// {allowed_refreshes, remaining_refreshes, retry_at} when the hour's
// quota is spent.
func (s *Server) handleAutomatedCreate(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	var req struct {
		Type   string `json:"type"`
		Params *struct {
			IndividualID string `json:"individual_id"`
		} `json:"params"`
	}
	if _, err := decodeStrict(r, &req); err != nil {
		invalid(w, bodyProblem(err))
		return
	}
	var known map[string]bool
	switch req.Type {
	case "data_sync_all":
	case "w4_form_employee_sync":
		if !s.hasProduct(c, "documents") {
			insufficientScope(w, "documents")
			return
		}
		if req.Params == nil || req.Params.IndividualID == "" {
			invalid(w, "[body:params.individual_id]: Missing data for required field.")
			return
		}
		known = map[string]bool{}
		for _, p := range s.peopleOf(c, "") {
			known[p.ID] = true
		}
	default:
		invalid(w, "[body:type]: Must be one of: data_sync_all, w4_form_employee_sync.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.assisted() {
		writeError(w, http.StatusBadRequest, "bad_request", "", "cannot create automated job for Assisted Connect token")
		return
	}
	s.settleJobs()
	allowed, remaining, next := s.quota(c)
	if req.Type == "w4_form_employee_sync" {
		if !known[req.Params.IndividualID] {
			writeError(w, http.StatusNotFound, "not_found_error", "individual_not_found", "Individual not found")
			return
		}
		j := s.newAutoJob(r, c, req.Type, req.Params.IndividualID)
		writeJSON(w, http.StatusCreated, map[string]any{"job_id": j.ID, "job_url": j.URL, "allowed_refreshes": allowed, "remaining_refreshes": remaining})
		return
	}
	if j := s.runningSync(c); j != nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"job_id": j.ID, "job_url": j.URL, "allowed_refreshes": allowed, "remaining_refreshes": remaining})
		return
	}
	if remaining == 0 {
		// The SDK retries every 429 unless told not to; a retry within
		// the hour cannot succeed.
		w.Header().Set("X-Should-Retry", "false")
		w.Header().Set("Retry-After", strconv.Itoa(int(next.Sub(s.now()).Seconds()+0.999)))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"allowed_refreshes": allowed, "remaining_refreshes": 0, "retry_at": stamp(next)})
		return
	}
	s.useRefresh(c)
	j := s.newAutoJob(r, c, req.Type, "")
	writeJSON(w, http.StatusCreated, map[string]any{"job_id": j.ID, "job_url": j.URL, "allowed_refreshes": allowed, "remaining_refreshes": remaining - 1})
}

// handleAutomatedList is GET /jobs/automated?limit&offset: newest first,
// {data, meta: {quotas}}.
func (s *Server) handleAutomatedList(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	q := r.URL.Query()
	offset, limit := 0, 100
	for _, p := range []struct {
		name string
		dst  *int
	}{{"offset", &offset}, {"limit", &limit}} {
		if v := q.Get(p.name); v != "" {
			n, ok := nonNegative(v)
			if !ok {
				invalid(w, "[query:"+p.name+"]: Not a valid non-negative integer.")
				return
			}
			*p.dst = n
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleJobs()
	var jobs []*autoJob
	for _, j := range s.st.AutoJobs {
		if j.ConnectionID == c.ID && !j.Initial {
			jobs = append(jobs, j)
		}
	}
	sort.Slice(jobs, func(a, b int) bool {
		if !jobs[a].Created.Equal(jobs[b].Created) {
			return jobs[a].Created.After(jobs[b].Created)
		}
		return jobs[a].Seq > jobs[b].Seq
	})
	now := s.now()
	data := []any{}
	for _, j := range page(jobs, offset, limit) {
		data = append(data, j.wire(now))
	}
	allowed, remaining, _ := s.quota(c)
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": map[string]any{
		"quotas": map[string]any{"data_sync_all": map[string]int{"allowed_refreshes": allowed, "remaining_refreshes": remaining}},
	}})
}

// handleAutomatedGet is GET /jobs/automated/{job_id}.
func (s *Server) handleAutomatedGet(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	id := r.PathValue("job_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleJobs()
	j := s.st.AutoJobs[id]
	if j == nil || j.ConnectionID != c.ID {
		writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "could not find job with id "+id)
		return
	}
	writeJSON(w, http.StatusOK, j.wire(s.now()))
}

// handleSandboxJob is POST /sandbox/jobs {type: data_sync_all}: Finch's
// sandbox refresh. It starts a data_sync_all job (the one running, if
// any) without using the hourly quota, so that tests can sync after
// every change; an assisted connection gets no job (job_id null).
func (s *Server) handleSandboxJob(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	var req struct {
		Type string `json:"type"`
	}
	if _, err := decodeStrict(r, &req); err != nil {
		invalid(w, bodyProblem(err))
		return
	}
	if req.Type != "data_sync_all" {
		invalid(w, "[body:type]: Must be one of: data_sync_all.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleJobs()
	allowed, remaining, _ := s.quota(c)
	if c.assisted() {
		writeJSON(w, http.StatusOK, map[string]any{"job_id": nil, "job_url": nil, "allowed_refreshes": allowed, "remaining_refreshes": remaining})
		return
	}
	j := s.runningSync(c)
	if j == nil {
		j = s.newAutoJob(r, c, "data_sync_all", "")
	}
	writeJSON(w, http.StatusOK, map[string]any{"job_id": j.ID, "job_url": j.URL, "allowed_refreshes": allowed, "remaining_refreshes": remaining})
}

// handleSandboxJobConfig is GET /sandbox/jobs/configuration: a bare array.
func (s *Server) handleSandboxJobConfig(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, []any{map[string]string{"type": "data_sync_all", "completion_status": syncOutcome(c)}})
}

func syncOutcome(c *connection) string {
	if c.SyncOutcome == "" {
		return "complete"
	}
	return c.SyncOutcome
}

// handleSandboxJobConfigPut is PUT /sandbox/jobs/configuration
// {type, completion_status}: the status every data_sync_all job started
// from then on finishes with (until changed).
func (s *Server) handleSandboxJobConfigPut(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	var req struct {
		Type             *string `json:"type"`
		CompletionStatus *string `json:"completion_status"`
	}
	if _, err := decodeStrict(r, &req); err != nil {
		invalid(w, bodyProblem(err))
		return
	}
	switch {
	case req.Type == nil:
		invalid(w, "[body:type]: Missing data for required field.")
		return
	case *req.Type != "data_sync_all":
		invalid(w, "[body:type]: Must be one of: data_sync_all.")
		return
	case req.CompletionStatus == nil:
		invalid(w, "[body:completion_status]: Missing data for required field.")
		return
	case !slices.Contains(syncOutcomes, *req.CompletionStatus):
		invalid(w, "[body:completion_status]: Must be one of: complete, reauth_error, permissions_error, error.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.SyncOutcome = *req.CompletionStatus
	if c.SyncOutcome == "complete" {
		c.SyncOutcome = ""
	}
	s.dirty = true
	writeJSON(w, http.StatusOK, map[string]string{"type": "data_sync_all", "completion_status": syncOutcome(c)})
}

// completeAutoJob finishes j with its outcome: a reauth_error sync needs
// the employer to re-authenticate (the connection moves to reauth), a
// permissions_error one to fix Finch's access (error_permissions); both
// send account.updated. Then job.<type>.completed. s.mu must be held.
func (s *Server) completeAutoJob(j *autoJob) {
	j.Done = true
	c := s.st.Connections[j.ConnectionID]
	if c == nil || c.Status == "disconnected" {
		return
	}
	if j.Type == "data_sync_all" {
		status := map[string]string{"reauth_error": "reauth", "permissions_error": "error_permissions"}[j.Outcome]
		if status != "" && c.Status != status {
			c.Status = status
			s.emitStatus(c)
		}
	}
	s.dirty = true
	s.emit(c, "job."+j.Type+".completed", map[string]any{"job_id": j.ID, "job_url": j.URL})
}

// settleJobs completes every job whose time has come on the sandbox's
// clock, in the order they were due (and, due at one instant, created),
// so that an enroll and an unenroll asked for in that order apply in it. It runs before anything reads or starts a job, when
// POST /_sandbox/clock moves the clock, and on the background loop's tick
// (so that webhooks come without a read). s.mu must be held.
func (s *Server) settleJobs() {
	if len(s.st.ManualJobs) == 0 && len(s.st.AutoJobs) == 0 {
		return
	}
	now := s.now()
	type due struct {
		at     time.Time
		seq    int64
		manual *manualJob
		auto   *autoJob
	}
	var list []due
	for _, j := range s.st.ManualJobs {
		if !j.Done && !now.Before(j.Completes) {
			list = append(list, due{at: j.Completes, seq: j.Seq, manual: j})
		}
	}
	for _, j := range s.st.AutoJobs {
		if !j.Done && !now.Before(j.Completes) {
			list = append(list, due{at: j.Completes, seq: j.Seq, auto: j})
		}
	}
	sort.Slice(list, func(a, b int) bool {
		if !list[a].at.Equal(list[b].at) {
			return list[a].at.Before(list[b].at)
		}
		return list[a].seq < list[b].seq // in the order they were created
	})
	for _, d := range list {
		if d.manual != nil {
			s.completeManualJob(d.manual)
		} else {
			s.completeAutoJob(d.auto)
		}
	}
}

// SettleJobs completes the jobs due on the sandbox's clock now, sending
// their webhooks; reads of jobs do it too.
func (s *Server) SettleJobs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleJobs()
}

// pruneJobs keeps the number of jobs the sandbox remembers near maxJobs:
// past it, finished jobs are forgotten, those older than jobRetention
// first, then the oldest. Unfinished ones are kept; they finish within
// two days. s.mu must be held.
func (s *Server) pruneJobs() {
	n := len(s.st.ManualJobs) + len(s.st.AutoJobs)
	if n <= maxJobs {
		return
	}
	type done struct {
		at       time.Time
		id       string
		isManual bool
	}
	var list []done
	for id, j := range s.st.ManualJobs {
		if j.Done {
			list = append(list, done{j.Completes, id, true})
		}
	}
	for id, j := range s.st.AutoJobs {
		if j.Done {
			list = append(list, done{j.Completes, id, false})
		}
	}
	sort.Slice(list, func(a, b int) bool { return list[a].at.Before(list[b].at) })
	cutoff := s.now().Add(-jobRetention)
	for _, d := range list {
		if n <= maxJobs*9/10 && !d.at.Before(cutoff) {
			break
		}
		if d.isManual {
			delete(s.st.ManualJobs, d.id)
		} else {
			delete(s.st.AutoJobs, d.id)
		}
		n--
	}
}
