package server

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds the parsed templates: each page is the layout plus its own
// "content" block. html/template escapes everything that comes from Finch or
// from the user.
type pages struct {
	byName map[string]*template.Template
}

func newPages() (*pages, error) {
	funcs := template.FuncMap{
		"when": when,
		"num":  num,
		// A page's status and provider, which it names once each.
		"statusName":   statusName,
		"providerName": providerName,
		"join":         strings.Join,
		"or": func(s, def string) string {
			if s == "" {
				return def
			}
			return s
		},
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("server: parse layout: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("server: parse %s: %w", n, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// when formats an instant for a page, "—" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// num writes a count with thousands separators: 3,000.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pageData is what every page gets; Page holds the page's own data.
type pageData struct {
	Title     string
	Base      string // the public URL's path prefix, for links
	RequestID string
	Page      any
}

// render writes a page. It renders into a buffer first, so that a template
// error becomes a clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	t, ok := s.pages.byName[name]
	if !ok {
		panic("server: no page " + name)
	}
	var buf bytes.Buffer
	err := t.ExecuteTemplate(&buf, "layout", pageData{Title: title, Base: s.publicURL.Path, RequestID: requestID(r.Context()), Page: data})
	if err != nil {
		s.log.Error("render page", "page", name, "err", err, "request_id", requestID(r.Context()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away if this fails
}

type errorPage struct {
	Status int
	Title  string
	Detail string
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	s.render(w, r, status, "error", title, errorPage{Status: status, Title: title, Detail: detail})
}

func (s *Server) handleStatic() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Static files hold nothing private; let browsers cache them briefly.
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}

// handleFavicon answers /favicon.ico, which browsers ask for on their own,
// with the icon the layout links.
func (s *Server) handleFavicon() http.Handler {
	icon, err := staticFS.ReadFile("static/favicon.ico")
	if err != nil {
		panic(err) // embedded at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/x-icon")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(icon)
	})
}
