package records

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// TestListPages: List pages through one kind's records in id order, opened,
// never mixing kinds or connections, and a shredded connection lists
// nothing (even in the gap between a Shred's two steps).
func TestListPages(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t, 1)
	s := openStore(t, filepath.Join(t.TempDir(), "r.db"), kr, nil)
	var items []Item
	for _, id := range []string{"e", "a", "d", "b", "c"} {
		items = append(items, person(id, `{"id":"`+id+`"}`))
	}
	items = append(items, Item{Kind: Employment, ID: "a", Body: []byte(`{"title":"x"}`)})
	syncAll(t, s, "c1", items, Individual, Employment)
	syncAll(t, s, "c2", []Item{person("z", `{"id":"z"}`)}, Individual)

	var ids []string
	after, pages := "", 0
	for {
		page, next, err := s.List(ctx, "c1", Individual, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		for _, it := range page {
			if it.Kind != Individual || string(it.Body) != `{"id":"`+it.ID+`"}` {
				t.Errorf("item %+v: wrong kind or body", it)
			}
			ids = append(ids, it.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(ids, want) || pages != 3 {
		t.Errorf("listed %v in %d pages; want %v in 3", ids, pages, want)
	}
	if page, next, err := s.List(ctx, "c1", Individual, "", 5); err != nil || len(page) != 5 || next != "" {
		t.Errorf("exact page: %d items, next %q, %v; want 5, no next", len(page), next, err)
	}

	conns, err := s.Connections(ctx)
	if err != nil || !slices.Equal(conns, []string{"c1", "c2"}) {
		t.Fatalf("Connections = %v, %v", conns, err)
	}
	s.afterKeyDestroyed = func() {
		if page, _, err := s.List(ctx, "c1", Individual, "", 10); err != nil || len(page) != 0 {
			t.Errorf("List between key destruction and purge = %d items, %v; want none", len(page), err)
		}
		if conns, _ := s.Connections(ctx); !slices.Contains(conns, "c1") {
			t.Error("a half-shredded connection is not listed for the sweep")
		}
	}
	if err := s.Shred(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if page, _, err := s.List(ctx, "c1", Individual, "", 10); err != nil || len(page) != 0 {
		t.Errorf("List after Shred = %d items, %v", len(page), err)
	}
	if conns, _ := s.Connections(ctx); !slices.Equal(conns, []string{"c2"}) {
		t.Errorf("Connections after Shred = %v; want [c2]", conns)
	}
}
