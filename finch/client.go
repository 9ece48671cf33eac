package finch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/budget"
)

// Defaults for the zero-valued fields of [Client].
const (
	DefaultBaseURL      = "https://api.tryfinch.com"
	DefaultAPIVersion   = "2020-09-17"
	DefaultTimeout      = 60 * time.Second
	DefaultMaxRetries   = 2
	DefaultMaxBodyBytes = 32 << 20
)

// version is the finchconnect version the default User-Agent names.
const version = "0.1.0"

// A Client calls the Finch API. Set ClientID and ClientSecret for the calls
// that need them (code exchange, Connect sessions); every other field has a
// default, so the zero value of each means "default".
//
// A Client is safe for concurrent use. Do not modify or copy it after its
// first call: the defaults and the HTTP client are resolved once.
type Client struct {
	// BaseURL is the API root, default "https://api.tryfinch.com". It may
	// carry a path prefix (a sandbox mounted at "/finch"); every route is
	// joined below it.
	BaseURL string

	// ClientID and ClientSecret are the application's Finch credentials.
	ClientID     string
	ClientSecret finchconnect.Secret

	// APIVersion is sent as Finch-API-Version, default "2020-09-17".
	APIVersion string

	// UserAgent is sent as User-Agent, default
	// "finchconnect/<version> (+https://github.com/finchconnect/finchconnect)".
	UserAgent string

	// HTTPClient sends the requests. The default has dial, TLS and idle
	// timeouts, does not follow redirects (Finch does not redirect API
	// calls, and a redirect must not carry a token elsewhere), and is never
	// http.DefaultClient. The per-attempt Timeout below applies either way.
	HTTPClient *http.Client

	// Timeout bounds one attempt: connecting, sending, waiting and reading
	// the body. Default 60 s, as in Finch's SDKs; negative means no
	// per-attempt limit (only ctx). Finch's own server gives up after
	// 6 minutes and its docs suggest clients wait that long; 60 s is chosen
	// because calls here mostly run while a person waits (the Connect
	// callback, a proxied read), and a read that times out is retried. Raise
	// it for large batch reads; ctx always bounds the whole call.
	Timeout time.Duration

	// MaxRetries is how many times a read is retried, default 2 (three
	// attempts); -1 disables retries. Writes follow stricter rules whatever
	// it says (see the package documentation).
	MaxRetries int

	// MaxBodyBytes caps a successful response body, default 32 MiB. A
	// larger body fails the call with an error wrapping
	// [ErrResponseTooLarge].
	MaxBodyBytes int64

	// Now returns the current time; default time.Now. It dates HTTP-date
	// Retry-After headers. Tests replace it.
	Now func() time.Time

	// Sleep waits between retries: d, or until ctx is done, whichever is
	// first, returning ctx.Err() in the second case. Default: a timer.
	// Tests replace it to record the waits instead of sleeping.
	Sleep func(ctx context.Context, d time.Duration) error

	// Budget, when set, governs every attempt: each waits for a permit
	// of its route's product bucket ([budget.BucketOf]; the IP limit
	// alone for /auth/token, /introspect, Connect sessions, …) in its
	// context's lane, up to the context's deadline, and reports Finch's
	// answer back (a 429's Retry-After, an IP lockout). A call refused
	// for lack of budget fails with an error wrapping
	// [budget.ErrNoBudget] (a *[budget.NoBudgetError]) without reaching
	// Finch. Nil: no budget.
	Budget *budget.Budget

	jitterFn func() float64 // default math/rand; tests pin it

	once sync.Once
	cfg  config
	err  error // a BaseURL that does not parse, reported by every call
}

// config is the Client's settings with defaults applied.
type config struct {
	base       *url.URL
	apiVersion string
	userAgent  string
	httpClient *http.Client
	timeout    time.Duration
	maxRetries int
	maxBody    int64
}

