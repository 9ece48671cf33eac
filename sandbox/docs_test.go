package sandbox

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestDocsListEverything keeps docs/sandbox.md complete: every route of
// routes.go in its "Every route" table, every scenario login, every knob
// of Options and every flag of `finchconnect sandbox`.
func TestDocsListEverything(t *testing.T) {
	doc, err := os.ReadFile("../docs/sandbox.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "## Every route")
	if !ok {
		t.Fatal(`docs/sandbox.md has no "## Every route" section`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	routes := regexp.MustCompile(`"((?:GET|POST|PUT|PATCH|DELETE) /[^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 60 {
		t.Fatalf("found %d routes in routes.go; is the pattern broken?", len(routes))
	}
	for _, r := range routes {
		if !strings.Contains(table, "| `"+r[1]+"` |") {
			t.Errorf("docs/sandbox.md's route table lacks `%s`", r[1])
		}
	}
	for _, sc := range scenarios {
		if !strings.Contains(string(doc), "`"+sc.Username+"`") {
			t.Errorf("docs/sandbox.md does not describe the scenario login %q", sc.Username)
		}
	}
	// The flags of `finchconnect sandbox`, which wires Options (read as
	// text: the sandbox imports nothing of the project).
	cmd, err := os.ReadFile("../cmd/finchconnect/sandbox.go")
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`fs\.\w+Var\([^,]+, "([a-z-]+)"`).FindAllStringSubmatch(string(cmd), -1)
	if len(flags) < 9 {
		t.Fatalf("found %d flags in cmd/finchconnect/sandbox.go; is the pattern broken?", len(flags))
	}
	for _, f := range flags {
		if !regexp.MustCompile("`-" + regexp.QuoteMeta(f[1]) + "[` ]").Match(doc) {
			t.Errorf("docs/sandbox.md does not describe the flag -%s", f[1])
		}
	}
	opts := reflect.TypeOf(Options{})
	for i := range opts.NumField() {
		if name := opts.Field(i).Name; !strings.Contains(string(doc), name) {
			t.Errorf("docs/sandbox.md does not describe Options.%s", name)
		}
	}
}
