package finch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/finchconnect/finchconnect"
)

// PayGroup is a group of individuals paid on one schedule, from
// GET /employer/pay-groups. IndividualIDs is set only by [Client.PayGroup].
type PayGroup struct {
	ID             string   `json:"id"`
	Name           string   `json:"name,omitempty"`
	PayFrequencies []string `json:"pay_frequencies,omitempty"` // weekly, bi_weekly, semi_monthly, monthly, …
	IndividualIDs  []string `json:"individual_ids,omitempty"`
}

// PayGroupOptions filters [Client.PayGroups].
type PayGroupOptions struct {
	IndividualID   string   // only the group this individual is in
	PayFrequencies []string // only groups paying at any of these
	EntityID       string   // see [WithEntityID]
}

// PayGroups lists pay groups, with GET /employer/pay-groups
// (https://developer.tryfinch.com/api-reference/payroll/pay-groups). It
// needs the payment product.
func (c *Client) PayGroups(ctx context.Context, token finchconnect.Secret, opts PayGroupOptions) ([]PayGroup, error) {
	q := withEntity(url.Values{}, opts.EntityID)
	if opts.IndividualID != "" {
		q.Set("individual_id", opts.IndividualID)
	}
	for _, f := range opts.PayFrequencies {
		q.Add("pay_frequencies[]", f)
	}
	out, err := get[[]PayGroup](ctx, c, token, "/employer/pay-groups", q)
	if err != nil {
		return nil, err
	}
	return *out, nil
}

// PayGroup returns one pay group with its members, with
// GET /employer/pay-groups/{pay_group_id}.
func (c *Client) PayGroup(ctx context.Context, token finchconnect.Secret, payGroupID string, opts ...RequestOption) (*PayGroup, error) {
	if err := checkID("pay group id", payGroupID); err != nil {
		return nil, err
	}
	return get[PayGroup](ctx, c, token, "/employer/pay-groups/"+payGroupID, entityQuery(opts))
}

// PayStatementItem is a distinct earning, tax, deduction or contribution
// seen on the company's pay statements, from GET /employer/pay-statement-item.
type PayStatementItem struct {
	Name       string                     `json:"name"`
	Category   string                     `json:"category"` // earnings, taxes, employee_deductions, employer_contributions
	Attributes PayStatementItemAttributes `json:"attributes"`
}

