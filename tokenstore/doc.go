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
// to the same contract; a backend that reads an injected clock (Memory.Now,
// sqlite's Backend.Now) runs it under tokenstoretest.RunClocked, whose
// expiry checks move a fake clock instead of sleeping.
//
// The key space is shared by several packages (apikey, audit, events, the
// callback protocol). Each names its part with a [Namespace] made by [NS]
// in that package, and makes every key through it (ns.Key(id)) and scans
// through it (ns.Scan), so no package types another's prefix and no two
// parts overlap. Consumers take only the methods they call: apikey, audit
// and events each declare a KeySpace interface of their own, which every
// Backend satisfies.
package tokenstore
