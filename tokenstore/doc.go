// Package tokenstore is finchconnect's vault for Finch access tokens, and the
// only code in finchconnect that encrypts.
//
// A [Store] seals each connection's access token with a keyring under the
// connection id as associated data, keeps the rest of the connection in the
// clear for listing, and hands opaque rows to a [Backend]. Backends (the
// in-memory [Memory] here; tokenstore/sqlite, tokenstore/redis and
// tokenstore/postgres) store bytes and offer the few atomic primitives that
// exactly-once callback handling needs: claim a key if absent with a time to
// live, and compare-and-set. The package tokenstoretest holds every backend
// to the same contract.
package tokenstore
