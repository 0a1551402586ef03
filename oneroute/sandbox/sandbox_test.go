package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a sandbox goroutine running
// (webhook delivery, a hung request).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the shared transport outlive the tests.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

type testBundle struct {
	sb  *sandbox.Server
	srv *httptest.Server
}

func setup(t *testing.T, o sandbox.Options) *testBundle {
	t.Helper()
	sb := sandbox.New(o)
	srv := httptest.NewServer(sb)
	t.Cleanup(func() {
		sb.Close()
		srv.Close()
	})
	return &testBundle{sb: sb, srv: srv}
}

type answer struct {
	Status int
	Body   map[string]any
	Raw    string
}

// call makes a raw request; key "" sends no apiKey header.
func (b *testBundle) call(t *testing.T, method, path, key, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("apiKey", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Raw: string(raw)}
	json.Unmarshal(raw, &a.Body) //nolint:errcheck // a non-JSON answer is kept in Raw and asserted by the caller
	return a
}

const smsPath = "/api/public/channel/" + sandbox.SMSChannelID + "/sms"

// TestAuth: any key starting test_, under any spelling of the header; the
// documented 401 body otherwise.
func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	for _, h := range []string{"apiKey", "apikey", "APIKEY"} {
		req, _ := http.NewRequest("GET", b.srv.URL+"/api/public/channels/sms", nil)
		req.Header[h] = []string{"test_x"}
		if h != "apiKey" {
			req.Header = http.Header{http.CanonicalHeaderKey(h): {"test_x"}}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("header %s: HTTP %d", h, resp.StatusCode)
		}
	}
	for _, key := range []string{"", "live_key", "tes"} {
		a := b.call(t, "GET", "/api/public/channels/sms", key, "")
		if a.Status != 401 || a.Raw != `{"data":null,"message":"Invalid API Key","success":false}`+"\n" {
			t.Errorf("key %q: HTTP %d %s", key, a.Status, a.Raw)
		}
	}
	if st := b.sb.Stats(); st.Unauthorized != 3 || st.Requests != 6 {
		t.Errorf("stats = %+v; want 3 unauthorized of 6 requests", st)
	}
}

