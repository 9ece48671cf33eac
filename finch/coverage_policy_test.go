package finch_test

import (
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
)

// TestCoverage_RetryPolicy: the new reads are retried after a 5xx; the new
// writes are resent after a 429 (Finch refused them unprocessed) and never
// after a 5xx (they may have taken effect).
func TestCoverage_RetryPolicy(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	all := []string{"company", "directory", "individual", "employment", "payment", "pay_statement", "benefits", "documents"}
	type call func(c *finch.Client, tok finchconnect.Secret) error
	reads := map[string]call{
		"GET /employer/benefits": func(c *finch.Client, tok finchconnect.Secret) error { _, err := c.Benefits(ctx, tok); return err },
		"GET /employer/benefits/meta": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.SupportedBenefits(ctx, tok)
			return err
		},
		"GET /employer/pay-groups": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.PayGroups(ctx, tok, finch.PayGroupOptions{})
			return err
		},
		"GET /employer/pay-statement-item": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.PayStatementItems(ctx, tok, finch.PayStatementItemOptions{})
			return err
		},
		"GET /employer/pay-statement-item/rule": func(c *finch.Client, tok finchconnect.Secret) error { _, err := c.Rules(ctx, tok); return err },
		"GET /employer/documents": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.DocumentsPage(ctx, tok, finch.DocumentOptions{})
			return err
		},
		"GET /jobs/automated": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.AutomatedJobs(ctx, tok, 0, 0)
			return err
		},
		"GET /sandbox/jobs/configuration": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.SandboxJobConfigurations(ctx, tok)
			return err
		},
	}
	writes := map[string]call{
		"POST /employer/benefits": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.CreateBenefit(ctx, tok, finch.BenefitRequest{Type: "401k", Description: "Retirement"})
			return err
		},
		"POST /employer/pay-statement-item/rule": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.CreateRule(ctx, tok, finch.RuleRequest{Conditions: []finch.RuleCondition{{Field: "name", Operator: "equals", Value: "x"}},
				Attributes: &finch.RuleAttributes{Metadata: map[string]any{"k": "v"}}})
			return err
		},
		"POST /jobs/automated": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.CreateAutomatedJob(ctx, tok, finch.AutomatedJobRequest{Type: "data_sync_all"})
			return err
		},
		"POST /sandbox/payment": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.SandboxCreatePayment(ctx, tok, finch.SandboxPaymentRequest{})
			return err
		},
		"PUT /sandbox/jobs/configuration": func(c *finch.Client, tok finchconnect.Secret) error {
			_, err := c.SandboxSetJobConfiguration(ctx, tok, finch.SandboxJobConfiguration{Type: "data_sync_all", CompletionStatus: "complete"})
			return err
		},
		"POST /sandbox/connections": func(c *finch.Client, _ finchconnect.Secret) error {
			_, err := c.SandboxCreateConnection(ctx, finch.SandboxConnectionRequest{ProviderID: "gusto"})
			return err
		},
	}
	run := func(t *testing.T, route string, f call, fault sandbox.Fault, wantSends, wantStatus int) {
		t.Helper()
		tok := e.sandboxToken(all...)
		c, _ := e.recordingClient()
		fault.Route = route
		e.sb.InjectFault(fault)
		defer e.sb.ClearFaults()
		method, path, _ := strings.Cut(route, " ")
		before := e.rec.count(method, path)
		err := f(c, tok)
		if got := e.rec.count(method, path) - before; got != wantSends {
			t.Errorf("%s sent %d times, want %d", route, got, wantSends)
		}
		if statusOf(err) != wantStatus {
			t.Errorf("%s: err = %v, want status %d", route, err, wantStatus)
		}
	}
	for route, f := range reads {
		t.Run(route+" after 500", func(t *testing.T) { run(t, route, f, sandbox.Fault{Status: 500, Count: 1}, 2, 0) })
	}
	for route, f := range writes {
		t.Run(route+" after 500", func(t *testing.T) { run(t, route, f, sandbox.Fault{Status: 500, Count: 1}, 1, 500) })
		t.Run(route+" after 429", func(t *testing.T) { run(t, route, f, sandbox.Fault{Status: 429, Count: 1}, 2, 0) })
	}
}
