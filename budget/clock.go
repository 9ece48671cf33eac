package budget

import "time"

// A Clock tells the time and runs functions later. The budget reads it for
// every window and every wait, so that tests advance it instead of
// sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed, in its own goroutine; stop
	// cancels that and reports whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
