package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Pay statement items are the distinct earnings, taxes, employee
// deductions and employer contributions that appear on a connection's pay
// statements, and rules attach metadata to them (Finch's
// /employer/pay-statement-item and /employer/pay-statement-item/rule,
// finch-api-more.md §3.2-3.3). Items are derived from the pay statements
// the sandbox generates, so they follow whatever payroll shows; rules are
// kept per connection in its state.

// itemCategories are the categories of pay statement items, in the order
// the sandbox lists them; each is the pay statement field holding them.
var itemCategories = []string{"earnings", "taxes", "employee_deductions", "employer_contributions"}

// Bounds on what rules a connection keeps, so that its state stays small.
const (
	maxRules         = 100
	maxRuleBytes     = 16 << 10 // a rule's JSON, metadata included
	maxRuleCondition = 20
)

// itemRule is a pay statement item rule (the SDK's Rule).
type itemRule struct {
	ID         string          `json:"id"`
	Entity     string          `json:"entity,omitempty"` // the entity_ids it was created for; "" for all
	Priority   int             `json:"priority"`
	Conditions []ruleCondition `json:"conditions"`
	Metadata   map[string]any  `json:"metadata"`
	Start      string          `json:"start,omitempty"` // effective_start_date, YYYY-MM-DD
	End        string          `json:"end,omitempty"`   // effective_end_date
	Created    time.Time       `json:"created"`
	Updated    time.Time       `json:"updated"`
}

type ruleCondition struct {
	Field    string `json:"field"`
	Operator string `json:"operator"`
	Value    string `json:"value"`
}

// ruleFields are the item fields a condition can test.
var ruleFields = []string{"name", "category", "type"}

// wire is the rule as Finch answers it.
func (r *itemRule) wire() map[string]any {
	conds := []any{}
	for _, c := range r.Conditions {
		conds = append(conds, map[string]any{"field": c.Field, "operator": c.Operator, "value": c.Value})
	}
	return map[string]any{
		"id": r.ID, "priority": r.Priority, "conditions": conds,
		"attributes":           map[string]any{"metadata": r.Metadata},
		"effective_start_date": nullable(r.Start), "effective_end_date": nullable(r.End),
		"entity_type": "pay_statement_item",
		"created_at":  r.Created.UTC().Format(time.RFC3339), "updated_at": r.Updated.UTC().Format(time.RFC3339),
	}
}

// visible reports whether r is seen through entity_ids entity: a rule
// made for one entity is seen through that entity and without entity_ids.
func (r *itemRule) visible(entity string) bool {
	return entity == "" || r.Entity == "" || r.Entity == entity
}

// payItem is one distinct pay statement item.
type payItem struct {
	name, category, kind string
	employer, preTax     any    // bool or nil, only for taxes / employee deductions
	lastSeen             string // the latest pay date it appears on, YYYY-MM-DD
}

func (it payItem) field(name string) string {
	switch name {
	case "name":
		return it.name
	case "category":
		return it.category
	case "type":
		return it.kind
	}
	return ""
}

// matches reports whether every condition of r holds for it and it was
// last seen within r's effective dates.
func (r *itemRule) matches(it payItem) bool {
	if r.Start != "" && it.lastSeen < r.Start || r.End != "" && it.lastSeen > r.End {
		return false
	}
	for _, c := range r.Conditions {
		if it.field(c.Field) != c.Value {
			return false
		}
	}
	return true
}

