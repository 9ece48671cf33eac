// Package finchconnect connects a back-end to the Finch employment API and keeps
// the access tokens it gets safe.
//
// The root package holds only the domain: the [Connection] record that every
// other package speaks in, the [Secret] type that redacts tokens wherever they
// are printed, and the sentinel errors callers branch on. Technology lives in
// subpackages:
//
//   - finch: the client for Finch's HTTP API (code exchange, introspection,
//     disconnect, Connect sessions, employer data).
//   - keyring: AES-256-GCM sealing under key ids, so keys can rotate.
//   - tokenstore: the vault. It is the only code that encrypts; backends
//     (tokenstore/sqlite, tokenstore/redis, tokenstore/postgres and an in-memory
//     one) store sealed bytes and offer the atomic primitives that exactly-once
//     callbacks need.
//   - server: the Connect back-end as an http.Handler an app can mount.
//   - sandbox: an offline, Finch-compatible server for development and tests.
//
// Wiring happens only in cmd/finchconnect.
package finchconnect
