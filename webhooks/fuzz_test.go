package webhooks_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/webhooks"
)

// Whatever the body, signed or not, the receiver answers one of its
// documented statuses, never panics, and records only signed events that
// parse.
func FuzzReceiver(f *testing.F) {
	f.Add([]byte(`{"event":"smsDeliveryReport","message":null,"conversation":{"id":"1","status":"delivered"}}`), true)
	f.Add([]byte(`{"event":"messageStatus","message":{"externalId":"w","status":"read","identifier":"fanout:c:1"}}`), true)
	f.Add([]byte(`{"event":"newMessage","message":{"content":"STOP"},"conversation":{"id":"c"}}`), false)
	f.Add([]byte(`{"id":"x","otp":"1234","identifier":"+2348030000001"}`), true)
	f.Add([]byte(`[1,2,3]`), true)
	f.Add([]byte(``), true)
	f.Fuzz(func(t *testing.T, body []byte, signed bool) {
		rec := &memRecorder{seen: map[string]bool{}}
		recv := webhooks.NewReceiver(rec, webhooks.ReceiverOptions{Secret: "whsec", MaxBody: 1 << 10, Committers: 1})
		recv.Start()
		defer recv.Stop()
		req := httptest.NewRequest(http.MethodPost, webhooks.Path, bytes.NewReader(body))
		if signed {
			req.Header.Set(oneroute.SignatureHeader, oneroute.WebhookSignature("whsec", body))
		}
		w := httptest.NewRecorder()
		recv.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
			if !signed || len(rec.seen) != 1 {
				t.Fatalf("200 for signed=%v, %d recorded", signed, len(rec.seen))
			}
			if _, err := oneroute.ParseEvent(body); err != nil {
				t.Fatalf("recorded a body that does not parse: %v", err)
			}
		case http.StatusUnauthorized, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(rec.seen) != 0 {
				t.Fatalf("status %d but %d recorded", w.Code, len(rec.seen))
			}
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}