// TestValidation protects the Joi-style answers, the form OneRoute's own
// error texts take, for each endpoint's common mistakes.
func TestValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	tmpl := func(msg string) string {
		return `{"from":"` + sandbox.WhatsAppNumber + `","messages":[` + msg + `]}`
	}
	tests := []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"POST", smsPath, `not json`, 400, "Unexpected token in JSON at position 0"},
		{"POST", smsPath, `[1]`, 400, `"value" must be of type object`},
		{"POST", smsPath, `{"recipients":["2348031234567"]}`, 400, `"message" is required`},
		{"POST", smsPath, `{"message":"","recipients":["2348031234567"]}`, 400, `"message" is not allowed to be empty`},
		{"POST", smsPath, `{"message":7,"recipients":["2348031234567"]}`, 400, `"message" must be a string`},
		{"POST", smsPath, `{"message":"Hi"}`, 400, `"recipients" is required`},
		{"POST", smsPath, `{"message":"Hi","recipients":"2348031234567"}`, 400, `"recipients" must be an array`},
		{"POST", smsPath, `{"message":"Hi","recipients":[]}`, 400, `"recipients" must contain at least 1 items`},
		{"POST", "/api/public/channel/nope/sms", `{"message":"Hi","recipients":["2348031234567"]}`, 404, "Channel not found"},
		{"POST", "/api/public/sms", `{"message":"Hi"}`, 400, `"recipients" is required`},
		{"GET", smsPath, ``, 400, `"page[size]" is required`},
		{"GET", smsPath + "?page[size]=10", ``, 400, `"page[number]" is required`},
		{"GET", smsPath + "?page[size]=0&page[number]=1", ``, 400, `"page[size]" must be a number between 1 and 1000`},
		{"POST", "/api/public/conversation/template", `{"messages":[]}`, 400, `"from" is required`},
		{"POST", "/api/public/conversation/template", `{"from":"2348099999999","messages":[]}`, 400, `"from" 2348099999999 is not connected to a WhatsApp channel`},
		{"POST", "/api/public/conversation/template", tmpl(``), 400, `"messages" must contain at least 1 items`},
		{"POST", "/api/public/conversation/template", tmpl(`{"to":"2348031234567"}`), 400, `"template" is required`},
		{"POST", "/api/public/conversation/template", tmpl(`{"to":"2348031234567","template":{"name":"new_conversation"}}`), 400, `"parameters" is required`},
		{"POST", "/api/public/conversation/template", tmpl(`{"to":"2348031234567","template":{"name":"new_conversation","parameters":[{"type":"image","text":"x"}]}}`), 400, `"type" must be one of [text]`},
		{"POST", "/api/public/conversation/template", tmpl(`{"to":"2348031234567","template":{"name":"nope","parameters":[]}}`), 400, "Template nope not found or not approved"},
		{"POST", "/api/public/whatsapp/campaign", tmpl(`{"to":"2348031234567","identifier":"","template":{"name":"new_conversation","parameters":[]}}`), 400, `"identifier" is not allowed to be empty`},
		{"POST", "/api/public/conversation/text", `{"from":"` + sandbox.WhatsAppNumber + `","to":"2348031234567"}`, 400, `"message" is required`},
		{"POST", "/api/public/conversation/text", `{"from":"` + sandbox.WhatsAppNumber + `","to":"2348031234567","attachment":{"type":"GIF","url":"x"}}`, 400, `"type" must be one of [IMAGE, VIDEO, DOCUMENT, AUDIO]`},
		{"POST", "/api/public/channel/" + sandbox.EmailChannelID + "/email", `{"subject":"s","message":"m","recipients":["a@b.co"],"cc":["nope"]}`, 400, `"nope" must be a valid email`},
		{"POST", "/api/oneotp/send", `{"channels":["FAX"]}`, 400, `"channels" must be one of [WHATSAPP, SMS, EMAIL, EMAILS, USSD]`},
		{"POST", "/api/oneotp/send", `{"channels":["EMAILS"],"templateId":"` + sandbox.OTPTemplateSimple + `"}`, 400, `"email" is required`},
		{"POST", "/api/oneotp/send", `{"channels":["SMS"],"templateId":"nope","phoneNumber":"+2348031234567"}`, 400, "Template not found"},
		{"POST", "/api/oneotp/send", `{"channels":["SMS"],"templateId":"` + sandbox.OTPTemplateSimple + `","phoneNumber":"+2348031234567","options":{"length":3}}`, 400, `"length" must be greater than or equal to 4`},
		{"POST", "/api/oneotp/send", `{"channels":["SMS"],"templateId":"` + sandbox.OTPTemplateSimple + `","phoneNumber":"+2348031234567","options":{"digits":false}}`, 400, `"options" must enable at least one of [digits, alphabets, upperCase, specialChars]`},
		{"POST", "/api/oneotp/verify", `{"key":"k","otp":"1"}`, 400, `"identifier" is required`},
		{"POST", "/api/oneotp/verify", `{"key":"k","otp":"1","identifier":"+2348031234567"}`, 400, "Invalid key"},
		{"POST", "/api/public/embed/push", `{"widgetId":"w","email":"a@b.co","message":"m"}`, 400, `"title" is required`},
		{"GET", "/api/public/logs?status=lost", ``, 400, `"status" must be one of [pending, sent, delivered, read, failed]`},
		{"GET", "/api/public/channels/fax", ``, 400, `"medium" must be one of [whatsapp, sms, email]`},
		{"GET", "/api/public/channel/" + sandbox.SMSChannelID + "/templates", ``, 404, "Channel not found"},
		{"GET", "/api/public/nope", ``, 404, "Route not found"},
	}
	type got struct {
		Status  int
		Message any
		Success any
	}
	for _, tc := range tests {
		a := b.call(t, tc.method, tc.path, "test_validation", tc.body)
		if d := cmp.Diff(got{tc.status, tc.message, false}, got{a.Status, a.Body["message"], a.Body["success"]}); d != "" {
			t.Errorf("%s %s %s: mismatch (-want +got):\n%s", tc.method, tc.path, tc.body, d)
		}
	}
	if st := b.sb.Stats(); st.Accepted != 0 {
		t.Errorf("%d messages accepted from invalid requests", st.Accepted)
	}
}

