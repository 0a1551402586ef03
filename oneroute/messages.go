package oneroute

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Result is OneRoute's per-message answer to a send: one per recipient (or
// per messages[] item), in request order.
type Result struct {
	// Status is "success" or "failed".
	Status string `json:"status"`
	// Response is the provider message id on success, the reason otherwise.
	Response string `json:"response"`
}

// Accepted reports whether OneRoute accepted this message.
func (r Result) Accepted() bool { return r.Status == "success" }

// SMSRequest is the body of Send SMS to Customers.
type SMSRequest struct {
	Message string `json:"message"`
	// Recipients are E.164 numbers; the client sends them without '+'.
	Recipients []string `json:"recipients"`
	// Sender overrides the channel's sender ID (optional).
	Sender string `json:"sender,omitempty"`
}

// SendSMS sends one text to many numbers through an SMS channel
// (POST /api/public/channel/{id}/sms). It returns one Result per recipient.
func (c *Client) SendSMS(ctx context.Context, channelID string, r SMSRequest) ([]Result, error) {
	body := r
	body.Recipients = phones(r.Recipients)
	var out []Result
	if _, err := c.do(ctx, "send sms", "POST", "/api/public/channel/"+url.PathEscape(channelID)+"/sms", nil, body, &out, false); err != nil {
		return nil, err
	}
	return out, checkResults("send sms", out, len(r.Recipients))
}

// TemplateParam is one WhatsApp template body parameter or button value.
type TemplateParam struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// TemplateRef names an approved WhatsApp template and its parameters.
type TemplateRef struct {
	Name       string          `json:"name"`
	Language   string          `json:"language,omitempty"`
	Parameters []TemplateParam `json:"parameters"`
	Buttons    []TemplateParam `json:"buttons,omitempty"`
}

// TemplateMessage is one item of a template send.
type TemplateMessage struct {
	// To is an E.164 number; sent without '+'.
	To       string         `json:"to"`
	Save     bool           `json:"save"`
	Template TemplateRef    `json:"template"`
	Metadata map[string]any `json:"metadata,omitempty"`
	// Identifier is a caller-chosen unique id (campaign endpoint only).
	Identifier string `json:"identifier,omitempty"`
}

// TemplateRequest is the body of Send Template Message.
type TemplateRequest struct {
	// From is the business WhatsApp number (E.164).
	From     string            `json:"from"`
	Messages []TemplateMessage `json:"messages"`
}

// TextParams turns plain strings into text template parameters.
func TextParams(values []string) []TemplateParam {
	out := make([]TemplateParam, len(values))
	for i, v := range values {
		out[i] = TemplateParam{Type: "text", Text: v}
	}
	return out
}

// SendTemplate sends approved WhatsApp templates, many recipients in one call
// (POST /api/public/conversation/template). One Result per message.
func (c *Client) SendTemplate(ctx context.Context, r TemplateRequest) ([]Result, error) {
	body := TemplateRequest{From: Phone(r.From), Messages: make([]TemplateMessage, len(r.Messages))}
	for i, m := range r.Messages {
		m.To = Phone(m.To)
		if m.Template.Parameters == nil {
			m.Template.Parameters = []TemplateParam{}
		}
		body.Messages[i] = m
	}
	var out []Result
	if _, err := c.do(ctx, "send template", "POST", "/api/public/conversation/template", nil, body, &out, false); err != nil {
		return nil, err
	}
	return out, checkResults("send template", out, len(r.Messages))
}

// EmailRequest is the body of Send Email to Customers.
type EmailRequest struct {
	Subject    string   `json:"subject"`
	Message    string   `json:"message"`
	Recipients []string `json:"recipients"`
	CC         []string `json:"cc,omitempty"`
	BCC        []string `json:"bcc,omitempty"`
	ReplyTo    string   `json:"replyTo,omitempty"`
}

