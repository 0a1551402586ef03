package oneroute

import (
	"context"
	"strings"
	"time"
)

// OneOTP media, the values of OTPRequest.Channels.
const (
	OTPWhatsApp = "WHATSAPP"
	OTPSMS      = "SMS"
	OTPEmail    = "EMAIL"
	OTPUSSD     = "USSD"
)

// OTPTemplate is a OneOTP message template.
type OTPTemplate struct {
	// ID is what OTPRequest.TemplateID takes.
	ID string `json:"id"`
	// Name is e.g. "otp_template_simple".
	Name string `json:"name"`
	// Body has {{firm}}, {{otp}} and {{minutes}} placeholders.
	Body string `json:"body"`
	// Namespace is the WhatsApp Business namespace.
	Namespace string `json:"namespace"`
	// Locale is e.g. "en" or "en_GB".
	Locale string `json:"locale"`
	// Policy is "DETERMINISTIC".
	Policy string `json:"policy"`
	// Status is "approved".
	Status string `json:"status"`
	// Type is "text".
	Type string `json:"type"`
	// Scope is "oneOTP".
	Scope string `json:"scope"`
	// CreatedAt and UpdatedAt are OneRoute's timestamps.
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// FetchOTPTemplates lists the OneOTP templates (GET /api/oneotp/templates).
func (c *Client) FetchOTPTemplates(ctx context.Context) ([]OTPTemplate, error) {
	var out []OTPTemplate
	_, err := c.send(ctx, call{op: "fetch otp templates", method: "GET", path: "/api/oneotp/templates", out: &out})
	return out, err
}

// OTPOptions shape the generated code. Zero values leave OneRoute's
// defaults: length 4, digits only, valid 5 minutes.
type OTPOptions struct {
	// OTP overrides the generated code.
	OTP string `json:"otp,omitempty"`
	// Length of the code; default 4.
	Length int `json:"length,omitempty"`
	// Digits allows digits; default true.
	Digits *bool `json:"digits,omitempty"`
	// Alphabets allows letters; default false.
	Alphabets *bool `json:"alphabets,omitempty"`
	// UpperCase allows upper-case letters; default false.
	UpperCase *bool `json:"upperCase,omitempty"`
	// SpecialChars allows punctuation; default false.
	SpecialChars *bool `json:"specialChars,omitempty"`
	// Minutes is the validity; default 5.
	Minutes int `json:"minutes,omitempty"`
}

// OTPRequest is the body of Send OTP.
type OTPRequest struct {
	// Channels are OTPWhatsApp, OTPSMS, OTPEmail and OTPUSSD.
	Channels []string `json:"channels"`
	// TemplateID is an OTPTemplate id.
	TemplateID string `json:"templateId"`
	// PhoneNumber is required for WhatsApp, SMS and USSD; sent with a
	// leading '+' (see OTPPhone).
	PhoneNumber string `json:"phoneNumber,omitempty"`
	// Email is required for EMAIL.
	Email string `json:"email,omitempty"`
	// Options shape the code.
	Options *OTPOptions `json:"options,omitempty"`
}

// OTPDelivery is one medium's answer to Send OTP.
type OTPDelivery struct {
	// Medium is e.g. "SMS".
	Medium string `json:"medium"`
	// Data is the message id, or a note such as "Sent successfully".
	Data string `json:"data"`
}

// OTPFailure is one medium that could not be used.
type OTPFailure struct {
	// Medium is e.g. "EMAIL".
	Medium string `json:"medium"`
	// Error says why.
	Error string `json:"error"`
}

// OTPSent is the answer to Send OTP.
type OTPSent struct {
	// Key identifies this OTP in VerifyOTP. It is opaque; keep it server
	// side.
	Key string `json:"key"`
	// Data has one entry per medium that was used.
	Data []OTPDelivery `json:"data"`
	// Errors has one entry per medium that failed.
	Errors []OTPFailure `json:"errors"`
}

// SendOTP generates a one-time password and sends it through the given
// media (POST /api/oneotp/send). The phone number goes out with '+', as the
// OneOTP docs show it.
func (c *Client) SendOTP(ctx context.Context, r OTPRequest) (OTPSent, error) {
	body := r
	body.PhoneNumber = OTPPhone(r.PhoneNumber)
	body.Channels = make([]string, len(r.Channels))
	for i, ch := range r.Channels {
		body.Channels[i] = strings.ToUpper(ch)
	}
	var out OTPSent
	_, err := c.send(ctx, call{op: "send otp", method: "POST", path: "/api/oneotp/send", in: body, out: &out})
	return out, err
}

// OTPVerifyRequest is the body of Verify OTP.
type OTPVerifyRequest struct {
	// Key is OTPSent.Key.
	Key string `json:"key"`
	// OTP is the code the customer entered.
	OTP string `json:"otp"`
	// Identifier is the email address or phone number the OTP was sent to;
	// a phone number goes out with '+'.
	Identifier string `json:"identifier"`
}

// OTPVerification is the answer to a successful Verify OTP.
type OTPVerification struct {
	// Status is "Success".
	Status string `json:"status"`
	// Response is "OTP Matched".
	Response string `json:"response"`
}

// VerifyOTP checks a code (POST /api/oneotp/verify). A refusal is an
// *APIError matching ErrOTPMismatch, ErrOTPExpired, ErrOTPUsed or
// ErrOTPKeyInvalid.
func (c *Client) VerifyOTP(ctx context.Context, r OTPVerifyRequest) (OTPVerification, error) {
	body := r
	if !strings.Contains(r.Identifier, "@") {
		body.Identifier = OTPPhone(r.Identifier)
	}
	var out OTPVerification
	_, err := c.send(ctx, call{op: "verify otp", method: "POST", path: "/api/oneotp/verify", in: body, out: &out})
	return out, err
}
