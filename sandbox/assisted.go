package sandbox

import "time"

// Assisted connections (finch-api.md §4, finch-api-more.md §8): the
// employer adds Finch as a third-party admin by hand, so a new connection
// is "pending" until Finch is let in, "processing" while the first pull
// runs, then "connected". Until then data routes answer 202
// data_sync_in_progress (see [statusError]). The sandbox moves a
// connection along on its own clock, after Options.AssistedPending and
// Options.AssistedProcessing, and sends account.updated at each step;
// PUT /sandbox/connections/accounts sets any status at once, as in
// Finch's sandbox, and ends the timeline.

// Default assisted timing: Finch says a connection typically leaves
// pending within one business day, and that the first sync takes days
// (up to 14 for census data).
const (
	DefaultAssistedPending    = 24 * time.Hour
	DefaultAssistedProcessing = 48 * time.Hour
)

// authTypes are the authentication types a connection can have, as
// POST /sandbox/connections and Connect's integration.auth_method name
// them.
var authTypes = []string{"assisted", "credential", "api_token", "oauth"}

func validAuthType(t string) bool {
	for _, a := range authTypes {
		if a == t {
			return true
		}
	}
	return false
}

// authType is the connection's authentication type ("credential" unless
// it was made otherwise).
func (c *connection) authType() string {
	if c.AuthType == "" {
		return "credential"
	}
	return c.AuthType
}

func (c *connection) assisted() bool { return c.AuthType == "assisted" }

// pendingFor and processingFor are the assisted timing; a negative
// option means the step lasts until PUT /sandbox/connections/accounts.
func (s *Server) pendingFor() time.Duration {
	if s.opts.AssistedPending == 0 {
		return DefaultAssistedPending
	}
	return s.opts.AssistedPending
}

func (s *Server) processingFor() time.Duration {
	if s.opts.AssistedProcessing == 0 {
		return DefaultAssistedProcessing
	}
	return s.opts.AssistedProcessing
}

// initAuth gives a new connection c the authentication type sess asked
// for; an assisted connection starts pending, its timeline on the
// sandbox's clock. s.mu must be held.
func (s *Server) initAuth(c *connection, sess *session) {
	if sess.AuthMethod == "" || sess.AuthMethod == "credential" || !validAuthType(sess.AuthMethod) {
		return
	}
	c.AuthType = sess.AuthMethod
	if c.assisted() {
		c.Status = "pending"
		c.AssistedNext = time.Time{}
		if d := s.pendingFor(); d > 0 {
			c.AssistedNext = s.now().Add(d)
		}
	}
}

// assistedTick moves an assisted connection along its timeline up to
// now, sending account.updated for each step. It costs one comparison for
// any other connection. s.mu must be held.
func (s *Server) assistedTick(c *connection) {
	if c.AssistedNext.IsZero() {
		return
	}
	now := s.now()
	for !c.AssistedNext.IsZero() && !now.Before(c.AssistedNext) {
		at := c.AssistedNext
		c.AssistedNext = time.Time{}
		switch c.Status {
		case "pending":
			c.Status = "processing"
			if d := s.processingFor(); d > 0 {
				c.AssistedNext = at.Add(d)
			}
			s.emitStatus(c)
		case "processing":
			c.Status = "connected"
			s.emitStatus(c)
			s.initialSync(c, "")
		}
		s.dirty = true
	}
}

// tickAssisted moves every assisted connection along, when the clock is
// moved, so that their webhooks go out without waiting for a request.
func (s *Server) tickAssisted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.st.Connections {
		s.assistedTick(c)
	}
}

// statusMessage is the human text /introspect gives with a status.
func statusMessage(c *connection) any {
	if !c.assisted() {
		return nil
	}
	switch c.Status {
	case "pending":
		return "Waiting for the employer to add Finch as a third-party administrator."
	case "processing":
		return "Finch has access and is fetching the employer's data for the first time."
	case "error_no_account_setup":
		return "The employer has not invited Finch as a third-party administrator."
	case "error_permissions":
		return "Finch was added with permissions too narrow for the products requested."
	}
	return nil
}

// reauthenticate applies a re-authentication to c (see
// [connection.reauthenticate]) and sends account.updated for the
// connection when its status changed, and for each entity it restored.
// s.mu must be held.
func (s *Server) reauthenticate(c *connection, r *reauth) {
	before := c.Status
	wasGone := map[string]bool{}
	for _, e := range c.Entities {
		wasGone[e.ID] = e.Status == "disconnected"
	}
	c.reauthenticate(r)
	c.AssistedNext = time.Time{}
	if c.Status != before {
		s.emitStatus(c)
	}
	for _, e := range c.Entities {
		if wasGone[e.ID] && e.Status != "disconnected" {
			s.emitEntityStatus(c, e)
		}
	}
}
