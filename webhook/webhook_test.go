package webhook_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect/webhook"
)

// The test vector from Finch's Go SDK (finch-api.md §7).
const (
	vecSecret = "5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
	vecID     = "msg_2Lh9KRb0pzN4LePd3XiA4v12Axj"
	vecTS     = "1676312382"
	vecBody   = `{"company_id":"720be419-0293-4d32-a707-32179b0827ab"}`
	vecSig    = "v1,m7y0TV2C+hlHxU42wCieApTSTaA8/047OAplBqxIV/s="
)

func vecHeaders(sig string) http.Header {
	h := http.Header{}
	h.Set("Finch-Event-Id", vecID)
	h.Set("Finch-Timestamp", vecTS)
	h.Set("Finch-Signature", sig)
	return h
}

func TestVerify(t *testing.T) {
	at := time.Unix(1676312382, 0)
	other := "c2VjcmV0LW51bWJlci10d28tZm9yLXJvdGF0aW9u"
	tests := []struct {
		name    string
		h       http.Header
		secrets []string
		body    string
		now     time.Time
		want    error
	}{
		{"test vector", vecHeaders(vecSig), []string{vecSecret}, vecBody, at, nil},
		{"several signatures", vecHeaders("v1,bogus " + vecSig + " v2,x"), []string{vecSecret}, vecBody, at, nil},
		{"rotated secret", vecHeaders(vecSig), []string{other, vecSecret}, vecBody, at, nil},
		{"tampered body", vecHeaders(vecSig), []string{vecSecret}, vecBody + " ", at, webhook.ErrBadSignature},
		{"wrong secret", vecHeaders(vecSig), []string{other}, vecBody, at, webhook.ErrBadSignature},
		{"only other versions", vecHeaders("v2," + vecSig[3:]), []string{vecSecret}, vecBody, at, webhook.ErrBadSignature},
		{"stale", vecHeaders(vecSig), []string{vecSecret}, vecBody, at.Add(5*time.Minute + time.Second), webhook.ErrStale},
		{"from the future", vecHeaders(vecSig), []string{vecSecret}, vecBody, at.Add(-5*time.Minute - time.Second), webhook.ErrStale},
		{"within tolerance", vecHeaders(vecSig), []string{vecSecret}, vecBody, at.Add(4 * time.Minute), nil},
		{"no signature", vecHeaders(""), []string{vecSecret}, vecBody, at, webhook.ErrNoSignature},
		{"bad secret", vecHeaders(vecSig), []string{"%%%"}, vecBody, at, webhook.ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := webhook.Verify(tt.h, webhook.Finch, tt.secrets, []byte(tt.body), tt.now); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSign_TestVector(t *testing.T) {
	got, err := webhook.Sign(vecSecret, vecID, 1676312382, []byte(vecBody))
	if err != nil || got != vecSig {
		t.Errorf("Sign(test vector) = %q, %v; want %q", got, err, vecSig)
	}
	h := http.Header{}
	now := time.Now()
	if err := webhook.SetHeaders(h, webhook.Finchconnect, vecSecret, "evt_1", now, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := webhook.Verify(h, webhook.Finchconnect, []string{vecSecret}, []byte("{}"), now); err != nil {
		t.Errorf("Verify(SetHeaders) = %v", err)
	}
}