// TestAdminContract protects the JSON field names of /sandbox/stats and
// /sandbox/faults, which scripts and fanout's own tests read.
func TestAdminContract(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	stats := b.call(t, "GET", "/sandbox/stats", "", "")
	wantStats := []string{"accepted", "by_medium", "dlr_requests", "duplicates", "faults", "log_requests", "requests", "send_requests", "sms_list_requests", "sms_status",
		"throttled", "unauthorized", "webhooks_failed", "webhooks_sent"}
	if d := cmp.Diff(wantStats, keys(stats.Body)); d != "" {
		t.Errorf("stats fields (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"email", "push", "sms", "whatsapp"}, keys(stats.Body["by_medium"].(map[string]any))); d != "" {
		t.Errorf("by_medium keys (-want +got):\n%s", d)
	}
	set := b.call(t, "POST", "/sandbox/faults", "", `{"latency_ms": 50, "error_rate": 0.1, "throttle_rate": 0.1, "retry_after_s": 1, "hang_rate": 0.05, "reset_rate": 0.02, "gateway_rate": 0.1, "rate_limit_per_sec": 500}`)
	want := sandbox.Faults{LatencyMS: 50, ErrorRate: 0.1, ThrottleRate: 0.1, RetryAfterS: 1, HangRate: 0.05, ResetRate: 0.02, GatewayRate: 0.1, RateLimitPerSec: 500}
	if d := cmp.Diff(want, b.sb.Faults()); d != "" || set.Status != 200 {
		t.Errorf("POST /sandbox/faults: HTTP %d, mismatch (-want +got):\n%s", set.Status, d)
	}
	faults := b.call(t, "GET", "/sandbox/faults", "", "")
	wantFaults := []string{"error_rate", "gateway_rate", "hang_ms", "hang_rate", "latency_ms", "rate_limit_per_sec", "reset_rate", "retry_after_s", "throttle_rate"}
	if d := cmp.Diff(wantFaults, keys(faults.Body)); d != "" {
		t.Errorf("faults fields (-want +got):\n%s", d)
	}
	for _, bad := range []string{`{"error_rate": 2}`, `{"latency_ms": -1}`, `{"typo_rate": 0.5}`, `nope`} {
		if a := b.call(t, "POST", "/sandbox/faults", "", bad); a.Status != 400 {
			t.Errorf("POST /sandbox/faults %s: HTTP %d; want 400", bad, a.Status)
		}
	}
	b.sb.SetFaults(sandbox.Faults{})
	b.call(t, "POST", smsPath, "test_x", `{"message":"Hi","recipients":["2348031234567"]}`)
	b.call(t, "POST", smsPath, "test_x", `{"message":"Hi","recipients":["2348031234567"]}`)
	if st := b.sb.Stats(); st.Accepted != 2 || st.Duplicates != 1 || st.SendRequests != 2 || st.ByMedium["sms"] != 2 {
		t.Errorf("stats = %+v; want 2 accepted, 1 duplicate", st)
	}
	b.sb.SetFaults(sandbox.Faults{ErrorRate: 0.5})
	if a := b.call(t, "POST", "/sandbox/reset", "", ""); a.Status != 200 {
		t.Fatalf("reset: HTTP %d", a.Status)
	}
	if st := b.sb.Stats(); st.Accepted != 0 || st.Requests != 0 || b.sb.Faults().ErrorRate != 0.5 {
		t.Errorf("after reset: stats %+v, faults %+v; want zero counters, faults kept", st, b.sb.Faults())
	}
}

// TestSlowPathKeepsEscapes: a body the fast parser leaves to encoding/json
// is stored with its escapes decoded.
func TestSlowPathKeepsEscapes(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	a := b.call(t, "POST", smsPath, "test_x", `{"message":"Say \"hi\"\n\u00e9","recipients":["+2348031234567"],"sender":"Shop"}`)
	if a.Status != 200 {
		t.Fatalf("HTTP %d %s", a.Status, a.Raw)
	}
	list := b.call(t, "GET", smsPath+"?page[size]=1&page[number]=1", "test_x", "")
	msg := list.Body["data"].([]any)[0].(map[string]any)
	if msg["message"] != "Say \"hi\"\né" || msg["from"] != "Shop" || msg["to"] != "2348031234567" {
		t.Errorf("stored message = %v", msg)
	}
}

// TestStoreIsBounded: beyond MaxMessages the oldest SMS are forgotten.
func TestStoreIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{MaxMessages: 64})
	var ids []string
	for range 200 {
		a := b.call(t, "POST", smsPath, "test_x", `{"message":"Hi","recipients":["2348031234567"]}`)
		ids = append(ids, a.Body["data"].([]any)[0].(map[string]any)["response"].(string))
	}
	if a := b.call(t, "GET", "/api/public/dlr/"+ids[0]+"/sms", "test_x", ""); a.Status != 404 {
		t.Errorf("oldest DLR: HTTP %d; want 404", a.Status)
	}
	if a := b.call(t, "GET", "/api/public/dlr/"+ids[199]+"/sms", "test_x", ""); a.Status != 200 {
		t.Errorf("newest DLR: HTTP %d; want 200", a.Status)
	}
	list := b.call(t, "GET", smsPath+"?page[size]=1&page[number]=1", "test_x", "")
	if total := list.Body["meta"].(map[string]any)["total"].(float64); total < 48 || total > 80 {
		t.Errorf("%v messages listed; want about 64", total)
	}
}

