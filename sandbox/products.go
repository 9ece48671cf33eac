package sandbox

import "net/http"

// routeProducts is the product scope each route that takes an access
// token needs, by its ServeMux pattern (finch-api-more.md §10): a token
// whose connection was not granted it gets 403 insufficient_scope_error
// from [Server.data]. "" means any valid token will do (introspection,
// disconnects, jobs, /forward, Finch's sandbox API). "deduction", the
// deprecated alias of "benefits", grants what "benefits" grants
// ([connection.hasProduct]).
//
// Routes register through [Server.scoped], which takes the product from
// here, so the table and the routes cannot disagree; a route registered
// with s.data(product, h) directly should use the product listed here.
// products_test.go checks every entry against the running routes.
var routeProducts = map[string]string{
	// Organization.
	"GET /employer/company":     "company",
	"GET /employer/directory":   "directory",
	"POST /employer/individual": "individual", // SSNs also need "ssn" and options.include ["ssn"]
	"POST /employer/employment": "employment",
	// Payroll.
	"GET /employer/payment":                              "payment",
	"GET /employer/pay-groups":                           "payment",
	"GET /employer/pay-groups/{pay_group_id}":            "payment",
	"POST /employer/pay-statement":                       "pay_statement",
	"GET /employer/pay-statement-item":                   "pay_statement",
	"GET /employer/pay-statement-item/rule":              "pay_statement",
	"POST /employer/pay-statement-item/rule":             "pay_statement",
	"PUT /employer/pay-statement-item/rule/{rule_id}":    "pay_statement",
	"DELETE /employer/pay-statement-item/rule/{rule_id}": "pay_statement",
	// Documents.
	"GET /employer/documents":               "documents",
	"GET /employer/documents/{document_id}": "documents",
	// Deductions.
	"GET /employer/benefits":                             "benefits",
	"POST /employer/benefits":                            "benefits",
	"GET /employer/benefits/meta":                        "benefits",
	"POST /employer/benefits/register":                   "benefits",
	"GET /employer/benefits/{benefit_id}":                "benefits",
	"POST /employer/benefits/{benefit_id}":               "benefits",
	"GET /employer/benefits/{benefit_id}/enrolled":       "benefits",
	"GET /employer/benefits/{benefit_id}/individuals":    "benefits",
	"POST /employer/benefits/{benefit_id}/individuals":   "benefits",
	"DELETE /employer/benefits/{benefit_id}/individuals": "benefits",
	// Jobs: a deductions job is polled with the product that started it;
	// automated jobs need no product of their own (Finch does not
	// document one), except that a W-4 sync needs "documents" (checked by
	// the handler, since data_sync_all shares the route).
	"GET /jobs/manual/{job_id}":       "benefits",
	"POST /jobs/automated":            "",
	"GET /jobs/automated":             "",
	"GET /jobs/automated/{job_id}":    "",
	"POST /sandbox/jobs":              "",
	"GET /sandbox/jobs/configuration": "",
	"PUT /sandbox/jobs/configuration": "",
	// Request forwarding needs no product of its own either.
	"POST /forward": "",
}

// productFor is the product route pattern needs; it panics for a pattern
// routeProducts does not list, so that a new route cannot be registered
// through [Server.scoped] without a scope.
func productFor(pattern string) string {
	p, ok := routeProducts[pattern]
	if !ok {
		panic("sandbox: route " + pattern + " has no entry in routeProducts")
	}
	return p
}

// dataHandler is an employer data route's handler, as [Server.data] runs it.
type dataHandler = func(w http.ResponseWriter, r *http.Request, c *connection, entity string)

// scoped registers an employer data route (see [Server.data]) with the
// product routeProducts lists for it.
func (s *Server) scoped(pattern string, h dataHandler) {
	p := productFor(pattern)
	if p == "" {
		panic("sandbox: scoped route " + pattern + " needs a product; register it with bearer")
	}
	s.mux.HandleFunc(pattern, s.data(p, h))
}

// bearerRoute registers a route that needs a valid token but no product
// (routeProducts lists it with "").
func (s *Server) bearerRoute(pattern string, h func(http.ResponseWriter, *http.Request, *connection, *token)) {
	if p := productFor(pattern); p != "" {
		panic("sandbox: route " + pattern + " needs the " + p + " product; register it with scoped")
	}
	s.mux.HandleFunc(pattern, s.bearer(h))
}

// insufficientScope answers 403 insufficient_scope_error for a product
// the connection lacks.
func insufficientScope(w http.ResponseWriter, product string) {
	writeError(w, http.StatusForbidden, "insufficient_scope_error", "", "This connection was not granted the "+product+" product.")
}

// providerProducts are the products every sandbox provider offers in
// GET /providers: all of Finch's generally available ones.
var providerProducts = []string{"company", "directory", "individual", "ssn", "employment", "payment", "pay_statement", "benefits", "documents"}
