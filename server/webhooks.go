package server

import (
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
		// fails on the store, the claim is given back and Finch is asked
		// to deliver again (any 5xx), instead of the event being lost.
		eventID := r.Header.Get(webhook.Finch.ID)
		claim := "webhook-event/" + hashHex(eventID)
		err = s.backend.Claim(r.Context(), claim, []byte("1"), webhookDedupTTL)
		if errors.Is(err, finchconnect.ErrConflict) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate"})
			return
		}
		if err != nil {
			s.fail(w, r, true, fmt.Errorf("%w: record webhook: %v", errStoreDown, err))
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
			if ferr := s.backend.Forget(fctx, claim); ferr != nil {
				s.log.Error("give back a webhook's claim; Finch's retry will be taken as a duplicate", "err", ferr, "request_id", requestID(r.Context()))
			}
			s.fail(w, r, true, storeFailure(err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
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
