package server

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
)

// benchConnectionPage is the company page as the load runs render it: a
// company with a department, a location and an account, and one person.
func benchConnectionPage() connectionPage {
	active := true
	page := newConnectionPage(finchconnect.Connection{
		ConnectionID: "conn-000000000001", CustomerID: "c", CustomerName: "C", ProviderID: "gusto",
		Products: []string{"company", "directory"}, Status: finchconnect.StatusConnected,
		CreatedAt: time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC),
	})
	page.Company = newCompanyView(&finch.Company{
		LegalName: "Acme <Labs>", Entity: &finch.CompanyEntity{Type: "llc"}, EIN: "12-3456789", PrimaryEmail: "hr@acme.example",
		Departments: []finch.Department{{Name: "Eng"}},
		Locations:   []finch.Location{{Line1: "1 Main St", City: "Springfield", State: "IL", PostalCode: "62701", Country: "US"}},
		Accounts:    []finch.Account{{AccountName: "Payroll", AccountNumber: "000123456789", AccountType: "checking", InstitutionName: "Bank"}},
	})
	page.Directory = newDirectoryView(&finch.DirectoryPage{Individuals: []finch.Individual{{FirstName: "Ada", LastName: "L", IsActive: &active, Department: &finch.Department{Name: "Eng"}}}}, 0, 25, "")
	return page
}

// BenchmarkRenderConnectionPage measures the company page's template alone.
func BenchmarkRenderConnectionPage(b *testing.B) {
	benchmarkRender(b, benchConnectionPage())
}

// BenchmarkRenderConnectionPage25 is the same page with a full directory
// page of 25 people, as a real employer's first page shows.
func BenchmarkRenderConnectionPage25(b *testing.B) {
	page := benchConnectionPage()
	active := true
	var people []finch.Individual
	for range 25 {
		people = append(people, finch.Individual{FirstName: "Ada", LastName: "Lovelace", IsActive: &active, Department: &finch.Department{Name: "Engineering"}})
	}
	page.Directory = newDirectoryView(&finch.DirectoryPage{Individuals: people, Paging: finch.Paging{Count: 120}}, 0, 25, "")
	benchmarkRender(b, page)
}

func benchmarkRender(b *testing.B, page connectionPage) {
	s := &Server{}
	var err error
	if s.pages, err = newPages(); err != nil {
		b.Fatal(err)
	}
	if s.publicURL, err = url.Parse("http://app.test"); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/connections/"+page.Conn.ConnectionID, nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.render(w, r, 200, "connection", page.Conn.CustomerName, page)
		if w.Code != 200 {
			b.Fatalf("render = %d", w.Code)
		}
	}
}