func (c *Client) config() (*config, error) {
	c.once.Do(func() {
		raw := c.BaseURL
		if raw == "" {
			raw = DefaultBaseURL
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			c.err = errors.New("finch: BaseURL must be an http or https URL with a host and no query, fragment or user info")
			return
		}
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		c.cfg = config{
			base:       u,
			apiVersion: or(c.APIVersion, DefaultAPIVersion),
			userAgent:  or(c.UserAgent, "finchconnect/"+version+" (+https://github.com/finchconnect/finchconnect)"),
			httpClient: c.HTTPClient,
			timeout:    c.Timeout,
			maxRetries: c.MaxRetries,
			maxBody:    c.MaxBodyBytes,
		}
		if c.cfg.httpClient == nil {
			c.cfg.httpClient = newHTTPClient()
		}
		switch {
		case c.cfg.timeout == 0:
			c.cfg.timeout = DefaultTimeout
		case c.cfg.timeout < 0:
			c.cfg.timeout = 0
		}
		switch {
		case c.cfg.maxRetries == 0:
			c.cfg.maxRetries = DefaultMaxRetries
		case c.cfg.maxRetries < 0:
			c.cfg.maxRetries = 0
		}
		if c.cfg.maxBody <= 0 {
			c.cfg.maxBody = DefaultMaxBodyBytes
		}
	})
	return &c.cfg, c.err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// newHTTPClient returns the default HTTP client. Response waiting is bounded
// by the per-attempt Timeout, so the transport only bounds the phases before
// it.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: NewTransport(), CheckRedirect: NoRedirects}
}

// NewTransport returns the transport the default HTTP client uses, for
// callers that wrap it (with metrics, say) in an HTTPClient of their own.
// It bounds dialling and TLS handshakes, and keeps up to 256 idle
// connections to a host: every call goes to the one Finch host, and a
// callback service under load makes many at once; with the 2 that
// http.DefaultTransport keeps, almost every call would dial a new
// connection (see BENCHMARKS.md, "Profiles").
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// NoRedirects is an http.Client CheckRedirect that returns a redirect as
// the response instead of following it: Finch does not redirect API calls,
// and a redirect must not carry a request, or its token, elsewhere.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// authKind says which credential a request carries.
type authKind int

const (
	authNone   authKind = iota // POST /auth/token: credentials go in the body, no header
	authBearer                 // an access token
	authBasic                  // base64(client_id:client_secret)
)

// request is one logical API call, which may take several attempts.
type request struct {
	method string
	path   string // joined below BaseURL's path
	query  url.Values
	body   []byte // JSON; nil sends no body and no Content-Type
	auth   authKind
	token  finchconnect.Secret
	policy retryPolicy
	hide   []string // more values to keep out of errors, e.g. the code
}

// secrets lists every credential the request carries, so that errors can
// be scrubbed of them.
func (c *Client) secrets(r *request) []string {
	return append([]string{r.token.Reveal(), c.ClientSecret.Reveal()}, r.hide...)
}

// Response is a raw Finch response, as [Client.Do] returns it.
type Response struct {
	StatusCode int
	Header     http.Header
	// Body is the response body: at most MaxBodyBytes for a 2xx status,
	// and at most 64 KiB (truncated) for any other.
	Body []byte

	err error
}

// Err returns nil for a 2xx status and the *[APIError] describing the
// response otherwise.
func (r *Response) Err() error { return r.err }