// TestLatencyFault: latency is added before the answer.
func TestLatencyFault(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{Faults: sandbox.Faults{LatencyMS: 80}})
	start := time.Now()
	b.call(t, "GET", "/api/public/channels/sms", "test_x", "")
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("answered in %s; want at least 80ms", took)
	}
}

// TestHang: a hung send is accepted, answered after HangMS when bounded,
// and released by Close when not.
func TestHang(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{Faults: sandbox.Faults{HangRate: 1, HangMS: 50}})
	a := b.call(t, "POST", smsPath, "test_x", `{"message":"Hi","recipients":["2348031234567"]}`)
	if a.Status != 200 || b.sb.Stats().Faults != 1 {
		t.Errorf("bounded hang: HTTP %d, stats %+v; want the recorded answer, 1 fault", a.Status, b.sb.Stats())
	}

	b2 := setup(t, sandbox.Options{Faults: sandbox.Faults{HangRate: 1}})
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", b2.srv.URL+smsPath, strings.NewReader(`{"message":"Hi","recipients":["2348031234567"]}`))
		req.Header.Set("apiKey", "test_x")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	testwait.For(t, "the hung send to be accepted", 10*time.Second, func() bool { return b2.sb.Stats().Accepted == 1 })
	select {
	case err := <-done:
		t.Fatalf("the hung request ended before Close: %v", err)
	default:
	}
	b2.sb.Close()
	if err := <-done; err == nil {
		t.Error("the hung request got an answer; want the connection dropped")
	}
}

