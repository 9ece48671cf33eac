package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// objects returns the JSON objects of r's field key (an array).
func arrayOf(t *testing.T, r resp, key string) []map[string]any {
	t.Helper()
	m := r.json(t)
	xs, ok := m[key].([]any)
	if !ok {
		t.Fatalf("%s is not an array: %s", key, r.body)
	}
	out := make([]map[string]any, 0, len(xs))
	for _, x := range xs {
		out = append(out, x.(map[string]any))
	}
	return out
}

// latestStatements returns the pay date of the connection's latest
// payment and its pay statements, read through the API.
func (e *env) latestStatements(tok string) (string, []map[string]any) {
	e.t.Helper()
	r := e.call("GET", "/employer/payment?start_date=2000-01-01&end_date=2999-12-31", "bearer:"+tok, nil)
	var payments []map[string]any
	if err := json.Unmarshal(r.body, &payments); err != nil || len(payments) == 0 {
		e.t.Fatalf("payments = %d %s", r.status, r.body)
	}
	latest := payments[0]
	for _, p := range payments {
		if p["pay_date"].(string) > latest["pay_date"].(string) {
			latest = p
		}
	}
	ps := e.call("POST", "/employer/pay-statement", "bearer:"+tok, map[string]any{"requests": []any{map[string]any{"payment_id": latest["id"], "limit": 5000}}})
	body := arrayOf(e.t, ps, "responses")[0]["body"].(map[string]any)
	var stmts []map[string]any
	for _, s := range body["pay_statements"].([]any) {
		stmts = append(stmts, s.(map[string]any))
	}
	return latest["pay_date"].(string), stmts
}

// payLine is a distinct line of a connection's pay statements: one of
// its occurrences and the latest pay date it appears on.
type payLine struct {
	line     map[string]any
	lastSeen string
}

// payLines reads every pay statement of every payment through the API
// and returns its distinct lines by "category/name", and the pay dates.
func (e *env) payLines(tok string) (map[string]payLine, []string) {
	e.t.Helper()
	r := e.call("GET", "/employer/payment?start_date=2000-01-01&end_date=2999-12-31", "bearer:"+tok, nil)
	var payments []map[string]any
	if err := json.Unmarshal(r.body, &payments); err != nil || len(payments) == 0 {
		e.t.Fatalf("payments = %d %s", r.status, r.body)
	}
	dateOf := map[string]string{}
	var dates []string
	out := map[string]payLine{}
	for start := 0; start < len(payments); start += 10 {
		var reqs []any
		for _, p := range payments[start:min(start+10, len(payments))] {
			dateOf[p["id"].(string)] = p["pay_date"].(string)
			dates = append(dates, p["pay_date"].(string))
			reqs = append(reqs, map[string]any{"payment_id": p["id"], "limit": 5000})
		}
		for _, res := range arrayOf(e.t, e.call("POST", "/employer/pay-statement", "bearer:"+tok, map[string]any{"requests": reqs}), "responses") {
			date := dateOf[res["payment_id"].(string)]
			for _, st := range res["body"].(map[string]any)["pay_statements"].([]any) {
				for _, cat := range []string{"earnings", "taxes", "employee_deductions", "employer_contributions"} {
					for _, l := range st.(map[string]any)[cat].([]any) {
						line := l.(map[string]any)
						key := cat + "/" + line["name"].(string)
						if old, ok := out[key]; !ok || date > old.lastSeen {
							out[key] = payLine{line, date}
						}
					}
				}
			}
		}
	}
	slices.Sort(dates)
	return out, dates
}

