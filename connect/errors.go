package connect

import "errors"

// The errors the service returns, for package server to map to statuses
// (and for embedders to branch on). Bad states and codes are the root
// package's finchconnect.ErrStateMismatch and ErrInvalidCode.
var (
	// ErrMissingParams: a callback without code or state.
	ErrMissingParams = errors.New("connect: the callback lacks code or state")
	// ErrInvalidFlow: a flow request that fails validation; the message
	// says why.
	ErrInvalidFlow = errors.New("connect: invalid flow request")
	// ErrPending: the first callback for this code is still at work after
	// Config.WaitTimeout.
	ErrPending = errors.New("connect: the first callback for this code is still in progress")
	// ErrExchange: Finch failed the code exchange (not an invalid code).
	ErrExchange = errors.New("connect: the code exchange with Finch failed")
	// ErrStore: the new connection's token could not be saved, and was
	// disconnected at Finch.
	ErrStore = errors.New("connect: the token could not be saved")
	// ErrStoreKept: a re-authentication's token could not be saved; the
	// stored connection is unchanged.
	ErrStoreKept = errors.New("connect: the new token could not be saved; the stored connection is unchanged")
	// ErrStoreDown: the store failed before anything reached Finch.
	ErrStoreDown = errors.New("connect: the store is unavailable")
	// ErrInterrupted: the callback's process died while the code was at
	// Finch; the code is never sent twice, so the employer must connect
	// again.
	ErrInterrupted = errors.New("connect: the callback was interrupted while the code was with Finch")
	// ErrSaving: the token is held (in the journal or the ledger's
	// write-ahead) until the store takes it.
	ErrSaving = errors.New("connect: the token is held in the journal until the store returns")
	// ErrDisconnected: the connection was disconnected while it was being
	// re-authenticated; the disconnect wins.
	ErrDisconnected = errors.New("connect: the connection was disconnected while it was being re-authenticated")
	// ErrWebhookApplied: another delivery has applied the Finch event.
	ErrWebhookApplied = errors.New("connect: the webhook was applied already")
	// ErrWebhookBusy: another delivery is applying the Finch event now.
	ErrWebhookBusy = errors.New("connect: another delivery of this webhook is being applied")

	errStateGone = errors.New("unknown or expired")
	errReleased  = errors.New("connect: the callback's claim was given back before its exchange")
)