// PayStatementItemAttributes are an item's attributes; Metadata is what
// the company's rules attached (raw JSON object, or absent).
type PayStatementItemAttributes struct {
	Employer *bool           `json:"employer,omitempty"`
	PreTax   *bool           `json:"pre_tax,omitempty"`
	Type     string          `json:"type,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// PayStatementItemOptions filters [Client.PayStatementItems]; every field
// is optional.
type PayStatementItemOptions struct {
	Categories []string // earnings, taxes, employee_deductions, employer_contributions
	StartDate  string   // YYYY-MM-DD
	EndDate    string   // YYYY-MM-DD
	Name       string
	Type       string
	EntityID   string // see [WithEntityID]
}

// PayStatementItems lists pay statement items, with
// GET /employer/pay-statement-item. It needs the pay_statement product.
func (c *Client) PayStatementItems(ctx context.Context, token finchconnect.Secret, opts PayStatementItemOptions) ([]PayStatementItem, error) {
	q := withEntity(url.Values{}, opts.EntityID)
	for _, cat := range opts.Categories {
		q.Add("categories[]", cat)
	}
	for k, d := range map[string]string{"start_date": opts.StartDate, "end_date": opts.EndDate} {
		if d == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return nil, fmt.Errorf("finch: pay statement items: %s %q is not YYYY-MM-DD", k, cleanText(d, 32))
		}
		q.Set(k, d)
	}
	if opts.Name != "" {
		q.Set("name", opts.Name)
	}
	if opts.Type != "" {
		q.Set("type", opts.Type)
	}
	out, err := get[struct {
		Responses []PayStatementItem `json:"responses"`
	}](ctx, c, token, "/employer/pay-statement-item", q)
	if err != nil {
		return nil, err
	}
	return out.Responses, nil
}

// Rule attaches metadata to the pay statement items its conditions match.
type Rule struct {
	ID                 string          `json:"id,omitempty"`
	EntityType         string          `json:"entity_type,omitempty"` // pay_statement_item
	Priority           *int            `json:"priority,omitempty"`
	Conditions         []RuleCondition `json:"conditions,omitempty"`
	Attributes         *RuleAttributes `json:"attributes,omitempty"`
	EffectiveStartDate string          `json:"effective_start_date,omitempty"`
	EffectiveEndDate   string          `json:"effective_end_date,omitempty"`
	CreatedAt          string          `json:"created_at,omitempty"`
	UpdatedAt          string          `json:"updated_at,omitempty"`
	DeletedAt          string          `json:"deleted_at,omitempty"` // set by [Client.DeleteRule]
}

// RuleCondition matches an item's Field (e.g. "name") against Value.
type RuleCondition struct {
	Field    string `json:"field,omitempty"`
	Operator string `json:"operator,omitempty"` // equals
	Value    string `json:"value,omitempty"`
}

// RuleAttributes are what a rule sets on the items it matches.
type RuleAttributes struct {
	Metadata map[string]any `json:"metadata,omitempty"`
}

// RuleRequest describes a new rule for [Client.CreateRule].
type RuleRequest struct {
	EntityType         string          `json:"entity_type,omitempty"` // default pay_statement_item
	Conditions         []RuleCondition `json:"conditions,omitempty"`
	Attributes         *RuleAttributes `json:"attributes,omitempty"`
	EffectiveStartDate string          `json:"effective_start_date,omitempty"`
	EffectiveEndDate   string          `json:"effective_end_date,omitempty"`
}

// CreateRule creates a pay statement item rule, with
// POST /employer/pay-statement-item/rule. It is retried only when it
// certainly did not reach Finch (a resend could create a second rule).
func (c *Client) CreateRule(ctx context.Context, token finchconnect.Secret, req RuleRequest, opts ...RequestOption) (*Rule, error) {
	if len(req.Conditions) == 0 {
		return nil, errors.New("finch: create rule: at least one condition is required")
	}
	return send1[Rule](ctx, c, token, "POST", "/employer/pay-statement-item/rule", entityQuery(opts), req)
}

// Rules lists the company's pay statement item rules, with
// GET /employer/pay-statement-item/rule.
func (c *Client) Rules(ctx context.Context, token finchconnect.Secret, opts ...RequestOption) ([]Rule, error) {
	out, err := get[struct {
		Responses []Rule `json:"responses"`
	}](ctx, c, token, "/employer/pay-statement-item/rule", entityQuery(opts))
	if err != nil {
		return nil, err
	}
	return out.Responses, nil
}

// RuleUpdate changes a rule with [Client.UpdateRule]; nil fields are left
// as they are. (Finch's specification leaves the update body open; these
// are the create body's fields and the priority.)
type RuleUpdate struct {
	Conditions         []RuleCondition `json:"conditions,omitempty"`
	Attributes         *RuleAttributes `json:"attributes,omitempty"`
	EffectiveStartDate *string         `json:"effective_start_date,omitempty"`
	EffectiveEndDate   *string         `json:"effective_end_date,omitempty"`
	Priority           *int            `json:"priority,omitempty"`
}

// UpdateRule updates a rule, with PUT /employer/pay-statement-item/rule/{rule_id},
// and returns it. A PUT of the same body is idempotent, but it is a write
// all the same and is retried only when it certainly did not reach Finch.
func (c *Client) UpdateRule(ctx context.Context, token finchconnect.Secret, ruleID string, upd RuleUpdate, opts ...RequestOption) (*Rule, error) {
	if err := checkID("rule id", ruleID); err != nil {
		return nil, err
	}
	if upd.Conditions == nil && upd.Attributes == nil && upd.EffectiveStartDate == nil && upd.EffectiveEndDate == nil && upd.Priority == nil {
		return nil, errors.New("finch: update rule: the update changes nothing")
	}
	return send1[Rule](ctx, c, token, "PUT", "/employer/pay-statement-item/rule/"+ruleID, entityQuery(opts), upd)
}

// DeleteRule deletes a rule, with DELETE /employer/pay-statement-item/rule/{rule_id},
// and returns it with DeletedAt set.
func (c *Client) DeleteRule(ctx context.Context, token finchconnect.Secret, ruleID string, opts ...RequestOption) (*Rule, error) {
	if err := checkID("rule id", ruleID); err != nil {
		return nil, err
	}
	return send1[Rule](ctx, c, token, "DELETE", "/employer/pay-statement-item/rule/"+ruleID, entityQuery(opts), nil)
}
