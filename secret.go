package finchconnect

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Secret is a credential: a Finch access token, a client secret, an API key
// or a social security number. It redacts itself wherever Go would print it
// (fmt verbs, log/slog, encoding/json and error strings built from it), so a
// token cannot leak by accident through a log line or a JSON response.
//
// The value sits behind a pointer, so the paths of fmt that bypass a type's
// methods (a verb that does not fit, %p, a Secret in an unexported field)
// print an address, never the value; and a Secret cannot be compared with
// ==, which does not compile: compare secrets with [Secret.Equal], in
// constant time. The zero Secret is empty.
//
// Code that truly needs the value calls [Secret.Reveal], visibly, in the few
// places that must: the Authorization header, the sealed record, and the
// operator's explicit `token get -reveal`.
type Secret struct {
	_ [0]func() // not comparable
	v *string
}

const redacted = "[redacted]"

// NewSecret wraps v. An empty v gives the zero Secret.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{v: &v}
}

// Reveal returns the secret's value. Every call site is a place where the
// secret leaves the type's protection, so keep them few and obvious.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty. encoding/json's omitzero
// option uses it.
func (s Secret) IsZero() bool { return s.v == nil || *s.v == "" }

// Equal reports whether s and o hold the same value, in time that does not
// depend on where they differ: compare secrets with it (== does not
// compile).
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.Reveal()), []byte(o.Reveal())) == 1
}

// String returns a redacted placeholder, never the value.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return redacted
}

// GoString returns a redacted placeholder for %#v.
func (s Secret) GoString() string { return `finchconnect.NewSecret("` + s.String() + `")` }

// Format makes every fmt verb (%s, %v, %q, %x, %d…) print the placeholder.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// LogValue implements [slog.LogValuer].
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the placeholder, so a struct holding a Secret can be
// encoded for a response or a log without leaking it.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText writes the placeholder, for encoders that use
// encoding.TextMarshaler (XML, YAML, flag printing).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalJSON reads a JSON string (a token in Finch's answer, say); null
// leaves the Secret as it is, as encoding/json does for a string.
func (s *Secret) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("finchconnect: a secret must be a JSON string")
	}
	*s = NewSecret(v)
	return nil
}

// UnmarshalText reads the secret's plain text (an environment variable, a
// flag).
func (s *Secret) UnmarshalText(b []byte) error {
	*s = NewSecret(string(b))
	return nil
}
