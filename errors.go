package finchconnect

import "errors"

// Sentinel errors shared by every package. Callers branch on them with
// errors.Is; packages wrap them with context.
var (
	// ErrNotFound means no record exists for the key or connection id.
	ErrNotFound = errors.New("finchconnect: not found")

	// ErrConflict means a compare-and-set lost: the record changed since it
	// was read, or a claim was already held.
	ErrConflict = errors.New("finchconnect: conflict")

	// ErrDecrypt means a sealed record failed to open: it was tampered with,
	// copied to another record, or sealed under a key this keyring lacks.
	ErrDecrypt = errors.New("finchconnect: cannot decrypt")

	// ErrInvalidCode means Finch refused an authorization code: it expired,
	// was already used, or its redirect_uri does not match
	// (400 invalid_grant_error).
	ErrInvalidCode = errors.New("finchconnect: invalid authorization code")

	// ErrInvalidClient means Finch refused the client id or secret
	// (401 invalid_client_error).
	ErrInvalidClient = errors.New("finchconnect: invalid client credentials")

	// ErrReauthRequired means the employer must re-authenticate the
	// connection (401 authentication_error / reauthenticate_user).
	ErrReauthRequired = errors.New("finchconnect: connection needs re-authentication")

	// ErrUnauthorized means Finch refused the access token: it was revoked
	// by a disconnect, or never existed (401 invalid_token_error and others).
	ErrUnauthorized = errors.New("finchconnect: access token refused")

	// ErrInsufficientScope means the connection was not granted the product
	// the call needs (403 insufficient_scope_error).
	ErrInsufficientScope = errors.New("finchconnect: product not granted")

	// ErrRateLimited means Finch answered 429.
	ErrRateLimited = errors.New("finchconnect: rate limited")

	// ErrStateMismatch means a callback's state is missing, unknown, expired,
	// already used, or bound to another browser.
	ErrStateMismatch = errors.New("finchconnect: invalid state")
)
