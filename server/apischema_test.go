package server_test

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// apiDoc is the OpenAPI document, decoded generically, so that tests can
// hold the real handlers' answers to it: the status must be documented for
// the operation, and a JSON body must validate against the documented
// schema. Only the schema keywords the document uses are understood.
type apiDoc struct {
	root map[string]any
}

func parseAPIDoc(b []byte) (apiDoc, error) {
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		return apiDoc{}, err
	}
	if _, ok := root["paths"].(map[string]any); !ok {
		return apiDoc{}, fmt.Errorf("no paths")
	}
	return apiDoc{root: root}, nil
}

// resolve follows a local $ref ("#/components/schemas/Error").
func (d apiDoc) resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for range 10 {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = d.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cm, _ := cur.(map[string]any)
			cur = cm[part]
		}
		m, _ = cur.(map[string]any)
	}
	return m
}

// operation returns the documented operation for a method and a
// documented path template, or nil.
func (d apiDoc) operation(method, path string) map[string]any {
	item, _ := d.root["paths"].(map[string]any)[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

// check returns what is wrong with an answer of an operation: an
// undocumented status, a body that is not the documented JSON.
func (d apiDoc) check(method, path string, status int, header http.Header, body []byte) []string {
	op := d.operation(method, path)
	if op == nil {
		return []string{fmt.Sprintf("the OpenAPI document has no %s %s", method, path)}
	}
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[strconv.Itoa(status)]
	if !ok {
		resp, ok = responses["default"]
	}
	if !ok {
		return []string{fmt.Sprintf("status %d is not documented for %s %s", status, method, path)}
	}
	r := d.resolve(resp)
	content, _ := r["content"].(map[string]any)
	js, hasJSON := content["application/json"].(map[string]any)
	if !hasJSON {
		if status == http.StatusNoContent && len(body) > 0 {
			return []string{fmt.Sprintf("204 with a body: %q", body)}
		}
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		return []string{fmt.Sprintf("Content-Type = %q, want application/json", header.Get("Content-Type"))}
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []string{fmt.Sprintf("body is not JSON: %v", err)}
	}
	schema, ok := js["schema"]
	if !ok {
		return nil
	}
	return d.validate(schema, v, "body")
}

// validate checks v against schema: $ref, oneOf, type, enum, required,
// properties, additionalProperties: false, items and format date-time.
// anyOf wants at least one alternative to match, oneOf exactly one.
func (d apiDoc) validate(schemaV, v any, at string) []string {
	s := d.resolve(schemaV)
	if s == nil {
		return nil
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if alts, ok := s["oneOf"].([]any); ok {
		matched := 0
		var why []string
		for _, alt := range alts {
			e := d.validate(alt, v, at)
			if len(e) == 0 {
				matched++
			}
			why = append(why, e...)
		}
		if matched != 1 {
			bad("matches %d of the oneOf schemas, want exactly 1: %s", matched, strings.Join(why, "; "))
		}
	}
	if alts, ok := s["anyOf"].([]any); ok {
		var why []string
		matched := false
		for _, alt := range alts {
			e := d.validate(alt, v, at)
			matched = matched || len(e) == 0
			why = append(why, e...)
		}
		if !matched {
			bad("matches none of the anyOf schemas: %s", strings.Join(why, "; "))
		}
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, fmt.Sprint(x))
			}
		}
		if got := jsonType(v); !slices.Contains(types, got) && !(got == "integer" && slices.Contains(types, "number")) {
			bad("type %s, want %v", got, types)
			return errs
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		bad("%v is not one of %v", v, enum)
	}
	if f, _ := s["format"].(string); f == "date-time" {
		if str, ok := v.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				bad("%q is not a date-time", str)
			}
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, name := range asStrings(s["required"]) {
			if _, ok := v[name]; !ok {
				bad("required property %q is missing", name)
			}
		}
		for name, pv := range v {
			ps, ok := props[name]
			if !ok {
				if ap, isBool := s["additionalProperties"].(bool); isBool && !ap {
					bad("property %q is not documented", name)
				}
				continue
			}
			errs = append(errs, d.validate(ps, pv, at+"."+name)...)
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, x := range v {
				errs = append(errs, d.validate(items, x, at+"["+strconv.Itoa(i)+"]")...)
			}
		}
	}
	return errs
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func asStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

// TestAPIDoc_Check makes sure the checker the API tests rely on catches
// what it is for: a token field in a connection, a missing field, a value
// outside an enum, an undocumented status, an unexpected content type.
func TestAPIDoc_Check(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseAPIDoc(raw)
	if err != nil {
		t.Fatal(err)
	}
	js := http.Header{"Content-Type": {"application/json"}}
	ourErr := func(code int, name, finchCode string) string {
		return fmt.Sprintf(`{"code":%d,"name":%q,"finch_code":%q,"message":"m","error":%q,"request_id":"r"}`, code, name, finchCode, finchCode)
	}
	conn := `"connection_id":"c","customer_id":"a","customer_name":"A","provider_id":"gusto","products":[],"entity_ids":[],"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"`
	tests := []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		wantProblem        bool
	}{
		{"a connection", "GET", "/v1/connections/{id}", 200, js, `{` + conn + `,"status":"connected"}`, false},
		{"a token in a connection", "GET", "/v1/connections/{id}", 200, js, `{` + conn + `,"status":"connected","access_token":"tok"}`, true},
		{"an unknown status", "GET", "/v1/connections/{id}", 200, js, `{` + conn + `,"status":"happy"}`, true},
		{"a missing field", "GET", "/v1/connections/{id}", 200, js, `{"connection_id":"c","status":"connected"}`, true},
		{"a bad date", "GET", "/v1/connections/{id}", 200, js, `{` + strings.Replace(conn, "2026-01-02T03:04:05Z", "yesterday", 1) + `,"status":"connected"}`, true},
		{"a page", "GET", "/v1/connections", 200, js, `{"data":[{` + conn + `,"status":"reauth"}],"next":""}`, false},
		{"a page of strings", "GET", "/v1/connections", 200, js, `{"data":["c"],"next":""}`, true},
		{"an undocumented status", "GET", "/v1/connections/{id}", 418, js, `{}`, true},
		{"an error", "GET", "/v1/connections/{id}", 404, js, ourErr(404, "not_found_error", "not_found"), false},
		{"an error in the old shape", "GET", "/v1/connections/{id}", 404, js, `{"error":"not_found","message":"m","request_id":"r"}`, true},
		{"an error without its status", "GET", "/v1/connections/{id}", 404, js, `{"name":"not_found_error","finch_code":"not_found","error":"not_found","message":"m","request_id":"r"}`, true},
		{"an error as text", "GET", "/v1/connections/{id}", 404, http.Header{"Content-Type": {"text/plain"}}, `not found`, true},
		{"an undocumented operation", "PUT", "/v1/connections/{id}", 200, js, `{}`, true},
		{"a 204 with a body", "DELETE", "/v1/connections/{id}", 204, nil, `x`, true},
		{"Finch's error through the proxy", "GET", "/v1/connections/{id}/finch/{path}", 401, js, `{"code":401,"name":"authentication_error","finch_code":"reauthenticate_user","message":"m"}`, false},
		{"our error through the proxy", "GET", "/v1/connections/{id}/finch/{path}", 401, js, ourErr(401, "invalid_token_error", "unauthorized"), false},
		{"our refusal of a path", "GET", "/v1/connections/{id}/finch/{path}", 403, js, ourErr(403, "permission_denied", "path_not_allowed"), false},
		{"neither error through the proxy", "GET", "/v1/connections/{id}/finch/{path}", 401, js, `{"oops":true}`, true},
		{"Finch's data through the proxy", "GET", "/v1/connections/{id}/finch/{path}", 200, js, `{"anything":1}`, false},
	}
	for _, tt := range tests {
		problems := doc.check(tt.method, tt.path, tt.status, tt.header, []byte(tt.body))
		if got := len(problems) > 0; got != tt.wantProblem {
			t.Errorf("%s: check(%s %s %d %s) = %q, want a problem: %v", tt.name, tt.method, tt.path, tt.status, tt.body, problems, tt.wantProblem)
		}
	}
}
