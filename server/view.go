package server

import (
	"html/template"
	"net/url"
	"strings"

	"github.com/finchconnect/finchconnect/finch"
)

// companyView is the company as the page shows it: flattened to strings,
// with the EIN and bank account numbers masked to their last four digits,
// and "—" for what Finch left out. Finch's raw values never reach the
// template, so a field added to the page cannot unmask them by accident.
// Everything is a plain string here rather than formatted by template
// functions: html/template calls each function through reflection, and the
// page's template was the largest part of its CPU (BENCHMARKS.md).
type companyView struct {
	LegalName   string
	Entity      string
	EIN         string
	Email       string
	Phone       string
	Departments string
	Locations   []string
	Accounts    []string
}

func newCompanyView(c *finch.Company) *companyView {
	v := &companyView{
		LegalName: orDash(c.LegalName),
		EIN:       orDash(mask(c.EIN)),
		Email:     orDash(c.PrimaryEmail),
		Phone:     orDash(c.PrimaryPhoneNumber),
		Entity:    "—",
	}
	if e := c.Entity; e != nil {
		v.Entity = orDash(entityName(e.Type, e.Subtype))
	}
	var departments []string
	for _, d := range c.Departments {
		name := d.Name
		if d.Parent != nil && d.Parent.Name != "" {
			name = d.Parent.Name + " › " + name
		}
		if name != "" {
			departments = append(departments, name)
		}
	}
	v.Departments = orDash(strings.Join(departments, ", "))
	for _, l := range c.Locations {
		if s := joinNonEmpty(", ", l.Name, l.Line1, l.Line2, l.City, joinNonEmpty(" ", l.State, l.PostalCode), l.Country); s != "" {
			v.Locations = append(v.Locations, s)
		}
	}
	for _, a := range c.Accounts {
		kind := joinNonEmpty(" ", a.InstitutionName, a.AccountType)
		v.Accounts = append(v.Accounts, joinNonEmpty(" · ", a.AccountName, kind, "account "+mask(a.AccountNumber)))
	}
	return v
}

// orDash is s, or "—" for nothing.
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// mask keeps the last four digits of an identifier and hides the rest,
// keeping separators so the shape stays recognisable: "12-3456789" becomes
// "••-•••6789".
func mask(s string) string {
	if s == "" {
		return ""
	}
	digits := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	keep := 4
	if digits <= 4 {
		keep = digits / 2 // a short value still leaks little
	}
	var b strings.Builder
	di := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			di++
			if di > digits-keep {
				b.WriteRune(r)
			} else {
				b.WriteRune('•')
			}
		case r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z':
			b.WriteRune('•')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}

// directoryView is a page of the directory as the page shows it. Its rows
// are HTML built here rather than by the template: html/template calls an
// escaper through reflection for every value it prints, which made a
// 25-person page's rows cost about as much as the rest of the page
// (BenchmarkRenderConnectionPage25, BENCHMARKS.md). Every value in Rows is
// escaped by escapeText, exactly as the template escaped it.
type directoryView struct {
	Rows       template.HTML
	From, To   int
	Total      int
	HasPrev    bool
	Prev, Next int
	HasNext    bool
}

// newDirectoryView shows p, the directory read from offset in pages of
// pageSize. Each name links to employeeLink + the individual's id (path
// escaped), the employee's page; "" links nothing.
func newDirectoryView(p *finch.DirectoryPage, offset, pageSize int, employeeLink string) *directoryView {
	v := &directoryView{From: offset + 1, To: offset + len(p.Individuals), Total: p.Paging.Count}
	if len(p.Individuals) == 0 {
		v.From = offset
	}
	var rows strings.Builder
	for _, in := range p.Individuals {
		department, active := "—", "—"
		if in.Department != nil && in.Department.Name != "" {
			department = in.Department.Name
		}
		switch {
		case in.IsActive == nil:
		case *in.IsActive:
			active = "yes"
		default:
			active = "no"
		}
		name := orDash(joinNonEmpty(" ", in.FirstName, in.MiddleName, in.LastName))
		rows.WriteString(`<tr><td data-label="Name">`)
		if employeeLink != "" && in.ID != "" {
			// escapeText covers what a double-quoted attribute needs: the
			// quotes, & and <, and PathEscape leaves nothing else unsafe.
			rows.WriteString(`<a href="`)
			rows.WriteString(escapeText(employeeLink + url.PathEscape(in.ID)))
			rows.WriteString(`">`)
			rows.WriteString(escapeText(name))
			rows.WriteString("</a>")
		} else {
			rows.WriteString(escapeText(name))
		}
		rows.WriteString(`</td><td data-label="Department">`)
		rows.WriteString(escapeText(department))
		rows.WriteString(`</td><td data-label="Active">`)
		rows.WriteString(escapeText(active))
		rows.WriteString("</td></tr>\n")
	}
	v.Rows = template.HTML(rows.String()) // every value escaped above
	if offset > 0 {
		// A page back, whatever this one held: the last page may be short,
		// and an offset past the end shows no rows at all.
		v.HasPrev, v.Prev = true, max(offset-pageSize, 0)
	}
	next := offset + len(p.Individuals)
	if len(p.Individuals) > 0 && (p.Paging.Count == 0 || next < p.Paging.Count) {
		v.HasNext, v.Next = true, next
	}
	return v
}

// textEscaper replaces what html/template replaces in text between tags,
// with the same entities, so that HTML built in Go reads exactly as the
// template would have written it.
var textEscaper = strings.NewReplacer(
	"\x00", "\uFFFD",
	`"`, "&#34;",
	"&", "&amp;",
	"'", "&#39;",
	"+", "&#43;",
	"<", "&lt;",
	">", "&gt;",
)

// escapeText escapes s for text between HTML tags (not for an attribute).
func escapeText(s string) string { return textEscaper.Replace(s) }
