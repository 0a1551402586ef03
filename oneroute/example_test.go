package oneroute_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// exampleClient starts a sandbox and returns a client pointed at it. In
// production, leave BaseURL empty and pass the real key.
func exampleClient(o sandbox.Options) (*oneroute.Client, *httptest.Server, func()) {
	if o.DLRDelay == 0 {
		o.DLRDelay = -1 // final statuses at once, for the examples
	}
	if o.CampaignDelay == 0 {
		o.CampaignDelay = -1
	}
	sb := sandbox.New(o)
	srv := httptest.NewServer(sb)
	c, err := oneroute.New(oneroute.Options{BaseURL: srv.URL, APIKey: "test_example", UserAgent: "fanout/example"})
	if err != nil {
		panic(err)
	}
	return c, srv, func() { sb.Close(); srv.Close() }
}

func ExampleNew() {
	c, err := oneroute.New(oneroute.Options{
		APIKey:    "XXXXXXX-XXXXXXX-XXXXXXX-XXXXXXX", // from a secret, never from code
		Timeout:   10 * time.Second,
		UserAgent: "fanout/1.0.0",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(c) // the key is never shown
	// Output: oneroute.Client{https://api.oneroute.io}
}

func ExampleClient_SendSMS() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	res, err := c.SendSMS(context.Background(), sandbox.SMSChannelID, oneroute.SMSRequest{
		Message:    "Your order has shipped",
		Recipients: []string{"+2348031234567", "not a number"},
	})
	if err != nil {
		fmt.Println(oneroute.Classify(err), err)
		return
	}
	for _, r := range res {
		fmt.Println(r.Accepted(), len(r.Response) == 22 || r.Response == "Invalid number")
	}
	// Output:
	// true true
	// false true
}

func ExampleClient_SendOTPSMS() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	res, err := c.SendOTPSMS(context.Background(), oneroute.OTPSMSRequest{Message: "Your code is 482913", Recipients: []string{"+2348031234567"}})
	fmt.Println(len(res), res[0].Accepted(), err)
	// Output: 1 true <nil>
}

func ExampleClient_GetSMSDLR() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	ctx := context.Background()
	res, _ := c.SendSMS(ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234561", "2348031234560"}})
	for _, r := range res {
		d, err := c.GetSMSDLR(ctx, r.Response)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(d.Conversation.To, d.Conversation.Status, d.Conversation.Final())
	}
	// Output:
	// 2348031234561 delivered true
	// 2348031234560 undelivered true
}

func ExampleClient_FetchSMSMessages() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	ctx := context.Background()
	if _, err := c.SendSMS(ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234561", "2348031234560", "2348031234562"}}); err != nil {
		panic(err)
	}
	msgs, meta, err := c.FetchSMSMessages(ctx, sandbox.SMSChannelID, oneroute.DLRDelivered, oneroute.Page{Size: 1, Number: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(msgs), msgs[0].To, msgs[0].Status)
	if meta != nil { // OneRoute may not send pagination metadata
		fmt.Println("total", meta.Total)
	}
	// Output:
	// 1 2348031234562 delivered
	// total 2
}

func ExampleClient_FetchSMSMessagesTo() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	ctx := context.Background()
	if _, err := c.SendSMS(ctx, sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234561", "2348031234562"}}); err != nil {
		panic(err)
	}
	msgs, _, err := c.FetchSMSMessagesTo(ctx, sandbox.SMSChannelID, "+2348031234562", oneroute.Page{Size: 100})
	fmt.Println(len(msgs), msgs[0].To, err)
	// Output: 1 2348031234562 <nil>
}

func ExampleClient_FetchChannels() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	for _, m := range []string{oneroute.MediumWhatsApp, oneroute.MediumSMS, oneroute.MediumEmail} {
		list, err := c.FetchChannels(context.Background(), m)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(m, len(list), list[0].Medium, list[0].Status)
	}
	// Output:
	// whatsapp 1 WHATSAPP ACTIVE
	// sms 1 SMS ACTIVE
	// email 1 EMAIL ACTIVE
}