// send performs r, retrying as r.policy allows. It returns the last
// response whatever its status; the error is for calls that got no
// response at all.
func (c *Client) send(ctx context.Context, r *request) (*Response, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	u := *cfg.base
	u.Path = cfg.base.Path + r.path
	u.RawQuery = r.query.Encode()
	target := u.String()

	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("finch: %s %s: %w", r.method, r.path, err)
		}
		ticket, err := c.Budget.Acquire(ctx, budget.BucketOf(r.path))
		if err != nil {
			return nil, fmt.Errorf("finch: %s %s: %w", r.method, r.path, err)
		}
		resp, err := c.attempt(ctx, cfg, r, target)
		reportBudget(ticket, resp, c.now)
		if ctx.Err() != nil && err != nil {
			return nil, err
		}
		retry, delay := false, time.Duration(-1)
		switch {
		case err != nil:
			retry = retryError(r.policy, err)
		case resp.StatusCode < 200 || resp.StatusCode > 299:
			retry = retryResponse(r.policy, resp.raw)
			delay = serverDelay(resp.Header, c.now)
		}
		if !retry || n >= cfg.maxRetries || delay > maxServerDelay {
			return resp.result(err)
		}
		if delay < 0 {
			delay = c.backoff(n)
		}
		// Never sleep past the caller's deadline: the next attempt could
		// not finish in time anyway, and the last error says more than
		// "context deadline exceeded".
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= delay {
			return resp.result(err)
		}
		if c.sleep(ctx, delay) != nil {
			return resp.result(err)
		}
	}
}

// reportBudget tells the budget how an attempt ended: its status, and for
// a 429 Finch's finch_code and Retry-After.
func reportBudget(t *budget.Ticket, resp *attemptResult, now func() time.Time) {
	if t == nil {
		return
	}
	if resp == nil {
		t.Done(0, "", 0)
		return
	}
	code, wait := "", time.Duration(0)
	if resp.StatusCode == http.StatusTooManyRequests {
		var apiErr *APIError
		if errors.As(resp.err, &apiErr) {
			code = apiErr.FinchCode
		}
		wait = max(serverDelay(resp.Header, now), 0)
	}
	t.Done(resp.StatusCode, code, wait)
}

// attemptResult is one attempt's outcome.
type attemptResult struct {
	*Response
	raw *http.Response // headers and status only; the body is already read
}

func (a *attemptResult) result(err error) (*Response, error) {
	if err != nil {
		return nil, err
	}
	return a.Response, nil
}

// attempt sends r once and reads the whole (capped) body.
func (c *Client) attempt(ctx context.Context, cfg *config, r *request, target string) (*attemptResult, error) {
	actx := ctx
	if cfg.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("finch: %s %s: %v", r.method, r.path, err)
	}
	req.Header.Set("Finch-API-Version", cfg.apiVersion)
	req.Header.Set("User-Agent", cfg.userAgent)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch r.auth {
	case authBearer:
		req.Header.Set("Authorization", "Bearer "+r.token.Reveal())
	case authBasic:
		req.SetBasicAuth(c.ClientID, c.ClientSecret.Reveal())
	}

	resp, err := cfg.httpClient.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, actx, cfg, r, err)
	}
	defer resp.Body.Close()

	limit := cfg.maxBody
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if !ok {
		limit = maxErrorRead
	} else if resp.ContentLength > limit {
		return nil, fmt.Errorf("finch: %s %s: body of %d bytes exceeds MaxBodyBytes (%d): %w",
			r.method, r.path, resp.ContentLength, limit, ErrResponseTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.transportError(ctx, actx, cfg, r, fmt.Errorf("reading body: %w", err))
	}
	if int64(len(b)) > limit {
		if ok {
			return nil, fmt.Errorf("finch: %s %s: body exceeds MaxBodyBytes (%d): %w",
				r.method, r.path, limit, ErrResponseTooLarge)
		}
		b = b[:limit]
	}
	out := &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: b}
	out.err = checkResponse(resp.StatusCode, resp.Header, b, c.now, c.secrets(r)...)
	return &attemptResult{Response: out, raw: resp}, nil
}

// transportError describes a call that got no (complete) response. It
// keeps the cause wrapped, so callers can test for context.Canceled or a
// net.Error, but drops *url.Error's copy of the URL.
func (c *Client) transportError(ctx, actx context.Context, cfg *config, r *request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctx.Err() == nil && actx.Err() != nil {
		return fmt.Errorf("finch: %s %s: no response within %v (Client.Timeout): %w", r.method, r.path, cfg.timeout, err)
	}
	return fmt.Errorf("finch: %s %s: %w", r.method, r.path, err)
}