// TestPayItems_DerivedFromPayStatements: the items are exactly the
// distinct lines of the pay statements, with their type, employer and
// pre_tax, and no metadata before any rule.
func TestPayItems_DerivedFromPayStatements(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	lines, _ := e.payLines(tok)
	want := map[string]map[string]any{} // category/name → line
	for k, l := range lines {
		want[k] = l.line
	}
	r := e.call("GET", "/employer/pay-statement-item", "bearer:"+tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /employer/pay-statement-item = %d %s", r.status, r.body)
	}
	items := arrayOf(t, r, "responses")
	if len(items) != len(want) {
		t.Errorf("%d items, want the %d distinct lines of the pay statements", len(items), len(want))
	}
	for _, it := range items {
		key := it["category"].(string) + "/" + it["name"].(string)
		line, ok := want[key]
		if !ok {
			t.Errorf("item %s is on no pay statement", key)
			continue
		}
		attrs := it["attributes"].(map[string]any)
		if md, ok := attrs["metadata"]; !ok || md != nil {
			t.Errorf("%s: metadata = %v, want null before any rule", key, md)
		}
		if attrs["type"] != line["type"] {
			t.Errorf("%s: type = %v, want %v", key, attrs["type"], line["type"])
		}
		_, hasEmployer := attrs["employer"]
		_, hasPreTax := attrs["pre_tax"]
		switch it["category"] {
		case "taxes":
			if attrs["employer"] != line["employer"] {
				t.Errorf("%s: employer = %v, want %v", key, attrs["employer"], line["employer"])
			}
		case "employee_deductions":
			if attrs["pre_tax"] != line["pre_tax"] {
				t.Errorf("%s: pre_tax = %v, want %v", key, attrs["pre_tax"], line["pre_tax"])
			}
		}
		if hasEmployer != (it["category"] == "taxes") || hasPreTax != (it["category"] == "employee_deductions") {
			t.Errorf("%s: attributes %v: employer is for taxes only, pre_tax for employee deductions only", key, attrs)
		}
	}
}

func itemNames(t *testing.T, r resp) []string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var out []string
	for _, it := range arrayOf(t, r, "responses") {
		out = append(out, it["category"].(string)+"/"+it["name"].(string))
	}
	return out
}

func TestPayItems_Filters(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	lines, dates := e.payLines(tok)
	latest, middle := dates[len(dates)-1], dates[len(dates)/2]
	seen := func(pred func(string) bool) int {
		n := 0
		for _, l := range lines {
			if pred(l.lastSeen) {
				n++
			}
		}
		return n
	}
	get := func(q string) resp { return e.call("GET", "/employer/pay-statement-item?"+q, "bearer:"+tok, nil) }
	all := arrayOf(t, get(""), "responses")
	count := func(pred func(category, name, kind string) bool) int {
		n := 0
		for _, it := range all {
			if pred(it["category"].(string), it["name"].(string), it["attributes"].(map[string]any)["type"].(string)) {
				n++
			}
		}
		return n
	}
	taxes := count(func(c, _, _ string) bool { return c == "taxes" })
	deds := count(func(c, _, _ string) bool { return c == "employee_deductions" })
	medicare := count(func(_, n, _ string) bool { return strings.Contains(strings.ToLower(n), "medicare") })
	fica := count(func(_, _, k string) bool { return k == "fica" })
	if taxes == 0 || deds == 0 || medicare == 0 || fica <= medicare || taxes == len(all) {
		t.Fatalf("items %v lack taxes, deductions, Medicare or other FICA taxes", all)
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"categories%5B%5D=taxes", taxes},
		{"categories%5B%5D=taxes&categories%5B%5D=employee_deductions", taxes + deds},
		{"categories=taxes,employee_deductions", taxes + deds},
		{"name=MEDICARE", medicare},
		{"type=FICA", fica},
		{"start_date=" + latest, seen(func(d string) bool { return d >= latest })},
		{"end_date=" + latest, len(all)},
		{"start_date=" + middle, seen(func(d string) bool { return d >= middle })},
		{"end_date=" + middle, seen(func(d string) bool { return d <= middle })},
		{"start_date=" + middle + "&end_date=" + latest, seen(func(d string) bool { return d >= middle && d <= latest })},
		{"start_date=2999-01-01", 0},
		{"end_date=2000-01-01", 0},
	} {
		if got := len(itemNames(t, get(tc.query))); got != tc.want {
			t.Errorf("?%s: %d items, want %d", tc.query, got, tc.want)
		}
	}
	for _, q := range []string{"categories%5B%5D=bonuses", "start_date=yesterday", "end_date=2024-13-01"} {
		if r := get(q); r.status != http.StatusBadRequest || r.json(t)["finch_code"] != "invalid_request" {
			t.Errorf("?%s = %d %s, want 400 invalid_request", q, r.status, r.body)
		}
	}
}

