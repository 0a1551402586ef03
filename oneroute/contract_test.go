package oneroute_test

// The contract suite runs the client against the sandbox for every endpoint
// of the reference and every error class: the two are written separately,
// so what they agree on is the contract fanout relies on.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/google/go-cmp/cmp"
)

// clock is a settable time for the sandbox.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testBundle is a sandbox behind a real listener and a client pointed at it.
type testBundle struct {
	sb     *sandbox.Server
	srv    *httptest.Server
	client *oneroute.Client
	clock  *clock
	ctx    context.Context
}

type setupOptions struct {
	sandbox sandbox.Options
	client  oneroute.Options
}

func setup(t *testing.T, o setupOptions) *testBundle {
	t.Helper()
	clk := newClock()
	if o.sandbox.Now == nil {
		o.sandbox.Now = clk.Now
	}
	sb := sandbox.New(o.sandbox)
	srv := httptest.NewServer(sb)
	t.Cleanup(func() {
		sb.Close() // first: releases hung requests
		srv.Close()
	})
	o.client.BaseURL = srv.URL
	if o.client.APIKey == "" {
		o.client.APIKey = "test_contract"
	}
	c, err := oneroute.New(o.client)
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{sb: sb, srv: srv, client: c, clock: clk, ctx: context.Background()}
}

