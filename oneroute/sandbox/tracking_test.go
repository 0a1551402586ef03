package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

const emailPath = "/api/public/channel/" + sandbox.EmailChannelID + "/email"

// Template messages and emails end as their recipient's last digit decides
// (0 failed, 9 sent for ever, 1 and 8 delivered, 2 to 7 WhatsApp read),
// every status is pushed as a signed messageStatus webhook naming the
// message by its identifier (given in identifier, metadata.identifier or
// an email's identifiers[]), and the logs show the same statuses.
func TestStatusesByIdentifier(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := oneroute.VerifySignature(sandbox.DefaultWebhookSecret, body, r.Header.Get(oneroute.SignatureHeader)); err != nil {
			t.Errorf("webhook: %v", err)
			return
		}
		var raw struct {
			Message struct {
				Identifier, Status, Medium string
			}
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
			return
		}
		mu.Lock()
		events = append(events, raw.Message.Identifier+" "+raw.Message.Status+" "+raw.Message.Medium)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	b := setup(t, sandbox.Options{DLRDelay: 50 * time.Millisecond, ReadDelay: 50 * time.Millisecond, WebhookURL: recv.URL})
	msgs := `{"to":"2348031111112","identifier":"wa-2","template":{"name":"new_conversation","parameters":[{"type":"text","text":"A"}]}},` +
		`{"to":"2348031111118","metadata":{"identifier":"wa-8"},"template":{"name":"new_conversation","parameters":[{"type":"text","text":"A"}]}},` +
		`{"to":"2348031111110","identifier":"wa-0","template":{"name":"new_conversation","parameters":[{"type":"text","text":"A"}]}},` +
		`{"to":"2348031111119","identifier":"wa-9","template":{"name":"new_conversation","parameters":[{"type":"text","text":"A"}]}}`
	if a := b.call(t, "POST", "/api/public/conversation/template", "test_k", `{"from":"`+sandbox.WhatsAppNumber+`","messages":[`+msgs+`]}`); a.Status != 200 {
		t.Fatalf("template: %d %s", a.Status, a.Raw)
	}
	if a := b.call(t, "POST", emailPath, "test_k", `{"subject":"s","message":"m","recipients":["a3@x.io","b0@x.io"],"identifiers":["em-3","em-0"]}`); a.Status != 200 {
		t.Fatalf("email: %d %s", a.Status, a.Raw)
	}
	if a := b.call(t, "POST", emailPath, "test_k", `{"subject":"s","message":"m","recipients":["a3@x.io"],"identifiers":[]}`); a.Status != 400 {
		t.Fatalf("identifiers of another length: %d %s; want 400", a.Status, a.Raw)
	}
	want := []string{
		"em-0 failed EMAIL", "em-0 sent EMAIL", "em-3 delivered EMAIL", "em-3 sent EMAIL",
		"wa-0 failed ", "wa-0 sent ", "wa-2 delivered ", "wa-2 read ", "wa-2 sent ", "wa-8 delivered ", "wa-8 sent ", "wa-9 sent ",
	}
	testwait.For(t, "every messageStatus webhook", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) >= len(want)
	})
	mu.Lock()
	got := slices.Sorted(slices.Values(events))
	mu.Unlock()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("messageStatus webhooks (-want +got):\n%s", d)
	}
	wantStatus := map[string]string{"wa-2": "read", "wa-8": "delivered", "wa-0": "failed", "wa-9": "sent", "em-3": "delivered", "em-0": "failed"}
	if d := cmp.Diff(wantStatus, b.sb.Statuses()); d != "" {
		t.Errorf("Statuses (-want +got):\n%s", d)
	}
	// The logs agree, by medium, newest first; the before cursor pages on.
	a := b.call(t, "GET", "/api/public/logs?medium=EMAIL", "test_k", "")
	var page struct {
		Data []struct{ ID, Identifier, Status, Medium string }
	}
	if err := json.Unmarshal([]byte(a.Raw), &page); err != nil {
		t.Fatalf("logs page %s: %v", a.Raw, err)
	}
	var got2 []string
	for _, r := range page.Data {
		got2 = append(got2, r.Identifier+" "+r.Status+" "+r.Medium)
	}
	if d := cmp.Diff([]string{"em-0 failed EMAIL", "em-3 delivered EMAIL"}, got2); d != "" {
		t.Errorf("email logs (-want +got):\n%s", d)
	}
	a = b.call(t, "GET", "/api/public/logs?medium=WHATSAPP&page[size]=2", "test_k", "")
	if err := json.Unmarshal([]byte(a.Raw), &page); err != nil {
		t.Fatalf("logs page %s: %v", a.Raw, err)
	}
	if len(page.Data) != 2 || page.Data[0].Identifier != "wa-9" {
		t.Fatalf("first WhatsApp page: %s", a.Raw)
	}
	a = b.call(t, "GET", "/api/public/logs?medium=WHATSAPP&page[size]=10&before="+page.Data[1].ID, "test_k", "")
	if err := json.Unmarshal([]byte(a.Raw), &page); err != nil {
		t.Fatalf("logs page %s: %v", a.Raw, err)
	}
	var ids []string
	for _, r := range page.Data {
		ids = append(ids, r.Identifier)
	}
	if d := cmp.Diff([]string{"wa-8", "wa-2"}, ids); d != "" {
		t.Errorf("rows before wa-0 (-want +got):\n%s", d)
	}
	if a := b.call(t, "GET", "/api/public/logs?before=nope", "test_k", ""); a.Status != 400 || !strings.Contains(a.Raw, "before") {
		t.Errorf("unknown cursor: %d %s; want 400", a.Status, a.Raw)
	}
	if n := b.sb.Stats().LogRequests; n != 4 {
		t.Errorf("log_requests = %d, want 4", n)
	}
}
