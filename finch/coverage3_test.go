package finch_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
)

func TestPayGroups(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client
	tok := e.sandboxToken("directory", "payment")

	groups, err := c.PayGroups(ctx, tok, finch.PayGroupOptions{})
	if err != nil || len(groups) == 0 {
		t.Fatalf("PayGroups = %+v, %v", groups, err)
	}
	g := groups[0]
	if g.ID == "" || g.Name == "" || len(g.PayFrequencies) == 0 {
		t.Errorf("PayGroups[0] = %+v", g)
	}
	full, err := c.PayGroup(ctx, tok, g.ID)
	if err != nil || full.ID != g.ID || len(full.IndividualIDs) == 0 {
		t.Fatalf("PayGroup = %+v, %v", full, err)
	}
	// Filters: the member's group, and by frequency.
	mine, err := c.PayGroups(ctx, tok, finch.PayGroupOptions{IndividualID: full.IndividualIDs[0]})
	if err != nil || len(mine) != 1 || mine[0].ID != g.ID {
		t.Errorf("PayGroups(individual) = %+v, %v", mine, err)
	}
	byFreq, err := c.PayGroups(ctx, tok, finch.PayGroupOptions{PayFrequencies: g.PayFrequencies[:1]})
	if err != nil || !slices.ContainsFunc(byFreq, func(x finch.PayGroup) bool { return x.ID == g.ID }) {
		t.Errorf("PayGroups(frequency) = %+v, %v", byFreq, err)
	}
	for _, x := range byFreq {
		if !slices.Contains(x.PayFrequencies, g.PayFrequencies[0]) {
			t.Errorf("PayGroups(frequency %s) returned %+v", g.PayFrequencies[0], x)
		}
	}
	if q := e.rec.last(t, "GET", "/employer/pay-groups").RawQuery; q != "pay_frequencies%5B%5D="+g.PayFrequencies[0] {
		t.Errorf("query = %q", q)
	}

	_, err = c.PayGroups(ctx, tok, finch.PayGroupOptions{PayFrequencies: []string{"fortnightly-ish"}})
	apiErr(t, err, http.StatusBadRequest)
	_, err = c.PayGroup(ctx, tok, "00000000-0000-4000-8000-000000000000")
	apiErr(t, err, http.StatusNotFound)
	_, err = c.PayGroups(ctx, e.sandboxToken("directory"), finch.PayGroupOptions{})
	apiErr(t, err, http.StatusForbidden)
}

func TestPayStatementItemsAndRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client
	tok := e.sandboxToken("directory", "payment", "pay_statement")

	items, err := c.PayStatementItems(ctx, tok, finch.PayStatementItemOptions{})
	if err != nil || len(items) == 0 {
		t.Fatalf("PayStatementItems = %d items, %v", len(items), err)
	}
	cats := map[string]bool{}
	for _, it := range items {
		if it.Name == "" || it.Category == "" {
			t.Errorf("item = %+v", it)
		}
		cats[it.Category] = true
	}
	if len(cats) < 2 {
		t.Errorf("categories = %v, want several", cats)
	}
	taxes, err := c.PayStatementItems(ctx, tok, finch.PayStatementItemOptions{Categories: []string{"taxes"}})
	if err != nil || len(taxes) == 0 || len(taxes) >= len(items) {
		t.Fatalf("PayStatementItems(taxes) = %d of %d, %v", len(taxes), len(items), err)
	}
	for _, it := range taxes {
		if it.Category != "taxes" {
			t.Errorf("taxes filter returned %+v", it)
		}
	}
	named, err := c.PayStatementItems(ctx, tok, finch.PayStatementItemOptions{Name: taxes[0].Name})
	if err != nil || len(named) == 0 || named[0].Name != taxes[0].Name {
		t.Errorf("PayStatementItems(name) = %+v, %v", named, err)
	}
	_, err = c.PayStatementItems(ctx, tok, finch.PayStatementItemOptions{Categories: []string{"bogus"}})
	apiErr(t, err, http.StatusBadRequest)
	if _, err := c.PayStatementItems(ctx, tok, finch.PayStatementItemOptions{StartDate: "2024-13-01"}); err == nil {
		t.Error("a bad date passed")
	}

	// Rules: create, list, see the metadata on the item, update, delete.
	rule, err := c.CreateRule(ctx, tok, finch.RuleRequest{
		Conditions: []finch.RuleCondition{{Field: "name", Operator: "equals", Value: taxes[0].Name}},
		Attributes: &finch.RuleAttributes{Metadata: map[string]any{"gl_code": "6000"}},
	})
	if err != nil || rule.ID == "" || rule.Priority == nil || len(rule.Conditions) != 1 || rule.CreatedAt == "" {
		t.Fatalf("CreateRule = %+v, %v", rule, err)
	}
	rules, err := c.Rules(ctx, tok)
	if err != nil || len(rules) != 1 || rules[0].ID != rule.ID || rules[0].Attributes == nil || rules[0].Attributes.Metadata["gl_code"] != "6000" {
		t.Fatalf("Rules = %+v, %v", rules, err)
	}
	named, err = c.PayStatementItems(ctx, tok, finch.PayStatementItemOptions{Name: taxes[0].Name})
	if err != nil || len(named) == 0 {
		t.Fatal(err)
	}
	var md map[string]any
	if json.Unmarshal(named[0].Attributes.Metadata, &md) != nil || md["gl_code"] != "6000" {
		t.Errorf("item metadata after the rule = %s", named[0].Attributes.Metadata)
	}
	start := "2024-01-01"
	up, err := c.UpdateRule(ctx, tok, rule.ID, finch.RuleUpdate{EffectiveStartDate: &start})
	if err != nil || up.ID != rule.ID || up.EffectiveStartDate != start {
		t.Fatalf("UpdateRule = %+v, %v", up, err)
	}
	bad := "not a date"
	_, err = c.UpdateRule(ctx, tok, rule.ID, finch.RuleUpdate{EffectiveEndDate: &bad})
	apiErr(t, err, http.StatusBadRequest)
	if _, err := c.UpdateRule(ctx, tok, rule.ID, finch.RuleUpdate{}); err == nil {
		t.Error("an empty update passed")
	}
	del, err := c.DeleteRule(ctx, tok, rule.ID)
	if err != nil || del.ID != rule.ID || del.DeletedAt == "" {
		t.Fatalf("DeleteRule = %+v, %v", del, err)
	}
	if rules, err = c.Rules(ctx, tok); err != nil || len(rules) != 0 {
		t.Errorf("Rules after delete = %+v, %v", rules, err)
	}
	_, err = c.DeleteRule(ctx, tok, rule.ID)
	apiErr(t, err, http.StatusNotFound)
	_, err = c.CreateRule(ctx, tok, finch.RuleRequest{Conditions: []finch.RuleCondition{{Field: "name", Operator: "equals", Value: "x"}}})
	apiErr(t, err, http.StatusBadRequest)
	if _, err := c.CreateRule(ctx, tok, finch.RuleRequest{}); err == nil {
		t.Error("a rule without conditions passed")
	}
	_, err = c.Rules(ctx, e.sandboxToken("payment"))
	apiErr(t, err, http.StatusForbidden)
}
