package server

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// homePageSize is how many connections the home page shows at a time.
const homePageSize = 50

// listBatch is how many rows the home page reads from the store per call.
const listBatch = 1000

// Sort orders of the home page's list.
const (
	sortNewest = "newest"
	sortOldest = "oldest"
	sortName   = "name"
)

var sortNames = []struct{ Value, Label string }{
	{sortNewest, "Newest first"}, {sortOldest, "Oldest first"}, {sortName, "Customer name"},
}

// listQuery is what the operator asked the home page for, from its URL:
// a search, filters, an order and a page.
type listQuery struct {
	Search   string // matches a customer id, a customer name or a connection id
	Provider string
	Status   string
	Sort     string
	Page     int // from 1
}

func parseListQuery(v url.Values) listQuery {
	q := listQuery{
		Search:   strings.TrimSpace(v.Get("q")),
		Provider: strings.TrimSpace(v.Get("provider")),
		Status:   strings.TrimSpace(v.Get("status")),
		Sort:     v.Get("sort"),
	}
	if len(q.Search) > 255 {
		q.Search = q.Search[:255]
	}
	if !slices.ContainsFunc(sortNames, func(s struct{ Value, Label string }) bool { return s.Value == q.Sort }) {
		q.Sort = sortNewest
	}
	q.Page, _ = strconv.Atoi(v.Get("page"))
	q.Page = max(q.Page, 1)
	return q
}

