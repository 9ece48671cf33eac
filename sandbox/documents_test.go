package sandbox_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

var docProducts = []string{"company", "directory", "employment", "documents"}

// employmentTypes returns each person of the directory with their
// employment type, read through the API.
func (e *env) employmentTypes(auth, query string) map[string]string {
	e.t.Helper()
	var reqs []any
	for _, p := range arrayOf(e.t, e.call("GET", "/employer/directory"+query, auth, nil), "individuals") {
		reqs = append(reqs, map[string]any{"individual_id": p["id"]})
	}
	out := map[string]string{}
	for _, r := range arrayOf(e.t, e.call("POST", "/employer/employment"+query, auth, map[string]any{"requests": reqs}), "responses") {
		out[r["individual_id"].(string)] = r["body"].(map[string]any)["employment"].(map[string]any)["type"].(string)
	}
	return out
}

// TestDocuments_W4s: every employee of the directory has a W-4, no
// contractor has one, and each document's detail is the W-4 variant its
// type says, for the same person and year.
func TestDocuments_W4s(t *testing.T) {
	t.Parallel() // slow (waits, node or many requests): overlaps the others
	e := newEnv(t, sandbox.Options{})
	auth := "bearer:" + e.token("authorized_complex", docProducts...)
	people := e.employmentTypes(auth, "")
	r := e.call("GET", "/employer/documents", auth, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /employer/documents = %d %s", r.status, r.body)
	}
	docs := arrayOf(t, r, "documents")
	paging := r.json(t)["paging"].(map[string]any)
	if paging["count"] != float64(len(docs)) || paging["offset"] != 0.0 {
		t.Errorf("paging = %v with %d documents", paging, len(docs))
	}
	has := map[string]int{}
	types := map[string]int{}
	for _, d := range docs {
		id, who := d["id"].(string), d["individual_id"].(string)
		kind, ok := people[who]
		switch {
		case !ok:
			t.Errorf("document %s is of %s, who is not in the directory", id, who)
		case kind == "contractor":
			t.Errorf("contractor %s has a W-4", who)
		}
		has[who]++
		types[d["type"].(string)]++
		if !strings.HasSuffix(d["url"].(string), "/finch/employer/documents/"+id) {
			t.Errorf("url = %v, want the sandbox's /employer/documents/%s", d["url"], id)
		}
		one := e.call("GET", "/employer/documents/"+id, auth, nil)
		if one.status != http.StatusOK {
			t.Fatalf("GET /employer/documents/%s = %d %s", id, one.status, one.body)
		}
		w4 := one.json(t)
		data := w4["data"].(map[string]any)
		if w4["type"] != d["type"] || w4["year"] != d["year"] || data["individual_id"] != who {
			t.Errorf("document %s = %s, want type %v, year %v of %s", id, one.body, d["type"], d["year"], who)
		}
		year := int(d["year"].(float64))
		switch d["type"] {
		case "w4_2020":
			if year < 2020 {
				t.Errorf("a 2020 W-4 for %d", year)
			}
			if data["total_claim_dependent_and_other_credits"] != data["amount_for_qualifying_children_under_17"].(float64)+data["amount_for_other_dependents"].(float64) {
				t.Errorf("W-4 2020 %v: step 3's total is not its two amounts", data)
			}
			for _, k := range []string{"deductions", "extra_withholding", "other_income", "filing_status"} {
				if _, ok := data[k]; !ok {
					t.Errorf("W-4 2020 lacks %s", k)
				}
			}
		case "w4_2005":
			if year >= 2020 {
				t.Errorf("a 2005 W-4 for %d", year)
			}
			for _, k := range []string{"exemption", "additional_withholding", "total_number_of_allowances", "filing_status"} {
				if _, ok := data[k]; !ok {
					t.Errorf("W-4 2005 lacks %s", k)
				}
			}
		default:
			t.Errorf("document type %v", d["type"])
		}
	}
	for who, kind := range people {
		if kind == "employee" && has[who] == 0 {
			t.Errorf("employee %s has no W-4", who)
		}
	}
	if types["w4_2020"] == 0 || types["w4_2005"] == 0 {
		t.Errorf("document types %v, want both variants among 320 people", types)
	}
	if again := e.call("GET", "/employer/documents", auth, nil); !bytes.Equal(again.body, r.body) {
		t.Error("a second listing differs from the first")
	}
}

