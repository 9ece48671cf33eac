package finchconnect

import "time"

// Event types: what finchconnect tells the app about its connections.
const (
	EventConnectionCreated         = "connection.created"
	EventConnectionReauthRequired  = "connection.reauth_required"
	EventConnectionReauthenticated = "connection.reauthenticated"
	EventConnectionDisconnected    = "connection.disconnected"
	EventConnectionStatusChanged   = "connection.status_changed"
	EventDataChanged               = "connection.data_changed"
)

// Event is something that happened to a connection, published to the app
// (through the durable outbox, when one is configured). It never holds a
// token.
type Event struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	ConnectionID string         `json:"connection_id"`
	CustomerID   string         `json:"customer_id,omitempty"`
	ProviderID   string         `json:"provider_id,omitempty"`
	Status       string         `json:"status,omitempty"`
	At           time.Time      `json:"at"`
	Data         map[string]any `json:"data,omitempty"`
}

// Audit actions: every use of a token leaves one record.
const (
	AuditExchanged    = "token.exchanged"    // a code became a stored token
	AuditDecrypted    = "token.decrypted"    // a token was opened to call Finch
	AuditRevealed     = "token.revealed"     // an operator printed a token
	AuditRotated      = "token.rotated"      // a token was re-sealed under a new key
	AuditDisconnected = "token.disconnected" // a connection was disconnected and its token deleted
	AuditDeleted      = "token.deleted"      // a token was deleted from the vault only
)

// AuditRecord is one entry of the audit trail. It names who did what to which
// connection, and never holds a secret.
type AuditRecord struct {
	At           time.Time `json:"at"`
	Action       string    `json:"action"`
	ConnectionID string    `json:"connection_id"`
	Actor        string    `json:"actor,omitempty"`   // "browser", "api:KEYID", "operator", "sweep", …
	Purpose      string    `json:"purpose,omitempty"` // e.g. the Finch route a decrypted token was used for
	RequestID    string    `json:"request_id,omitempty"`
}