// sandboxCall makes a request to a /sandbox/ route and decodes its data.
func (b *testBundle) sandboxCall(t *testing.T, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data    json.RawMessage `json:"data"`
		Message string          `json:"message"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &env); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s: HTTP %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func classOf(err error) string { return oneroute.Classify(err).String() }

// TestContractChannels: channel lists by medium, one channel by id, 404.
func TestContractChannels(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	got := map[string][]string{}
	for _, m := range []string{oneroute.MediumWhatsApp, oneroute.MediumSMS, oneroute.MediumEmail} {
		list, err := b.client.FetchChannels(b.ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range list {
			got[m] = append(got[m], ch.ID+" "+ch.Medium+" "+ch.Env+" "+ch.Identifier)
		}
	}
	want := map[string][]string{
		"whatsapp": {sandbox.WhatsAppChannelID + " WHATSAPP TEST sandbox-whatsapp"},
		"sms":      {sandbox.SMSChannelID + " SMS TEST OneRoute"},
		"email":    {sandbox.EmailChannelID + " EMAIL TEST support"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("channels mismatch (-want +got):\n%s", d)
	}
	ch, err := b.client.FetchChannel(b.ctx, sandbox.WhatsAppChannelID)
	if err != nil || ch.Phone == nil || *ch.Phone != sandbox.WhatsAppNumber || ch.CreatedAt.IsZero() {
		t.Errorf("FetchChannel = %+v, %v; want the WhatsApp channel with its number", ch, err)
	}
	_, err = b.client.FetchChannel(b.ctx, "00000000-0000-4000-8000-000000000000")
	if !errors.Is(err, oneroute.ErrNotFound) || classOf(err) != "permanent" {
		t.Errorf("unknown channel: err = %v; want ErrNotFound, permanent", err)
	}
}

// TestContractSMS: a send to several numbers, the message list with its
// status filter and paging, and delivery reports decided by the last digit.
func TestContractSMS(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{sandbox: sandbox.Options{DLRDelay: 2 * time.Second}})
	to := []string{"+2348030000001", "+2348030000000", "+2348030000009", "12"}
	res, err := b.client.SendSMS(b.ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Your order shipped", Recipients: to})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || !res[0].Accepted() || !res[1].Accepted() || !res[2].Accepted() || res[3].Accepted() || res[3].Response != "Invalid number" {
		t.Fatalf("results = %+v; want three accepted and an invalid number", res)
	}
	statuses := func() []string {
		var out []string
		for _, r := range res[:3] {
			d, err := b.client.GetSMSDLR(b.ctx, r.Response)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d.Event+" "+d.Conversation.To+" "+d.Conversation.Status)
		}
		return out
	}
	want := []string{"smsDeliveryReport 2348030000001 pending", "smsDeliveryReport 2348030000000 pending", "smsDeliveryReport 2348030000009 pending"}
	if d := cmp.Diff(want, statuses()); d != "" {
		t.Errorf("before the delay (-want +got):\n%s", d)
	}
	b.clock.Advance(2 * time.Second)
	want = []string{"smsDeliveryReport 2348030000001 delivered", "smsDeliveryReport 2348030000000 undelivered", "smsDeliveryReport 2348030000009 pending"}
	if d := cmp.Diff(want, statuses()); d != "" {
		t.Errorf("after the delay (-want +got):\n%s", d)
	}
	d, _ := b.client.GetSMSDLR(b.ctx, res[0].Response)
	if !d.Conversation.Final() || d.Conversation.DeliveredTime == nil || d.Conversation.Units != 1 || d.Conversation.From != sandbox.SMSSenderID {
		t.Errorf("DLR = %+v; want a final report with a time, 1 unit, from the sender ID", d.Conversation)
	}

	msgs, meta, err := b.client.FetchSMSMessages(b.ctx, sandbox.SMSChannelID, oneroute.DLRDelivered, oneroute.Page{Size: 10})
	if err != nil || len(msgs) != 1 || msgs[0].To != "2348030000001" || msgs[0].Message != "Your order shipped" || meta == nil || meta.Total != 1 {
		t.Errorf("delivered list = %+v, meta %+v, err %v; want the one delivered message", msgs, meta, err)
	}
	page2, meta, err := b.client.FetchSMSMessages(b.ctx, sandbox.SMSChannelID, "", oneroute.Page{Size: 2, Number: 2})
	if err != nil || len(page2) != 1 || meta.Total != 3 || page2[0].To != "2348030000001" {
		t.Errorf("page 2 of 2 = %+v, meta %+v, err %v; want the oldest message, total 3", page2, meta, err)
	}
	_, _, err = b.client.FetchSMSMessages(b.ctx, sandbox.SMSChannelID, "lost", oneroute.Page{})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), `"status" must be one of`) {
		t.Errorf("bad status filter: err = %v; want a permanent Joi-style error", err)
	}
	_, err = b.client.GetSMSDLR(b.ctx, "4799999999999999999999")
	if !errors.Is(err, oneroute.ErrNotFound) {
		t.Errorf("unknown message: err = %v; want ErrNotFound", err)
	}
	_, err = b.client.SendSMS(b.ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Recipients: to})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), `"message" is not allowed to be empty`) {
		t.Errorf("no message: err = %v; want permanent, \"message\" is not allowed to be empty", err)
	}
	_, err = b.client.SendSMS(b.ctx, sandbox.EmailChannelID, oneroute.SMSRequest{Message: "x", Recipients: to})
	if !errors.Is(err, oneroute.ErrNotFound) {
		t.Errorf("SMS through the email channel: err = %v; want ErrNotFound", err)
	}
}

// TestContractOTPSMS: the OTP route answers in "body", and its ids have
// delivery reports like any SMS.
func TestContractOTPSMS(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{sandbox: sandbox.Options{DLRDelay: -1}})
	res, err := b.client.SendOTPSMS(b.ctx, oneroute.OTPSMSRequest{Message: "Your code is 1234", Recipients: []string{"+2348031234567"}})
	if err != nil || len(res) != 1 || !res[0].Accepted() {
		t.Fatalf("SendOTPSMS = %+v, %v", res, err)
	}
	d, err := b.client.GetSMSDLR(b.ctx, res[0].Response)
	if err != nil || d.Conversation.Status != oneroute.DLRDelivered || d.Conversation.To != "2348031234567" {
		t.Errorf("DLR = %+v, %v; want delivered to 2348031234567", d, err)
	}
	if st := b.sb.Stats(); st.ByMedium["sms"] != 1 || st.SendRequests != 1 {
		t.Errorf("stats = %+v; want one SMS from one send request", st)
	}
}

// TestContractTemplates: the seeded templates, a send with several
// messages answered in order, and the refusals that pause a campaign.
func TestContractTemplates(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	list, err := b.client.FetchTemplates(b.ctx, sandbox.WhatsAppChannelID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range list {
		names = append(names, tp.Name+":"+tp.Status+":"+tp.Category)
	}
	want := []string{"first_welcome_messsage:approved:MARKETING", "new_conversation:approved:UTILITY", "otp_auth:approved:AUTHENTICATION", "summer_promo:pending:MARKETING",
		"order_shipped:approved:UTILITY", "bienvenue:approved:MARKETING", "new_collection:approved:MARKETING", "track_order:approved:UTILITY"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("templates mismatch (-want +got):\n%s", d)
	}
	msg := func(to, name string, params ...string) oneroute.TemplateMessage {
		return oneroute.TemplateMessage{To: to, Save: true, Template: oneroute.TemplateRef{Name: name, Parameters: oneroute.TextParams(params)}}
	}
	otp := msg("+2348031111112", "otp_auth", "123456")
	otp.Template.Buttons = oneroute.TextParams([]string{"123456"})
	res, err := b.client.SendTemplate(b.ctx, oneroute.TemplateRequest{From: "+" + sandbox.WhatsAppNumber, Messages: []oneroute.TemplateMessage{
		msg("+2348031111111", "first_welcome_messsage", "Michael"),
		otp,
		msg("+2348031111113", "new_conversation"),
		msg("not a number", "new_conversation", "Ada"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		resp := r.Response
		if r.Accepted() {
			resp = resp[:7] // gBGHI0k…
		}
		got = append(got, r.Status+" "+resp)
	}
	want = []string{"success gBGHI0k", "success gBGHI0k", "failed Template new_conversation takes 1 parameters, got 0", "failed Invalid number"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("results mismatch (-want +got):\n%s", d)
	}
	for _, name := range []string{"promo_that_does_not_exist", "summer_promo"} {
		_, err = b.client.SendTemplate(b.ctx, oneroute.TemplateRequest{From: sandbox.WhatsAppNumber, Messages: []oneroute.TemplateMessage{msg("2348031111111", name, "x")}})
		if !oneroute.IsTemplateRejected(err) || classOf(err) != "permanent" {
			t.Errorf("%s: err = %v; want a permanent template rejection", name, err)
		}
	}
	_, err = b.client.SendTemplate(b.ctx, oneroute.TemplateRequest{From: "2348099999999", Messages: []oneroute.TemplateMessage{msg("2348031111111", "new_conversation", "x")}})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("unknown from: err = %v; want permanent, not connected", err)
	}
	if st := b.sb.Stats(); st.ByMedium["whatsapp"] != 2 || st.Accepted != 2 {
		t.Errorf("stats = %+v; want 2 WhatsApp messages accepted", st)
	}
}

// TestContractCampaign: a campaign is accepted at once, processed later,
// and followed through the logs by campaign id and by identifier.
func TestContractCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{sandbox: sandbox.Options{CampaignDelay: time.Second, DLRDelay: 2 * time.Second}})
	var msgs []oneroute.TemplateMessage
	for i, to := range []string{"2348032222221", "2348032222220", "2348032222229"} {
		msgs = append(msgs, oneroute.TemplateMessage{To: "+" + to, Identifier: "row-" + string(rune('1'+i)),
			Template: oneroute.TemplateRef{Name: "first_welcome_messsage", Parameters: oneroute.TextParams([]string{"Ada"})}})
	}
	id, err := b.client.SendCampaign(b.ctx, oneroute.TemplateRequest{From: sandbox.WhatsAppNumber, Messages: msgs})
	if err != nil || id == "" {
		t.Fatalf("SendCampaign = %q, %v", id, err)
	}
	statuses := func() []string {
		rows, meta, err := b.client.FetchLogs(b.ctx, oneroute.LogFilter{CampaignID: id}, oneroute.Page{Size: 10})
		if err != nil || meta == nil || meta.Total != 3 {
			t.Fatalf("FetchLogs = %d rows, meta %+v, %v", len(rows), meta, err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, *r.Identifier+" "+r.To+" "+r.Status)
		}
		return out
	}
	steps := []struct {
		advance time.Duration
		want    []string
	}{
		{0, []string{"row-1 2348032222221 pending", "row-2 2348032222220 pending", "row-3 2348032222229 pending"}},
		{time.Second, []string{"row-1 2348032222221 sent", "row-2 2348032222220 sent", "row-3 2348032222229 sent"}},
		{2 * time.Second, []string{"row-1 2348032222221 delivered", "row-2 2348032222220 failed", "row-3 2348032222229 sent"}},
	}
	for _, step := range steps {
		b.clock.Advance(step.advance)
		if d := cmp.Diff(step.want, statuses()); d != "" {
			t.Errorf("after %s more (-want +got):\n%s", step.advance, d)
		}
	}
	rows, _, err := b.client.FetchLogs(b.ctx, oneroute.LogFilter{Identifier: "row-2"}, oneroute.Page{})
	if err != nil || len(rows) != 1 || *rows[0].CampaignID != id || rows[0].Final() != true || *rows[0].Response != "Message undeliverable" {
		t.Errorf("by identifier = %+v, %v; want the failed row of the campaign", rows, err)
	}
	dup := append(msgs[:1:1], msgs[0])
	_, err = b.client.SendCampaign(b.ctx, oneroute.TemplateRequest{From: sandbox.WhatsAppNumber, Messages: dup})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), "duplicate value") {
		t.Errorf("duplicate identifiers: err = %v; want permanent", err)
	}
}

// TestContractSession: session messages only within 24 hours of the
// customer's last message; outside, ErrSessionExpired says use a template.
func TestContractSession(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	send := func() (oneroute.ConversationMessage, error) {
		return b.client.SendSession(b.ctx, oneroute.SessionRequest{From: sandbox.WhatsAppNumber, To: "+2348033333333", Message: "Your order is on its way"})
	}
	_, err := send()
	if !errors.Is(err, oneroute.ErrSessionExpired) || classOf(err) != "permanent" {
		t.Fatalf("before any inbound: err = %v; want ErrSessionExpired, permanent", err)
	}
	var ev struct {
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
	}
	b.sandboxCall(t, "POST", "/sandbox/inbound", `{"from":"2348033333333","to":"`+sandbox.WhatsAppNumber+`","message":"Hello?"}`, &ev)
	m, err := send()
	if err != nil || m.ConversationID != ev.Conversation.ID || m.Content != "Your order is on its way" || m.ContentType != "TEXT" || !m.Sender.AuthUser || m.ExternalID == nil {
		t.Fatalf("within the window: %+v, %v", m, err)
	}
	m, err = b.client.SendSession(b.ctx, oneroute.SessionRequest{From: sandbox.WhatsAppNumber, To: "2348033333333",
		Attachment: &oneroute.Attachment{Type: "IMAGE", URL: "https://example.com/receipt.png"}})
	if err != nil || m.ContentType != "IMAGE" || m.ImageURL == nil || *m.ImageURL != "https://example.com/receipt.png" {
		t.Errorf("image: %+v, %v", m, err)
	}
	b.clock.Advance(24*time.Hour - time.Second)
	if _, err := send(); err != nil {
		t.Errorf("a second before the window closes: %v", err)
	}
	b.clock.Advance(time.Second)
	if _, err := send(); !errors.Is(err, oneroute.ErrSessionExpired) {
		t.Errorf("at 24h: err = %v; want ErrSessionExpired", err)
	}
	_, err = b.client.SendSession(b.ctx, oneroute.SessionRequest{From: sandbox.WhatsAppNumber, To: "12", Message: "x"})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), `"to" must be a valid phone number`) {
		t.Errorf("invalid number: err = %v; want permanent", err)
	}
}

// TestContractEmail: one result per address; a wrong channel is 404.
func TestContractEmail(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	res, err := b.client.SendEmail(b.ctx, sandbox.EmailChannelID, oneroute.EmailRequest{Subject: "Receipt", Message: "<p>Thanks</p>",
		Recipients: []string{"ada@example.com", "not-an-address"}, CC: []string{"ops@example.com"},
		Attachments: []oneroute.EmailAttachment{{URL: "https://example.com/r.pdf", Name: "r.pdf"}}})
	if err != nil || len(res) != 2 || !res[0].Accepted() || res[1].Response != "Invalid email address" {
		t.Errorf("SendEmail = %+v, %v", res, err)
	}
	_, err = b.client.SendEmail(b.ctx, sandbox.SMSChannelID, oneroute.EmailRequest{Subject: "x", Message: "x", Recipients: []string{"a@b.co"}})
	if !errors.Is(err, oneroute.ErrNotFound) {
		t.Errorf("email through the SMS channel: err = %v; want ErrNotFound", err)
	}
	_, err = b.client.SendEmail(b.ctx, sandbox.EmailChannelID, oneroute.EmailRequest{Message: "x", Recipients: []string{"a@b.co"}})
	if !strings.Contains(err.Error(), `"subject" is not allowed to be empty`) {
		t.Errorf("no subject: err = %v", err)
	}
}

// TestContractOneOTP: templates, send with '+' numbers, verify, and each
// refusal as its sentinel.
func TestContractOneOTP(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	tmpls, err := b.client.FetchOTPTemplates(b.ctx)
	if err != nil || len(tmpls) != 3 || tmpls[2].ID != sandbox.OTPTemplateExpiry || tmpls[0].Scope != "oneOTP" {
		t.Fatalf("FetchOTPTemplates = %+v, %v", tmpls, err)
	}
	sent, err := b.client.SendOTP(b.ctx, oneroute.OTPRequest{Channels: []string{"whatsapp", "SMS", "EMAIL"}, TemplateID: sandbox.OTPTemplateExpiry,
		PhoneNumber: "2348034444444", Email: "ada@example.com", Options: &oneroute.OTPOptions{Length: 6, Minutes: 10}})
	if err != nil || sent.Key == "" || len(sent.Data) != 3 || len(sent.Errors) != 0 {
		t.Fatalf("SendOTP = %+v, %v", sent, err)
	}
	var peek struct {
		OTP         string `json:"otp"`
		PhoneNumber string `json:"phoneNumber"`
	}
	b.sandboxCall(t, "GET", "/sandbox/otp/"+sent.Key, "", &peek)
	if len(peek.OTP) != 6 || peek.PhoneNumber != "+2348034444444" {
		t.Fatalf("peek = %+v; want a 6-digit OTP for +2348034444444", peek)
	}
	verify := func(otp, identifier string) error {
		_, err := b.client.VerifyOTP(b.ctx, oneroute.OTPVerifyRequest{Key: sent.Key, OTP: otp, Identifier: identifier})
		return err
	}
	wrong := "000000"
	if peek.OTP == wrong {
		wrong = "111111"
	}
	if err := verify(wrong, "2348034444444"); !errors.Is(err, oneroute.ErrOTPMismatch) || classOf(err) != "permanent" {
		t.Errorf("wrong code: err = %v; want ErrOTPMismatch", err)
	}
	if err := verify(peek.OTP, "2348035555555"); !errors.Is(err, oneroute.ErrOTPKeyInvalid) {
		t.Errorf("other number: err = %v; want ErrOTPKeyInvalid", err)
	}
	v, err := b.client.VerifyOTP(b.ctx, oneroute.OTPVerifyRequest{Key: sent.Key, OTP: peek.OTP, Identifier: "ada@example.com"})
	if err != nil || v.Status != "Success" || v.Response != "OTP Matched" {
		t.Errorf("right code by email: %+v, %v", v, err)
	}
	if err := verify(peek.OTP, "+2348034444444"); !errors.Is(err, oneroute.ErrOTPUsed) {
		t.Errorf("reuse: err = %v; want ErrOTPUsed", err)
	}

	sent, err = b.client.SendOTP(b.ctx, oneroute.OTPRequest{Channels: []string{"SMS"}, TemplateID: sandbox.OTPTemplateSimple,
		PhoneNumber: "+2348034444444", Options: &oneroute.OTPOptions{OTP: "4321"}})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(5 * time.Minute)
	if err := verify("4321", "2348034444444"); !errors.Is(err, oneroute.ErrOTPExpired) {
		t.Errorf("after 5 minutes: err = %v; want ErrOTPExpired", err)
	}
	if _, err := b.client.VerifyOTP(b.ctx, oneroute.OTPVerifyRequest{Key: "nope", OTP: "1", Identifier: "2348034444444"}); !errors.Is(err, oneroute.ErrOTPKeyInvalid) {
		t.Errorf("unknown key: err = %v; want ErrOTPKeyInvalid", err)
	}
	_, err = b.client.SendOTP(b.ctx, oneroute.OTPRequest{Channels: []string{"SMS"}, TemplateID: sandbox.OTPTemplateSimple})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), `"phoneNumber" is required`) {
		t.Errorf("no phone: err = %v", err)
	}
	if st := b.sb.Stats(); st.ByMedium["whatsapp"] != 1 || st.ByMedium["sms"] != 2 || st.ByMedium["email"] != 1 {
		t.Errorf("stats = %+v; want 1 WhatsApp, 2 SMS, 1 email", st.ByMedium)
	}
}

// TestContractPush: the Embed push notification.
func TestContractPush(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	id, err := b.client.SendPush(b.ctx, oneroute.PushRequest{WidgetID: sandbox.WidgetID, Email: "ada@example.com", Title: "Your order", Message: "It shipped"})
	if err != nil || len(id) != 36 {
		t.Errorf("SendPush = %q, %v", id, err)
	}
	_, err = b.client.SendPush(b.ctx, oneroute.PushRequest{WidgetID: "nope", Email: "ada@example.com", Title: "x", Message: "x"})
	if !errors.Is(err, oneroute.ErrNotFound) {
		t.Errorf("unknown widget: err = %v; want ErrNotFound", err)
	}
	_, err = b.client.SendPush(b.ctx, oneroute.PushRequest{WidgetID: sandbox.WidgetID, Title: "x", Message: "x"})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), "at least one of [customerId, email]") {
		t.Errorf("no customer: err = %v", err)
	}
}

// TestContractErrorClasses drives every error class through the sandbox's
// faults and checks both the class and what the sandbox accepted: an
// ambiguous failure is one where the message may (here: did) get through.
func TestContractErrorClasses(t *testing.T) {
	t.Parallel()
	send := func(b *testBundle) error {
		_, err := b.client.SendSMS(b.ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348036666661"}})
		return err
	}
	tests := []struct {
		name       string
		faults     sandbox.Faults
		client     oneroute.Options
		do         func(*testBundle) error
		class      string
		accepted   int64
		retryAfter time.Duration
	}{
		{name: "ok", do: send, class: "ok", accepted: 1},
		{name: "validation", do: func(b *testBundle) error {
			_, err := b.client.SendSMS(b.ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Message: "", Recipients: []string{"2348036666661"}})
			return err
		}, class: "permanent"},
		{name: "not found", do: func(b *testBundle) error {
			_, err := b.client.GetSMSDLR(b.ctx, "4700000000000000000042")
			return err
		}, class: "permanent"},
		{name: "bad key", client: oneroute.Options{APIKey: "live_key"}, do: send, class: "unauthorized"},
		{name: "throttled", faults: sandbox.Faults{ThrottleRate: 1, RetryAfterS: 2}, do: send, class: "throttled", retryAfter: 2 * time.Second},
		{name: "server error", faults: sandbox.Faults{ErrorRate: 1}, do: send, class: "temporary"},
		{name: "hang past the client timeout", faults: sandbox.Faults{HangRate: 1}, client: oneroute.Options{Timeout: 300 * time.Millisecond},
			do: send, class: "ambiguous", accepted: 1},
		{name: "reset after accepting", faults: sandbox.Faults{ResetRate: 1}, do: send, class: "ambiguous", accepted: 1},
		{name: "gateway error after accepting", faults: sandbox.Faults{GatewayRate: 1}, do: send, class: "ambiguous", accepted: 1},
		{name: "rate limit", faults: sandbox.Faults{RateLimitPerSec: 1, RetryAfterS: 1}, do: func(b *testBundle) error {
			if err := send(b); err != nil {
				return err
			}
			return send(b) // the same second (the sandbox clock stands still)
		}, class: "throttled", accepted: 1, retryAfter: time.Second},
		{name: "oversize answer", client: oneroute.Options{MaxResponseBytes: 32}, do: send, class: "ambiguous", accepted: 1},
		{name: "refused", do: func(b *testBundle) error {
			b.sb.Close()
			b.srv.Close()
			return send(b)
		}, class: "temporary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOptions{sandbox: sandbox.Options{Faults: tc.faults}, client: tc.client})
			err := tc.do(b)
			type outcome struct {
				Class      string
				Accepted   int64
				RetryAfter time.Duration
			}
			got := outcome{classOf(err), b.sb.Stats().Accepted, oneroute.RetryAfter(err)}
			if d := cmp.Diff(outcome{tc.class, tc.accepted, tc.retryAfter}, got); d != "" {
				t.Errorf("err = %v: mismatch (-want +got):\n%s", err, d)
			}
		})
	}
}

// TestContractWebhooks: the sandbox pushes signed events for every kind,
// the verifier accepts each once, and a forged, truncated or replayed
// delivery is rejected and changes nothing.
func TestContractWebhooks(t *testing.T) {
	t.Parallel()
	const secret = "whsec_contract"
	type delivery struct {
		body []byte
		sig  string
	}
	var mu sync.Mutex
	var got []string
	var raw []delivery
	events := make(chan struct{}, 100)
	verifier := &oneroute.WebhookVerifier{Secret: secret, Guard: &oneroute.MemoryReplayGuard{}}
	handler := verifier.Handler(func(_ context.Context, ev oneroute.Event) error {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *oneroute.DLR:
			got = append(got, "dlr "+e.Conversation.To+" "+e.Conversation.Status)
		case *oneroute.NewMessage:
			got = append(got, "newMessage "+e.Message.Content)
		case *oneroute.MessageStatus:
			got = append(got, "messageStatus "+e.Message.Identifier+" "+e.Message.Status)
		case *oneroute.CampaignCompleted:
			got = append(got, "campaignCompleted "+string(rune('0'+e.Total))+" sent "+string(rune('0'+e.Sent)))
		case *oneroute.OTPVerified:
			got = append(got, "otpVerified "+e.Identifier)
		default:
			got = append(got, "unknown "+ev.EventType())
		}
		events <- struct{}{}
		return nil
	})
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		raw = append(raw, delivery{body, r.Header.Get(oneroute.SignatureHeader)})
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(hooks.Close)
	b := setup(t, setupOptions{sandbox: sandbox.Options{WebhookURL: hooks.URL, WebhookSecret: secret, DLRDelay: -1, CampaignDelay: -1, Now: time.Now}})

	if _, err := b.client.SendSMS(b.ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348037777771", "2348037777770", "2348037777779"}}); err != nil {
		t.Fatal(err)
	}
	b.sandboxCall(t, "POST", "/sandbox/inbound", `{"from":"2348037777771","message":"Hello?"}`, nil)
	if _, err := b.client.SendCampaign(b.ctx, oneroute.TemplateRequest{From: sandbox.WhatsAppNumber, Messages: []oneroute.TemplateMessage{
		{To: "2348037777771", Identifier: "c1", Template: oneroute.TemplateRef{Name: "new_conversation", Parameters: oneroute.TextParams([]string{"Ada"})}},
	}}); err != nil {
		t.Fatal(err)
	}
	sent, err := b.client.SendOTP(b.ctx, oneroute.OTPRequest{Channels: []string{"USSD"}, TemplateID: sandbox.OTPTemplateSimple, PhoneNumber: "2348037777771"})
	if err != nil {
		t.Fatal(err)
	}
	b.sandboxCall(t, "POST", "/sandbox/otp/"+sent.Key+"/ussd", "", nil)

	// 2 DLRs (the 9 stays pending), newMessage, 2 messageStatus, campaignCompleted, otpVerified.
	const want = 7
	deadline := time.After(10 * time.Second)
	for range want {
		select {
		case <-events:
		case <-deadline:
			mu.Lock()
			t.Fatalf("got %d events before the deadline: %v", len(got), got)
		}
	}
	mu.Lock()
	accepted := append([]string(nil), got...)
	deliveries := append([]delivery(nil), raw...)
	mu.Unlock()
	wantEvents := []string{"campaignCompleted 1 sent 1", "dlr 2348037777770 undelivered", "dlr 2348037777771 delivered",
		"messageStatus c1 delivered", "messageStatus c1 sent", "newMessage Hello?", "otpVerified +2348037777771"}
	slices.Sort(accepted)
	if d := cmp.Diff(wantEvents, accepted); d != "" {
		t.Errorf("events mismatch (-want +got):\n%s", d)
	}

	// Replay every delivery, then send forged and truncated ones.
	post := func(body []byte, sig string) int {
		req, _ := http.NewRequest("POST", hooks.URL, strings.NewReader(string(body)))
		req.Header.Set(oneroute.SignatureHeader, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, d := range deliveries {
		if code := post(d.body, d.sig); code != 200 {
			t.Errorf("replay answered %d; want 200 (acknowledged, ignored)", code)
		}
	}
	d := deliveries[0]
	forged := []byte(strings.Replace(string(d.body), "delivered", "undelivered", 1))
	for name, c := range map[string]struct {
		body []byte
		sig  string
	}{
		"forged body":    {forged, d.sig},
		"forged sig":     {forged, oneroute.WebhookSignature("guessed", forged)},
		"truncated body": {d.body[:len(d.body)/2], d.sig},
		"no signature":   {d.body, ""},
	} {
		if code := post(c.body, c.sig); code != http.StatusUnauthorized {
			t.Errorf("%s answered %d; want 401", name, code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != want {
		t.Errorf("the handler saw %d events after replays and forgeries; want still %d", len(got), want)
	}
	// The sandbox counts a webhook sent once its POST has returned, which
	// may be just after the handler saw the event.
	testwait.For(t, "the sandbox to count every webhook sent", 5*time.Second, func() bool { return b.sb.Stats().WebhooksSent >= want })
	if st := b.sb.Stats(); st.WebhooksSent != want || st.WebhooksFailed != 0 {
		t.Errorf("stats = %+v; want %d webhooks sent", st, want)
	}
}
