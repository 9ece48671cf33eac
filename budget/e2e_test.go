package budget_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/budget"
	"github.com/finchconnect/finchconnect/budget/budgettest"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
)

// TestSandboxEarnsNo429 offers the finch client, with a budget, many
// times Finch's company limit from three connections, against the sandbox
// with Finch's rate limits on, both on one advanced clock: the sandbox
// answers no 429, and the budget is used.
func TestSandboxEarnsNo429(t *testing.T) {
	clock := budgettest.NewClock()
	sb, err := sandbox.New(sandbox.Options{ClientID: "cid", ClientSecret: "csecret", Now: clock.Now, RateLimitFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	b := newBudget(t, clock, nil)
	fc := &finch.Client{BaseURL: srv.URL, ClientID: "cid", ClientSecret: finchconnectSecret("csecret"), Budget: b, MaxRetries: -1}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var ok, limited, other atomic.Int64
	for c := range 3 {
		conn, err := fc.SandboxCreateConnection(deadlineCtx(t, clock, time.Minute), finch.SandboxConnectionRequest{ProviderID: "gusto", Products: []string{"company"}, EmployeeSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx := budget.WithConnection(ctx, string(rune('a'+c)))
				for cctx.Err() == nil {
					_, err := fc.Company(cctx, conn.AccessToken)
					var apiErr *finch.APIError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &apiErr) && apiErr.StatusCode == 429:
						limited.Add(1)
					case errors.Is(err, budget.ErrNoBudget), errors.Is(err, context.Canceled):
					default:
						other.Add(1)
						t.Error(err)
					}
				}
			}()
		}
	}
	start := clock.Now()
	for clock.Now().Sub(start) < 3*time.Minute {
		time.Sleep(3 * time.Millisecond)
		clock.Advance(250 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("3 minutes: %d calls answered, %d 429s from the sandbox", ok.Load(), limited.Load())
	if limited.Load() != 0 {
		t.Errorf("the sandbox answered %d 429s, want 0", limited.Load())
	}
	if ok.Load() < 50 {
		t.Errorf("%d calls in 3 windows of 20, want at least 50", ok.Load())
	}
}

func finchconnectSecret(s string) finchconnect.Secret { return finchconnect.NewSecret(s) }
