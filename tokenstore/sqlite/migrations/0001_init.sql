-- Connections: one row per Finch connection. meta and sealed are opaque
-- bytes (BLOB, never re-encoded); the index columns are copies of fields in
-- meta so that listing never decodes or decrypts. TEXT compares with the
-- BINARY collation, byte by byte, which is the order the Backend contract
-- asks for.
CREATE TABLE connections (
	id          TEXT    NOT NULL PRIMARY KEY,
	customer_id TEXT    NOT NULL DEFAULT '',
	provider_id TEXT    NOT NULL DEFAULT '',
	status      TEXT    NOT NULL DEFAULT '',
	meta        BLOB    NOT NULL,
	sealed      BLOB    NOT NULL,
	version     INTEGER NOT NULL
) WITHOUT ROWID;

-- Each index ends with id so that a filtered, paged listing is one index
-- range scan in the order it returns.
CREATE INDEX connections_customer ON connections (customer_id, id);
CREATE INDEX connections_provider ON connections (provider_id, id);
CREATE INDEX connections_status   ON connections (status, id);

-- Entries: the small key space with expiry (states, callback ledger, …).
-- expires_at is Unix nanoseconds; NULL never expires.
CREATE TABLE entries (
	key        TEXT    NOT NULL PRIMARY KEY,
	value      BLOB    NOT NULL,
	expires_at INTEGER
) WITHOUT ROWID;

CREATE INDEX entries_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL;
