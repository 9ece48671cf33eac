package finch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"

	"github.com/finchconnect/finchconnect"
)

// ManualJob is a deductions job, from GET /jobs/manual/{job_id}. Status is
// pending, in_progress, error or complete; Body is the job's result (for
// example each individual's enrollment outcome), raw JSON.
type ManualJob struct {
	JobID  string            `json:"job_id"`
	Status string            `json:"status"`
	Body   []json.RawMessage `json:"body,omitempty"`
}

// ManualJob returns a deductions (or assisted) job, with
// GET /jobs/manual/{job_id}. It needs the benefits product.
func (c *Client) ManualJob(ctx context.Context, token finchconnect.Secret, jobID string) (*ManualJob, error) {
	if err := checkID("job id", jobID); err != nil {
		return nil, err
	}
	return get[ManualJob](ctx, c, token, "/jobs/manual/"+jobID, nil)
}

// AutomatedJob is a data sync job, from GET /jobs/automated.
type AutomatedJob struct {
	JobID       string           `json:"job_id"`
	JobURL      string           `json:"job_url,omitempty"`
	Type        string           `json:"type"`   // data_sync_all or w4_form_employee_sync
	Status      string           `json:"status"` // pending, in_progress, complete, error, reauth_error, permissions_error
	Params      *AutomatedParams `json:"params,omitempty"`
	CreatedAt   string           `json:"created_at,omitempty"` // RFC 3339
	ScheduledAt string           `json:"scheduled_at,omitempty"`
	StartedAt   string           `json:"started_at,omitempty"`
	CompletedAt string           `json:"completed_at,omitempty"`
}

// AutomatedParams are a job's parameters.
type AutomatedParams struct {
	IndividualID string `json:"individual_id,omitempty"`
}

// AutomatedJobRequest starts a job: Type "data_sync_all", or
// "w4_form_employee_sync" with Params.IndividualID (which needs the
// documents product).
type AutomatedJobRequest struct {
	Type   string           `json:"type"`
	Params *AutomatedParams `json:"params,omitempty"`
}

// AutomatedJobCreated is Finch's answer to a new job. When the refresh
// quota is spent Finch answers 429 instead, with RetryAt in the error
// body.
type AutomatedJobCreated struct {
	JobID              string `json:"job_id,omitempty"`
	JobURL             string `json:"job_url,omitempty"`
	AllowedRefreshes   int    `json:"allowed_refreshes"`
	RemainingRefreshes int    `json:"remaining_refreshes"`
	RetryAt            string `json:"retry_at,omitempty"`
}

// AutomatedJobList is one page of GET /jobs/automated.
type AutomatedJobList struct {
	Data []AutomatedJob `json:"data"`
	Meta struct {
		Quotas *struct {
			DataSyncAll *struct {
				AllowedRefreshes   *int `json:"allowed_refreshes,omitempty"`
				RemainingRefreshes *int `json:"remaining_refreshes,omitempty"`
			} `json:"data_sync_all,omitempty"`
		} `json:"quotas,omitempty"`
	} `json:"meta"`
}

// CreateAutomatedJob starts a job, with POST /jobs/automated
// (https://developer.tryfinch.com/api-reference/management/jobs). Starting a
// job spends the connection's refresh quota, so it is retried only when it
// certainly did not reach Finch. While a data_sync_all job is still running
// Finch answers 202 with that job instead of starting another; the result
// is the same. A spent quota is a 429 *[APIError] whose RetryAfter says
// when the next refresh is allowed (it is not waited out: Finch's quota
// is hourly).
func (c *Client) CreateAutomatedJob(ctx context.Context, token finchconnect.Secret, req AutomatedJobRequest) (*AutomatedJobCreated, error) {
	switch req.Type {
	case "data_sync_all":
		if req.Params != nil {
			return nil, errors.New("finch: create automated job: data_sync_all takes no Params")
		}
	case "w4_form_employee_sync":
		if req.Params == nil || req.Params.IndividualID == "" {
			return nil, errors.New("finch: create automated job: w4_form_employee_sync needs Params.IndividualID")
		}
	default:
		return nil, errors.New("finch: create automated job: Type must be data_sync_all or w4_form_employee_sync")
	}
	return send1[AutomatedJobCreated](ctx, c, token, "POST", "/jobs/automated", nil, req)
}

// AutomatedJobs returns one page of the connection's jobs, newest first,
// with GET /jobs/automated. limit 0 leaves the page size to Finch.
func (c *Client) AutomatedJobs(ctx context.Context, token finchconnect.Secret, limit, offset int) (*AutomatedJobList, error) {
	if limit < 0 || offset < 0 {
		return nil, errors.New("finch: automated jobs: limit and offset must not be negative")
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	return get[AutomatedJobList](ctx, c, token, "/jobs/automated", q)
}

// AllAutomatedJobs iterates over every job, newest first, fetching pages
// of pageSize (1 or more). Finch's list has no total, so iteration ends at
// a page shorter than pageSize. An error ends the iteration after being
// yielded once.
func (c *Client) AllAutomatedJobs(ctx context.Context, token finchconnect.Secret, pageSize int) iter.Seq2[AutomatedJob, error] {
	return func(yield func(AutomatedJob, error) bool) {
		if pageSize < 1 {
			yield(AutomatedJob{}, fmt.Errorf("finch: automated jobs: page size %d, want 1 or more", pageSize))
			return
		}
		for offset := 0; ; offset += pageSize {
			page, err := c.AutomatedJobs(ctx, token, pageSize, offset)
			if err != nil {
				yield(AutomatedJob{}, err)
				return
			}
			for _, j := range page.Data {
				if !yield(j, nil) {
					return
				}
			}
			if len(page.Data) < pageSize {
				return
			}
		}
	}
}

// AutomatedJob returns one job, with GET /jobs/automated/{job_id}.
func (c *Client) AutomatedJob(ctx context.Context, token finchconnect.Secret, jobID string) (*AutomatedJob, error) {
	if err := checkID("job id", jobID); err != nil {
		return nil, err
	}
	return get[AutomatedJob](ctx, c, token, "/jobs/automated/"+jobID, nil)
}
