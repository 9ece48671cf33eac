package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// webhookEvent is one webhook the sandbox sends, as Finch sends them
// (finch-api.md §7).
type webhookEvent struct {
	id   string
	body []byte
}

// emit queues a webhook for connection c: account.updated for a status
// change, company.updated or directory.created for data changes. s.mu must
// be held. Without Options.WebhookURL it does nothing.
func (s *Server) emit(c *connection, eventType string, data any) {
	if s.hooks == nil {
		return
	}
	body, _ := json.Marshal(map[string]any{
		"event_type": eventType, "connection_id": c.ID, "company_id": c.CompanyID,
		"account_id": c.AccountID, "entity_id": nil, "data": data,
	})
	select {
	case s.hooks <- webhookEvent{id: "msg_" + s.random(12), body: body}:
	default:
		s.log.Warn("sandbox webhook queue full; dropping an event", "event_type", eventType)
	}
}

// sendWebhooks posts queued webhooks until stop is closed, signed like
// Finch's, with a few quick retries.
func (s *Server) sendWebhooks() {
	defer close(s.hooksDone)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-s.stop:
			return
		case ev := <-s.hooks:
			for attempt := range 4 {
				if attempt > 0 {
					select {
					case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
					case <-s.stop:
						return
					}
				}
				if err := s.post(client, ev); err == nil {
					break
				} else {
					s.log.Info("sandbox webhook failed", "attempt", attempt+1, "err", err)
				}
			}
		}
	}
}

func (s *Server) post(client *http.Client, ev webhookEvent) error {
	key, err := base64.StdEncoding.DecodeString(s.opts.WebhookSecret)
	if err != nil {
		return fmt.Errorf("webhook secret is not base64")
	}
	// The receiver checks Finch-Timestamp against its own clock (Finch's
	// SDKs allow 300 s), which POST /_sandbox/clock does not move: sign
	// with the wall clock, not the advanced one.
	ts := s.wallNow().Unix()
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", ev.id, ts)
	mac.Write(ev.body)
	req, err := http.NewRequest(http.MethodPost, s.opts.WebhookURL, bytes.NewReader(ev.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Finch-Event-Id", ev.id)
	req.Header.Set("Finch-Timestamp", fmt.Sprint(ts))
	req.Header.Set("Finch-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("answered %d", res.StatusCode)
	}
	return nil
}
