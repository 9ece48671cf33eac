// Package server is the Connect back-end as an http.Handler that an app can
// mount in its own net/http server.
//
// It starts Finch Connect (POST /connect), binds each flow to the browser that
// started it with a single-use state, receives the authorization code
// (GET /callback for the redirect flow, POST /callback with JSON for the
// embedded flow), exchanges it exactly once — however many times, and on
// however many replicas, the callback arrives — seals the token into the
// vault, and shows the employer's company and directory. Every route is listed
// in routes.go.
//
// Exactly-once rests on two records in the shared store
// ([tokenstore.Backend]): a state record, claimed once per state, and a
// callback ledger entry, claimed once per code. The request that wins the
// ledger claim exchanges the code; every duplicate waits for the ledger entry
// to settle and shows the same result. Neither record holds a secret in the
// clear: both are keyed by SHA-256 hashes.
package server
