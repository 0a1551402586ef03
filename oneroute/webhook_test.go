package oneroute_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/google/go-cmp/cmp"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifySignature: only the exact raw body signed with the secret
// verifies; every alteration, truncation or malformed header is refused.
func TestVerifySignature(t *testing.T) {
	t.Parallel()
	body := fixture(t, "sms_delivery_report.json")
	good := oneroute.WebhookSignature("s3cret", body)
	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   error
	}{
		{"valid", "s3cret", body, good, nil},
		{"valid, upper-case hex", "s3cret", body, strings.ToUpper(good), nil},
		{"valid, sha512= prefix and spaces", "s3cret", body, " sha512=" + good + " ", nil},
		{"wrong secret", "other", body, good, oneroute.ErrBadSignature},
		{"truncated body", "s3cret", body[:len(body)-1], good, oneroute.ErrBadSignature},
		{"appended byte", "s3cret", append(append([]byte(nil), body...), ' '), good, oneroute.ErrBadSignature},
		{"re-encoded body", "s3cret", []byte(strings.Join(strings.Fields(string(body)), "")), good, oneroute.ErrBadSignature},
		{"empty header", "s3cret", body, "", oneroute.ErrBadSignature},
		{"truncated header", "s3cret", body, good[:127], oneroute.ErrBadSignature},
		{"not hex", "s3cret", body, strings.Repeat("zz", 64), oneroute.ErrBadSignature},
		{"sha256-sized", "s3cret", body, good[:64], oneroute.ErrBadSignature},
		{"no secret configured", "", body, oneroute.WebhookSignature("", body), oneroute.ErrNoWebhookSecret},
	}
	for _, tc := range tests {
		err := oneroute.VerifySignature(tc.secret, tc.body, tc.header)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v; want %v", tc.name, err, tc.want)
		}
	}
}

// TestParseEvent reads each documented or sandbox event from its fixture
// and refuses bodies that are not events.
func TestParseEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want string // a summary of what was parsed, or the error
	}{
		{"new_message.json", "*oneroute.NewMessage newMessage conversation=bf9d96d9-e495-489a-a22a-206b0ea44d90 content=Hello World! customer=customer@mail.com authUser=false"},
		{"sms_delivery_report.json", "*oneroute.DLR smsDeliveryReport id=1234567 status=delivered final=true delivered=2023-08-29T08:18:31.732Z"},
		{"campaign_completed.json", "*oneroute.CampaignCompleted campaignCompleted campaign=868a4f7f-3e41-4cd2-aba5-655c8b2ae2bb total=2 sent=1 failed=1 first=row-1/delivered"},
		{"message_status.json", "*oneroute.MessageStatus messageStatus id=gBGHI0kFNWAgTwIJk-_rr1Kse2yO status=read identifier=row-1"},
		{"otp_verified_ussd.json", "*oneroute.OTPVerified otpVerified identifier=+234XXXXXXXX otp=1234 expires=2023-05-02T10:15:00Z"},
		{"unknown_event.json", "*oneroute.UnknownEvent conversationClosed raw=true"},
		{"bad_not_object.json", "error: malformed webhook event: not a JSON object"},
		{"bad_no_event.json", "error: malformed webhook event: no event type"},
		{"bad_dlr_without_id.json", "error: malformed webhook event: smsDeliveryReport: conversation.id is missing"},
		{"bad_truncated.json", "error: malformed webhook event: unexpected end of JSON input"},
		{"bad_wrong_types.json", "error: malformed webhook event: campaignCompleted: json: cannot unmarshal string into Go struct field CampaignCompleted.total of type int"},
	}
	var want, got []string
	for _, tc := range tests {
		want = append(want, tc.file+": "+tc.want)
		ev, err := oneroute.ParseEvent(fixture(t, tc.file))
		got = append(got, tc.file+": "+summarize(ev, err))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParseEvent mismatch (-want +got):\n%s", d)
	}
}

func summarize(ev oneroute.Event, err error) string {
	if err != nil {
		if !errors.Is(err, oneroute.ErrMalformedEvent) {
			return "error without ErrMalformedEvent: " + err.Error()
		}
		return "error: " + err.Error()
	}
	s := fmt.Sprintf("%T %s", ev, ev.EventType())
	switch e := ev.(type) {
	case *oneroute.NewMessage:
		s += " conversation=" + e.Conversation.ID + " content=" + e.Message.Content + " customer=" + e.Conversation.Customer.Email
		if e.Message.Sender.AuthUser {
			s += " authUser=true"
		} else {
			s += " authUser=false"
		}
	case *oneroute.DLR:
		s += " id=" + e.Conversation.ID + " status=" + e.Conversation.Status
		if e.Conversation.Final() {
			s += " final=true"
		}
		s += " delivered=" + e.Conversation.DeliveredTime.Format("2006-01-02T15:04:05.000Z")
	case *oneroute.CampaignCompleted:
		s += " campaign=" + e.CampaignID + " total=" + strconv.Itoa(e.Total) + " sent=" + strconv.Itoa(e.Sent) + " failed=" + strconv.Itoa(e.Failed) +
			" first=" + e.Messages[0].Identifier + "/" + e.Messages[0].Status
	case *oneroute.MessageStatus:
		s += " id=" + e.Message.ExternalID + " status=" + e.Message.Status + " identifier=" + e.Message.Identifier
	case *oneroute.OTPVerified:
		s += " identifier=" + e.Identifier + " otp=" + e.OTP + " expires=" + e.ExpirationTime.Format(time.RFC3339)
	case *oneroute.UnknownEvent:
		if len(e.Raw) > 0 {
			s += " raw=true"
		}
	}
	return s
}

