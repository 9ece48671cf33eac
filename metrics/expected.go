package metrics

import (
	"errors"

	"github.com/finchconnect/finchconnect"
)

// expected reports whether a store error is part of normal operation (a
// miss, a lost compare-and-set) rather than a failure worth counting.
func expected(err error) bool {
	return errors.Is(err, finchconnect.ErrNotFound) || errors.Is(err, finchconnect.ErrConflict)
}
