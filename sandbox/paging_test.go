package sandbox_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestDirectory_Paging: limit and offset of any size page without
// overflowing (a limit of MaxInt64 once overflowed offset+limit and
// panicked); negative or non-numeric ones are 400 bad_request.
func TestDirectory_Paging(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok, _ := e.sandboxToken() // 3 people
	tests := []struct {
		query  string
		status int
		items  int
		offset float64
	}{
		{"", 200, 3, 0},
		{"?limit=2", 200, 2, 0},
		{"?offset=1&limit=1", 200, 1, 1},
		{"?offset=1&limit=9223372036854775807", 200, 2, 1},
		{"?offset=2&limit=99999999999999999999", 200, 1, 2},
		{"?offset=9223372036854775807&limit=9223372036854775807", 200, 0, 9223372036854775807},
		{"?offset=5", 200, 0, 5},
		{"?limit=0", 200, 0, 0},
		{"?offset=-1", 400, 0, 0},
		{"?limit=-1", 400, 0, 0},
		{"?limit=-99999999999999999999", 400, 0, 0},
		{"?offset=x", 400, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := e.on(t).call("GET", "/employer/directory"+tt.query, "bearer:"+tok, nil)
			if r.status != tt.status {
				t.Fatalf("GET /employer/directory%s = %d %s, want %d", tt.query, r.status, r.body, tt.status)
			}
			m := r.json(t)
			if tt.status != http.StatusOK {
				if m["name"] != "bad_request" {
					t.Errorf("error name = %v, want bad_request", m["name"])
				}
				return
			}
			if got := len(m["individuals"].([]any)); got != tt.items {
				t.Errorf("individuals = %d, want %d", got, tt.items)
			}
			p := m["paging"].(map[string]any)
			if p["count"] != float64(3) || p["offset"] != tt.offset {
				t.Errorf("paging = %v, want count 3 and offset %v", p, tt.offset)
			}
		})
	}
}

// TestPayStatements_Paging: a negative offset or limit in a pay-statement
// request is 400 bad_request (a negative offset once panicked); valid
// paging keeps Finch's defaults (limit 100, at most 5000).
func TestPayStatements_Paging(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	pays := e.call("GET", "/employer/payment?start_date=2000-01-01&end_date=2100-01-01", "bearer:"+tok, nil)
	var list []map[string]any
	if err := json.Unmarshal(pays.body, &list); err != nil || len(list) == 0 {
		t.Fatalf("payments = %d %s", pays.status, pays.body)
	}
	// The payment of the most people: pay groups differ in size, and
	// limit 3 needs at least 3 statements.
	id, most := "", 0
	for _, p := range list {
		if n := len(p["individual_ids"].([]any)); n > most {
			id, most = p["id"].(string), n
		}
	}
	tests := []struct {
		name          string
		limit, offset any
		status        int
		items         int // -1: don't check
	}{
		{"defaults", nil, nil, 200, -1},
		{"limit 3", 3, nil, 200, 3},
		{"offset past the end", nil, 1 << 62, 200, 0},
		{"huge offset and limit", 1 << 62, 1<<63 - 1, 200, 0},
		{"negative offset", nil, -1, 400, 0},
		{"negative limit", -1, nil, 400, 0},
		{"very negative offset", 3, -1 << 63, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := map[string]any{"payment_id": id}
			if tt.limit != nil {
				req["limit"] = tt.limit
			}
			if tt.offset != nil {
				req["offset"] = tt.offset
			}
			r := e.on(t).call("POST", "/employer/pay-statement", "bearer:"+tok, map[string]any{"requests": []any{req}})
			if r.status != tt.status {
				t.Fatalf("POST /employer/pay-statement %v = %d, want %d", req, r.status, tt.status)
			}
			m := r.json(t)
			if tt.status != http.StatusOK {
				if m["name"] != "bad_request" {
					t.Errorf("error name = %v, want bad_request", m["name"])
				}
				return
			}
			body := m["responses"].([]any)[0].(map[string]any)["body"].(map[string]any)
			if got := len(body["pay_statements"].([]any)); tt.items >= 0 && got != tt.items {
				t.Errorf("pay_statements = %d, want %d", got, tt.items)
			}
		})
	}
}