func ExampleClient_FetchChannel() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	ctx := context.Background()
	ch, err := c.FetchChannel(ctx, sandbox.WhatsAppChannelID)
	fmt.Println(ch.Medium, *ch.Phone, err)
	_, err = c.FetchChannel(ctx, "no-such-channel")
	fmt.Println(errors.Is(err, oneroute.ErrNotFound), oneroute.Classify(err))
	// Output:
	// WHATSAPP 2348000000001 <nil>
	// true permanent
}

func ExampleClient_FetchTemplates() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	list, err := c.FetchTemplates(context.Background(), sandbox.WhatsAppChannelID)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range list {
		fmt.Println(t.Name, t.Locale, t.Category, t.Approved(), t.Placeholders())
	}
	// Output:
	// first_welcome_messsage en MARKETING true 1
	// new_conversation en UTILITY true 1
	// otp_auth en AUTHENTICATION true 1
	// summer_promo en MARKETING false 1
	// order_shipped en UTILITY true 2
	// bienvenue fr MARKETING true 1
	// new_collection en MARKETING true 1
	// track_order en UTILITY true 1
}

func ExampleClient_SendTemplate() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	welcome := oneroute.TemplateRef{Name: "first_welcome_messsage", Parameters: oneroute.TextParams([]string{"Michael"})}
	res, err := c.SendTemplate(context.Background(), oneroute.TemplateRequest{
		From: "+" + sandbox.WhatsAppNumber,
		Messages: []oneroute.TemplateMessage{
			{To: "+2348031234567", Save: true, Template: welcome},
			{To: "+2348031234568", Save: true, Template: welcome},
		},
	})
	if err != nil {
		fmt.Println(oneroute.IsTemplateRejected(err), err)
		return
	}
	for _, r := range res {
		fmt.Println(r.Status, strings.HasPrefix(r.Response, "gBGHI0k"))
	}
	// Output:
	// success true
	// success true
}

func ExampleClient_SendCampaign() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	ctx := context.Background()
	tmpl := oneroute.TemplateRef{Name: "new_conversation", Parameters: oneroute.TextParams([]string{"Ada"})}
	id, err := c.SendCampaign(ctx, oneroute.TemplateRequest{From: sandbox.WhatsAppNumber, Messages: []oneroute.TemplateMessage{
		{To: "2348031234561", Identifier: "spring-0001", Template: tmpl},
		{To: "2348031234560", Identifier: "spring-0002", Template: tmpl},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	rows, _, _ := c.FetchLogs(ctx, oneroute.LogFilter{CampaignID: id}, oneroute.Page{})
	for _, r := range rows {
		fmt.Println(*r.Identifier, r.Status)
	}
	// Output:
	// spring-0001 delivered
	// spring-0002 failed
}

func ExampleClient_FetchLogs() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	ctx := context.Background()
	tmpl := oneroute.TemplateRef{Name: "new_conversation", Parameters: oneroute.TextParams([]string{"Ada"})}
	if _, err := c.SendCampaign(ctx, oneroute.TemplateRequest{From: sandbox.WhatsAppNumber, Messages: []oneroute.TemplateMessage{
		{To: "2348031234561", Identifier: "order-77", Template: tmpl},
	}}); err != nil {
		panic(err)
	}
	rows, _, err := c.FetchLogs(ctx, oneroute.LogFilter{Identifier: "order-77"}, oneroute.Page{Size: 10})
	fmt.Println(len(rows), rows[0].To, rows[0].Status, rows[0].Final(), err)
	// Output: 1 2348031234561 delivered true <nil>
}

func ExampleClient_SendSession() {
	c, srv, done := exampleClient(sandbox.Options{})
	defer done()
	ctx := context.Background()
	req := oneroute.SessionRequest{From: sandbox.WhatsAppNumber, To: "+2348031234567", Message: "Your order is on its way"}
	_, err := c.SendSession(ctx, req)
	fmt.Println(errors.Is(err, oneroute.ErrSessionExpired)) // no customer message yet: send a template

	// The customer writes (simulated in the sandbox), opening the 24-hour window.
	resp, _ := http.Post(srv.URL+"/sandbox/inbound", "application/json", strings.NewReader(`{"from":"2348031234567","message":"Where is my order?"}`))
	resp.Body.Close()
	m, err := c.SendSession(ctx, req)
	fmt.Println(m.ContentType, m.Content, err)
	// Output:
	// true
	// TEXT Your order is on its way <nil>
}

func ExampleClient_SendEmail() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	res, err := c.SendEmail(context.Background(), sandbox.EmailChannelID, oneroute.EmailRequest{
		Subject: "Your receipt", Message: "<p>Thank you</p>", Recipients: []string{"ada@example.com"},
	})
	fmt.Println(len(res), res[0].Accepted(), err)
	// Output: 1 true <nil>
}

