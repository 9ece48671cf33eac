-- Connections: one row per Finch connection. meta and sealed are opaque
-- bytes (bytea, never re-encoded); the index columns copy fields of meta so
-- that listing never decodes or decrypts. COLLATE "C" orders ids byte by
-- byte, as the Backend contract asks.
CREATE TABLE finchconnect_connections (
	id          text COLLATE "C" NOT NULL PRIMARY KEY,
	customer_id text COLLATE "C" NOT NULL DEFAULT '',
	provider_id text COLLATE "C" NOT NULL DEFAULT '',
	status      text COLLATE "C" NOT NULL DEFAULT '',
	meta        bytea  NOT NULL,
	sealed      bytea  NOT NULL,
	version     bigint NOT NULL
);

CREATE INDEX finchconnect_connections_customer ON finchconnect_connections (customer_id, id);
CREATE INDEX finchconnect_connections_provider ON finchconnect_connections (provider_id, id);
CREATE INDEX finchconnect_connections_status   ON finchconnect_connections (status, id);

-- Entries: the small key space with expiry (states, callback ledger, …).
-- expires_at NULL never expires; expiry is judged by the database's clock,
-- so replicas with skewed clocks agree.
CREATE TABLE finchconnect_entries (
	key        text COLLATE "C" NOT NULL PRIMARY KEY,
	value      bytea NOT NULL,
	expires_at timestamptz
);

CREATE INDEX finchconnect_entries_expiry ON finchconnect_entries (expires_at) WHERE expires_at IS NOT NULL;