// do performs r and decodes a 2xx JSON body into out (unless out is nil).
// Any other status becomes an *APIError. A 202 does too when accepted is
// false: Finch answers 202 while it is still fetching data, and decoding
// that into, say, a Company would hand the caller an empty one.
func (c *Client) do(ctx context.Context, r *request, out any) error {
	_, err := c.doResp(ctx, r, out)
	return err
}

// doResp is do that also returns the response, for callers that need its
// headers.
func (c *Client) doResp(ctx context.Context, r *request, out any) (*Response, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := resp.Err(); err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusAccepted && r.policy == retryRead {
		return nil, newAPIError(resp.StatusCode, resp.Header, resp.Body, c.now, c.secrets(r)...)
	}
	if out == nil {
		return resp, nil
	}
	if len(bytes.TrimSpace(resp.Body)) == 0 {
		return nil, fmt.Errorf("finch: %s %s: empty response body", r.method, r.path)
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return nil, fmt.Errorf("finch: decode %s %s response: %v", r.method, r.path, err)
	}
	return resp, nil
}

// encode marshals a request body. Wire structs hold plain strings, never a
// Secret, whose MarshalJSON would send "[redacted]".
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own wire structs are encoded; they always marshal.
		panic("finch: encode request: " + err.Error())
	}
	return b
}

// Do sends one request to path below BaseURL, with the access token as a
// Bearer credential when token is not empty, and returns Finch's response
// whatever its status: a proxy passes Finch's answer on as it is. The error
// is for calls that got no response: an invalid path, a transport failure,
// a body over MaxBodyBytes, or ctx ending. [Response.Err] classifies a
// non-2xx response as an *[APIError].
//
// path must be an absolute path such as "/employer/company": Do refuses
// anything that could leave BaseURL ("//host", "http:", "..", "\"), and a
// query string in path (pass query instead).
//
// Retries follow the package rules: GET and HEAD, and the POSTs that only
// read (/employer/individual, /employer/employment, /employer/pay-statement),
// are retried as reads; POST /auth/token never; any other write only when it
// certainly did not reach Finch.
//
// Any occurrence of token (if at least 8 bytes long) in the returned body
// or headers is replaced by "[redacted]".
func (c *Client) Do(ctx context.Context, token finchconnect.Secret, method, path string, query url.Values, body []byte) (*Response, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	r := &request{method: method, path: path, query: query, token: token, policy: retryUnsent}
	switch method {
	case http.MethodGet, http.MethodHead:
		r.policy = retryRead
	case http.MethodPost:
		switch path {
		case "/employer/individual", "/employer/employment", "/employer/pay-statement":
			r.policy = retryRead
		case "/auth/token":
			r.policy = retryNever
		}
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return nil, fmt.Errorf("finch: method %q not allowed", cleanText(method, 16))
	}
	if !token.IsZero() {
		r.auth = authBearer
	}
	if len(body) > 0 {
		r.body = body
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	// Finch never echoes the caller's token, but the proxy forwards this
	// response to others: make sure a misbehaving upstream cannot make it
	// do so either.
	if tok := []byte(token.Reveal()); len(tok) >= minScrub {
		resp.Body = bytes.ReplaceAll(resp.Body, tok, []byte("[redacted]"))
		for k, vs := range resp.Header {
			for i, v := range vs {
				resp.Header[k][i] = strings.ReplaceAll(v, string(tok), "[redacted]")
			}
		}
	}
	return resp, nil
}

// checkPath refuses a path that is not a plain absolute path below
// BaseURL. It is the SSRF guard of the /v1 proxy: whatever path a browser
// sends, the request must go to Finch and nowhere else.
func checkPath(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("finch: invalid path %q: %s", cleanText(p, 200), why)
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return bad("must start with /")
	case strings.HasPrefix(p, "//"):
		return bad("must not start with //")
	case strings.ContainsAny(p, "\\?#"):
		return bad(`must not contain \, ? or #`)
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("must not contain control characters")
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return bad("must not contain . or .. segments")
		}
	}
	return nil
}
