package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/webhook"
)

// finchWebhookPath is where Finch delivers webhooks.
const finchWebhookPath = "/webhooks/finch"

// maxWebhookBody bounds a Finch webhook's body; real ones are a few hundred
// bytes.
const maxWebhookBody = 256 << 10

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
		if err := webhook.Verify(r.Header, webhook.Finch, secrets, body, s.clock.Now()); err != nil {
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
		err = s.protocol.Webhook(r.Context(), r.Header.Get(webhook.Finch.ID), func(ctx context.Context) error {
			return s.applyWebhook(ctx, p.EventType, p.ConnectionID, p.Data)
		})
		switch {
		case errors.Is(err, connect.ErrWebhookApplied):
			writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate"})
			return
		case errors.Is(err, connect.ErrWebhookBusy):
			// Another delivery of the event is at work: not an operator's
			// concern. Finch delivers it again.
			s.log.Info("a webhook is being applied by another delivery; asking Finch to deliver it again", "request_id", requestID(r.Context()))
			s.writeJSONError(w, r, http.StatusServiceUnavailable, "in_progress", "Another delivery of this event is being applied. Deliver it again later.")
			return
		case err != nil:
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
				return fmt.Errorf("%w: %w", connect.ErrStoreDown, err)
			}
			if errors.Is(err, finchconnect.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("server: read the connection of a %s webhook: %w", eventType, err)
		}
		_, err := s.changeStatus(ctx, connectionID, conn, func(c *finchconnect.Connection) {
			c.Status = d.Status
			c.CheckedAt = s.clock.Now()
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
		s.syncNow(connectionID)
	case strings.HasPrefix(eventType, "job.") && strings.HasSuffix(eventType, ".completed"):
		s.syncNow(connectionID)
	}
	return nil
}

// syncNow asks the sync engine, if any, to refresh connectionID now.
func (s *Server) syncNow(connectionID string) {
	if s.cfg.SyncNow != nil {
		s.cfg.SyncNow(connectionID)
	}
}
