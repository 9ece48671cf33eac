package sandbox_test

import (
	"net/http"
	"testing"

	"github.com/finchconnect/finchconnect/sandbox"
)

// TestCompany_PerEntity: each entity of a multi-entity connection is its
// own company; the primary carries the connection's company_id, and
// /introspect names each entity after its company.
func TestCompany_PerEntity(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	code, _ := e.connect(cb, "authorized_complex", "letmein")
	x := e.exchange(code, cb).json(t)
	tok := x["access_token"].(string)
	ents := e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["entities"].([]any)
	ids, names, eins := map[any]bool{}, map[any]bool{}, map[any]bool{}
	var first map[string]any
	for i, ent := range ents {
		ent := ent.(map[string]any)
		r := e.call("GET", "/employer/company?entity_ids[]="+ent["id"].(string), "bearer:"+tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("company of entity %d = %d %s", i, r.status, r.body)
		}
		co := r.json(t)
		if i == 0 {
			first = co
			if co["id"] != x["company_id"] {
				t.Errorf("primary entity's company id = %v, want the token's company_id %v", co["id"], x["company_id"])
			}
		}
		if co["legal_name"] != ent["name"] {
			t.Errorf("entity %d: introspect name %v, company legal_name %v; want the same", i, ent["name"], co["legal_name"])
		}
		ids[co["id"]], names[co["legal_name"]], eins[co["ein"]] = true, true, true
	}
	if len(ents) != 3 || len(ids) != 3 || len(names) != 3 || len(eins) != 3 {
		t.Errorf("%d entities have %d company ids, %d legal names, %d EINs; want 3 distinct of each", len(ents), len(ids), len(names), len(eins))
	}
	if co := e.call("GET", "/employer/company", "bearer:"+tok, nil).json(t); co["id"] != first["id"] {
		t.Errorf("company without entity_ids = %v, want the primary entity's %v", co["id"], first["id"])
	}
	// With the primary disconnected, the default is the next entity.
	primary := ents[0].(map[string]any)["id"].(string)
	e.call("POST", "/disconnect-entity", "bearer:"+tok, map[string]any{"entity_ids": []string{primary}})
	if co := e.call("GET", "/employer/company", "bearer:"+tok, nil).json(t); co["id"] == first["id"] {
		t.Error("company without entity_ids is still the disconnected primary entity's")
	}
}

// TestCompany_AllEntitiesDisconnected: with every entity disconnected,
// GET /employer/company has no company to answer with and gives the
// error of a disconnected entity, rather than the first entity's company.
func TestCompany_AllEntitiesDisconnected(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tok := e.token("authorized_complex")
	var ids []string
	for _, ent := range e.call("GET", "/introspect", "bearer:"+tok, nil).json(t)["entities"].([]any) {
		ids = append(ids, ent.(map[string]any)["id"].(string))
	}
	if r := e.call("POST", "/disconnect-entity", "bearer:"+tok, map[string]any{"entity_ids": ids}); r.status != http.StatusOK {
		t.Fatalf("disconnect-entity = %d %s", r.status, r.body)
	}
	r := e.call("GET", "/employer/company", "bearer:"+tok, nil)
	if m := r.json(t); r.status != http.StatusBadRequest || m["name"] != "bad_request" || m["finch_code"] != "invalid_request" {
		t.Errorf("company with every entity disconnected = %d %s, want 400 bad_request", r.status, r.body)
	}
}
