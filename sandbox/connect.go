package sandbox

import (
	"crypto/subtle"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

var productNames = []string{"benefits", "company", "deduction", "directory", "documents", "employment", "individual", "payment", "pay_statement", "plans", "plans_dependents", "plans_enrollments", "recordkeeping", "ssn"}

// scenarios are the logins the Connect page accepts, all with password
// "letmein". Any other username with that password behaves like
// authorized_simple.
var scenarios = []struct {
	Username, Description string
	Employees, Entities   int
}{
	{"authorized_simple", "a normal employer: about 25 employees, one entity", 25, 1},
	{"authorized_complex", "a large employer: 320 employees in three entities", 320, 3},
	{"reauthorization", "connects, then needs re-authentication after 5 data calls", 25, 1},
}

const scenarioPassword = "letmein"

// reauthAfter is how many data calls a "reauthorization" connection answers
// before it needs re-authentication.
const reauthAfter = 5

func (s *Server) redirectAllowed(u string) bool {
	if u == "" {
		return true
	}
	if s.opts.RedirectURIs != nil {
		return slices.Contains(s.opts.RedirectURIs, u)
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return false
	}
	host := p.Hostname()
	switch p.Scheme {
	case "https":
		return true
	case "http":
		return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasSuffix(host, ".test")
	}
	return false
}

// handleNewSession is POST /connect/sessions: 201 {session_id, connect_url}.
func (s *Server) handleNewSession(w http.ResponseWriter, r *http.Request) {
	if !s.basicAuth(w, r) {
		return
	}
	var req struct {
		CustomerID      string   `json:"customer_id"`
		CustomerName    string   `json:"customer_name"`
		CustomerEmail   *string  `json:"customer_email"`
		Products        []string `json:"products"`
		RedirectURI     *string  `json:"redirect_uri"`
		MinutesToExpire *int     `json:"minutes_to_expire"`
		Sandbox         *string  `json:"sandbox"`
		Manual          *bool    `json:"manual"`
		State           string   `json:"state"`
		Integration     *struct {
			Provider   string `json:"provider"`
			AuthMethod string `json:"auth_method"`
		} `json:"integration"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be a JSON object.")
		return
	}
	var problems []string
	if n := len(req.CustomerID); n < 1 || n > 255 {
		problems = append(problems, "customer_id is required (1-255 characters)")
	}
	if n := len(req.CustomerName); n < 1 || n > 255 {
		problems = append(problems, "customer_name is required (1-255 characters)")
	}
	if len(req.Products) == 0 {
		problems = append(problems, "products is required")
	}
	problems = append(problems, productProblems(req.Products)...)
	problems = append(problems, minutesProblems(req.MinutesToExpire)...)
	if req.Sandbox != nil && *req.Sandbox != "finch" && *req.Sandbox != "provider" {
		problems = append(problems, `sandbox must be "finch" or "provider"`)
	}
	redirect := ""
	if req.RedirectURI != nil {
		redirect = *req.RedirectURI
	}
	if !s.redirectAllowed(redirect) {
		problems = append(problems, "redirect_uri is not a registered redirect URI")
	}
	if req.Integration != nil && providerName(req.Integration.Provider) == "" {
		problems = append(problems, "integration.provider is not a known provider")
	}
	if req.Integration != nil && req.Integration.AuthMethod != "" && !validAuthType(req.Integration.AuthMethod) {
		problems = append(problems, "integration.auth_method must be assisted, credential, oauth or api_token")
	}
	if problems != nil {
		badRequest(w, strings.Join(problems, "; "))
		return
	}
	minutes := 129600
	if req.MinutesToExpire != nil {
		minutes = *req.MinutesToExpire
	}
	sess := &session{
		ID: s.id(), CustomerID: req.CustomerID, CustomerName: req.CustomerName, Products: req.Products,
		RedirectURI: redirect, State: req.State, Expires: s.now().Add(time.Duration(minutes) * time.Minute),
	}
	if req.Sandbox != nil {
		sess.Sandbox = *req.Sandbox
	}
	if req.CustomerEmail != nil {
		sess.CustomerEmail = *req.CustomerEmail
	}
	if req.Integration != nil {
		sess.Provider = req.Integration.Provider
		sess.AuthMethod = req.Integration.AuthMethod
	}
	if req.Manual != nil && *req.Manual {
		sess.AuthMethod = "assisted" // Finch's manual: true is the assisted flow
	}
	s.mu.Lock()
	s.maybePrune()
	s.st.Sessions[sess.ID] = sess
	s.dirty = true
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{"session_id": sess.ID, "connect_url": s.publicURL(r) + "/authorize?session=" + sess.ID})
}

// handleReauthSession is POST /connect/sessions/reauthenticate.
func (s *Server) handleReauthSession(w http.ResponseWriter, r *http.Request) {
	if !s.basicAuth(w, r) {
		return
	}
	var req struct {
		ConnectionID    string   `json:"connection_id"`
		MinutesToExpire *int     `json:"minutes_to_expire"`
		Products        []string `json:"products"`
		RedirectURI     *string  `json:"redirect_uri"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be a JSON object with connection_id.")
		return
	}
	// The rules of POST /connect/sessions, for the fields the two share.
	var problems []string
	if req.ConnectionID == "" {
		problems = append(problems, "connection_id is required")
	}
	problems = append(problems, productProblems(req.Products)...)
	problems = append(problems, minutesProblems(req.MinutesToExpire)...)
	redirect := ""
	if req.RedirectURI != nil {
		redirect = *req.RedirectURI
	}
	if !s.redirectAllowed(redirect) {
		problems = append(problems, "redirect_uri is not a registered redirect URI")
	}
	if problems != nil {
		badRequest(w, strings.Join(problems, "; "))
		return
	}
	minutes := 43200
	if req.MinutesToExpire != nil {
		minutes = *req.MinutesToExpire
	}
	sess, status, problem := s.addReauthSession(req.ConnectionID, req.Products, redirect, minutes)
	switch status {
	case 0:
		writeJSON(w, http.StatusCreated, map[string]string{"session_id": sess.ID, "connect_url": s.publicURL(r) + "/authorize?session=" + sess.ID})
	case http.StatusNotFound:
		writeError(w, status, "not_found_error", "item_not_found", problem)
	default:
		badRequest(w, problem)
	}
}

// addReauthSession stores a session that re-authenticates connection id;
// on failure it returns the status and message to answer with.
func (s *Server) addReauthSession(id string, products []string, redirect string, minutes int) (*session, int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.Connections[id]
	if !ok {
		return nil, http.StatusNotFound, "No such connection."
	}
	if c.Status == "disconnected" {
		return nil, http.StatusBadRequest, "The connection was disconnected, which is permanent; create a new Connect session instead."
	}
	if len(products) == 0 {
		products = c.Products
	}
	sess := &session{
		ID: s.id(), CustomerID: c.CustomerID, CustomerName: c.CustomerName, CustomerEmail: c.CustomerEmail,
		Products: products, RedirectURI: redirect, ConnectionID: c.ID, Provider: c.ProviderID,
		Expires: s.now().Add(time.Duration(minutes) * time.Minute),
	}
	s.maybePrune()
	s.st.Sessions[sess.ID] = sess
	s.dirty = true
	return sess, 0, ""
}

// productProblems checks a session's products against Finch's list
// (finch-api.md §1.5).
func productProblems(products []string) []string {
	var problems []string
	for _, p := range products {
		if !slices.Contains(productNames, p) {
			problems = append(problems, "unknown product "+p)
		}
	}
	if slices.Contains(products, "deduction") && slices.Contains(products, "benefits") {
		problems = append(problems, "deduction is a deprecated alias of benefits; ask for one of them")
	}
	return problems
}

// minutesProblems checks minutes_to_expire: 1 to 129,600 (90 days), so
// that the session's lifetime is also far from overflowing a Duration.
func minutesProblems(minutes *int) []string {
	if minutes != nil && (*minutes < 1 || *minutes > 129600) {
		return []string{"minutes_to_expire must be between 1 and 129600"}
	}
	return nil
}

// flow is a Connect flow as the page carries it from step to step, in
// hidden fields: a session, or the legacy static parameters.
type flow struct {
	Session     string
	State       string
	ClientID    string
	Products    string
	RedirectURI string
	Provider    string
	Connection  string
	// SDKHostURL is the page of the app that embeds Connect, which the
	// Connect SDK names in sdk_host_url: the embedded flow's messages go
	// to its origin only.
	SDKHostURL string
}

func flowFrom(v url.Values) flow {
	return flow{
		Session: v.Get("session"), State: v.Get("state"), ClientID: v.Get("client_id"),
		Products: v.Get("products"), RedirectURI: v.Get("redirect_uri"),
		Provider: firstNonEmpty(v.Get("provider"), v.Get("payroll_provider")), Connection: v.Get("connection_id"),
		SDKHostURL: v.Get("sdk_host_url"),
	}
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

// resolve turns a flow into the session it stands for. Legacy static
// parameters make an ad-hoc session, as Finch's old Connect did.
func (s *Server) resolve(f flow) (*session, string) {
	sess, problem := s.resolveSession(f)
	if problem != "" || sess.ConnectionID == "" {
		return sess, problem
	}
	// A re-authentication: the connection must still be there to re-open.
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.st.Connections[sess.ConnectionID]
	switch {
	case c == nil:
		return nil, "This link re-authenticates a connection that does not exist."
	case c.Status == "disconnected":
		return nil, "This connection was disconnected, which is permanent. Ask the application for a new Connect link."
	}
	if f.Session == "" && sess.Provider == "" {
		sess.Provider = c.ProviderID // a legacy connection_id link skips the picker too
	}
	return sess, ""
}

func (s *Server) resolveSession(f flow) (*session, string) {
	if f.Session != "" {
		s.mu.Lock()
		sess, ok := s.st.Sessions[f.Session]
		s.mu.Unlock()
		if !ok {
			return nil, "This Connect session does not exist."
		}
		if s.now().After(sess.Expires) {
			return nil, "This Connect session has expired. Ask the application for a new link."
		}
		return sess, ""
	}
	if f.ClientID == "" {
		return nil, "This link is missing its session."
	}
	if subtle.ConstantTimeCompare([]byte(f.ClientID), []byte(s.opts.ClientID)) != 1 {
		return nil, "Unknown client_id."
	}
	products := strings.Fields(strings.ReplaceAll(f.Products, ",", " "))
	if len(products) == 0 {
		return nil, "The link names no products."
	}
	if !s.redirectAllowed(f.RedirectURI) {
		return nil, "redirect_uri is not registered."
	}
	return &session{Products: products, RedirectURI: f.RedirectURI, ConnectionID: f.Connection, Expires: s.now().Add(time.Hour)}, ""
}

type pageData struct {
	Base      string
	Flow      flow
	Session   *session
	Providers []struct{ ID, Name string }
	Provider  string
	Name      string
	Error     string
	Username  string
	Scenarios any
	Password  string
	Code      string
	CodeJSON  template.JS
	CancelURL string
	// TargetOrigin is the origin the embedded flow's page posts its
	// message to: sdk_host_url's, or "*" when none was given.
	TargetOrigin string
}

func (s *Server) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.Providers = providers
	d.Scenarios = scenarios
	d.Password = scenarioPassword
	d.TargetOrigin = targetOrigin(d.Flow.SDKHostURL)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		s.log.Error("render Connect page", "err", err)
	}
}

