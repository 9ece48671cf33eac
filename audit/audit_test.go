package audit_test

import (
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/tokenstore"
)

func TestLog(t *testing.T) {
	l := audit.New(tokenstore.NewMemory())
	t0 := time.Now().Add(-time.Hour)
	for i, r := range []finchconnect.AuditRecord{
		{At: t0, Action: finchconnect.AuditExchanged, ConnectionID: "c1", Actor: "browser"},
		{At: t0.Add(time.Minute), Action: finchconnect.AuditDecrypted, ConnectionID: "c2", Actor: "api:k1", Purpose: "GET /employer/company"},
		{At: t0.Add(2 * time.Minute), Action: finchconnect.AuditRevealed, ConnectionID: "c1", Actor: "operator"},
	} {
		if err := l.Record(t.Context(), r); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
	all, err := l.List(t.Context(), audit.Filter{})
	if err != nil || len(all) != 3 || all[0].Action != finchconnect.AuditExchanged || all[2].Action != finchconnect.AuditRevealed {
		t.Fatalf("List() = %+v, %v; want 3 records oldest first", all, err)
	}
	c1, _ := l.List(t.Context(), audit.Filter{ConnectionID: "c1"})
	if len(c1) != 2 {
		t.Errorf("List(c1) = %d records, want 2", len(c1))
	}
	recent, _ := l.List(t.Context(), audit.Filter{Since: t0.Add(90 * time.Second)})
	if len(recent) != 1 || recent[0].Actor != "operator" {
		t.Errorf("List(since) = %+v, want the last record", recent)
	}
}
