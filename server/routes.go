package server

import (
	"net/http"

	"github.com/finchconnect/finchconnect/apikey"
)

// addRoutes lists the whole HTTP surface of the Connect back-end.
func (s *Server) addRoutes(mux *http.ServeMux) {
	mux.Handle("GET /{$}", s.handleHome())
	mux.Handle("POST /connect", s.limit(s.cfg.ConnectLimit, s.handleConnect()))
	callback := s.limit(s.cfg.CallbackLimit, s.handleCallback())
	mux.Handle("GET /callback", callback)  // redirect flow: answers with pages
	mux.Handle("POST /callback", callback) // embedded flow: answers with JSON
	mux.Handle("GET /connections/{id}", s.handleConnection())
	mux.Handle("POST /connections/{id}/reauthenticate", s.handleReauthenticate())
	mux.Handle("GET /connections/{id}/disconnect", s.handleConfirmDisconnect())
	mux.Handle("POST /connections/{id}/disconnect", s.handleDisconnect())
	mux.Handle("GET /connections/{id}/employees/{individual}", s.handleEmployee())
	mux.Handle("GET /static/", s.handleStatic())
	mux.Handle("GET /favicon.ico", s.handleFavicon())
	mux.Handle("POST "+finchWebhookPath, s.handleFinchWebhook())
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())
	// The /v1 routes are also kept on a mux of their own, so that the API's
	// catch-all can tell a wrong method (405) from a wrong path (404).
	api := http.NewServeMux()
	for _, rt := range s.v1Routes() {
		mux.Handle(rt.pattern, rt.handler)
		api.Handle(rt.pattern, rt.handler)
	}
	mux.Handle("GET /v1/openapi.json", handleOpenAPI())
	api.Handle("GET /v1/openapi.json", handleOpenAPI())
	mux.Handle("/v1/", s.handleAPINotFound(api))
	mux.Handle("/", s.handleNotFound())
}

// v1Route is one route of the app-facing API.
type v1Route struct {
	pattern string
	handler http.Handler
}

// v1Routes is the app-facing JSON API, each route behind an API key of the
// scope it needs. openapi.json documents exactly these routes (a test
// checks it).
func (s *Server) v1Routes() []v1Route {
	read := func(h http.Handler) http.Handler { return s.requireKey(apikey.ScopeRead, h) }
	write := func(h http.Handler) http.Handler { return s.requireKey(apikey.ScopeWrite, h) }
	return []v1Route{
		{"POST /v1/connect/sessions", write(s.handleAPIConnectSession())},
		{"POST /v1/connect/complete", write(s.handleAPIComplete())},
		{"GET /v1/connections", read(s.handleAPIListConnections())},
		{"GET /v1/connections/{id}", read(s.handleAPIGetConnection())},
		{"DELETE /v1/connections/{id}", write(s.handleAPIDeleteConnection())},
		{"POST /v1/connections/{id}/reauthenticate", write(s.handleAPIConnectSession())},
		// The local copy (issue #19): 404 sync_off without Config.Records.
		{"GET /v1/connections/{id}/changes", read(s.handleAPIChanges())},
		{"GET /v1/connections/{id}/records/{kind}", read(s.handleAPIListRecords())},
		{"GET /v1/connections/{id}/records/{kind}/{record_id}", read(s.handleAPIGetRecord())},
		// Any method: the handler allows reads to read keys and asks for
		// a write key for anything else.
		{"/v1/connections/{id}/finch/{path...}", read(s.handleProxy())},
	}
}