// cancelURL is the Cancel link of a Connect page. It carries every
// parameter of the flow, because /authorize/cancel resolves the flow again:
// a legacy link without its products or connection_id would not resolve.
func (s *Server) cancelURL(r *http.Request, f flow) string {
	q := url.Values{}
	for k, v := range map[string]string{
		"session": f.Session, "state": f.State, "client_id": f.ClientID, "products": f.Products,
		"redirect_uri": f.RedirectURI, "provider": f.Provider, "connection_id": f.Connection, "sdk_host_url": f.SDKHostURL,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return s.publicURL(r) + "/authorize/cancel?" + q.Encode()
}

// targetOrigin is the origin of sdk_host_url when it is an http(s) URL,
// else "*" (postMessage's "any origin").
func targetOrigin(sdkHostURL string) string {
	u, err := url.Parse(sdkHostURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "*"
	}
	return u.Scheme + "://" + u.Host
}

// handleAuthorizeGet is the Connect page: the provider picker, or straight
// to the sign-in form when the session names a provider.
func (s *Server) handleAuthorizeGet(w http.ResponseWriter, r *http.Request) {
	f := flowFrom(r.URL.Query())
	sess, problem := s.resolve(f)
	if problem == "" && f.State == "" {
		// A state given when the session was created stands in for one
		// on the URL (the JS Connect SDK appends it to the URL instead).
		f.State = sess.State
	}
	d := pageData{Base: s.publicURL(r), Flow: f, Session: sess, CancelURL: s.cancelURL(r, f)}
	if problem != "" {
		d.Error = problem
		s.render(w, http.StatusBadRequest, "problem.html", d)
		return
	}
	if p := firstNonEmpty(f.Provider, sess.Provider); p != "" && providerName(p) != "" {
		d.Flow.Provider, d.Name = p, providerName(p)
		s.render(w, http.StatusOK, "signin.html", d)
		return
	}
	s.render(w, http.StatusOK, "picker.html", d)
}

// handleAuthorizePost takes the picker's choice or the sign-in form.
func (s *Server) handleAuthorizePost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		badRequest(w, "Unreadable form.")
		return
	}
	f := flowFrom(r.PostForm)
	sess, problem := s.resolve(f)
	d := pageData{Base: s.publicURL(r), Flow: f, Session: sess, CancelURL: s.cancelURL(r, f)}
	if problem != "" {
		d.Error = problem
		s.render(w, http.StatusBadRequest, "problem.html", d)
		return
	}
	if providerName(f.Provider) == "" {
		d.Error = "Choose a provider."
		s.render(w, http.StatusBadRequest, "picker.html", d)
		return
	}
	d.Name = providerName(f.Provider)
	if r.PostForm.Get("step") != "credentials" {
		s.render(w, http.StatusOK, "signin.html", d)
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	d.Username = username
	if username == "" || subtle.ConstantTimeCompare([]byte(password), []byte(scenarioPassword)) != 1 {
		d.Error = "Incorrect username or password. The sandbox accepts the scenario logins below, with password " + scenarioPassword + "."
		s.render(w, http.StatusUnauthorized, "signin.html", d)
		return
	}
	value := s.issueCode(sess, f.Provider, username)
	if value == "" {
		d.Error = "This connection was disconnected while Connect was open. Ask the application for a new Connect link."
		s.render(w, http.StatusBadRequest, "problem.html", d)
		return
	}
	if sess.RedirectURI == "" {
		// Embedded flow: Connect hands the code to the page that opened it.
		d.Code = value
		msg := map[string]any{"name": "finch-auth-message-v2", "kind": "success", "code": value}
		if f.State != "" {
			msg["state"] = f.State
		}
		d.CodeJSON = template.JS(mustJSON(msg))
		s.render(w, http.StatusOK, "done.html", d)
		return
	}
	q := url.Values{"code": {value}}
	if f.State != "" {
		q.Set("state", f.State)
	}
	http.Redirect(w, r, withQuery(sess.RedirectURI, q), http.StatusFound)
}

