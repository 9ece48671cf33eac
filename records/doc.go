// Package records keeps a local, sealed copy of each connection's Finch
// data and a change feed over it: the foundation of the sync engine
// (issue #19).
//
// # What exists
//
// A [Store] holds, per connection, records identified by (kind, record id):
// the company, directory entries, individuals, employments, payments, pay
// statements, benefits, enrollments and documents' metadata. Each record's
// body is its canonical JSON (object keys sorted, numbers kept as written,
// no insignificant space), sealed; the only clear columns are the
// connection id, the kind, the record id (Finch's ids) and a content MAC.
//
// # Envelope encryption and crypto-shredding
//
// Every connection has one random 256-bit data key. Record bodies are
// sealed with AES-256-GCM under it (random 96-bit nonce), with
// (connection, kind, record id) length-prefixed as associated data, so a
// body copied to another row fails to open. The data key itself is sealed
// by the [keyring.Keyring], whose key id the sealed value carries and the
// store records in a clear column; rotating the keyring therefore means
// [Store.Rewrap], which re-seals the data keys only, never the records.
//
// The content "hash" used for change detection is HMAC-SHA256 of the
// canonical JSON under a key derived from the data key, not a bare SHA-256:
// a bare hash of a small personal record (an individual: name, date of
// birth, SSN) could be confirmed by guessing, and the MAC dies with the
// data key.
//
// [Store.Shred] deletes the connection's data key first, in its own
// transaction, with SQLite's secure_delete on and the WAL checkpointed and
// truncated, so the sealed data key is gone from the files at once and the
// records are unreadable even to a holder of the keyring; it then purges
// the records, staged rows and feed. A crash between the two steps leaves
// unreadable rows that a second Shred purges.
//
// # Syncs and the change feed
//
// A sync is a [Sync] run: [Store.Begin] opens one (or returns the
// connection's open run, to resume it after a crash), [Sync.Stage] writes
// one fetched page's records together with that product's checkpoint in a
// single transaction (so a kill between any two writes loses nothing and
// replays nothing twice: a page is staged and checkpointed, or neither),
// and [Sync.Commit] compares the staged records with the stored copy by
// content MAC and, in one transaction, appends an added, modified or
// removed change for each difference, replaces the records and closes the
// run. Commit refuses while any checkpointed product is not done, so an
// interrupted run is never recorded as complete. Removals are detected only
// for the kinds the caller names as completely listed.
//
// Chosen semantics: a sync's changes become visible atomically at its
// commit. Sequence numbers are assigned inside the commit transaction,
// which holds SQLite's write lock, so they are dense, increase strictly per
// connection, and a reader never sees seq n+1 before seq n: a cursor never
// skips a change. [Store.Changes] returns changes after a cursor in order,
// with the next cursor and whether more follow. Cursors are opaque strings.
//
// # What is next
//
// The syncer package (paging every granted product through finch.Client on
// the Background budget lane, 202 data_sync_in_progress, reauth and
// disconnect), PostgreSQL (the same schema; a work queue with FOR UPDATE
// SKIP LOCKED), the /v1 changes and records routes with scoped personal
// fields, and the data.changed event. Each Store serializes its writes on
// one SQLite connection; that is enough for one process.
package records
