package server

import "net/http"

// addRoutes lists the whole HTTP surface of the Connect back-end.
func (s *Server) addRoutes(mux *http.ServeMux) {
	mux.Handle("GET /{$}", s.handleHome())
	mux.Handle("POST /connect", s.limit(s.cfg.ConnectLimit, s.handleConnect()))
	callback := s.limit(s.cfg.CallbackLimit, s.handleCallback())
	mux.Handle("GET /callback", callback)  // redirect flow: answers with pages
	mux.Handle("POST /callback", callback) // embedded flow: answers with JSON
	mux.Handle("GET /connections/{id}", s.handleConnection())
	mux.Handle("POST /connections/{id}/reauthenticate", s.handleReauthenticate())
	mux.Handle("POST /connections/{id}/disconnect", s.handleDisconnect())
	mux.Handle("GET /static/", s.handleStatic())
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())
	mux.Handle("/", s.handleNotFound())
}
