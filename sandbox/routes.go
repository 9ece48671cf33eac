package sandbox

// routes lists every emulated Finch route and the admin API.
func (s *Server) routes() {
	m := s.mux
	// Connect.
	m.HandleFunc("POST /connect/sessions", s.handleNewSession)
	m.HandleFunc("POST /connect/sessions/reauthenticate", s.handleReauthSession)
	m.HandleFunc("GET /authorize", s.handleAuthorizeGet)
	m.HandleFunc("POST /authorize", s.handleAuthorizePost)
	m.HandleFunc("GET /authorize/cancel", s.handleAuthorizeCancel)
	// Tokens and connections.
	m.HandleFunc("POST /auth/token", s.handleToken)
	m.HandleFunc("GET /introspect", s.bearer(s.handleIntrospect))
	m.HandleFunc("POST /disconnect", s.bearer(s.handleDisconnect))
	m.HandleFunc("POST /disconnect-entity", s.bearer(s.handleDisconnectEntity))
	m.HandleFunc("GET /providers", s.handleProviders)
	// Employer data.
	m.HandleFunc("GET /employer/company", s.data("company", s.handleCompany))
	m.HandleFunc("GET /employer/directory", s.data("directory", s.handleDirectory))
	m.HandleFunc("POST /employer/individual", s.data("individual", s.handleIndividuals))
	m.HandleFunc("POST /employer/employment", s.data("employment", s.handleEmployments))
	m.HandleFunc("GET /employer/payment", s.data("payment", s.handlePayments))
	m.HandleFunc("POST /employer/pay-statement", s.data("pay_statement", s.handlePayStatements))
	// Finch's sandbox API.
	m.HandleFunc("POST /sandbox/connections", s.handleSandboxConnection)
	m.HandleFunc("PUT /sandbox/connections/accounts", s.bearer(s.handleSandboxAccount))
	m.HandleFunc("PUT /sandbox/company", s.bearer(s.handleSandboxCompany))
	m.HandleFunc("POST /sandbox/directory", s.bearer(s.handleSandboxDirectory))
	// Admin API, under a prefix Finch never uses.
	m.HandleFunc("GET /_sandbox/stats", s.handleStats)
	m.HandleFunc("POST /_sandbox/faults", s.handleAddFault)
	m.HandleFunc("DELETE /_sandbox/faults", s.handleClearFaults)
	m.HandleFunc("POST /_sandbox/clock", s.handleClock)
	// Operations (sb-ops): rate limits and webhook delivery.
	m.HandleFunc("GET /_sandbox/rate-limits", s.handleRateLimits)
	m.HandleFunc("PUT /_sandbox/rate-limits", s.handleSetRateLimits)
	m.HandleFunc("DELETE /_sandbox/rate-limits", s.handleResetRateLimits)
	m.HandleFunc("GET /_sandbox/webhooks", s.handleWebhooks)
	m.HandleFunc("PUT /_sandbox/webhooks", s.handleSetWebhooks)
	m.HandleFunc("POST /_sandbox/webhooks/test", s.handleWebhookTest)
	m.HandleFunc("/", s.handleNotFound)
}
