package finch_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
)

func TestDocuments(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client
	tok := e.sandboxToken("directory", "documents")

	first, err := c.DocumentsPage(ctx, tok, finch.DocumentOptions{})
	if err != nil || len(first.Documents) < 3 || first.Paging.Count != len(first.Documents) {
		t.Fatalf("DocumentsPage = %d documents (paging %+v), %v", len(first.Documents), first.Paging, err)
	}
	// The iterator pages by two and sees every document once, in order.
	var got []string
	for d, err := range c.Documents(ctx, tok, finch.DocumentOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.ID)
	}
	if len(got) != len(first.Documents) {
		t.Fatalf("Documents iterated %d, want %d", len(got), len(first.Documents))
	}
	for i, d := range first.Documents {
		if got[i] != d.ID {
			t.Fatalf("Documents[%d] = %s, want %s", i, got[i], d.ID)
		}
	}
	if n := e.rec.count("GET", "/employer/documents"); n != 1+(len(got)+1)/2 {
		t.Errorf("%d list requests for %d documents by two", n, len(got))
	}

	// Both W-4 shapes decode.
	seen := map[string]bool{}
	for _, ref := range first.Documents {
		if seen[ref.Type] {
			continue
		}
		seen[ref.Type] = true
		if ref.IndividualID == "" || ref.Year == 0 || !strings.HasSuffix(ref.URL, "/employer/documents/"+ref.ID) {
			t.Errorf("ref = %+v", ref)
		}
		doc, err := c.Document(ctx, tok, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if doc.Type != ref.Type || doc.Year != ref.Year {
			t.Errorf("Document = %+v, ref %+v", doc, ref)
		}
		switch doc.Type {
		case "w4_2020":
			if doc.W42020 == nil || doc.W42005 != nil || doc.W42020.IndividualID != ref.IndividualID || doc.W42020.FilingStatus == "" ||
				doc.W42020.TotalClaimDependentAndOtherCredits != doc.W42020.AmountForQualifyingChildrenUnder17+doc.W42020.AmountForOtherDependents {
				t.Errorf("w4_2020 = %+v", doc.W42020)
			}
		case "w4_2005":
			if doc.W42005 == nil || doc.W42020 != nil || doc.W42005.IndividualID != ref.IndividualID || doc.W42005.FilingStatus == "" || doc.W42005.Exemption == "" {
				t.Errorf("w4_2005 = %+v", doc.W42005)
			}
		default:
			t.Errorf("unknown document type %q", doc.Type)
		}
	}

	// Filters.
	one := first.Documents[0]
	mine, err := c.DocumentsPage(ctx, tok, finch.DocumentOptions{IndividualIDs: []string{one.IndividualID}, Types: []string{one.Type}})
	if err != nil || len(mine.Documents) == 0 {
		t.Fatalf("DocumentsPage(filtered) = %+v, %v", mine, err)
	}
	for _, d := range mine.Documents {
		if d.IndividualID != one.IndividualID || d.Type != one.Type {
			t.Errorf("filter returned %+v", d)
		}
	}

	_, err = c.DocumentsPage(ctx, tok, finch.DocumentOptions{Types: []string{"w2"}})
	apiErr(t, err, http.StatusBadRequest)
	_, err = c.Document(ctx, tok, "00000000-0000-4000-8000-000000000000")
	apiErr(t, err, http.StatusNotFound)
	_, err = c.DocumentsPage(ctx, e.sandboxToken("directory"), finch.DocumentOptions{})
	apiErr(t, err, http.StatusForbidden)
	if _, err := c.DocumentsPage(ctx, tok, finch.DocumentOptions{Offset: -1}); err == nil {
		t.Error("a negative offset passed")
	}
}

func TestForward(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	conn := e.connection("authorized_simple", "company", "directory")
	body := `{"x":1}`
	res, err := e.client.Forward(ctx, conn.AccessToken, finch.ForwardRequest{
		Method: "POST", Route: "/employees", Data: &body,
		Params: map[string]any{"page": 2}, RequestHeaders: map[string]string{"X-Trace": "t1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == 0 || res.Request.Method != "POST" || res.Request.Route != "/employees" ||
		res.Request.Headers["X-Trace"] != "t1" || res.Request.Params["page"] != float64(2) || string(res.Request.Data) != `"{\"x\":1}"` {
		t.Errorf("Forward = %+v", res)
	}

	_, err = e.client.Forward(ctx, conn.AccessToken, finch.ForwardRequest{Method: "GET", Route: "/employees?page=2"})
	apiErr(t, err, http.StatusBadRequest)
	_, err = e.client.Forward(ctx, e.sandboxToken("company"), finch.ForwardRequest{Method: "GET", Route: "/employees"})
	apiErr(t, err, http.StatusNotImplemented)
	n := e.rec.total()
	for _, req := range []finch.ForwardRequest{{Method: "TRACE", Route: "/x"}, {Method: "GET", Route: "x"}} {
		if _, err := e.client.Forward(ctx, conn.AccessToken, req); err == nil {
			t.Errorf("Forward(%+v) passed", req)
		}
	}
	if e.rec.total() != n {
		t.Error("client-side checks sent requests")
	}
}