// handleAuthorizeCancel returns to the app with OAuth-style error
// parameters (Finch does not document its own; see docs/sandbox.md).
func (s *Server) handleAuthorizeCancel(w http.ResponseWriter, r *http.Request) {
	f := flowFrom(r.URL.Query())
	sess, problem := s.resolve(f)
	if problem != "" {
		s.render(w, http.StatusBadRequest, "problem.html", pageData{Base: s.publicURL(r), Error: problem})
		return
	}
	if sess.RedirectURI == "" {
		d := pageData{Base: s.publicURL(r), Flow: f, CodeJSON: template.JS(`{"name":"finch-auth-message-v2","kind":"closed"}`)}
		s.render(w, http.StatusOK, "done.html", d)
		return
	}
	q := url.Values{"error": {"access_denied"}, "error_description": {"The employer closed Finch Connect without connecting."}}
	if f.State != "" {
		q.Set("state", f.State)
	}
	http.Redirect(w, r, withQuery(sess.RedirectURI, q), http.StatusFound)
}

func withQuery(raw string, add url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k, vs := range add {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// issueCode creates (or, for re-authentication, reuses) the connection the
// sign-in connects, and returns a fresh code for it; "" when the connection
// to re-authenticate is gone or disconnected. A re-authentication leaves
// the connection as it is: the code carries the changes, and the exchange
// applies them.
func (s *Server) issueCode(sess *session, provider, username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueCodeLocked(sess, provider, username)
}

// issueCodeLocked is issueCode with s.mu held.
func (s *Server) issueCodeLocked(sess *session, provider, username string) string {
	c := s.st.Connections[sess.ConnectionID]
	if sess.ConnectionID != "" && (c == nil || c.Status == "disconnected") {
		return ""
	}
	if c == nil {
		employees, entities := scenarios[0].Employees, scenarios[0].Entities
		scenario := scenarios[0].Username
		for _, sc := range scenarios {
			if sc.Username == username {
				employees, entities, scenario = sc.Employees, sc.Entities, sc.Username
			}
		}
		c = &connection{
			ID: s.id(), CustomerID: sess.CustomerID, CustomerName: sess.CustomerName, CustomerEmail: sess.CustomerEmail,
			ProviderID: provider, Products: sess.Products, Status: "connected", Scenario: scenario,
			Employees: employees, AccountID: s.id(), CompanyID: s.id(), Created: s.now(), Username: username,
			Finch: sess.Sandbox == "finch",
		}
		seed := []byte(c.ID)
		for _, b := range seed {
			c.Seed = c.Seed*131 + uint64(b)
		}
		for range entities {
			c.Entities = append(c.Entities, entity{ID: s.id(), Status: "connected"})
		}
		s.initAuth(c, sess)
		s.st.Connections[c.ID] = c
	}
	cd := &code{ConnectionID: c.ID, RedirectURI: sess.RedirectURI, Expires: s.now().Add(CodeLifetime)}
	if sess.ConnectionID != "" {
		// A re-authentication changes the connection only when its code
		// is exchanged (see code.Reauth).
		cd.Reauth = &reauth{Products: sess.Products}
	}
	value := s.random(24)
	s.maybePrune()
	s.st.Codes[digest(value)] = cd
	s.stats.CodesIssued++
	s.dirty = true
	return value
}