func TestDocuments_FiltersAndPaging(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth := "bearer:" + e.token("authorized_complex", docProducts...)
	all := arrayOf(t, e.call("GET", "/employer/documents", auth, nil), "documents")
	idsOf := func(docs []map[string]any) []string {
		var out []string
		for _, d := range docs {
			out = append(out, d["id"].(string))
		}
		return out
	}
	get := func(q string) resp {
		r := e.call("GET", "/employer/documents?"+q, auth, nil)
		if r.status != http.StatusOK {
			t.Fatalf("?%s = %d %s", q, r.status, r.body)
		}
		return r
	}
	p := get("limit=5&offset=3")
	if got, want := idsOf(arrayOf(t, p, "documents")), idsOf(all[3:8]); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("limit=5&offset=3 = %v, want %v", got, want)
	}
	if pg := p.json(t)["paging"].(map[string]any); pg["count"] != float64(len(all)) || pg["offset"] != 3.0 {
		t.Errorf("paging = %v, want count %d and offset 3", pg, len(all))
	}
	if n := len(arrayOf(t, get("offset=100000"), "documents")); n != 0 {
		t.Errorf("offset past the end gives %d documents", n)
	}
	a, b := all[0]["individual_id"].(string), all[len(all)-1]["individual_id"].(string)
	for _, q := range []string{url.Values{"individual_ids[]": {a, b}}.Encode(), "individual_ids=" + a + "," + b} {
		for _, d := range arrayOf(t, get(q), "documents") {
			if d["individual_id"] != a && d["individual_id"] != b {
				t.Errorf("?%s gave a document of %v", q, d["individual_id"])
			}
		}
	}
	for _, kind := range []string{"w4_2020", "w4_2005"} {
		docs := arrayOf(t, get("types%5B%5D="+kind), "documents")
		want := 0
		for _, d := range all {
			if d["type"] == kind {
				want++
			}
		}
		if len(docs) != want {
			t.Errorf("types[]=%s gave %d documents, want %d", kind, len(docs), want)
		}
	}
	if n := len(arrayOf(t, get("types=w4_2020,w4_2005"), "documents")); n != len(all) {
		t.Errorf("both types gave %d documents, want %d", n, len(all))
	}
	for _, q := range []string{"types%5B%5D=w2", "limit=-1", "offset=x"} {
		if r := e.call("GET", "/employer/documents?"+q, auth, nil); r.status != http.StatusBadRequest || r.json(t)["finch_code"] != "invalid_request" {
			t.Errorf("?%s = %d %s, want 400 invalid_request", q, r.status, r.body)
		}
	}
	if r := e.call("GET", "/employer/documents/00000000-0000-4000-8000-000000000000", auth, nil); r.status != http.StatusNotFound || r.json(t)["name"] != "not_found_error" {
		t.Errorf("an unknown document = %d %s, want 404 not_found_error", r.status, r.body)
	}
}

// TestDocuments_Entities: entity_ids narrows the documents to that
// entity's people, and a document of another entity is not found through
// it.
func TestDocuments_Entities(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth := "bearer:" + e.token("authorized_complex", docProducts...)
	ents := e.call("GET", "/introspect", auth, nil).json(t)["entities"].([]any)
	a, b := ents[0].(map[string]any)["id"].(string), ents[1].(map[string]any)["id"].(string)
	qa, qb := "?entity_ids[]="+a, "?entity_ids[]="+b
	peopleA := e.employmentTypes(auth, qa)
	docsA := arrayOf(t, e.call("GET", "/employer/documents"+qa, auth, nil), "documents")
	if len(docsA) == 0 {
		t.Fatal("entity a has no documents")
	}
	for _, d := range docsA {
		if _, ok := peopleA[d["individual_id"].(string)]; !ok {
			t.Errorf("entity a lists a document of %v, not one of its people", d["individual_id"])
		}
	}
	id := docsA[0]["id"].(string)
	if r := e.call("GET", "/employer/documents/"+id+qa, auth, nil); r.status != http.StatusOK {
		t.Errorf("entity a's document through a = %d", r.status)
	}
	if r := e.call("GET", "/employer/documents/"+id+qb, auth, nil); r.status != http.StatusNotFound {
		t.Errorf("entity a's document through b = %d, want 404", r.status)
	}
}

// TestDocuments_AddedPeople: someone added by POST /sandbox/directory has
// a W-4 too, under the id the directory gives them.
func TestDocuments_AddedPeople(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	r := e.call("POST", "/sandbox/connections", "basic", map[string]any{"provider_id": "gusto", "employee_size": 2, "products": docProducts})
	auth := "bearer:" + r.json(t)["access_token"].(string)
	added := e.call("POST", "/sandbox/directory", auth, []map[string]any{{"first_name": "New", "last_name": "Hire"}})
	var people []map[string]any
	if err := json.Unmarshal(added.body, &people); err != nil || len(people) != 1 {
		t.Fatalf("POST /sandbox/directory = %d %s", added.status, added.body)
	}
	docs := arrayOf(t, e.call("GET", "/employer/documents?individual_ids="+people[0]["id"].(string), auth, nil), "documents")
	if len(docs) != 1 || docs[0]["type"] != "w4_2020" {
		t.Errorf("the new hire's documents = %v, want one 2020 W-4", docs)
	}
}

func TestDocuments_Scope(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth := "bearer:" + e.token("authorized_simple")
	for _, path := range []string{"/employer/documents", "/employer/documents/00000000-0000-4000-8000-000000000000"} {
		if r := e.call("GET", path, auth, nil); r.status != http.StatusForbidden || r.json(t)["name"] != "insufficient_scope_error" {
			t.Errorf("GET %s without documents = %d %s, want 403 insufficient_scope_error", path, r.status, r.body)
		}
		if r := e.call("GET", path, "", nil); r.status != http.StatusUnauthorized {
			t.Errorf("GET %s without a token = %d, want 401", path, r.status)
		}
	}
}
