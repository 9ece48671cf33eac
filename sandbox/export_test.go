package sandbox

// Held reports how many Connect sessions and codes s remembers, for tests
// of pruning.
func (s *Server) Held() (sessions, codes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.st.Sessions), len(s.st.Codes)
}
