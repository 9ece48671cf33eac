package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/internal/reqid"
)

// webhookApplyTimeout bounds applying one Finch event, detached from the
// request.
const webhookApplyTimeout = 30 * time.Second

// webhookDedupTTL is how long a Finch event id is remembered: Finch retries
// for hours, and may deliver an event twice.
const webhookDedupTTL = 72 * time.Hour

// Webhook applies the Finch event eventID once, across deliveries and
// replicas: it claims the event id, runs apply on a context of its own
// (Finch giving up on a slow answer must not leave the claim behind with
// the event unapplied), and records the event as applied. If apply fails,
// the claim is given back, on a fresh context, so that Finch's next
// delivery applies the event, and apply's error is returned.
//
// A delivery of an event applied already is [ErrWebhookApplied] (answer
// it as a success); one that finds another delivery at work is
// [ErrWebhookBusy], and a store that fails before the claim is
// [ErrStoreDown]: ask Finch to deliver again.
func (s *Service) Webhook(ctx context.Context, eventID string, apply func(ctx context.Context) error) error {
	claim, err := s.claimWebhook(ctx, eventID)
	if err != nil {
		return err
	}
	actx, cancel := detach(ctx, webhookApplyTimeout)
	defer cancel()
	if err := apply(actx); err != nil {
		// A context of its own again: actx may be the one that ran out.
		fctx, fcancel := detach(ctx, 5*time.Second)
		defer fcancel()
		if ferr := s.releaseWebhook(fctx, claim); ferr != nil {
			s.log.Warn("give back a webhook's claim; Finch's retry takes it over once it is stale", "err", ferr, "request_id", reqid.From(ctx))
		}
		return err
	}
	if err := s.markWebhookApplied(actx, claim); err != nil {
		// Applied all the same; a redelivery after the claim went stale
		// would apply it again, which a status change bears.
		s.log.Warn("record a webhook as applied", "err", err, "request_id", reqid.From(ctx))
	}
	return nil
}

// webhookClaim is the record under a Finch event id's key: who is applying
// the event (its nonce, random per delivery), since when, and whether it is
// applied. A delivery tells its own claim from another's by the nonce, so
// that a claim whose answer was lost (a store that timed out, and a client
// that sent the write again) is not taken for a duplicate.
type webhookClaim struct {
	V      int    `json:"v"` // format version: webhookClaimVersion
	Nonce  string `json:"nonce"`
	Status string `json:"status"` // webhookApplying, webhookApplied or webhookReleased
	At     int64  `json:"at"`     // when the claim was made, unix seconds

	key string // where it is stored
	raw []byte // the bytes stored for it
}

const (
	webhookClaimVersion = 1
	webhookApplying     = "applying"
	webhookApplied      = "applied"
	webhookReleased     = "released" // given back unapplied: the next delivery takes it over
	// webhookClaimStale is how long a claim may stay applying before
	// another delivery takes it over: longer than any delivery takes to
	// apply (webhookApplyTimeout, then the give-back), shorter than
	// Finch's retries after the first few seconds.
	webhookClaimStale = webhookApplyTimeout + 30*time.Second
	// webhookClaimTries bounds how many times a delivery tries to claim
	// its event id while the store fails, before it asks Finch to deliver
	// again.
	webhookClaimTries = 3
)

// claimWebhook claims the event id for this delivery. It returns the claim,
// or ErrWebhookApplied when another delivery applied the event, or an
// error for a 503 (so that Finch delivers again): the store failed, or
// another delivery is applying the event. After a store error or a
// conflict it reads the key back: its own claim (the write landed and its
// answer was lost) is its to carry on with, and another's claim left
// applying for longer than webhookClaimStale (its delivery died, or gave
// the claim back before a late copy of its write landed) is taken over.
func (s *Service) claimWebhook(ctx context.Context, eventID string) (webhookClaim, error) {
	nonce, err := s.randomToken()
	if err != nil {
		return webhookClaim{}, err
	}
	c := webhookClaim{V: webhookClaimVersion, Nonce: nonce, Status: webhookApplying, At: s.clock.Now().Unix(),
		key: webhookNS.Key(hashHex(eventID))}
	c.raw = mustJSON(c)
	var last error
	for range webhookClaimTries {
		err := s.backend.Claim(ctx, c.key, c.raw, webhookDedupTTL)
		if err == nil {
			return c, nil
		}
		last = err
		cur, lerr := s.backend.Load(ctx, c.key)
		switch {
		case errors.Is(lerr, finchconnect.ErrNotFound):
			continue // not claimed (or expired meanwhile): claim again
		case lerr != nil:
			last = lerr
			continue
		}
		var other webhookClaim
		if json.Unmarshal(cur, &other) != nil || other.V != webhookClaimVersion {
			return webhookClaim{}, fmt.Errorf("connect: a webhook claim in an unknown format")
		}
		switch {
		case sameHash(other.Nonce, c.Nonce):
			return c, nil // ours: the write landed, its answer was lost
		case other.Status == webhookApplied:
			return webhookClaim{}, ErrWebhookApplied
		case other.Status != webhookReleased && s.clock.Now().Sub(time.Unix(other.At, 0)) <= webhookClaimStale:
			return webhookClaim{}, ErrWebhookBusy
		}
		// Given back, or abandoned: take it over, in one compare-and-set.
		c.At = s.clock.Now().Unix()
		c.raw = mustJSON(c)
		if last = s.backend.Swap(ctx, c.key, cur, c.raw, webhookDedupTTL); last == nil {
			return c, nil
		}
		// Lost to another taker, or the answer was lost: the next
		// round's read tells.
	}
	return webhookClaim{}, fmt.Errorf("%w: record webhook: %v", ErrStoreDown, last)
}

// markWebhookApplied records the claim c as applied, so that Finch's later
// deliveries of the event are acknowledged as duplicates.
func (s *Service) markWebhookApplied(ctx context.Context, c webhookClaim) error {
	return s.settleWebhook(ctx, c, webhookApplied)
}

// releaseWebhook gives the claim c back unapplied, so that Finch's next
// delivery of the event takes it over and applies it. It is a
// compare-and-set, not a delete, so that it never removes a claim another
// delivery has taken over meanwhile.
func (s *Service) releaseWebhook(ctx context.Context, c webhookClaim) error {
	return s.settleWebhook(ctx, c, webhookReleased)
}

// settleWebhook moves the claim c to status.
func (s *Service) settleWebhook(ctx context.Context, c webhookClaim, status string) error {
	done := c
	done.Status = status
	raw := mustJSON(done)
	err := s.backend.Swap(ctx, c.key, c.raw, raw, webhookDedupTTL)
	if err == nil {
		return nil
	}
	// The swap may have landed with its answer lost.
	if cur, lerr := s.backend.Load(ctx, c.key); lerr == nil && bytes.Equal(cur, raw) {
		return nil
	}
	return err
}
