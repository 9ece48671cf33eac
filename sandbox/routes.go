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
	// Employer data over time, payroll history, pay groups and the sandbox data API (sb-payroll).
	m.HandleFunc("GET /employer/pay-groups", s.data("payment", s.handlePayGroups))
	m.HandleFunc("GET /employer/pay-groups/{id}", s.data("payment", s.handlePayGroup))
	m.HandleFunc("PUT /sandbox/individual/{id}", s.bearer(s.handleSandboxIndividual))
	m.HandleFunc("PUT /sandbox/employment/{id}", s.bearer(s.handleSandboxEmployment))
	m.HandleFunc("POST /sandbox/payment", s.bearer(s.handleSandboxPayment))
	// sb-items: pay statement items and rules, documents, request
	// forwarding, sandbox accounts.
	m.HandleFunc("GET /employer/pay-statement-item", s.data("pay_statement", s.handlePayItems))
	m.HandleFunc("POST /employer/pay-statement-item/rule", s.data("pay_statement", s.handleCreateRule))
	m.HandleFunc("GET /employer/pay-statement-item/rule", s.data("pay_statement", s.handleListRules))
	m.HandleFunc("PUT /employer/pay-statement-item/rule/{rule_id}", s.data("pay_statement", s.handleUpdateRule))
	m.HandleFunc("DELETE /employer/pay-statement-item/rule/{rule_id}", s.data("pay_statement", s.handleDeleteRule))
	m.HandleFunc("GET /employer/documents", s.data("documents", s.handleDocuments))
	m.HandleFunc("GET /employer/documents/{document_id}", s.data("documents", s.handleDocument))
	m.HandleFunc("POST /forward", s.bearer(s.handleForward))
	m.HandleFunc("POST /sandbox/connections/accounts", s.handleSandboxAccountCreate)
	// Deductions and jobs (sb-benefits; scopes in products.go).
	s.scoped("GET /employer/benefits", s.handleBenefitList)
	s.scoped("POST /employer/benefits", s.handleBenefitCreate)
	s.scoped("GET /employer/benefits/meta", s.handleBenefitMeta)
	s.scoped("POST /employer/benefits/register", s.handleBenefitRegister)
	s.scoped("GET /employer/benefits/{benefit_id}", s.handleBenefitGet)
	s.scoped("POST /employer/benefits/{benefit_id}", s.handleBenefitUpdate)
	s.scoped("GET /employer/benefits/{benefit_id}/enrolled", s.handleBenefitEnrolled)
	s.scoped("GET /employer/benefits/{benefit_id}/individuals", s.handleBenefitIndividuals)
	s.scoped("POST /employer/benefits/{benefit_id}/individuals", s.handleBenefitEnroll)
	s.scoped("DELETE /employer/benefits/{benefit_id}/individuals", s.handleBenefitUnenroll)
	s.scoped("GET /jobs/manual/{job_id}", s.handleManualJob)
	s.bearerRoute("POST /jobs/automated", s.handleAutomatedCreate)
	s.bearerRoute("GET /jobs/automated", s.handleAutomatedList)
	s.bearerRoute("GET /jobs/automated/{job_id}", s.handleAutomatedGet)
	s.bearerRoute("POST /sandbox/jobs", s.handleSandboxJob)
	s.bearerRoute("GET /sandbox/jobs/configuration", s.handleSandboxJobConfig)
	s.bearerRoute("PUT /sandbox/jobs/configuration", s.handleSandboxJobConfigPut)
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