// metadata merges the metadata of the rules that match it, or nil when
// none does. On a key two rules set, the rule of higher priority (the
// lower number) wins.
func metadataFor(rules []*itemRule, it payItem) map[string]any {
	var out map[string]any
	for i := len(rules) - 1; i >= 0; i-- { // rules are sorted by priority
		if !rules[i].matches(it) {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		for k, v := range rules[i].Metadata {
			out[k] = v
		}
	}
	return out
}

// payItems returns the distinct items of the pay statements of people,
// each with the latest pay date it appears on, sorted by category and
// name. A person's lines are read from the payments that pay them, newest
// first, so an item's date is that of the last payment carrying it.
func (s *Server) payItems(c *connection, people []person) []payItem {
	byID := make(map[string]person, len(people))
	for _, p := range people {
		byID[p.ID] = p
	}
	payments := c.payments(s.now(), people)
	slices.SortStableFunc(payments, func(a, b map[string]any) int { return strings.Compare(str(b["pay_date"]), str(a["pay_date"])) })
	seen := map[string]bool{}    // people already read
	found := map[[2]string]int{} // (category, name) → index in out
	var out []payItem
	for _, pay := range payments {
		date := str(pay["pay_date"])
		for _, id := range stringsOf(pay["individual_ids"]) {
			p, ok := byID[id]
			if !ok || seen[id] {
				continue
			}
			seen[id] = true
			stmt := p.payStatement()
			for _, cat := range itemCategories {
				for _, line := range linesOf(stmt[cat]) {
					key := [2]string{cat, str(line["name"])}
					if key[1] == "" {
						continue
					}
					if _, ok := found[key]; ok {
						continue
					}
					it := payItem{name: key[1], category: cat, kind: str(line["type"]), lastSeen: date}
					switch cat {
					case "taxes":
						it.employer = line["employer"]
					case "employee_deductions":
						it.preTax = line["pre_tax"]
					}
					found[key] = len(out)
					out = append(out, it)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b payItem) int {
		if d := slices.Index(itemCategories, a.category) - slices.Index(itemCategories, b.category); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

func stringsOf(v any) []string {
	switch xs := v.(type) {
	case []string:
		return xs
	case []any:
		out := make([]string, 0, len(xs))
		for _, x := range xs {
			out = append(out, str(x))
		}
		return out
	}
	return nil
}

func linesOf(v any) []map[string]any {
	switch xs := v.(type) {
	case []map[string]any:
		return xs
	case []any:
		out := make([]map[string]any, 0, len(xs))
		for _, x := range xs {
			if m, ok := x.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// queryList reads an array query parameter in any of the forms Finch's
// clients send: name[]=a&name[]=b, name=a&name=b or name=a,b.
func queryList(q url.Values, name string) []string {
	var out []string
	for _, k := range []string{name + "[]", name} {
		for _, v := range q[k] {
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" {
					out = append(out, x)
				}
			}
		}
	}
	return out
}

// handlePayItems is GET /employer/pay-statement-item: {responses: [item]},
// filtered by categories, start_date and end_date (on the item's last pay
// date, both inclusive), name (a case-insensitive substring) and type
// (exact, case-insensitive).
func (s *Server) handlePayItems(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	q := r.URL.Query()
	var problems []string
	cats := queryList(q, "categories")
	for _, cat := range cats {
		if !slices.Contains(itemCategories, cat) {
			problems = append(problems, "categories: unknown category "+cat+" (one of "+strings.Join(itemCategories, ", ")+")")
		}
	}
	var dates [2]string
	for i, k := range []string{"start_date", "end_date"} {
		if v := q.Get(k); v != "" {
			if _, err := time.Parse(time.DateOnly, v); err != nil {
				problems = append(problems, k+" must be a date in YYYY-MM-DD form")
			}
			dates[i] = v
		}
	}
	if problems != nil {
		badRequest(w, strings.Join(problems, "; "))
		return
	}
	name, kind := strings.ToLower(q.Get("name")), q.Get("type")
	items := s.payItems(c, s.peopleOf(c, entity))
	rules := s.rulesFor(c, entity)
	out := []any{}
	for _, it := range items {
		switch {
		case len(cats) > 0 && !slices.Contains(cats, it.category),
			dates[0] != "" && it.lastSeen < dates[0], dates[1] != "" && it.lastSeen > dates[1],
			name != "" && !strings.Contains(strings.ToLower(it.name), name),
			kind != "" && !strings.EqualFold(it.kind, kind):
			continue
		}
		attrs := map[string]any{"metadata": nil, "type": nullable(it.kind)}
		if md := metadataFor(rules, it); md != nil {
			attrs["metadata"] = md
		}
		switch it.category {
		case "taxes":
			attrs["employer"] = it.employer
		case "employee_deductions":
			attrs["pre_tax"] = it.preTax
		}
		out = append(out, map[string]any{"name": it.name, "category": it.category, "attributes": attrs})
	}
	writeJSON(w, http.StatusOK, map[string]any{"responses": out})
}

// rulesFor returns copies of the rules seen through entity, by priority.
func (s *Server) rulesFor(c *connection, entity string) []*itemRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*itemRule
	for _, r := range c.Rules {
		if r.visible(entity) {
			cp := *r
			out = append(out, &cp)
		}
	}
	return out
}

// ruleBody is the body of a create or an update. Fields absent from an
// update keep their values; the dates are raw to tell null from absent.
type ruleBody struct {
	Conditions *[]ruleCondition `json:"conditions"`
	Attributes *struct {
		Metadata map[string]any `json:"metadata"`
	} `json:"attributes"`
	EffectiveStartDate json.RawMessage `json:"effective_start_date"`
	EffectiveEndDate   json.RawMessage `json:"effective_end_date"`
	EntityType         *string         `json:"entity_type"`
	Priority           *int            `json:"priority"`
}

// apply checks b and writes it into r, returning what is wrong with it
// (r is then partly written and must be thrown away). create requires
// conditions and metadata.
func (b *ruleBody) apply(r *itemRule, create bool) []string {
	var problems []string
	if b.Conditions != nil {
		conds := *b.Conditions
		switch {
		case len(conds) == 0:
			problems = append(problems, "conditions must list at least one condition")
		case len(conds) > maxRuleCondition:
			problems = append(problems, "conditions: at most 20 per rule")
		}
		for i, c := range conds {
			if !slices.Contains(ruleFields, c.Field) {
				problems = append(problems, "conditions["+strconv.Itoa(i)+"].field must be one of name, category, type")
			}
			if c.Operator != "equals" {
				problems = append(problems, "conditions["+strconv.Itoa(i)+"].operator must be \"equals\"")
			}
			if c.Value == "" {
				problems = append(problems, "conditions["+strconv.Itoa(i)+"].value is required")
			}
		}
		r.Conditions = conds
	} else if create {
		problems = append(problems, "conditions is required")
	}
	if b.Attributes != nil && b.Attributes.Metadata != nil {
		if len(b.Attributes.Metadata) == 0 {
			problems = append(problems, "attributes.metadata must set at least one key")
		}
		r.Metadata = b.Attributes.Metadata
	} else if create || b.Attributes != nil {
		problems = append(problems, "attributes.metadata is required (an object of the keys to attach)")
	}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"effective_start_date", b.EffectiveStartDate, &r.Start}, {"effective_end_date", b.EffectiveEndDate, &r.End}} {
		if len(d.raw) == 0 {
			continue
		}
		if bytes.Equal(d.raw, []byte("null")) {
			*d.dst = ""
			continue
		}
		var v string
		if json.Unmarshal(d.raw, &v) != nil {
			problems = append(problems, d.name+" must be a date in YYYY-MM-DD form or null")
			continue
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			problems = append(problems, d.name+" must be a date in YYYY-MM-DD form or null")
			continue
		}
		*d.dst = v
	}
	if r.Start != "" && r.End != "" && r.End < r.Start {
		problems = append(problems, "effective_end_date is before effective_start_date")
	}
	if b.EntityType != nil && *b.EntityType != "pay_statement_item" {
		problems = append(problems, `entity_type must be "pay_statement_item"`)
	}
	if b.Priority != nil {
		if *b.Priority < 1 {
			problems = append(problems, "priority must be a positive integer")
		}
		r.Priority = *b.Priority
	}
	if problems == nil {
		if j, _ := json.Marshal(r); len(j) > maxRuleBytes {
			problems = append(problems, "the rule is too large (at most 16 KiB of JSON)")
		}
	}
	return problems
}

func decodeRule(w http.ResponseWriter, r *http.Request) (*ruleBody, bool) {
	var b ruleBody
	if r.ContentLength == 0 { // no body: an empty rule object
		return &b, true
	}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, "The body must be a rule object: {conditions: [{field, operator, value}], attributes: {metadata: {...}}, effective_start_date, effective_end_date, entity_type}.")
		return nil, false
	}
	return &b, true
}

// reply is an answer decided under s.mu and written after it is released,
// so that a slow client never holds the lock.
type reply func(http.ResponseWriter)

func replyJSON(status int, v any) reply {
	return func(w http.ResponseWriter) { writeJSON(w, status, v) }
}

func replyBadRequest(message string) reply {
	return func(w http.ResponseWriter) { badRequest(w, message) }
}

// handleCreateRule is POST /employer/pay-statement-item/rule: 201 and
// the rule. Its priority is the next after the connection's last rule
// unless the body gives one.
func (s *Server) handleCreateRule(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	b, ok := decodeRule(w, r)
	if !ok {
		return
	}
	s.createRule(c, entity, b)(w)
}

func (s *Server) createRule(c *connection, entity string, b *ruleBody) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	rule := &itemRule{ID: s.id(), Entity: entity, Created: now, Updated: now}
	if problems := b.apply(rule, true); problems != nil {
		return replyBadRequest(strings.Join(problems, "; "))
	}
	if len(c.Rules) >= maxRules {
		return replyBadRequest("A connection holds at most 100 pay statement item rules; delete one first.")
	}
	if b.Priority == nil {
		rule.Priority = 1
		for _, o := range c.Rules {
			rule.Priority = max(rule.Priority, o.Priority+1)
		}
	}
	c.Rules = append(c.Rules, rule)
	sortRules(c.Rules)
	s.dirty = true
	return replyJSON(http.StatusCreated, rule.wire())
}

func sortRules(rules []*itemRule) {
	slices.SortStableFunc(rules, func(a, b *itemRule) int { return a.Priority - b.Priority })
}

// handleListRules is GET /employer/pay-statement-item/rule:
// {responses: [rule]}, by priority.
func (s *Server) handleListRules(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	out := []any{}
	for _, rule := range s.rulesFor(c, entity) {
		out = append(out, rule.wire())
	}
	writeJSON(w, http.StatusOK, map[string]any{"responses": out})
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// findRule returns the index of rule id among c's rules seen through
// entity, or the answer for an id that is not a UUID (400) or unknown
// (404). s.mu must be held.
func findRule(c *connection, id, entity string) (int, reply) {
	if !uuidRe.MatchString(id) {
		return 0, replyBadRequest("[path_params:rule_id]: Not a valid uuid")
	}
	i := slices.IndexFunc(c.Rules, func(x *itemRule) bool { return x.ID == id && x.visible(entity) })
	if i < 0 {
		return 0, func(w http.ResponseWriter) {
			writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "No such pay statement item rule.")
		}
	}
	return i, nil
}

// handleUpdateRule is PUT /employer/pay-statement-item/rule/{rule_id}: a
// partial rule body (Finch does not document the update schema; the
// sandbox takes the create body's fields and priority, and refuses a body
// that changes nothing).
func (s *Server) handleUpdateRule(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	b, ok := decodeRule(w, r)
	if !ok {
		return
	}
	s.updateRule(c, r.PathValue("rule_id"), entity, b)(w)
}

func (s *Server) updateRule(c *connection, id, entity string, b *ruleBody) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, fail := findRule(c, id, entity)
	if fail != nil {
		return fail
	}
	if b.Conditions == nil && b.Attributes == nil && b.EffectiveStartDate == nil && b.EffectiveEndDate == nil && b.EntityType == nil && b.Priority == nil {
		return replyBadRequest("The body changes nothing: give conditions, attributes, effective_start_date, effective_end_date or priority.")
	}
	cp := *c.Rules[i]
	if problems := b.apply(&cp, false); problems != nil {
		return replyBadRequest(strings.Join(problems, "; "))
	}
	cp.Updated = s.now()
	c.Rules[i] = &cp
	sortRules(c.Rules)
	s.dirty = true
	return replyJSON(http.StatusOK, cp.wire())
}

