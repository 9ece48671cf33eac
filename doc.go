// Package finchconnect connects a back-end to the Finch employment API and keeps
// the access tokens it gets safe.
//
// The root package holds only the domain: the [Connection] record that every
// other package speaks in, the [Secret] type that redacts tokens wherever they
// are printed, and the sentinel errors callers branch on. Everything else is a
// package of its own, one sentence each (ARCHITECTURE.md walks a callback
// through them):
//
//   - finch: the client for Finch's HTTP API (code exchange, introspection,
//     disconnect, Connect sessions, employer data), with typed errors and
//     retries for reads.
//   - keyring: AES-256-GCM sealing under key ids, so keys can rotate.
//   - tokenstore: the vault of tokens, over a Backend contract of sealed
//     rows and a small key space with atomic claims.
//   - tokenstore/sqlite, tokenstore/redis, tokenstore/postgres: the Backends
//     for one machine, and for many replicas (the in-memory one is in
//     tokenstore).
//   - tokenstore/tokenstoretest: the conformance suite every Backend passes.
//   - tokenstore/postgres/postgrestest: a PostgreSQL backend in a schema of
//     its own, for tests.
//   - connect: the exactly-once protocol: Connect flows, the callback ledger
//     that exchanges each code once, staging, the journal's replay,
//     recovery, drain and the webhook claims, behind one Service.
//   - server: the Connect back-end as an http.Handler an app can mount: the
//     HTTP transport of connect (pages, the callback, the /v1 API and
//     proxy, Finch's webhooks) and the health sweeps.
//   - budget: one Finch rate budget per client id and product, in lanes,
//     that every call of the finch client draws from.
//   - budget/redisbudget, budget/pgbudget: the budget's windows shared by
//     replicas through Redis or PostgreSQL, leased in slices.
//   - budget/budgettest: the conformance suite the shared windows pass.
//   - records: the local, sealed copy of each connection's employer data
//     (a data key per connection, sealed by the keyring; crypto-shredding)
//     and its change feed.
//   - syncer: one connection's sync from Finch into records, checkpointed
//     page by page in the budget's Background lane.
//   - apikey: the API keys that an app's services use to call /v1.
//   - audit: the trail of every use of a token, kept in the store.
//   - events: the durable outbox that delivers connection events to the app
//     at least once.
//   - webhook: Finch's webhook signature scheme, to sign and to verify.
//   - metrics: Prometheus metrics on a registry of their own, and the
//     wrappers that feed them.
//   - sandbox: an offline, Finch-compatible server for development, tests
//     and any Finch SDK; it imports nothing else of the project.
//   - internal/inflight: a counter of work in progress for graceful
//     shutdowns.
//   - internal/clock: the one injected clock of the protocol and the sweeps,
//     and the fake one tests advance.
//   - internal/seam: the dependencies tests inject into connect and server
//     (clock, randomness, failpoints), with their one set of defaults.
//   - internal/reqid: the request id carried in a context, for log lines.
//   - internal/testenv: the addresses of the test Redis and PostgreSQL, and
//     the rule that tests skip without them locally but never under CI.
//   - cmd/finchconnect: the binary, and the only place where packages are
//     wired together.
//   - examples/embed: the Connect back-end mounted in an app's own server, as
//     README.md shows it.
//   - bench/...: the load and scale runs behind BENCHMARKS.md (floor,
//     upstream, load, profile, report, scale, budget).
package finchconnect
