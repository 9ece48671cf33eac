package server

// PendingWaiters is how many callback keys this replica's followers wait
// on, for the external tests.
func (s *Server) PendingWaiters() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters)
}

// InFlight is how many callbacks are in progress, for the external tests.
func (s *Server) InFlight() int { return s.inflight.Running() }
