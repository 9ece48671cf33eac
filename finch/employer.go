package finch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"time"

	"github.com/finchconnect/finchconnect"
)

// Batch limits Finch documents; the client checks them before sending
// rather than spend a rate-limited request on a certain 400.
const (
	maxBatchIndividuals  = 10000
	maxBatchPayStatement = 10
)

// A RequestOption adjusts one employer-data call. Only this package
// defines options; see [WithEntityID].
type RequestOption interface{ apply(*callOptions) }

type callOptions struct{ entityID string }

type entityOption string

func (e entityOption) apply(o *callOptions) { o.entityID = string(e) }

// WithEntityID selects one entity of a multi-entity connection (Finch's
// entity_ids query parameter, which takes at most one id). Without it Finch
// answers for the connection's only entity.
func WithEntityID(id string) RequestOption { return entityOption(id) }

func entityQuery(opts []RequestOption) url.Values {
	var o callOptions
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return withEntity(nil, o.entityID)
}

// withEntity adds the entity id the way Finch's SDK serialises arrays
// (entity_ids[]=id).
func withEntity(q url.Values, entityID string) url.Values {
	if entityID == "" {
		return q
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("entity_ids[]", entityID)
	return q
}

// Company returns the employer's company data, with GET /employer/company
// (https://developer.tryfinch.com/api-reference/organization/company).
func (c *Client) Company(ctx context.Context, token finchconnect.Secret, opts ...RequestOption) (*Company, error) {
	if err := needToken(token); err != nil {
		return nil, err
	}
	var out Company
	err := c.do(ctx, c.read("GET", "/employer/company", token, entityQuery(opts), nil), &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// read builds a request for a data read.
func (c *Client) read(method, path string, token finchconnect.Secret, q url.Values, body []byte) *request {
	return &request{method: method, path: path, query: q, body: body, auth: authBearer, token: token, policy: retryRead}
}

// DirectoryOptions selects a page of the directory.
type DirectoryOptions struct {
	Limit    int    // page size; 0 leaves it to Finch (which returns everyone)
	Offset   int    // index of the first individual
	EntityID string // see [WithEntityID]
}

// DirectoryPage returns one page of the company directory, with
// GET /employer/directory
// (https://developer.tryfinch.com/api-reference/organization/directory).
func (c *Client) DirectoryPage(ctx context.Context, token finchconnect.Secret, opts DirectoryOptions) (*DirectoryPage, error) {
	if err := needToken(token); err != nil {
		return nil, err
	}
	if opts.Limit < 0 || opts.Offset < 0 {
		return nil, errors.New("finch: directory: Limit and Offset must not be negative")
	}
	q := url.Values{}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Offset > 0 {
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	q = withEntity(q, opts.EntityID)
	var out DirectoryPage
	if err := c.do(ctx, c.read("GET", "/employer/directory", token, q, nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Directory iterates over the whole directory from opts.Offset, fetching
// pages of opts.Limit as it goes. It follows Finch's SDK paging rule: the
// next page starts at paging.offset plus the page's length, and iteration
// ends at an empty page, at a missing or zero paging.count, or once the
// next offset reaches the count. An error ends the iteration after being
// yielded once.
func (c *Client) Directory(ctx context.Context, token finchconnect.Secret, opts DirectoryOptions) iter.Seq2[Individual, error] {
	return offsetPages("directory", opts.Offset, func(offset int) ([]Individual, Paging, error) {
		opts.Offset = offset
		page, err := c.DirectoryPage(ctx, token, opts)
		if err != nil {
			return nil, Paging{}, err
		}
		return page.Individuals, page.Paging, nil
	})
}

// offsetPages iterates over the items of an offset-paged route from
// offset, fetching each page with fetch, with the paging rule of
// [Client.Directory]. what names the route in errors.
func offsetPages[T any](what string, offset int, fetch func(offset int) ([]T, Paging, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		for {
			items, paging, err := fetch(offset)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			next := paging.Offset + len(items)
			if len(items) == 0 || paging.Count <= 0 || next >= paging.Count {
				return
			}
			// A server that ignores offset would otherwise be paged
			// forever.
			if next <= offset {
				yield(zero, fmt.Errorf("finch: %s: paging did not advance past offset %d", what, offset))
				return
			}
			offset = next
		}
	}
}

// IndividualOptions adjusts [Client.Individuals].
type IndividualOptions struct {
	EntityID string // see [WithEntityID]
	// IncludeSSN asks for social security numbers; Finch sends them only
	// if the connection also has the ssn product.
	IncludeSSN bool
}

// IndividualResult is Finch's answer for one individual of a batch. Err is
// nil and Individual set when Code is 200; otherwise Err is an *[APIError]
// built from the item's error body (it matches the root sentinels as a
// whole-call error would).
type IndividualResult struct {
	IndividualID string
	Code         int
	Individual   *IndividualDetail
	Err          error `json:"-"`
}

// EmploymentResult is Finch's answer for one individual of an employment
// batch; see [IndividualResult].
type EmploymentResult struct {
	IndividualID string
	Code         int
	Employment   *Employment
	Err          error `json:"-"`
}

// batchItem is one entry of a batch response's "responses" list.
type batchItem struct {
	IndividualID string          `json:"individual_id"`
	PaymentID    string          `json:"payment_id"`
	Code         int             `json:"code"`
	Body         json.RawMessage `json:"body"`
}

type idRequest struct {
	IndividualID string `json:"individual_id"`
}

func idRequests(ids []string) []idRequest {
	reqs := make([]idRequest, len(ids))
	for i, id := range ids {
		reqs[i] = idRequest{id}
	}
	return reqs
}

// batch posts a batch read and returns its items. The POST only reads, so
// it is retried as a read.
func (c *Client) batch(ctx context.Context, token finchconnect.Secret, path string, q url.Values, body any) ([]batchItem, string, error) {
	var out struct {
		Responses []batchItem `json:"responses"`
	}
	r := c.read("POST", path, token, q, encode(body))
	resp, err := c.doResp(ctx, r, &out)
	if err != nil {
		return nil, "", err
	}
	for i := range out.Responses {
		if out.Responses[i].Code == 0 {
			out.Responses[i].Code = 200 // Finch always sends it; be lenient if not
		}
	}
	return out.Responses, resp.Header.Get("Finch-Request-Id"), nil
}

// itemBody decodes a successful batch item, or describes a failed one.
func itemBody[T any](c *Client, it batchItem, requestID string, token finchconnect.Secret) (*T, error) {
	if it.Code < 200 || it.Code > 299 {
		return nil, batchError(it.Code, it.Body, requestID, []string{token.Reveal(), c.ClientSecret.Reveal()})
	}
	var v T
	if err := json.Unmarshal(it.Body, &v); err != nil {
		return nil, fmt.Errorf("finch: decode batch item: %v", err)
	}
	return &v, nil
}

// Individuals returns personal data for the given individuals, with
// POST /employer/individual
// (https://developer.tryfinch.com/api-reference/organization/individual).
// Results come in Finch's order, one per id; an individual Finch could not
// return has Err set rather than failing the call. At most 10,000 ids.
func (c *Client) Individuals(ctx context.Context, token finchconnect.Secret, ids []string, opts IndividualOptions) ([]IndividualResult, error) {
	if err := checkBatch(token, "individuals", len(ids), maxBatchIndividuals); err != nil || len(ids) == 0 {
		return nil, err
	}
	body := struct {
		Requests []idRequest `json:"requests"`
		Options  *struct {
			Include []string `json:"include"`
		} `json:"options,omitempty"`
	}{Requests: idRequests(ids)}
	if opts.IncludeSSN {
		body.Options = &struct {
			Include []string `json:"include"`
		}{[]string{"ssn"}}
	}
	items, reqID, err := c.batch(ctx, token, "/employer/individual", withEntity(nil, opts.EntityID), body)
	if err != nil {
		return nil, err
	}
	out := make([]IndividualResult, len(items))
	for i, it := range items {
		out[i] = IndividualResult{IndividualID: it.IndividualID, Code: it.Code}
		out[i].Individual, out[i].Err = itemBody[IndividualDetail](c, it, reqID, token)
	}
	return out, nil
}

// Employments returns employment data for the given individuals, with
// POST /employer/employment
// (https://developer.tryfinch.com/api-reference/organization/employment).
// It behaves like [Client.Individuals].
func (c *Client) Employments(ctx context.Context, token finchconnect.Secret, ids []string, opts ...RequestOption) ([]EmploymentResult, error) {
	if err := checkBatch(token, "employments", len(ids), maxBatchIndividuals); err != nil || len(ids) == 0 {
		return nil, err
	}
	body := struct {
		Requests []idRequest `json:"requests"`
	}{idRequests(ids)}
	items, reqID, err := c.batch(ctx, token, "/employer/employment", entityQuery(opts), body)
	if err != nil {
		return nil, err
	}
	out := make([]EmploymentResult, len(items))
	for i, it := range items {
		out[i] = EmploymentResult{IndividualID: it.IndividualID, Code: it.Code}
		out[i].Employment, out[i].Err = itemBody[Employment](c, it, reqID, token)
	}
	return out, nil
}

func checkBatch(token finchconnect.Secret, what string, n, limit int) error {
	if err := needToken(token); err != nil {
		return err
	}
	if n > limit {
		return fmt.Errorf("finch: %s: %d items in one batch, Finch takes at most %d", what, n, limit)
	}
	return nil
}

// Payments returns the payments whose pay date falls between start and end
// inclusive (both "YYYY-MM-DD"), with GET /employer/payment
// (https://developer.tryfinch.com/api-reference/payroll/payment).
func (c *Client) Payments(ctx context.Context, token finchconnect.Secret, start, end string, opts ...RequestOption) ([]Payment, error) {
	if err := needToken(token); err != nil {
		return nil, err
	}
	for _, d := range []string{start, end} {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return nil, fmt.Errorf("finch: payments: date %q is not YYYY-MM-DD", cleanText(d, 32))
		}
	}
	q := entityQuery(opts)
	if q == nil {
		q = url.Values{}
	}
	q.Set("start_date", start)
	q.Set("end_date", end)
	var out []Payment
	if err := c.do(ctx, c.read("GET", "/employer/payment", token, q, nil), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// PayStatementRequest asks for the pay statements of one payment.
type PayStatementRequest struct {
	PaymentID string `json:"payment_id"`
	Limit     int    `json:"limit,omitempty"`  // Finch's default 100, max 5000
	Offset    int    `json:"offset,omitempty"` //
}

// PayStatementResult is Finch's answer for one payment of a pay-statement
// batch. When Code is 200, Paging and PayStatements are set (page on with
// another request at Paging.Offset+len(PayStatements) while that is below
// Paging.Count). Otherwise Err is an *[APIError]; while Finch is still
// fetching a payment's statements that error has StatusCode 202 and
// FinchCode "data_sync_in_progress": ask again later.
type PayStatementResult struct {
	PaymentID     string
	Code          int
	Paging        *Paging
	PayStatements []PayStatement
	Err           error `json:"-"`
}

// PayStatements returns pay statements for up to 10 payments, with
// POST /employer/pay-statement
// (https://developer.tryfinch.com/api-reference/payroll/pay-statement).
// A payment Finch could not return has Err set rather than failing the
// call.
func (c *Client) PayStatements(ctx context.Context, token finchconnect.Secret, reqs []PayStatementRequest, opts ...RequestOption) ([]PayStatementResult, error) {
	if err := checkBatch(token, "pay statements", len(reqs), maxBatchPayStatement); err != nil || len(reqs) == 0 {
		return nil, err
	}
	body := struct {
		Requests []PayStatementRequest `json:"requests"`
	}{reqs}
	items, reqID, err := c.batch(ctx, token, "/employer/pay-statement", entityQuery(opts), body)
	if err != nil {
		return nil, err
	}
	out := make([]PayStatementResult, len(items))
	for i, it := range items {
		out[i] = PayStatementResult{PaymentID: it.PaymentID, Code: it.Code}
		if it.Code == 202 {
			// Finch's "still fetching" answer rides in the item body
			// with code 202, a 2xx, but it carries no statements.
			out[i].Err = batchError(it.Code, it.Body, reqID, []string{token.Reveal(), c.ClientSecret.Reveal()})
			continue
		}
		data, err := itemBody[struct {
			Paging        Paging         `json:"paging"`
			PayStatements []PayStatement `json:"pay_statements"`
		}](c, it, reqID, token)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Paging, out[i].PayStatements = &data.Paging, data.PayStatements
	}
	return out, nil
}

// Providers lists the payroll and HR systems Finch connects to, with
// GET /providers (https://developer.tryfinch.com/api-reference/management/providers).
// It sends no credentials: Finch's older API specification declares the
// route public. Finch's current SDKs send an access token; use
// [Client.ProvidersWithToken] to do the same.
func (c *Client) Providers(ctx context.Context) ([]Provider, error) {
	return c.providers(ctx, &request{method: "GET", path: "/providers", auth: authNone, policy: retryRead})
}

// ProvidersWithToken is [Client.Providers] sent with an access token
// (Authorization: Bearer), as Finch's SDKs send GET /providers. It returns
// an error without sending anything if token is empty.
func (c *Client) ProvidersWithToken(ctx context.Context, token finchconnect.Secret) ([]Provider, error) {
	if err := needToken(token); err != nil {
		return nil, err
	}
	return c.providers(ctx, c.read("GET", "/providers", token, nil, nil))
}

func (c *Client) providers(ctx context.Context, r *request) ([]Provider, error) {
	var out []Provider
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}