// TestWebhookDelivery: events are signed with the secret, retried on
// failure, and counted.
func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	var calls atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := oneroute.VerifySignature("whsec_t", body, r.Header.Get("x-oneroute-signature")); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		if calls.Add(1) <= 2 {
			w.WriteHeader(500) // fail twice, then accept
			return
		}
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	b := setup(t, sandbox.Options{WebhookURL: recv.URL, WebhookSecret: "whsec_t", DLRDelay: -1})
	b.call(t, "POST", smsPath, "test_x", `{"message":"Hi","recipients":["2348031234561"]}`)
	testwait.For(t, "the webhook to be delivered", 10*time.Second, func() bool { return b.sb.Stats().WebhooksSent == 1 })
	mu.Lock()
	defer mu.Unlock()
	var ev struct {
		Event        string `json:"event"`
		Conversation struct {
			Status string `json:"status"`
			To     string `json:"to"`
		} `json:"conversation"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &ev); err != nil {
		t.Fatalf("webhook body %s: %v", bodies[0], err)
	}
	if ev.Event != "smsDeliveryReport" || ev.Conversation.Status != "delivered" || ev.Conversation.To != "2348031234561" || calls.Load() != 3 {
		t.Errorf("event %+v after %d calls; want a delivered smsDeliveryReport on the third", ev, calls.Load())
	}

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(down.Close)
	b2 := setup(t, sandbox.Options{WebhookURL: down.URL, DLRDelay: -1})
	b2.call(t, "POST", smsPath, "test_x", `{"message":"Hi","recipients":["2348031234561"]}`)
	testwait.For(t, "the webhook to be given up", 10*time.Second, func() bool { return b2.sb.Stats().WebhooksFailed == 1 })
}

// TestOTPOptions: the generated code follows the options.
func TestOTPOptions(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	send := b.call(t, "POST", "/api/oneotp/send", "test_x", `{"channels":["SMS"],"templateId":"`+sandbox.OTPTemplateSimple+
		`","phoneNumber":"+2348031234567","options":{"length":8,"digits":false,"upperCase":true}}`)
	key := send.Body["body"].(map[string]any)["key"].(string)
	peek := b.call(t, "GET", "/sandbox/otp/"+key, "", "")
	otp := peek.Body["data"].(map[string]any)["otp"].(string)
	if len(otp) != 8 || strings.ToUpper(otp) != otp || strings.ContainsAny(otp, "0123456789") {
		t.Errorf("otp = %q; want 8 upper-case letters", otp)
	}
	if a := b.call(t, "POST", "/sandbox/otp/"+key+"/ussd", "", ""); a.Status != 400 {
		t.Errorf("USSD verification of an SMS-only OTP: HTTP %d; want 400", a.Status)
	}
	if a := b.call(t, "GET", "/sandbox/otp/nope", "", ""); a.Status != 404 {
		t.Errorf("unknown key: HTTP %d; want 404", a.Status)
	}
}

// TestCloseIsIdempotent: Close twice, and the handler still answers.
func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{WebhookURL: "http://127.0.0.1:9/"})
	b.sb.Close()
	b.sb.Close()
	if a := b.call(t, "POST", smsPath, "test_x", `{"message":"Hi","recipients":["2348031234561"]}`); a.Status != 200 {
		t.Errorf("after Close: HTTP %d", a.Status)
	}
}

