package connect

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/internal/clock"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// countingJournal holds one token forever and counts the replays.
type countingJournal struct{ replays chan struct{} }

func (j *countingJournal) Hold(finchconnect.Connection, string) error            { return nil }
func (j *countingJournal) HoldReplacement(finchconnect.Connection, string) error { return nil }
func (j *countingJournal) Pending() int                                          { return 1 }
func (j *countingJournal) Replay(context.Context) ([]tokenstore.Replayed, error) {
	j.replays <- struct{}{}
	return nil, nil
}

func newTestService(t *testing.T, clk clock.Clock, j Journal) (*Service, tokenstore.Backend) {
	t.Helper()
	key, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(key)
	if err != nil {
		t.Fatal(err)
	}
	b := tokenstore.NewMemory()
	svc, err := New(Config{RedirectURI: "http://app.test/callback", RecoverAfter: time.Minute, Journal: j},
		&finch.Client{}, tokenstore.New(b, kr), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	return svc, b
}

// waitFor blocks until the fake clock has n waits pending.
func waitFor(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		got, next := clk.Waiting()
		if got >= n {
			return
		}
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("the clock has %d waits, want %d", got, n)
		}
	}
}

// TestRun_LoopsOnTheInjectedClock: Run's replay and recovery loops run when
// the service's clock says so, not the system's: a test advances it.
func TestRun_LoopsOnTheInjectedClock(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	j := &countingJournal{replays: make(chan struct{}, 10)}
	svc, b := newTestService(t, clk, j)
	// A callback abandoned while its code was at Finch.
	e := ledgerEntry{V: ledgerVersion, Nonce: "n", Status: ledgerPending, State: "s", Started: clk.Now().Unix()}
	raw, _ := json.Marshal(e)
	key := ledgerNS.Key(hashHex("code"))
	if err := b.Claim(t.Context(), key, raw, ledgerTTL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error)
	go func() { stopped <- svc.Run(ctx) }()

	waitFor(t, clk, 2) // both loops asleep
	select {
	case <-j.replays:
		t.Fatal("the journal was replayed before the clock moved")
	default:
	}
	clk.Advance(replayInterval)
	select {
	case <-j.replays:
	case <-time.After(10 * time.Second):
		t.Fatal("no replay after the clock passed the replay interval")
	}
	// Recovery every RecoverAfter/2; the entry is abandoned once older
	// than RecoverAfter.
	for range 3 {
		waitFor(t, clk, 2)
		clk.Advance(30 * time.Second)
	}
	deadline := time.After(10 * time.Second)
	for {
		cur, err := b.Load(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		var got ledgerEntry
		if err := json.Unmarshal(cur, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status == ledgerFailed && got.Failure == failInterrupted {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("entry after 90s of fake time = %s, want failed (interrupted)", got.Status)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("Run = %v, want nil once its context ends", err)
	}
}

// TestStagedKeyIDs: the key ids of the tokens staged in the ledger, and a
// refusal for an entry whose staged token names no key.
func TestStagedKeyIDs(t *testing.T) {
	svc, b := newTestService(t, clock.NewFake(time.Unix(1_700_000_000, 0)), nil)
	sealed, err := svc.store.SealStaged(finchconnect.Connection{ConnectionID: "c1", AccessToken: finchconnect.NewSecret("tok")})
	if err != nil {
		t.Fatal(err)
	}
	put := func(k string, e ledgerEntry) {
		raw, _ := json.Marshal(e)
		if err := b.Claim(t.Context(), ledgerNS.Key(k), raw, ledgerTTL); err != nil {
			t.Fatal(err)
		}
	}
	put("a", ledgerEntry{V: ledgerVersion, Status: ledgerExchanged, Sealed: sealed})
	put("b", ledgerEntry{V: ledgerVersion, Status: ledgerDone})
	ids, err := svc.StagedKeyIDs(t.Context())
	if err != nil || len(ids) != 1 || ids[1] != 1 {
		t.Fatalf("StagedKeyIDs = %v, %v; want key 1 once", ids, err)
	}
	put("c", ledgerEntry{V: ledgerVersion, Status: ledgerExchanged, Sealed: []byte("x")})
	if ids, err := svc.StagedKeyIDs(t.Context()); err == nil {
		t.Fatalf("StagedKeyIDs with an unreadable staged token = %v, want an error", ids)
	}
}
