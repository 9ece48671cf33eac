package events

import "time"

// SetClock makes o, and the Deliverers that use it, read the time from now.
// Set it before first use.
func (o *Outbox) SetClock(now func() time.Time) { o.now = now }
