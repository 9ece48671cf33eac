package finchconnect

import (
	"slices"
	"time"
)

// Connection statuses. The first six are Finch's ConnectionStatusType
// (see /introspect); Disconnected is what webhooks and entities add.
const (
	StatusPending             = "pending"
	StatusProcessing          = "processing"
	StatusConnected           = "connected"
	StatusErrorNoAccountSetup = "error_no_account_setup"
	StatusErrorPermissions    = "error_permissions"
	StatusReauth              = "reauth"
	StatusDisconnected        = "disconnected"
)

// Connection is one employer's connection to Finch as finchconnect keeps it:
// everything the token response and /introspect say, plus the access token.
//
// Only AccessToken is secret; the token store seals it and keeps the other
// fields in the clear so that listing and filtering never decrypt.
type Connection struct {
	ConnectionID   string    `json:"connection_id"`
	CustomerID     string    `json:"customer_id,omitempty"`
	CustomerName   string    `json:"customer_name,omitempty"`
	CustomerEmail  string    `json:"customer_email,omitempty"`
	ProviderID     string    `json:"provider_id"`
	Products       []string  `json:"products"`
	EntityIDs      []string  `json:"entity_ids"`
	ConnectionType string    `json:"connection_type,omitempty"` // "provider" or "finch"
	ClientType     string    `json:"client_type,omitempty"`     // "development", "production" or "sandbox"
	AccountID      string    `json:"account_id,omitempty"`      // deprecated by Finch, kept when sent
	CompanyID      string    `json:"company_id,omitempty"`      // deprecated by Finch, kept when sent
	Status         string    `json:"status"`                    // one of the Status constants
	StatusMessage  string    `json:"status_message,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	LastSyncAt     time.Time `json:"last_sync_at,omitzero"` // Finch's last_successful_sync, when known
	CheckedAt      time.Time `json:"checked_at,omitzero"`   // when finchconnect last introspected it
	// TokenAt is when the vault last stored a new access token for the
	// connection: its first, or a re-authentication's. The token store
	// sets it; it is zero on records written before it existed.
	TokenAt time.Time `json:"token_at,omitzero"`

	// AccessToken is the connection's Finch access token. It never expires
	// unless the connection is disconnected.
	AccessToken Secret `json:"access_token"`
}

// HasProduct reports whether the connection was granted product p.
func (c *Connection) HasProduct(p string) bool { return slices.Contains(c.Products, p) }