// TestWebhookVerifier: a body is accepted once; a replay, a forgery or a
// malformed body is refused without being remembered; Forget lets a failed
// delivery be retried.
func TestWebhookVerifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	guard := &oneroute.MemoryReplayGuard{}
	v := &oneroute.WebhookVerifier{Secret: "s3cret", Guard: guard}
	body := fixture(t, "message_status.json")
	sig := oneroute.WebhookSignature("s3cret", body)

	if _, err := v.Verify(ctx, body, oneroute.WebhookSignature("wrong", body)); !errors.Is(err, oneroute.ErrBadSignature) {
		t.Fatalf("forged: err = %v; want ErrBadSignature", err)
	}
	bad := []byte(`{"event":"messageStatus","message":{}}`)
	if _, err := v.Verify(ctx, bad, oneroute.WebhookSignature("s3cret", bad)); !errors.Is(err, oneroute.ErrMalformedEvent) {
		t.Fatalf("malformed: err = %v; want ErrMalformedEvent", err)
	}
	// Neither the forgery nor the malformed body was remembered.
	if fresh, _ := guard.Claim(ctx, oneroute.ReplayKey(bad)); !fresh {
		t.Error("the malformed body was claimed")
	}
	ev, err := v.Verify(ctx, body, sig)
	if err != nil || ev.EventType() != oneroute.EventMessageStatus {
		t.Fatalf("first delivery: %v, %v", ev, err)
	}
	if _, err := v.Verify(ctx, body, sig); !errors.Is(err, oneroute.ErrReplayed) {
		t.Fatalf("replay: err = %v; want ErrReplayed", err)
	}
	if err := v.Forget(ctx, body); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, body, sig); err != nil {
		t.Errorf("after Forget: err = %v; want it accepted again", err)
	}
	none := &oneroute.WebhookVerifier{}
	if _, err := none.Verify(ctx, body, sig); !errors.Is(err, oneroute.ErrNoWebhookSecret) {
		t.Errorf("no secret: err = %v; want ErrNoWebhookSecret", err)
	}
}

// TestMemoryReplayGuard: keys expire after TTL and the oldest go first
// beyond Max, so memory stays bounded.
func TestMemoryReplayGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	g := &oneroute.MemoryReplayGuard{TTL: time.Minute, Max: 3, Now: clk.Now}
	claim := func(k string) bool {
		fresh, err := g.Claim(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	var got []bool
	got = append(got, claim("a"), claim("a"), claim("b"), claim("c"))
	clk.Advance(30 * time.Second)
	got = append(got, claim("d"))             // evicts a, the oldest, beyond Max
	got = append(got, claim("a"), claim("c")) // a is new again; c still known
	clk.Advance(61 * time.Second)             // b, c and d expire
	got = append(got, claim("c"))             // expired: new again
	if err := g.Release(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	got = append(got, claim("c")) // released: new again
	want := []bool{true, false, true, true, true, true, false, true, true}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", d)
	}
}

// TestWebhookHandler protects the answers OneRoute sees: 200 for an event
// and for a replay, 401 for a bad signature, 400 for a malformed event, 413
// for a body over the cap, 500 (and a retry accepted) when processing fails.
func TestWebhookHandler(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	failNext := true
	v := &oneroute.WebhookVerifier{Secret: "s3cret", Guard: &oneroute.MemoryReplayGuard{}, MaxBodyBytes: 4 << 10}
	srv := httptest.NewServer(v.Handler(func(ctx context.Context, ev oneroute.Event) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if failNext && ev.EventType() == oneroute.EventCampaignCompleted {
			failNext = false
			return errors.New("queue down")
		}
		return nil
	}))
	t.Cleanup(srv.Close)
	post := func(method string, body []byte, sig string) int {
		req, _ := http.NewRequest(method, srv.URL, strings.NewReader(string(body)))
		req.Header.Set("X-OneRoute-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	dlr := fixture(t, "sms_delivery_report.json")
	camp := fixture(t, "campaign_completed.json")
	bad := fixture(t, "bad_no_event.json")
	big := []byte(`{"event":"x","pad":"` + strings.Repeat("a", 5<<10) + `"}`)
	sign := func(b []byte) string { return oneroute.WebhookSignature("s3cret", b) }
	got := []int{
		post("POST", dlr, sign(dlr)),
		post("POST", dlr, sign(dlr)),
		post("POST", dlr, sign([]byte("other"))),
		post("POST", bad, sign(bad)),
		post("POST", big, sign(big)),
		post("GET", nil, ""),
		post("POST", camp, sign(camp)),
		post("POST", camp, sign(camp)),
		post("POST", camp, sign(camp)),
	}
	want := []int{200, 200, 401, 400, 413, 405, 500, 200, 200}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("status codes mismatch (-want +got):\n%s", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("fn ran %d times; want 3 (the DLR once, the campaign twice: failed, then retried)", calls)
	}
}
