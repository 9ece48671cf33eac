package tokenstore_test

import (
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/google/go-cmp/cmp"
)

func TestNamespace_KeysAndIDs(t *testing.T) {
	ns := tokenstore.NS("state")
	if got := ns.Key("abc"); got != "state/abc" {
		t.Errorf(`NS("state").Key("abc") = %q, want "state/abc"`, got)
	}
	if got := ns.Name(); got != "state" {
		t.Errorf("Name() = %q, want state", got)
	}
	for _, tt := range []struct {
		key    string
		id     string
		isMine bool
	}{
		{"state/abc", "abc", true},
		{"state/", "", true},
		{"state-used/abc", "", false},
		{"stateabc", "", false},
		{"other/state/abc", "", false},
	} {
		id, ok := ns.ID(tt.key)
		if id != tt.id || ok != tt.isMine {
			t.Errorf("ID(%q) = %q, %v; want %q, %v", tt.key, id, ok, tt.id, tt.isMine)
		}
	}
}

func TestNamespace_BadNamePanics(t *testing.T) {
	for _, name := range []string{"", "a/b", "State", "a b", "é"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NS(%q) did not panic", name)
				}
			}()
			tokenstore.NS(name)
		}()
	}
}

// TestNamespace_ScanSeesOnlyItsOwn: a namespace whose name is a prefix of
// another's ("state" and "state-used") scans only its own entries.
func TestNamespace_ScanSeesOnlyItsOwn(t *testing.T) {
	ctx := t.Context()
	m := tokenstore.NewMemory()
	state, used := tokenstore.NS("state"), tokenstore.NS("state-used")
	for _, k := range []string{state.Key("a"), state.Key("b"), used.Key("a"), "statez"} {
		if err := m.Claim(ctx, k, []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	es, err := state.Scan(ctx, m, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Key)
	}
	if diff := cmp.Diff([]string{"state/a", "state/b"}, got); diff != "" {
		t.Errorf("Scan of state: keys mismatch (-want +got):\n%s", diff)
	}
	es, err = state.Scan(ctx, m, state.Key("a"), 0)
	if err != nil || len(es) != 1 || es[0].Key != "state/b" {
		t.Errorf("Scan of state after state/a = %v, %v; want [state/b]", es, err)
	}
	if _, err := (tokenstore.Namespace{}).Scan(ctx, m, "", 0); err == nil {
		t.Error("Scan of the zero Namespace succeeded")
	}
}