// TestFetchSMSPaging protects what the delivery-report sweep relies on:
// the channel's messages come newest first in pages of at most 1000 (400
// above), with meta.total, by status; a message accepted between two pages
// pushes the older ones one place further (seen twice, never skipped); and
// the stats count the list and DLR requests and the outcomes by status.
func TestFetchSMSPaging(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{DLRDelay: -1})
	c, err := oneroute.New(oneroute.Options{BaseURL: b.srv.URL, APIKey: "test_page"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var sent []string // ids, oldest first
	send := func(from, n int) {
		t.Helper()
		to := make([]string, n)
		for i := range to {
			to[i] = "23480300" + strings.Repeat("0", 5-len(itoa(from+i))) + itoa(from+i)
		}
		res, err := c.SendSMS(ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Message: "hi", Recipients: to})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			sent = append(sent, r.Response)
		}
	}
	send(0, 1000)
	send(1000, 1000)
	send(2000, 500)

	if _, _, err := c.FetchSMSMessages(ctx, sandbox.SMSChannelID, "", oneroute.Page{Size: oneroute.MaxPageSize + 1, Number: 1}); oneroute.Classify(err) != oneroute.Permanent {
		t.Fatalf("page[size] %d: %v; want a 400", oneroute.MaxPageSize+1, err)
	}
	var got []string
	for page := 1; ; page++ {
		msgs, meta, err := c.FetchSMSMessages(ctx, sandbox.SMSChannelID, "", oneroute.Page{Size: oneroute.MaxPageSize, Number: page})
		if err != nil {
			t.Fatal(err)
		}
		if meta == nil || meta.Total != 2500 || meta.Page != page || meta.Size != oneroute.MaxPageSize {
			t.Fatalf("page %d: meta %+v", page, meta)
		}
		for i, m := range msgs {
			if i > 0 && m.CreatedAt.After(msgs[i-1].CreatedAt) {
				t.Fatalf("page %d: item %d is newer than the one before", page, i)
			}
			got = append(got, m.ID)
		}
		if len(msgs) < oneroute.MaxPageSize {
			break
		}
	}
	want := slices.Clone(sent)
	slices.Reverse(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ids listed, newest first (-want +got):\n%s", d)
	}

	byStatus := map[string]int{}
	for _, st := range []string{oneroute.DLRPending, oneroute.DLRDelivered, oneroute.DLRUndelivered} {
		msgs, meta, err := c.FetchSMSMessages(ctx, sandbox.SMSChannelID, st, oneroute.Page{Size: 10, Number: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Status != st {
				t.Fatalf("status=%s listed a %s message", st, m.Status)
			}
		}
		byStatus[st] = meta.Total
	}
	if d := cmp.Diff(map[string]int{"pending": 250, "delivered": 2000, "undelivered": 250}, byStatus); d != "" {
		t.Errorf("totals by status (-want +got):\n%s", d)
	}

	first, _, _ := c.FetchSMSMessages(ctx, sandbox.SMSChannelID, "", oneroute.Page{Size: 100, Number: 1})
	send(2500, 10)
	second, _, _ := c.FetchSMSMessages(ctx, sandbox.SMSChannelID, "", oneroute.Page{Size: 100, Number: 2})
	if second[0].ID != first[90].ID {
		t.Errorf("after 10 new messages, page 2 starts with %s; want page 1's item 90 (%s): seen again, none skipped", second[0].ID, first[90].ID)
	}

	if _, err := c.GetSMSDLR(ctx, sent[0]); err != nil {
		t.Fatal(err)
	}
	b.sb.SetFaults(sandbox.Faults{ThrottleRate: 1})
	c.GetSMSDLR(ctx, sent[0]) //nolint:errcheck // throttled on purpose; the stats are asserted
	st := b.sb.Stats()
	if st.SMSListRequests != 1+3+3+2 || st.DLRRequests != 2 {
		t.Errorf("counted %d list and %d DLR requests; want 9 and 2 (refused and throttled ones too)", st.SMSListRequests, st.DLRRequests)
	}
	if d := cmp.Diff(map[string]int64{"pending": 251, "delivered": 2008, "undelivered": 251}, st.SMSStatus); d != "" {
		t.Errorf("sms_status (-want +got):\n%s", d)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestTemplateLanguageAndParameters: a template message is sent only in the
// template's language (en when none is given) and with as many parameters
// as its placeholders, so the preflight's refusals model real failures.
func TestTemplateLanguageAndParameters(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	msg := func(to, name, lang string, params ...string) string {
		ps := make([]string, len(params))
		for i, p := range params {
			ps[i] = `{"type":"text","text":"` + p + `"}`
		}
		l := ""
		if lang != "" {
			l = `,"language":"` + lang + `"`
		}
		return `{"to":"` + to + `","template":{"name":"` + name + `"` + l + `,"parameters":[` + strings.Join(ps, ",") + `]}}`
	}
	body := `{"from":"` + sandbox.WhatsAppNumber + `","messages":[` + strings.Join([]string{
		msg("2348031234561", "bienvenue", "", "Ada"),
		msg("2348031234562", "bienvenue", "fr", "Ada"),
		msg("2348031234563", "first_welcome_messsage", "fr", "Ada"),
		msg("2348031234564", "first_welcome_messsage", "en_GB", "Ada"),
		msg("2348031234565", "order_shipped", "", "Ada"),
		msg("2348031234566", "order_shipped", "en", "Ada", "A-1"),
	}, ",") + `]}`
	a := b.call(t, "POST", "/api/public/conversation/template", "test_lang", body)
	if a.Status != 200 {
		t.Fatalf("HTTP %d %s", a.Status, a.Raw)
	}
	var got []string
	for _, r := range a.Body["data"].([]any) {
		res := r.(map[string]any)
		if res["status"] == "success" {
			got = append(got, "success")
		} else {
			got = append(got, fmt.Sprint(res["response"]))
		}
	}
	want := []string{"Template bienvenue has no en translation", "success", "Template first_welcome_messsage has no fr translation", "success",
		"Template order_shipped takes 2 parameters, got 1", "success"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("results (-want +got):\n%s", d)
	}
}
