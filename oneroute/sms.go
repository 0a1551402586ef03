package oneroute

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// Result is OneRoute's per-message answer to a send: one per recipient (or
// per messages[] item), in request order.
type Result struct {
	// Status is "success" or "failed".
	Status string `json:"status"`
	// Response is the provider message id on success, the reason otherwise
	// (e.g. "Invalid number").
	Response string `json:"response"`
}

// Accepted reports whether OneRoute accepted this message.
func (r Result) Accepted() bool { return r.Status == "success" }

// checkResults turns a results array of the wrong length into an ambiguous
// error: something was accepted, but we cannot tell what.
func checkResults(op string, out []Result, want int) error {
	if len(out) != want {
		return &APIError{Op: op, Status: 200, Message: fmt.Sprintf("got %d results for %d messages", len(out), want), malformed: true}
	}
	return nil
}

// SMSRequest is the body of Send SMS to Customers.
type SMSRequest struct {
	// Message is the text; one SMS unit is 160 GSM-7 or 70 UCS-2 characters.
	Message string `json:"message"`
	// Recipients are international numbers; the client sends them without
	// '+' (see Phone).
	Recipients []string `json:"recipients"`
	// Sender overrides the channel's sender ID (optional, not documented).
	Sender string `json:"sender,omitempty"`
	// CallbackURL asks for delivery reports at this URL (optional, not
	// documented).
	CallbackURL string `json:"callbackUrl,omitempty"`
}

// SendSMS sends one text to many numbers through an SMS channel
// (POST /api/public/channel/{id}/sms). It returns one Result per recipient;
// a failed Result (e.g. "Invalid number") is not an error. An answer with
// the wrong number of results is returned with an ambiguous error.
func (c *Client) SendSMS(ctx context.Context, channelID string, r SMSRequest) ([]Result, error) {
	const op = "send sms"
	id, err := pathID(op, "channel id", channelID)
	if err != nil {
		return nil, err
	}
	body := r
	body.Recipients = phones(r.Recipients)
	var out []Result
	if _, err := c.send(ctx, call{op: op, method: "POST", path: "/api/public/channel/" + id + "/sms", body: encodeSMS(body), out: &out}); err != nil {
		return nil, err
	}
	return out, checkResults(op, out, len(r.Recipients))
}

// OTPSMSRequest is the body of Send OTP SMS to Customers.
type OTPSMSRequest struct {
	// Message is the text, OTP included.
	Message string `json:"message"`
	// Recipients are international numbers, sent without '+'.
	Recipients []string `json:"recipients"`
}

// SendOTPSMS sends a one-time-password text through OneRoute's OTP route,
// which needs no channel (POST /api/public/sms; the answer is in "body").
// OneRoute accepts only OTP messages here. One Result per recipient; the
// Response of a success is the id GetSMSDLR takes.
func (c *Client) SendOTPSMS(ctx context.Context, r OTPSMSRequest) ([]Result, error) {
	const op = "send otp sms"
	body := OTPSMSRequest{Message: r.Message, Recipients: phones(r.Recipients)}
	var out []Result
	if _, err := c.send(ctx, call{op: op, method: "POST", path: "/api/public/sms", in: body, out: &out}); err != nil {
		return nil, err
	}
	return out, checkResults(op, out, len(r.Recipients))
}

// DLR statuses, the values of SMSMessage.Status and of FetchSMSMessages'
// status filter.
const (
	DLRPending     = "pending"
	DLRDelivered   = "delivered"
	DLRUndelivered = "undelivered"
)

// SMSMessage is an SMS as OneRoute reports it (DLR and message list).
type SMSMessage struct {
	// ID is OneRoute's message id, the Response of the send.
	ID string `json:"id"`
	// ExternalID is the carrier's id.
	ExternalID string `json:"externalId"`
	// Status is DLRPending, DLRDelivered or DLRUndelivered.
	Status string `json:"status"`
	// Reason explains the status, e.g. "Message delivered to handset".
	Reason string `json:"reason"`
	// From is the sender ID.
	From string `json:"from"`
	// To is the recipient, digits without '+'.
	To string `json:"to"`
	// Message is the text (message lists only).
	Message string `json:"message,omitempty"`
	// Units is the number of billed SMS parts.
	Units int `json:"units"`
	// DeliveredTime is when the final status was reached, if it was.
	DeliveredTime *time.Time `json:"delivered_time"`
	// CreatedAt is when OneRoute accepted the message.
	CreatedAt time.Time `json:"createdAt"`
	// UpdatedAt is the last status change, when reported.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Final reports whether the delivery status will change no more.
func (m SMSMessage) Final() bool { return m.Status == DLRDelivered || m.Status == DLRUndelivered }

// DLR is the smsDeliveryReport event. GET /api/public/dlr/{id}/sms answers
// with it, without the usual envelope, and webhooks push the same object.
type DLR struct {
	// Event is "smsDeliveryReport".
	Event string `json:"event"`
	// Conversation is the message and its delivery status.
	Conversation SMSMessage `json:"conversation"`
}

// EventType returns EventSMSDeliveryReport.
func (*DLR) EventType() string { return EventSMSDeliveryReport }

// GetSMSDLR reads the delivery report of an SMS by the id SendSMS or
// SendOTPSMS returned (GET /api/public/dlr/{id}/sms).
func (c *Client) GetSMSDLR(ctx context.Context, messageID string) (DLR, error) {
	const op = "get sms dlr"
	var d DLR
	id, err := pathID(op, "message id", messageID)
	if err != nil {
		return d, err
	}
	_, err = c.send(ctx, call{op: op, method: "GET", path: "/api/public/dlr/" + id + "/sms", out: &d, raw: true})
	return d, err
}

// MaxPageSize is the largest page[size] fanout asks of a list. OneRoute
// publishes no maximum (oneroute-api.md 1.4, 5.4); the sandbox refuses
// larger pages with a 400, as a real server with such a cap would.
const MaxPageSize = 1000

// FetchSMSMessages lists a channel's SMS, optionally by status (DLRPending,
// DLRDelivered, DLRUndelivered; "" for all), one page at a time
// (GET /api/public/channel/{id}/sms), newest first as the sandbox lists
// them (OneRoute does not document the order). Meta is nil when OneRoute
// sends none. The delivery-report sweep reads pages of MaxPageSize.
func (c *Client) FetchSMSMessages(ctx context.Context, channelID, status string, p Page) ([]SMSMessage, *Meta, error) {
	const op = "fetch sms messages"
	id, err := pathID(op, "channel id", channelID)
	if err != nil {
		return nil, nil, err
	}
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	var out []SMSMessage
	meta, err := c.send(ctx, call{op: op, method: "GET", path: "/api/public/channel/" + id + "/sms", query: p.values(q), out: &out})
	return out, meta, err
}
