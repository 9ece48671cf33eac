// Package webhook signs and verifies webhooks the way Finch does: an
// HMAC-SHA256, keyed by the base64-decoded secret, over
// "{event id}.{unix timestamp}.{raw body}", sent base64-encoded as
// "v1,<signature>" entries (several, space-separated, during a secret
// rotation), and accepted within five minutes of the timestamp.
//
// finchconnect verifies Finch's webhooks with it (headers Finch-Event-Id,
// Finch-Timestamp, Finch-Signature) and signs its own events to the app with
// the same scheme under Finchconnect-* headers, so an app can verify both
// with the same code.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far a webhook's timestamp may be from now.
const Tolerance = 5 * time.Minute

// Errors from Verify.
var (
	ErrNoSignature  = errors.New("webhook: missing id, timestamp or signature header")
	ErrBadSignature = errors.New("webhook: no signature matches")
	ErrStale        = errors.New("webhook: timestamp outside the tolerance")
	ErrBadSecret    = errors.New("webhook: a secret is not valid base64")
)

// Headers names the three headers of a signing scheme.
type Headers struct {
	ID, Timestamp, Signature string
}

// Finch is the scheme of Finch's webhooks; Finchconnect the one of the
// events finchconnect sends the app.
var (
	Finch        = Headers{ID: "Finch-Event-Id", Timestamp: "Finch-Timestamp", Signature: "Finch-Signature"}
	Finchconnect = Headers{ID: "Finchconnect-Event-Id", Timestamp: "Finchconnect-Timestamp", Signature: "Finchconnect-Signature"}
)

func key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(secret)
	if err != nil || len(k) == 0 {
		return nil, ErrBadSecret
	}
	return k, nil
}

// Sign returns the v1 signature of a message.
func Sign(secret, id string, ts int64, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, k)
	fmt.Fprintf(mac, "%s.%d.", id, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// SetHeaders signs body and sets the scheme's three headers on h.
func SetHeaders(h http.Header, scheme Headers, secret, id string, now time.Time, body []byte) error {
	ts := now.Unix()
	sig, err := Sign(secret, id, ts, body)
	if err != nil {
		return err
	}
	h.Set(scheme.ID, id)
	h.Set(scheme.Timestamp, strconv.FormatInt(ts, 10))
	h.Set(scheme.Signature, sig)
	return nil
}

// Verify checks the signature headers of a webhook against any of secrets
// (old and new during a rotation). body must be the raw bytes received,
// never re-encoded JSON. It compares in constant time and ignores
// signature versions other than v1.
func Verify(h http.Header, scheme Headers, secrets []string, body []byte, now time.Time) error {
	id, tsText, sigs := h.Get(scheme.ID), h.Get(scheme.Timestamp), strings.Join(h.Values(scheme.Signature), " ")
	if id == "" || tsText == "" || sigs == "" {
		return ErrNoSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		return ErrStale
	}
	for _, secret := range secrets {
		want, err := Sign(secret, id, ts, body)
		if err != nil {
			return err
		}
		for _, got := range strings.Fields(sigs) {
			if !strings.HasPrefix(got, "v1,") {
				continue
			}
			if hmac.Equal([]byte(got), []byte(want)) {
				return nil
			}
		}
	}
	return ErrBadSignature
}