func ExampleClient_FetchOTPTemplates() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	list, _ := c.FetchOTPTemplates(context.Background())
	for _, t := range list {
		fmt.Println(t.ID, t.Name)
	}
	// Output:
	// 86681a74-ecdb-4492-9e75-93dadb9f8a29 otp_template_simple
	// ad90555b-46fa-433c-a350-9cc8911b4362 otp_template
	// 63d45b42-0898-43b3-b81d-1fb2d45bc78f otp_template_expiry
}

func ExampleClient_SendOTP() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	sent, err := c.SendOTP(context.Background(), oneroute.OTPRequest{
		Channels:    []string{oneroute.OTPSMS, oneroute.OTPEmail},
		TemplateID:  "63d45b42-0898-43b3-b81d-1fb2d45bc78f",
		PhoneNumber: "2348031234567", // sent as +2348031234567
		Email:       "ada@example.com",
		Options:     &oneroute.OTPOptions{Length: 6, Minutes: 10},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sent.Key != "", len(sent.Data), len(sent.Errors))
	// Output: true 2 0
}

func ExampleClient_VerifyOTP() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	ctx := context.Background()
	sent, _ := c.SendOTP(ctx, oneroute.OTPRequest{Channels: []string{oneroute.OTPSMS}, TemplateID: "86681a74-ecdb-4492-9e75-93dadb9f8a29",
		PhoneNumber: "+2348031234567", Options: &oneroute.OTPOptions{OTP: "4821"}})
	for _, code := range []string{"0000", "4821", "4821"} {
		v, err := c.VerifyOTP(ctx, oneroute.OTPVerifyRequest{Key: sent.Key, OTP: code, Identifier: "+2348031234567"})
		switch {
		case errors.Is(err, oneroute.ErrOTPMismatch):
			fmt.Println("wrong code")
		case errors.Is(err, oneroute.ErrOTPUsed):
			fmt.Println("already used")
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Println(v.Response)
		}
	}
	// Output:
	// wrong code
	// OTP Matched
	// already used
}

func ExampleClient_SendPush() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	id, err := c.SendPush(context.Background(), oneroute.PushRequest{
		WidgetID: sandbox.WidgetID, Email: "ada@example.com", Title: "Your order", Message: "It has shipped",
	})
	fmt.Println(len(id), err)
	// Output: 36 <nil>
}

func ExampleClient_BaseURL() {
	c, _ := oneroute.New(oneroute.Options{BaseURL: "https://sandbox.api.oneroute.test/"})
	fmt.Println(c.BaseURL())
	// Output: https://sandbox.api.oneroute.test
}

