// Package seam holds the dependencies that tests inject into the protocol
// (package connect) and the server: the clock, the randomness and the
// failpoint hook, with their one set of defaults, so that both packages'
// options mean the same and default the same.
package seam

import (
	"crypto/rand"
	"io"

	"github.com/finchconnect/finchconnect/internal/clock"
)

// Set is the injectable dependencies. A nil field means its default.
type Set struct {
	Clock     clock.Clock       // default: the system clock
	Rand      io.Reader         // default: crypto/rand
	Failpoint func(name string) // default: does nothing
}

// WithDefaults returns s with every nil field set to its default.
func (s Set) WithDefaults() Set {
	if s.Clock == nil {
		s.Clock = clock.Real()
	}
	if s.Rand == nil {
		s.Rand = rand.Reader
	}
	if s.Failpoint == nil {
		s.Failpoint = func(string) {}
	}
	return s
}
