// Package sqlite is a [tokenstore.Backend] on an embedded SQLite database
// (modernc.org/sqlite, pure Go, no cgo): finchconnect's default store, for a
// single host.
//
// [Open] creates the database file (mode 0600, in a folder created 0700) and
// runs the embedded schema migrations. The database runs in WAL mode with
// synchronous=FULL, so a write is on disk when PutRow, Claim or Swap
// returns. Writes go through one dedicated connection and reads through a
// small pool; see [Open] for why. Every connection reads the file through a
// shared memory map, 1 GiB by default, so that a large vault is read
// without a system call per page; [Options] says what that costs and how to
// change it.
//
// Writes are group-committed: the writes that queue while one transaction
// commits run together in the next, so one fsync serves them all and
// concurrent writers are not capped at one fsync each. Each write is still
// judged by its own conditional statement (a lost Claim or compare-and-set
// does not disturb the others), a write returns only once the transaction
// holding it has committed, and a lone write is never delayed.
//
// Several processes may share the file on one host (SQLite locks it), but not
// over a network file system, where SQLite's locking is unreliable. Use
// tokenstore/postgres or tokenstore/redis to share a vault between hosts.
package sqlite