func metadataOf(t *testing.T, r resp, name string) any {
	t.Helper()
	for _, it := range arrayOf(t, r, "responses") {
		if it["name"] == name {
			return it["attributes"].(map[string]any)["metadata"]
		}
	}
	t.Fatalf("no item %q in %s", name, r.body)
	return nil
}

func ruleCond(field, value string) map[string]any {
	return map[string]any{"field": field, "operator": "equals", "value": value}
}

func TestPayItemRules_Lifecycle(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	auth := "bearer:" + tok
	items := func() resp { return e.call("GET", "/employer/pay-statement-item", auth, nil) }

	c1 := e.call("POST", "/employer/pay-statement-item/rule", auth, map[string]any{
		"conditions": []any{ruleCond("name", "Medicare")}, "attributes": map[string]any{"metadata": map[string]any{"label": "first", "gl": 6100}},
	})
	if c1.status != http.StatusCreated {
		t.Fatalf("create = %d %s, want 201", c1.status, c1.body)
	}
	r1 := c1.json(t)
	for _, k := range []string{"id", "priority", "conditions", "attributes", "effective_start_date", "effective_end_date", "entity_type", "created_at", "updated_at"} {
		if _, ok := r1[k]; !ok {
			t.Errorf("rule lacks %s: %s", k, c1.body)
		}
	}
	if r1["priority"] != 1.0 || r1["entity_type"] != "pay_statement_item" || r1["effective_start_date"] != nil {
		t.Errorf("rule = %s, want priority 1, entity_type pay_statement_item, no start date", c1.body)
	}
	md, _ := metadataOf(t, items(), "Medicare").(map[string]any)
	if md["label"] != "first" || md["gl"] != 6100.0 {
		t.Errorf("Medicare's metadata = %v, want the rule's", md)
	}
	if md := metadataOf(t, items(), "Federal Income Tax"); md != nil {
		t.Errorf("an item the rule does not match has metadata %v", md)
	}

	// A second rule on the same item: lower priority, so the first wins
	// on the key both set; the keys only it sets are added.
	c2 := e.call("POST", "/employer/pay-statement-item/rule", auth, map[string]any{
		"conditions": []any{ruleCond("type", "fica"), ruleCond("category", "taxes")}, "attributes": map[string]any{"metadata": map[string]any{"label": "second", "fica": true}},
	}).json(t)
	if c2["priority"] != 2.0 {
		t.Errorf("second rule's priority = %v, want 2", c2["priority"])
	}
	md, _ = metadataOf(t, items(), "Medicare").(map[string]any)
	if md["label"] != "first" || md["fica"] != true {
		t.Errorf("Medicare's metadata = %v, want label of priority 1 and fica of priority 2", md)
	}
	if md, _ := metadataOf(t, items(), "Social Security").(map[string]any); md["label"] != "second" {
		t.Errorf("Social Security's metadata = %v, want the second rule's", md)
	}

	list := arrayOf(t, e.call("GET", "/employer/pay-statement-item/rule", auth, nil), "responses")
	if len(list) != 2 || list[0]["id"] != r1["id"] || list[1]["id"] != c2["id"] {
		t.Fatalf("rules = %v, want both by priority", list)
	}

	// Swap priorities with an update; the second rule now wins.
	u := e.call("PUT", "/employer/pay-statement-item/rule/"+c2["id"].(string), auth, map[string]any{"priority": 0})
	if u.status != http.StatusBadRequest {
		t.Errorf("priority 0 = %d, want 400", u.status)
	}
	u = e.call("PUT", "/employer/pay-statement-item/rule/"+r1["id"].(string), auth, map[string]any{"priority": 5})
	if u.status != http.StatusOK || u.json(t)["priority"] != 5.0 || len(u.json(t)["conditions"].([]any)) != 1 {
		t.Fatalf("update = %d %s, want priority 5 and the conditions kept", u.status, u.body)
	}
	if md, _ := metadataOf(t, items(), "Medicare").(map[string]any); md["label"] != "second" || md["gl"] != 6100.0 {
		t.Errorf("after the update Medicare's metadata = %v, want label second and gl kept", md)
	}
	if list := arrayOf(t, e.call("GET", "/employer/pay-statement-item/rule", auth, nil), "responses"); list[0]["id"] != c2["id"] {
		t.Errorf("rules after the update = %v, want priority order", list)
	}

	// Effective dates that exclude the items' pay dates: no metadata.
	e.call("PUT", "/employer/pay-statement-item/rule/"+c2["id"].(string), auth, map[string]any{"effective_start_date": "2999-01-01"})
	if md, _ := metadataOf(t, items(), "Social Security").(map[string]any); md != nil {
		t.Errorf("a rule effective from 2999 applies: %v", md)
	}
	if u := e.call("PUT", "/employer/pay-statement-item/rule/"+c2["id"].(string), auth, map[string]any{"effective_start_date": nil}); u.json(t)["effective_start_date"] != nil {
		t.Errorf("null start date = %s", u.body)
	}

	d := e.call("DELETE", "/employer/pay-statement-item/rule/"+r1["id"].(string), auth, nil)
	if d.status != http.StatusOK || d.json(t)["deleted_at"] == nil || d.json(t)["id"] != r1["id"] {
		t.Fatalf("delete = %d %s, want the rule with deleted_at", d.status, d.body)
	}
	if md, _ := metadataOf(t, items(), "Medicare").(map[string]any); md["gl"] != nil {
		t.Errorf("a deleted rule still applies: %v", md)
	}
	for _, m := range []string{"DELETE", "PUT"} {
		if r := e.call(m, "/employer/pay-statement-item/rule/"+r1["id"].(string), auth, map[string]any{"priority": 1}); r.status != http.StatusNotFound {
			t.Errorf("%s of a deleted rule = %d, want 404", m, r.status)
		}
		if r := e.call(m, "/employer/pay-statement-item/rule/nope", auth, map[string]any{"priority": 1}); r.status != http.StatusBadRequest {
			t.Errorf("%s of a non-UUID id = %d, want 400", m, r.status)
		}
	}
	// Rules are per connection.
	other := e.token("authorized_simple")
	if list := arrayOf(t, e.call("GET", "/employer/pay-statement-item/rule", "bearer:"+other, nil), "responses"); len(list) != 0 {
		t.Errorf("another connection sees rules %v", list)
	}
	if r := e.call("DELETE", "/employer/pay-statement-item/rule/"+c2["id"].(string), "bearer:"+other, nil); r.status != http.StatusNotFound {
		t.Errorf("deleting another connection's rule = %d, want 404", r.status)
	}
}

