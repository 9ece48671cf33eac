package finchconnect

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// Secret is a credential: a Finch access token or a client secret. It redacts
// itself wherever Go would print it (fmt verbs, log/slog, encoding/json and
// error strings built from it), so a token cannot leak by accident through a
// log line or a JSON response.
//
// Code that truly needs the value calls [Secret.Reveal], visibly, in the few
// places that must: the Authorization header, the sealed record, and the
// operator's explicit `token get -reveal`.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value. Every call site is a place where the
// secret leaves the type's protection, so keep them few and obvious.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// Equal reports whether s and o hold the same value, in time that does not
// depend on where they differ: compare secrets with it, never with ==.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s), []byte(o)) == 1
}

// String returns a redacted placeholder, never the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns a redacted placeholder for %#v.
func (s Secret) GoString() string { return `finchconnect.Secret("` + s.String() + `")` }

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
// encoding.TextMarshaler (XML, YAML, flag printing). encoding/json uses a
// string-kinded map key as it is, so never key a map by a Secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