// link is the home page's URL for q, with base the public URL's path;
// defaults are left out, so the plain list is just base + "/".
func (q listQuery) link(base string) string {
	v := url.Values{}
	if q.Search != "" {
		v.Set("q", q.Search)
	}
	if q.Provider != "" {
		v.Set("provider", q.Provider)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Sort != sortNewest && q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	if len(v) == 0 {
		return base + "/"
	}
	return base + "/?" + v.Encode()
}

// matches reports whether c is one of the connections q asks for. The
// search is a case-insensitive substring of the customer's id or name, or
// of the connection id.
func (q listQuery) matches(c *finchconnect.Connection, search string) bool {
	if q.Provider != "" && c.ProviderID != q.Provider || q.Status != "" && c.Status != q.Status {
		return false
	}
	if search == "" {
		return true
	}
	return strings.Contains(strings.ToLower(c.CustomerID), search) ||
		strings.Contains(strings.ToLower(c.CustomerName), search) ||
		strings.Contains(strings.ToLower(c.ConnectionID), search)
}

// sortConnections orders conns for the page. Ties fall back to the
// connection id, so that paging is stable.
func sortConnections(conns []finchconnect.Connection, order string) {
	slices.SortFunc(conns, func(a, b finchconnect.Connection) int {
		var c int
		switch order {
		case sortOldest:
			c = a.CreatedAt.Compare(b.CreatedAt)
		case sortName:
			c = cmp.Compare(strings.ToLower(cmp.Or(a.CustomerName, a.CustomerID)), strings.ToLower(cmp.Or(b.CustomerName, b.CustomerID)))
		default:
			c = b.CreatedAt.Compare(a.CreatedAt)
		}
		return cmp.Or(c, cmp.Compare(a.ConnectionID, b.ConnectionID))
	})
}

// connectionRow is one connection in the home page's table.
type connectionRow struct {
	URL, Name, CustomerID, ConnectionID string
	Provider, Status, StatusLabel       string
	Connected                           string
}

// option is a choice of a filter or of the order, or a count by status.
type option struct {
	Value, Label string
	Count        int
	Selected     bool
	URL          string // the list filtered by it
}

type homePage struct {
	Notice string
	Query  listQuery

	Rows             []connectionRow
	Total, Matching  int // every connection; those the search and filters match
	From, To         int
	Page, Pages      int
	PrevURL, NextURL string
	Filtered         bool
	ClearURL         string
	StatusCounts     []option
	Providers        []option
	Statuses         []option
	Sorts            []option
	ConnectOpen      bool // the connect form starts unfolded
	Form             connectForm
	ProductChoices   []productChoice
	Problems         []string
}

// allConnections reads every connection's record (no token is opened),
// in batches.
func (s *Server) allConnections(ctx context.Context) ([]finchconnect.Connection, error) {
	var all []finchconnect.Connection
	after := ""
	for {
		conns, next, err := s.store.List(ctx, tokenstore.Filter{After: after, Limit: listBatch})
		if err != nil {
			return nil, fmt.Errorf("%w: list connections: %v", connect.ErrStoreDown, err)
		}
		all = append(all, conns...)
		if next == "" || len(conns) == 0 {
			return all, nil
		}
		after = next
	}
}

// homeData builds the home page for r: the list the URL's query asks for,
// and the connect form holding form. form.Products nil means the
// configured defaults; an empty, non-nil list is the operator's (empty)
// choice and is shown as such.
func (s *Server) homeData(r *http.Request, form connectForm, problems []string) (homePage, error) {
	all, err := s.allConnections(r.Context())
	if err != nil {
		return homePage{}, err
	}
	base := s.publicURL.Path
	q := parseListQuery(r.URL.Query())
	page := homePage{Query: q, Total: len(all), Form: form, Problems: problems}

	search := strings.ToLower(q.Search)
	statusCount := map[string]int{}
	providerCount := map[string]int{}
	var matching []finchconnect.Connection
	for i := range all {
		c := &all[i]
		statusCount[c.Status]++
		providerCount[c.ProviderID]++
		if q.matches(c, search) {
			matching = append(matching, *c)
		}
	}
	sortConnections(matching, q.Sort)
	page.Matching = len(matching)
	page.Pages = max((len(matching)+homePageSize-1)/homePageSize, 1)
	page.Page = min(q.Page, page.Pages)
	from := (page.Page - 1) * homePageSize
	shown := matching[from:min(from+homePageSize, len(matching))]
	page.From, page.To = from+1, from+len(shown)
	if len(shown) == 0 {
		page.From = 0
	}
	for _, c := range shown {
		page.Rows = append(page.Rows, connectionRow{
			URL:          base + "/connections/" + url.PathEscape(c.ConnectionID),
			Name:         cmp.Or(c.CustomerName, c.CustomerID, c.ConnectionID),
			CustomerID:   c.CustomerID,
			ConnectionID: c.ConnectionID,
			Provider:     providerName(c.ProviderID),
			Status:       c.Status,
			StatusLabel:  statusName(c.Status),
			Connected:    when(c.CreatedAt),
		})
	}
	at := func(n int) string {
		p := q
		p.Page = n
		return p.link(base)
	}
	if page.Page > 1 {
		page.PrevURL = at(page.Page - 1)
	}
	if page.Page < page.Pages {
		page.NextURL = at(page.Page + 1)
	}
	page.Filtered = q.Search != "" || q.Provider != "" || q.Status != ""
	page.ClearURL = listQuery{Sort: q.Sort}.link(base)

	// The counts by status, each a link to the list of that status.
	statuses := slices.Clone(statusOrder)
	for st := range statusCount {
		if !slices.Contains(statuses, st) {
			statuses = append(statuses, st)
		}
	}
	if q.Status != "" && !slices.Contains(statuses, q.Status) {
		statuses = append(statuses, q.Status)
	}
	for _, st := range statuses {
		filtered := listQuery{Status: st, Sort: q.Sort}
		o := option{Value: st, Label: statusName(st), Count: statusCount[st], Selected: st == q.Status, URL: filtered.link(base)}
		page.Statuses = append(page.Statuses, o)
		if o.Count > 0 {
			page.StatusCounts = append(page.StatusCounts, o)
		}
	}
	providers := make([]string, 0, len(providerCount))
	for p := range providerCount {
		providers = append(providers, p)
	}
	if q.Provider != "" && providerCount[q.Provider] == 0 {
		providers = append(providers, q.Provider)
	}
	slices.SortFunc(providers, func(a, b string) int { return cmp.Compare(providerName(a), providerName(b)) })
	for _, p := range providers {
		page.Providers = append(page.Providers, option{Value: p, Label: providerName(p), Count: providerCount[p], Selected: p == q.Provider})
	}
	for _, o := range sortNames {
		page.Sorts = append(page.Sorts, option{Value: o.Value, Label: o.Label, Selected: o.Value == q.Sort})
	}

	if form.Products == nil {
		page.Form.Products = s.cfg.Products
	}
	page.ProductChoices = make([]productChoice, len(products))
	for i, p := range products {
		page.ProductChoices[i] = productChoice{Name: p, Label: productLabel(p), Checked: slices.Contains(page.Form.Products, p)}
	}
	page.ConnectOpen = len(all) == 0 || problems != nil || r.URL.Query().Has("connect")
	if r.URL.Query().Get("disconnected") != "" {
		page.Notice = "The connection was disconnected at Finch and its token deleted."
	}
	return page, nil
}

// handleHome lists the connections this instance holds and offers the form
// that starts a new one.
func (s *Server) handleHome() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := s.homeData(r, connectForm{}, nil)
		if err != nil {
			s.fail(w, r, false, err)
			return
		}
		s.render(w, r, http.StatusOK, "home", "Connections", data)
	})
}

// productLabels name the products on the connect form.
var productLabels = map[string]string{
	"company": "Company", "directory": "Directory", "individual": "Individuals", "employment": "Employment",
	"payment": "Payments", "pay_statement": "Pay statements", "benefits": "Benefits", "ssn": "SSN", "documents": "Documents",
}

func productLabel(p string) string { return cmp.Or(productLabels[p], p) }