func ExampleClassify() {
	c, _, done := exampleClient(sandbox.Options{Faults: sandbox.Faults{ThrottleRate: 1, RetryAfterS: 3}})
	defer done()
	_, err := c.SendSMS(context.Background(), sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	switch oneroute.Classify(err) {
	case oneroute.Throttled:
		fmt.Println("throttled: wait", oneroute.RetryAfter(err))
	case oneroute.Ambiguous:
		fmt.Println("may have been sent: reconcile first")
	default:
		fmt.Println(oneroute.Classify(err))
	}
	// Output: throttled: wait 3s
}

func ExampleRetryAfter() {
	err := fmt.Errorf("batch 7: %w", &oneroute.APIError{Op: "send sms", Status: 429, Message: "Too many requests", RetryAfter: 2 * time.Second})
	fmt.Println(oneroute.RetryAfter(err))
	// Output: 2s
}

func ExampleIsTemplateRejected() {
	c, _, done := exampleClient(sandbox.Options{})
	defer done()
	_, err := c.SendTemplate(context.Background(), oneroute.TemplateRequest{From: sandbox.WhatsAppNumber, Messages: []oneroute.TemplateMessage{
		{To: "2348031234567", Template: oneroute.TemplateRef{Name: "summer_promo", Parameters: oneroute.TextParams([]string{"Ada"})}},
	}})
	fmt.Println(oneroute.IsTemplateRejected(err)) // pause the campaign: every send would fail
	// Output: true
}

func ExamplePhone() {
	fmt.Println(oneroute.Phone("+234 803 123 4567"))
	fmt.Println(oneroute.OTPPhone("2348031234567"))
	// Output:
	// 2348031234567
	// +2348031234567
}

func ExampleOTPPhone() {
	fmt.Println(oneroute.OTPPhone("+234-803-123-4567"))
	// Output: +2348031234567
}

func ExampleTextParams() {
	fmt.Printf("%+v\n", oneroute.TextParams([]string{"Ada", "20%"}))
	// Output: [{Type:text Text:Ada} {Type:text Text:20%}]
}

func ExampleParseEvent() {
	body := []byte(`{"event":"smsDeliveryReport","message":null,"conversation":{"id":"4700000000000000000001","status":"delivered","to":"2348031234567","createdAt":"2023-08-29T08:18:28.576Z"}}`)
	ev, err := oneroute.ParseEvent(body) // after VerifySignature
	if err != nil {
		fmt.Println(err)
		return
	}
	switch e := ev.(type) {
	case *oneroute.DLR:
		fmt.Println(e.Conversation.ID, e.Conversation.Status)
	case *oneroute.NewMessage, *oneroute.CampaignCompleted, *oneroute.MessageStatus, *oneroute.OTPVerified:
		fmt.Println("other event", ev.EventType())
	}
	// Output: 4700000000000000000001 delivered
}

func ExampleVerifySignature() {
	body := []byte(`{"event":"messageStatus","message":{"externalId":"gBGHI0kFNWAgTwIJk-_rr1Kse2yO","status":"read"}}`)
	header := oneroute.WebhookSignature("secret", body) // what OneRoute sends in x-oneroute-signature
	fmt.Println(oneroute.VerifySignature("secret", body, header))
	fmt.Println(oneroute.VerifySignature("secret", body[:len(body)-1], header))
	// Output:
	// <nil>
	// webhook signature does not match
}

func ExampleWebhookSignature() {
	fmt.Println(len(oneroute.WebhookSignature("secret", []byte(`{}`))))
	// Output: 128
}

func ExampleWebhookVerifier_Handler() {
	v := &oneroute.WebhookVerifier{Secret: "whsec_example", Guard: &oneroute.MemoryReplayGuard{TTL: 24 * time.Hour}}
	srv := httptest.NewServer(v.Handler(func(ctx context.Context, ev oneroute.Event) error {
		fmt.Println("event", ev.EventType()) // enqueue work here; answer fast
		return nil
	}))
	defer srv.Close()

	body := `{"event":"campaignCompleted","campaign_id":"868a4f7f-3e41-4cd2-aba5-655c8b2ae2bb","total":1,"sent":1,"failed":0,"messages":[]}`
	post := func(sig string) {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
		req.Header.Set(oneroute.SignatureHeader, sig)
		resp, _ := http.DefaultClient.Do(req)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	post(oneroute.WebhookSignature("whsec_example", []byte(body))) // delivered
	post(oneroute.WebhookSignature("whsec_example", []byte(body))) // replayed: acknowledged, ignored
	post(oneroute.WebhookSignature("guess", []byte(body)))         // forged
	// Output:
	// event campaignCompleted
	// 200
	// 200
	// 401
}

func ExampleWebhookVerifier_Verify() {
	v := &oneroute.WebhookVerifier{Secret: "whsec_example", Guard: &oneroute.MemoryReplayGuard{}}
	body := []byte(`{"id":"63d45b42-0898-43b3-b81d-1fb2d45bc78f","otp":"1234","identifier":"+2348031234567"}`)
	sig := oneroute.WebhookSignature("whsec_example", body)
	ev, err := v.Verify(context.Background(), body, sig)
	fmt.Println(ev.EventType(), err)
	_, err = v.Verify(context.Background(), body, sig)
	fmt.Println(errors.Is(err, oneroute.ErrReplayed))
	// Output:
	// otpVerified <nil>
	// true
}
