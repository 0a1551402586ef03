package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/webhooks"
)

// memRecorder records events in memory; *storage.Store records them in
// Redis.
type memRecorder struct{ seen map[string]bool }

func (m *memRecorder) RecordHooks(_ context.Context, evs []storage.HookEvent) ([]bool, error) {
	out := make([]bool, len(evs))
	for i, e := range evs {
		out[i] = !m.seen[e.Digest]
		m.seen[e.Digest] = true
	}
	return out, nil
}

// A signed event is recorded (200), a replay acknowledged without being
// recorded again (200), a forged one refused (401).
func ExampleReceiver() {
	recv := webhooks.NewReceiver(&memRecorder{seen: map[string]bool{}}, webhooks.ReceiverOptions{Secret: "whsec"})
	recv.Start()
	defer recv.Stop()
	body := []byte(`{"event":"smsDeliveryReport","conversation":{"id":"1","status":"delivered"}}`)
	post := func(secret string) {
		req := httptest.NewRequest(http.MethodPost, webhooks.Path, bytes.NewReader(body))
		req.Header.Set(oneroute.SignatureHeader, oneroute.WebhookSignature(secret, body))
		w := httptest.NewRecorder()
		recv.ServeHTTP(w, req)
		fmt.Println(w.Code, w.Body.String())
	}
	post("whsec")
	post("whsec")
	post("forged")
	// Output:
	// 200 {"success":true,"message":"ok"}
	// 200 {"success":true,"message":"duplicate ignored"}
	// 401 {"success":false,"message":"invalid signature"}
}
