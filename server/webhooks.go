package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/webhook"
)

// finchWebhookPath is where Finch delivers webhooks.
const finchWebhookPath = "/webhooks/finch"

// maxWebhookBody bounds a Finch webhook's body; real ones are a few hundred
// bytes.
const maxWebhookBody = 256 << 10

// webhookApplyTimeout bounds applying one Finch event, detached from the
// request.
const webhookApplyTimeout = 30 * time.Second

// webhookDedupTTL is how long a Finch event id is remembered: Finch retries
// for hours, and may deliver an event twice.
const webhookDedupTTL = 72 * time.Hour

// handleFinchWebhook receives Finch's webhooks: it verifies the signature
// over the raw body (finch-api.md §7), drops events it has seen (by
// Finch-Event-Id, claimed in the shared store so replicas agree), records
// account status changes and tells the app through events. It answers
// quickly: 200 for anything verified, even for a connection it does not
// hold, so Finch does not retry in vain; 503 when the store failed, so
// Finch delivers the event again.
func (s *Server) handleFinchWebhook() http.Handler {
	type payload struct {
		EventType    string          `json:"event_type"`
		ConnectionID string          `json:"connection_id"`
		CompanyID    string          `json:"company_id"`
		AccountID    string          `json:"account_id"`
		EntityID     string          `json:"entity_id"`
		Data         json.RawMessage `json:"data"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.cfg.WebhookSecrets) == 0 {
			s.writeJSONError(w, r, http.StatusNotFound, "not_configured", "No Finch webhook secret is configured.")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
		if err != nil {
			s.writeJSONError(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "The webhook body is too large.")
			return
		}
		secrets := make([]string, len(s.cfg.WebhookSecrets))
		for i, k := range s.cfg.WebhookSecrets {
			secrets[i] = k.Reveal()
		}
		if err := webhook.Verify(r.Header, webhook.Finch, secrets, body, s.cfg.Now()); err != nil {
			s.log.Warn("refused a Finch webhook", "err", err, "request_id", requestID(r.Context()))
			s.writeJSONError(w, r, http.StatusUnauthorized, "invalid_signature", "The webhook signature does not verify.")
			return
		}
		var p payload
		if err := json.Unmarshal(body, &p); err != nil {
			s.writeJSONError(w, r, http.StatusBadRequest, "invalid_request", "The webhook body is not JSON.")
			return
		}
		// The event id is claimed before the event is applied, so that
		// replicas receiving the same delivery apply it once; if applying
		// fails, the claim is given back and Finch is asked to deliver
		// again (any 5xx), instead of the event being lost.
		claim, err := s.claimWebhook(r.Context(), r.Header.Get(webhook.Finch.ID))
		switch {
		case errors.Is(err, errWebhookApplied):
			writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate"})
			return
		case errors.Is(err, errWebhookBusy):
			// Another delivery of the event is at work: not an operator's
			// concern. Finch delivers it again.
			s.log.Info("a webhook is being applied by another delivery; asking Finch to deliver it again", "request_id", requestID(r.Context()))
			s.writeJSONError(w, r, http.StatusServiceUnavailable, "in_progress", "Another delivery of this event is being applied. Deliver it again later.")
			return
		case err != nil:
			s.fail(w, r, true, err)
			return
		}
		// Applied, and the claim given back, on a context of its own:
		// Finch giving up on a slow answer must not leave the claim
		// behind with the event unapplied.
		ctx, cancel := detach(r.Context(), webhookApplyTimeout)
		defer cancel()
		if err := s.applyWebhook(ctx, p.EventType, p.ConnectionID, p.Data); err != nil {
			// A context of its own again: ctx may be the one that ran out.
			fctx, fcancel := detach(r.Context(), 5*time.Second)
			defer fcancel()
			if ferr := s.releaseWebhook(fctx, claim); ferr != nil {
				s.log.Warn("give back a webhook's claim; Finch's retry takes it over once it is stale", "err", ferr, "request_id", requestID(r.Context()))
			}
			s.fail(w, r, true, storeFailure(err))
			return
		}
		if err := s.markWebhookApplied(ctx, claim); err != nil {
			// Applied all the same; a redelivery after the claim went
			// stale would apply it again, which a status change bears.
			s.log.Warn("record a webhook as applied", "err", err, "request_id", requestID(r.Context()))
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
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

// errWebhookApplied: another delivery has applied the event.
var errWebhookApplied = errors.New("server: the webhook was applied already")

// errWebhookBusy: another delivery is applying the event now.
var errWebhookBusy = errors.New("server: another delivery of this webhook is being applied")

// claimWebhook claims the event id for this delivery. It returns the claim,
// or errWebhookApplied when another delivery applied the event, or an
// error for a 503 (so that Finch delivers again): the store failed, or
// another delivery is applying the event. After a store error or a
// conflict it reads the key back: its own claim (the write landed and its
// answer was lost) is its to carry on with, and another's claim left
// applying for longer than webhookClaimStale (its delivery died, or gave
// the claim back before a late copy of its write landed) is taken over.
func (s *Server) claimWebhook(ctx context.Context, eventID string) (webhookClaim, error) {
	nonce, err := s.randomToken()
	if err != nil {
		return webhookClaim{}, err
	}
	c := webhookClaim{V: webhookClaimVersion, Nonce: nonce, Status: webhookApplying, At: s.cfg.Now().Unix(),
		key: "webhook-event/" + hashHex(eventID)}
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
			return webhookClaim{}, fmt.Errorf("server: a webhook claim in an unknown format")
		}
		switch {
		case sameHash(other.Nonce, c.Nonce):
			return c, nil // ours: the write landed, its answer was lost
		case other.Status == webhookApplied:
			return webhookClaim{}, errWebhookApplied
		case other.Status != webhookReleased && s.cfg.Now().Sub(time.Unix(other.At, 0)) <= webhookClaimStale:
			return webhookClaim{}, errWebhookBusy
		}
		// Given back, or abandoned: take it over, in one compare-and-set.
		c.At = s.cfg.Now().Unix()
		c.raw = mustJSON(c)
		if last = s.backend.Swap(ctx, c.key, cur, c.raw, webhookDedupTTL); last == nil {
			return c, nil
		}
		// Lost to another taker, or the answer was lost: the next
		// round's read tells.
	}
	return webhookClaim{}, fmt.Errorf("%w: record webhook: %v", errStoreDown, last)
}

// markWebhookApplied records the claim c as applied, so that Finch's later
// deliveries of the event are acknowledged as duplicates.
func (s *Server) markWebhookApplied(ctx context.Context, c webhookClaim) error {
	return s.settleWebhook(ctx, c, webhookApplied)
}

// releaseWebhook gives the claim c back unapplied, so that Finch's next
// delivery of the event takes it over and applies it. It is a
// compare-and-set, not a delete, so that it never removes a claim another
// delivery has taken over meanwhile.
func (s *Server) releaseWebhook(ctx context.Context, c webhookClaim) error {
	return s.settleWebhook(ctx, c, webhookReleased)
}

// settleWebhook moves the claim c to status.
func (s *Server) settleWebhook(ctx context.Context, c webhookClaim, status string) error {
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

// applyWebhook records what a verified Finch event says and tells the app.
// It returns an error only when the store failed, or the event for the app
// could not be published, so Finch should deliver the event again.
func (s *Server) applyWebhook(ctx context.Context, eventType, connectionID string, data json.RawMessage) error {
	conn, err := s.store.Lookup(ctx, connectionID)
	if errors.Is(err, finchconnect.ErrNotFound) {
		s.log.Info("a Finch webhook for a connection this instance does not hold", "event_type", eventType, "connection_id", connectionID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: read the connection of a %s webhook: %w", eventType, err)
	}
	switch {
	case eventType == "account.updated":
		var d struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(data, &d) != nil || d.Status == "" || d.Status == conn.Status {
			return nil
		}
		// A status change is published before it is recorded
		// (changeStatus), and recording it needs the row's key: check
		// that it opens first, so that nothing is published that this
		// replica cannot record. A key missing here (a rollout of a new
		// key not yet done) is worth Finch's retry, which may reach a
		// replica that has it.
		if _, err := s.store.Get(ctx, connectionID); err != nil {
			if errors.Is(err, finchconnect.ErrDecrypt) {
				s.log.Error("a Finch webhook for a connection whose token does not open with this server's keys; asking Finch to deliver it again",
					"event_type", eventType, "connection_id", connectionID, "err", err)
				return fmt.Errorf("%w: %w", errStoreDown, err)
			}
			if errors.Is(err, finchconnect.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("server: read the connection of a %s webhook: %w", eventType, err)
		}
		_, err := s.changeStatus(ctx, connectionID, conn, func(c *finchconnect.Connection) {
			c.Status = d.Status
			c.CheckedAt = s.cfg.Now()
		})
		if errors.Is(err, finchconnect.ErrNotFound) {
			return nil // disconnected meanwhile
		}
		if err != nil {
			return fmt.Errorf("server: record a webhook's status for %s: %w", connectionID, err)
		}
	case eventType == "company.updated" || strings.HasPrefix(eventType, "directory.") ||
		strings.HasPrefix(eventType, "employment.") || strings.HasPrefix(eventType, "individual.") ||
		strings.HasPrefix(eventType, "payment.") || strings.HasPrefix(eventType, "pay_statement."):
		if err := s.notifyData(ctx, conn, eventType); err != nil {
			return err
		}
	}
	return nil
}
