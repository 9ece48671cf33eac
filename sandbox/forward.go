package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// POST /forward is Finch's request forwarding: a raw call to the
// provider's own API (finch-api-more.md §5). The sandbox has no provider
// behind it, so it emulates a tiny API for each provider (forwardAPIs):
// a GET of its company route answers the employer, a GET of its
// employees route the first people of the directory, in the provider's
// own field names; any other method on those routes is the provider's
// 405 and any other route its 404. Upstream errors come back as Finch
// returns them: a 200 from /forward whose statusCode is the provider's.
//
// Finch does not offer request forwarding in the Finch Sandbox, so a
// connection with Finch-generated data (connection_type "finch": a
// session with "sandbox": "finch", or POST /sandbox/connections) is
// refused with 501 not_implemented, the error Finch gives an endpoint its
// integration does not support; Finch does not document the exact body.

// forwardAPI is the emulated API of one provider.
type forwardAPI struct {
	company, employees string
	camel              bool // camelCase field names
	wrap               string
}

var forwardAPIs = map[string]forwardAPI{
	"gusto":             {company: "/v1/companies", employees: "/v1/employees"},
	"adp_workforce_now": {company: "/core/v1/organization", employees: "/hr/v2/workers", camel: true, wrap: "workers"},
	"bamboo_hr":         {company: "/v1/company_information", employees: "/v1/employees/directory", camel: true, wrap: "employees"},
	"paychex_flex":      {company: "/companies", employees: "/workers", camel: true, wrap: "content"},
	"rippling":          {company: "/platform/api/companies/current", employees: "/platform/api/employees"},
	"justworks":         {company: "/v1/company", employees: "/v1/members", wrap: "members"},
	"paylocity":         {company: "/api/v2/companies", employees: "/api/v2/employees", camel: true},
	"workday":           {company: "/ccx/api/v1/organizations", employees: "/ccx/api/v1/workers", camel: true, wrap: "data"},
}

// forwardEmployees is how many people an emulated employees route shows.
const forwardEmployees = 25

var (
	forwardMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	forwardRouteRe = regexp.MustCompile(`^/[A-Za-z0-9_\-/]*$`)
)

func (s *Server) handleForward(w http.ResponseWriter, r *http.Request, c *connection, _ *token) {
	status, _ := s.countDataCall(c, "")
	if statusError(w, status) {
		return
	}
	if c.Finch {
		writeError(w, http.StatusNotImplemented, "not_implemented", "", "Request forwarding is not available for Finch Sandbox connections (connection_type \"finch\"); use a provider sandbox connection.")
		return
	}
	var req struct {
		Method         string          `json:"method"`
		Route          string          `json:"route"`
		Data           json.RawMessage `json:"data"`
		Params         json.RawMessage `json:"params"`
		RequestHeaders json.RawMessage `json:"request_headers"`
		Headers        json.RawMessage `json:"headers"` // the 2024 spec's name for request_headers
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, "The body must be a JSON object with method and route.")
		return
	}
	var problems []string
	method := strings.ToUpper(req.Method)
	switch {
	case req.Method == "":
		problems = append(problems, "method is required")
	case !slices.Contains(forwardMethods, method):
		problems = append(problems, "method must be one of GET, POST, PUT, DELETE, PATCH")
	}
	switch {
	case req.Route == "":
		problems = append(problems, "route is required")
	case !forwardRouteRe.MatchString(req.Route):
		problems = append(problems, "route must begin with / and contain only letters, digits, -, _ and / (give query parameters in params)")
	}
	headers := req.RequestHeaders
	if isAbsent(headers) {
		headers = req.Headers
	}
	echo := map[string]any{"method": req.Method, "route": req.Route}
	for _, f := range []struct {
		name  string
		raw   json.RawMessage
		kinds string // the JSON kinds allowed: o(bject), s(tring)
	}{{"data", req.Data, "so"}, {"params", req.Params, "o"}, {"request_headers", headers, "o"}} {
		key := f.name
		if key == "request_headers" {
			key = "headers"
		}
		if isAbsent(f.raw) {
			echo[key] = nil
			continue
		}
		var v any
		json.Unmarshal(f.raw, &v) // decodeBody has already checked it is JSON
		_, isObject := v.(map[string]any)
		_, isString := v.(string)
		if !(isObject && strings.Contains(f.kinds, "o") || isString && strings.Contains(f.kinds, "s")) {
			if f.kinds == "o" {
				problems = append(problems, f.name+" must be a JSON object or null")
			} else {
				problems = append(problems, f.name+" must be a string, a JSON object or null")
			}
			continue
		}
		echo[key] = v
	}
	if problems != nil {
		badRequest(w, strings.Join(problems, "; "))
		return
	}
	code, body, extra := s.upstream(c, method, req.Route)
	upHeaders := map[string]any{"content-type": "application/json; charset=utf-8", "x-request-id": s.id()}
	for k, v := range extra {
		upHeaders[k] = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"request": echo, "statusCode": code, "headers": upHeaders, "data": body})
}

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// upstream is the emulated provider's answer: its status, its body as a
// string, and extra headers.
func (s *Server) upstream(c *connection, method, route string) (int, string, map[string]any) {
	api, ok := forwardAPIs[c.ProviderID]
	if !ok {
		api = forwardAPIs["gusto"]
	}
	route = strings.TrimSuffix(route, "/")
	if route != api.company && route != api.employees {
		return http.StatusNotFound, mustJSON(map[string]any{"error": "not_found", "message": "No route " + route + "."}), nil
	}
	if method != http.MethodGet {
		return http.StatusMethodNotAllowed, mustJSON(map[string]any{"error": "method_not_allowed", "message": method + " is not allowed on " + route + "."}), map[string]any{"allow": "GET"}
	}
	key := func(snake string) string {
		if !api.camel {
			return snake
		}
		parts := strings.Split(snake, "_")
		for i := 1; i < len(parts); i++ {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
		return strings.Join(parts, "")
	}
	if route == api.company {
		co, _ := s.companyOf(c, "")
		return http.StatusOK, mustJSON(map[string]any{key("id"): c.CompanyID, key("legal_name"): co["legal_name"], key("ein"): co["ein"]}), nil
	}
	var list []any
	for _, p := range s.peopleOf(c, "") {
		if len(list) == forwardEmployees {
			break
		}
		list = append(list, map[string]any{key("id"): p.ID, key("first_name"): p.First, key("last_name"): p.Last, key("job_title"): p.Title, key("is_active"): p.Active})
	}
	if list == nil {
		list = []any{}
	}
	if api.wrap != "" {
		return http.StatusOK, mustJSON(map[string]any{api.wrap: list}), nil
	}
	return http.StatusOK, mustJSON(list), nil
}
