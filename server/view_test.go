package server

import (
	"html/template"
	"net/url"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/finch"
)

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"12-3456789", "••-•••6789"},
		{"000123456789", "••••••••6789"},
		{"1234", "••34"},
		{"ab12345", "•••2345"},
	}
	for _, tt := range tests {
		if got := mask(tt.in); got != tt.want {
			t.Errorf("mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDirectoryRows_escapedAsTheTemplateWould renders hostile directory
// entries both through the directory view's Go-built rows and through the
// html/template markup they replaced, and wants the same bytes: the rows
// escape exactly as the template did.
func TestDirectoryRows_escapedAsTheTemplateWould(t *testing.T) {
	ref := template.Must(template.New("rows").Funcs(template.FuncMap{"or": func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}}).Parse(`{{range .}}<tr><td data-label="Name">{{if .Href}}<a href="{{.Href}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</td><td data-label="Department">{{or .Department "—"}}</td><td data-label="Active">{{.Active}}</td></tr>
{{end}}`))
	yes, no := true, false
	hostile := []string{
		`<script>alert(1)</script>`, `"quoted" & 'single'`, "a+b", "nul\x00byte", "</td></tr><tr><td>",
		"{{.}}", "&amp;", "ünïcødé — ok", "",
	}
	var in []finch.Individual
	type person struct{ Href, Name, Department, Active string }
	var want []person
	for i, h := range hostile {
		ind := finch.Individual{FirstName: h, LastName: "L" + h}
		p := person{Name: joinNonEmpty(" ", h, "L"+h), Active: "—"}
		if i%2 == 0 && h != "" { // a hostile id, linked
			ind.ID, p.Href = h, "/connections/c%201/employees/"+url.PathEscape(h)
		}
		switch i % 3 {
		case 0:
			ind.IsActive, p.Active = &yes, "yes"
			ind.Department, p.Department = &finch.Department{Name: h}, h
		case 1:
			ind.IsActive, p.Active = &no, "no"
		}
		in = append(in, ind)
		want = append(want, p)
	}
	var b strings.Builder
	if err := ref.Execute(&b, want); err != nil {
		t.Fatal(err)
	}
	got := newDirectoryView(&finch.DirectoryPage{Individuals: in}, 0, 25, "/connections/c%201/employees/").Rows
	if string(got) != b.String() {
		t.Errorf("directory rows differ from the template's:\ngot:\n%s\nwant:\n%s", got, b.String())
	}
	if strings.Contains(string(got), "<script>") {
		t.Errorf("directory rows hold an unescaped tag:\n%s", got)
	}
}

func TestDirectoryView_Paging(t *testing.T) {
	people := func(n int) []finch.Individual { return make([]finch.Individual, n) }
	tests := []struct {
		name             string
		rows, count, off int
		wantPrev         int // -1: no Previous link
		wantNext         int // -1: no Next link
	}{
		{"first page", 25, 60, 0, -1, 25},
		{"middle page", 25, 60, 25, 0, 50},
		{"short last page", 10, 60, 50, 25, -1},
		{"short last page, odd offset", 5, 25, 20, 0, -1},
		{"past the end", 0, 25, 100, 75, -1},
		{"count unknown", 25, 0, 25, 0, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newDirectoryView(&finch.DirectoryPage{Individuals: people(tt.rows), Paging: finch.Paging{Count: tt.count}}, tt.off, 25, "")
			prev, next := -1, -1
			if v.HasPrev {
				prev = v.Prev
			}
			if v.HasNext {
				next = v.Next
			}
			if prev != tt.wantPrev || next != tt.wantNext {
				t.Errorf("Previous, Next = %d, %d; want %d, %d (-1: none)", prev, next, tt.wantPrev, tt.wantNext)
			}
		})
	}
}