// handleDeleteRule is DELETE /employer/pay-statement-item/rule/{rule_id}:
// the rule, with deleted_at; it stops applying at once.
func (s *Server) handleDeleteRule(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	s.deleteRule(c, r.PathValue("rule_id"), entity)(w)
}

func (s *Server) deleteRule(c *connection, id, entity string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, fail := findRule(c, id, entity)
	if fail != nil {
		return fail
	}
	rule := c.Rules[i]
	c.Rules = slices.Delete(c.Rules, i, i+1)
	s.dirty = true
	out := rule.wire()
	out["deleted_at"] = s.now().UTC().Format(time.RFC3339)
	return replyJSON(http.StatusOK, out)
}

// labelPayStatements sets attributes.metadata on each line of the pay
// statements of a POST /employer/pay-statement answer (its responses, as
// built) that the connection's rules seen through entity match, judged
// on the payment's pay date; lines no rule matches are left as they are.
func (s *Server) labelPayStatements(c *connection, entity string, dates map[string]string, responses []any) {
	rules := s.rulesFor(c, entity)
	if len(rules) == 0 {
		return
	}
	for _, x := range responses {
		res, _ := x.(map[string]any)
		body, _ := res["body"].(map[string]any)
		stmts, _ := body["pay_statements"].([]any)
		date := dates[str(res["payment_id"])]
		for _, st := range stmts {
			stmt, _ := st.(map[string]any)
			for _, cat := range itemCategories {
				for _, line := range linesOf(stmt[cat]) {
					it := payItem{name: str(line["name"]), category: cat, kind: str(line["type"]), lastSeen: date}
					if md := metadataFor(rules, it); md != nil {
						line["attributes"] = map[string]any{"metadata": md}
					}
				}
			}
		}
	}
}
