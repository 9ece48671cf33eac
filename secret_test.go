//lint:file-ignore SA5009 the test feeds fmt verbs that do not fit on purpose: those are the paths that bypass a type's methods.

package finchconnect_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect"
)

const marker = "tok_MARKER_6b1f0c3e"

// holder is a struct of the kind fmt prints field by field, without calling
// the fields' methods in the cases the test names.
type holder struct {
	C   *finchconnect.Connection
	tok finchconnect.Secret
}

// TestSecret_Redacts proves that no ordinary way of printing a Secret, or a
// struct holding one, reveals it.
func TestSecret_Redacts(t *testing.T) {
	s := finchconnect.NewSecret(marker)
	conn := finchconnect.Connection{ConnectionID: "c1", AccessToken: s}
	sprintf := fmt.Sprintf // through a variable: vet refuses the mismatched verbs this test uses on purpose
	outputs := map[string]string{
		"%s":      fmt.Sprintf("%s", s),
		"%v":      fmt.Sprintf("%v", s),
		"%+v":     fmt.Sprintf("%+v", s),
		"%#v":     fmt.Sprintf("%#v", s),
		"%q":      fmt.Sprintf("%q", s),
		"%x":      fmt.Sprintf("%x", s),
		"%X":      fmt.Sprintf("%X", s),
		"%d":      fmt.Sprintf("%d", s),
		"%10s":    fmt.Sprintf("%10s", s),
		"struct":  fmt.Sprintf("%v", conn),
		"struct+": fmt.Sprintf("%+v", conn),
		"struct#": fmt.Sprintf("%#v", conn),
		"ptr+":    fmt.Sprintf("%+v", &conn),
		"String":  s.String(),
		"error":   fmt.Errorf("exchange for %v failed: %w", s, errors.New("boom")).Error(),
		"Print":   fmt.Sprint(s, conn),
		// The paths of fmt that bypass a type's methods: a verb that does
		// not fit the value, %p, a pointer inside a struct, a Secret in an
		// unexported field.
		"%p":           sprintf("%p", s),
		"%p struct":    sprintf("%p", conn),
		"%d struct":    sprintf("%d", conn),
		"%t nested":    sprintf("%t", holder{C: &conn}),
		"%s nested":    sprintf("%s", holder{C: &conn}),
		"%x nested":    sprintf("%x", holder{C: &conn}),
		"unexported":   sprintf("%+v", holder{tok: s}),
		"unexported#":  sprintf("%#v", holder{tok: s}),
		"unexported%x": sprintf("%x", holder{tok: s}),
	}
	for name, out := range outputs {
		if strings.Contains(out, marker) || strings.Contains(strings.ToLower(out), fmt.Sprintf("%x", marker)) {
			t.Errorf("%s printed the secret: %q", name, out)
		}
	}

	b, err := json.Marshal(conn)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(marker)) {
		t.Errorf("json.Marshal(conn) = %s, contains the secret", b)
	}

	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("exchanged", "token", s, "conn", conn, slog.Any("any", s))
		if strings.Contains(buf.String(), marker) {
			t.Errorf("slog output contains the secret: %s", buf.String())
		}
		if !strings.Contains(buf.String(), "[redacted]") {
			t.Errorf("slog output = %s, want the [redacted] placeholder", buf.String())
		}
	}

	if got := s.Reveal(); got != marker {
		t.Errorf("Reveal() = %q, want the value", got)
	}
	if got := finchconnect.NewSecret("").String(); got != "" {
		t.Errorf("empty Secret String() = %q, want empty", got)
	}
}

func TestSecret_Equal(t *testing.T) {
	a, b := finchconnect.NewSecret("tok-abc"), finchconnect.NewSecret("tok-abc")
	if !a.Equal(b) {
		t.Error("Equal(same value) = false")
	}
	for _, o := range []finchconnect.Secret{finchconnect.NewSecret("tok-abd"), finchconnect.NewSecret("tok-ab"), finchconnect.NewSecret("tok-abcd"), finchconnect.Secret{}} {
		if a.Equal(o) {
			t.Errorf("Equal(%d-byte different value) = true", len(o.Reveal()))
		}
	}
	if !finchconnect.NewSecret("").Equal(finchconnect.Secret{}) {
		t.Error("Equal of two empty secrets = false")
	}
}