func TestPayItemRules_Validation(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	auth := "bearer:" + e.token("authorized_simple")
	md := map[string]any{"metadata": map[string]any{"a": 1}}
	tests := []struct {
		name string
		body any
		want string // a word of the message
	}{
		{"not JSON", `{"conditions": [`, "rule object"},
		{"no conditions", map[string]any{"attributes": md}, "conditions is required"},
		{"empty conditions", map[string]any{"conditions": []any{}, "attributes": md}, "at least one"},
		{"unknown field", map[string]any{"conditions": []any{ruleCond("colour", "x")}, "attributes": md}, "field"},
		{"operator", map[string]any{"conditions": []any{map[string]any{"field": "name", "operator": "contains", "value": "x"}}, "attributes": md}, "operator"},
		{"no value", map[string]any{"conditions": []any{ruleCond("name", "")}, "attributes": md}, "value"},
		{"no metadata", map[string]any{"conditions": []any{ruleCond("name", "x")}}, "metadata"},
		{"empty metadata", map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": map[string]any{"metadata": map[string]any{}}}, "metadata"},
		{"bad date", map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": md, "effective_start_date": "01/02/2025"}, "effective_start_date"},
		{"date not a string", map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": md, "effective_end_date": 20250101}, "effective_end_date"},
		{"end before start", map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": md, "effective_start_date": "2025-02-01", "effective_end_date": "2025-01-01"}, "before"},
		{"entity_type", map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": md, "entity_type": "payment"}, "entity_type"},
		{"too large", map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": map[string]any{"metadata": map[string]any{"big": strings.Repeat("x", 17<<10)}}}, "too large"},
	}
	for _, tc := range tests {
		r := e.call("POST", "/employer/pay-statement-item/rule", auth, tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.json(t)["message"].(string), tc.want) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", tc.name, r.status, r.body, tc.want)
		}
	}
	if list := arrayOf(t, e.call("GET", "/employer/pay-statement-item/rule", auth, nil), "responses"); len(list) != 0 {
		t.Errorf("refused rules were kept: %v", list)
	}
	ok := e.call("POST", "/employer/pay-statement-item/rule", auth, map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": md}).json(t)
	id := ok["id"].(string)
	for name, body := range map[string]any{"nothing": map[string]any{}, "unknown field only": map[string]any{"optionalProperty": 1}, "bad condition": map[string]any{"conditions": []any{ruleCond("x", "y")}}, "attributes without metadata": map[string]any{"attributes": map[string]any{}}} {
		if r := e.call("PUT", "/employer/pay-statement-item/rule/"+id, auth, body); r.status != http.StatusBadRequest {
			t.Errorf("update with %s = %d %s, want 400", name, r.status, r.body)
		}
	}
	if r := e.call("GET", "/employer/pay-statement-item/rule", auth, nil); arrayOf(t, r, "responses")[0]["conditions"].([]any)[0].(map[string]any)["field"] != "name" {
		t.Errorf("a refused update changed the rule: %s", r.body)
	}
	// At most 100 rules a connection.
	for i := 1; i < 100; i++ {
		if r := e.call("POST", "/employer/pay-statement-item/rule", auth, map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": md}); r.status != http.StatusCreated {
			t.Fatalf("rule %d = %d %s", i+1, r.status, r.body)
		}
	}
	if r := e.call("POST", "/employer/pay-statement-item/rule", auth, map[string]any{"conditions": []any{ruleCond("name", "x")}, "attributes": md}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "at most 100") {
		t.Errorf("the 101st rule = %d %s, want 400", r.status, r.body)
	}
}

// TestPayItemRules_Entities: a rule made through entity_ids belongs to
// that entity: another entity does not see it, and the connection as a
// whole does.
func TestPayItemRules_Entities(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_complex")
	auth := "bearer:" + tok
	ids := e.call("GET", "/introspect", auth, nil).json(t)["entities"].([]any)
	a, b := ids[0].(map[string]any)["id"].(string), ids[1].(map[string]any)["id"].(string)
	q := func(entity string) string { return "?" + url.Values{"entity_ids[]": {entity}}.Encode() }
	r := e.call("POST", "/employer/pay-statement-item/rule"+q(a), auth, map[string]any{"conditions": []any{ruleCond("name", "Medicare")}, "attributes": map[string]any{"metadata": map[string]any{"x": 1}}})
	if r.status != http.StatusCreated {
		t.Fatalf("create for entity a = %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	count := func(path string) int {
		return len(arrayOf(t, e.call("GET", path, auth, nil), "responses"))
	}
	if n := count("/employer/pay-statement-item/rule" + q(a)); n != 1 {
		t.Errorf("entity a sees %d rules, want 1", n)
	}
	if n := count("/employer/pay-statement-item/rule" + q(b)); n != 0 {
		t.Errorf("entity b sees %d rules, want 0", n)
	}
	if n := count("/employer/pay-statement-item/rule"); n != 1 {
		t.Errorf("the connection sees %d rules, want 1", n)
	}
	if md := metadataOf(t, e.call("GET", "/employer/pay-statement-item"+q(b), auth, nil), "Medicare"); md != nil {
		t.Errorf("entity b's items carry entity a's rule: %v", md)
	}
	if md := metadataOf(t, e.call("GET", "/employer/pay-statement-item"+q(a), auth, nil), "Medicare"); md == nil {
		t.Error("entity a's items lack its rule")
	}
	if r := e.call("DELETE", "/employer/pay-statement-item/rule/"+id+q(b), auth, nil); r.status != http.StatusNotFound {
		t.Errorf("deleting entity a's rule through entity b = %d, want 404", r.status)
	}
	if r := e.call("GET", "/employer/pay-statement-item?entity_ids[]=nope", auth, nil); r.status != http.StatusBadRequest {
		t.Errorf("unknown entity = %d, want 400", r.status)
	}
}

// TestPayItems_ScopeAndStatus: the routes need pay_statement, and follow
// the connection's status like every data route.
func TestPayItems_ScopeAndStatus(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	org := "bearer:" + e.token("authorized_simple", "company", "directory", "payment")
	id := "00000000-0000-4000-8000-000000000000"
	routes := [][2]string{
		{"GET", "/employer/pay-statement-item"}, {"POST", "/employer/pay-statement-item/rule"}, {"GET", "/employer/pay-statement-item/rule"},
		{"PUT", "/employer/pay-statement-item/rule/" + id}, {"DELETE", "/employer/pay-statement-item/rule/" + id},
	}
	for _, rt := range routes {
		if r := e.call(rt[0], rt[1], org, map[string]any{}); r.status != http.StatusForbidden || r.json(t)["name"] != "insufficient_scope_error" {
			t.Errorf("%s %s without pay_statement = %d %s, want 403 insufficient_scope_error", rt[0], rt[1], r.status, r.body)
		}
		if r := e.call(rt[0], rt[1], "", nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s without a token = %d, want 401", rt[0], rt[1], r.status)
		}
	}
	code, _ := e.connect(cb, "authorized_simple", "letmein")
	m := e.exchange(code, cb).json(t)
	if err := e.sb.SetConnectionStatus(m["connection_id"].(string), "reauth"); err != nil {
		t.Fatal(err)
	}
	if r := e.call("GET", "/employer/pay-statement-item", "bearer:"+m["access_token"].(string), nil); r.status != http.StatusUnauthorized || r.json(t)["finch_code"] != "reauthenticate_user" {
		t.Errorf("items in reauth = %d %s, want 401 reauthenticate_user", r.status, r.body)
	}
}

func TestPayItemRules_Persist(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, sandbox.Options{DataFile: file})
	tok := e.token("authorized_simple")
	id := e.call("POST", "/employer/pay-statement-item/rule", "bearer:"+tok, map[string]any{"conditions": []any{ruleCond("name", "Medicare")}, "attributes": map[string]any{"metadata": map[string]any{"kept": true}}, "effective_end_date": "2999-12-31"}).json(t)["id"]
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, sandbox.Options{DataFile: file})
	list := arrayOf(t, e2.call("GET", "/employer/pay-statement-item/rule", "bearer:"+tok, nil), "responses")
	if len(list) != 1 || list[0]["id"] != id || list[0]["effective_end_date"] != "2999-12-31" {
		t.Fatalf("rules after a restart = %v, want the one made before", list)
	}
	if md, _ := metadataOf(t, e2.call("GET", "/employer/pay-statement-item", "bearer:"+tok, nil), "Medicare").(map[string]any); md["kept"] != true {
		t.Errorf("metadata after a restart = %v", md)
	}
}

// TestPayItemRules_OnPayStatements: a rule's metadata shows on the
// matching lines of the pay statements too, when the payment's pay date
// is within the rule's effective dates, and nowhere else.
func TestPayItemRules_OnPayStatements(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_simple")
	auth := "bearer:" + tok
	latest, _ := e.latestStatements(tok)
	e.call("POST", "/employer/pay-statement-item/rule", auth, map[string]any{"conditions": []any{ruleCond("name", "Federal Income Tax")}, "attributes": map[string]any{"metadata": map[string]any{"gl": "2100"}}})
	e.call("POST", "/employer/pay-statement-item/rule", auth, map[string]any{"conditions": []any{ruleCond("category", "earnings")}, "attributes": map[string]any{"metadata": map[string]any{"old": true}}, "effective_end_date": "2000-12-31"})
	_, stmts := e.latestStatements(tok)
	labelled := 0
	for _, s := range stmts {
		for _, cat := range []string{"earnings", "taxes", "employee_deductions", "employer_contributions"} {
			for _, l := range s[cat].([]any) {
				line := l.(map[string]any)
				attrs, has := line["attributes"].(map[string]any)
				switch {
				case line["name"] == "Federal Income Tax":
					if md, _ := attrs["metadata"].(map[string]any); md["gl"] != "2100" {
						t.Errorf("a federal tax line on %s has attributes %v, want the rule's metadata", latest, line["attributes"])
					}
					labelled++
				case has:
					t.Errorf("%s line %v has attributes no rule in effect gives", cat, line)
				}
			}
		}
	}
	if labelled == 0 {
		t.Error("no pay statement carries a federal tax line")
	}
}