// SendEmail sends one email to many addresses through an email channel
// (POST /api/public/channel/{id}/email). One Result per recipient.
func (c *Client) SendEmail(ctx context.Context, channelID string, r EmailRequest) ([]Result, error) {
	var out []Result
	if _, err := c.do(ctx, "send email", "POST", "/api/public/channel/"+url.PathEscape(channelID)+"/email", nil, r, &out, false); err != nil {
		return nil, err
	}
	return out, checkResults("send email", out, len(r.Recipients))
}

// checkResults turns a results array of the wrong length into an ambiguous
// error: something was accepted, but we cannot tell what.
func checkResults(op string, out []Result, want int) error {
	if len(out) != want {
		return &APIError{Op: op, Status: 200, Message: fmt.Sprintf("got %d results for %d messages", len(out), want), malformed: true}
	}
	return nil
}

// DLR statuses.
const (
	DLRPending     = "pending"
	DLRDelivered   = "delivered"
	DLRUndelivered = "undelivered"
)

// SMSMessage is an SMS as OneRoute reports it (DLR and message list).
type SMSMessage struct {
	ID            string     `json:"id"`
	ExternalID    string     `json:"externalId"`
	Status        string     `json:"status"`
	Reason        string     `json:"reason"`
	From          string     `json:"from"`
	To            string     `json:"to"`
	Message       string     `json:"message,omitempty"`
	Units         int        `json:"units"`
	DeliveredTime *time.Time `json:"delivered_time"`
	CreatedAt     time.Time  `json:"createdAt"`
}

// Final reports whether the delivery status will change no more.
func (m SMSMessage) Final() bool { return m.Status == DLRDelivered || m.Status == DLRUndelivered }

// DLR is the smsDeliveryReport event (GET /api/public/dlr/{id}/sms answers
// with it, without the usual envelope; webhooks push the same object).
type DLR struct {
	Event        string     `json:"event"`
	Conversation SMSMessage `json:"conversation"`
}

// GetSMSDLR reads the delivery report of an SMS by the id SendSMS returned.
func (c *Client) GetSMSDLR(ctx context.Context, messageID string) (DLR, error) {
	var d DLR
	_, err := c.do(ctx, "get sms dlr", "GET", "/api/public/dlr/"+url.PathEscape(messageID)+"/sms", nil, nil, &d, true)
	return d, err
}

// Page selects one page of a list (1-based).
type Page struct {
	Size   int
	Number int
}

func (p Page) values(q url.Values) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if p.Size <= 0 {
		p.Size = 100
	}
	if p.Number <= 0 {
		p.Number = 1
	}
	q.Set("page[size]", strconv.Itoa(p.Size))
	q.Set("page[number]", strconv.Itoa(p.Number))
	return q
}

// FetchSMSMessages lists a channel's SMS, optionally by status ("delivered",
// "pending", "undelivered"), one page at a time. Meta may be nil.
func (c *Client) FetchSMSMessages(ctx context.Context, channelID, status string, p Page) ([]SMSMessage, *Meta, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	var out []SMSMessage
	meta, err := c.do(ctx, "fetch sms messages", "GET", "/api/public/channel/"+url.PathEscape(channelID)+"/sms", p.values(q), nil, &out, false)
	return out, meta, err
}

// Channel is a OneRoute channel (WhatsApp number, SMS sender, email account).
type Channel struct {
	ID          string         `json:"id"`
	Phone       *string        `json:"phone"`
	Identifier  string         `json:"identifier"`
	Medium      string         `json:"medium"`
	Credentials map[string]any `json:"credentials,omitempty"`
	Description string         `json:"description"`
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	Country     string         `json:"country"`
	Env         string         `json:"env"`
	Status      string         `json:"status"`
	WebhookURL  *string        `json:"webhookUrl"`
	CreatedAt   time.Time      `json:"createdAt"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

// FetchChannels lists the account's channels of a medium: "whatsapp", "sms"
// or "email" (GET /api/public/channels/{medium}).
func (c *Client) FetchChannels(ctx context.Context, medium string) ([]Channel, error) {
	var out []Channel
	_, err := c.do(ctx, "fetch channels", "GET", "/api/public/channels/"+url.PathEscape(medium), nil, nil, &out, false)
	return out, err
}
