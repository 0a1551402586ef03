package sandbox

import (
	"net/http"
	"strings"
	"time"
)

var seedTime = time.Date(2021, 7, 16, 7, 56, 41, 226e6, time.UTC)

type channel struct {
	ID          string         `json:"id"`
	Phone       *string        `json:"phone"`
	Identifier  string         `json:"identifier"`
	Medium      string         `json:"medium"`
	Credentials map[string]any `json:"credentials"`
	Description string         `json:"description"`
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	Provider    *string        `json:"provider"`
	Country     string         `json:"country"`
	Env         string         `json:"env"`
	Status      string         `json:"status"`
	WebhookURL  *string        `json:"webhookUrl"`
	CreatedAt   string         `json:"createdAt"`
	UpdatedAt   string         `json:"updatedAt"`
}

func strp(s string) *string { return &s }

var seedStamp = isoTime(seedTime)

var channels = []channel{
	{ID: WhatsAppChannelID, Phone: strp(WhatsAppNumber), Identifier: "sandbox-whatsapp", Medium: "WHATSAPP",
		Credentials: map[string]any{}, Description: "Sandbox WhatsApp number", Name: "Sandbox WhatsApp",
		Type: "CUSTOM", Provider: strp("360dialog"), Country: "NG", Env: "TEST", Status: "ACTIVE", CreatedAt: seedStamp, UpdatedAt: seedStamp},
	{ID: SMSChannelID, Identifier: SMSSenderID, Medium: "SMS", Credentials: map[string]any{},
		Description: "Sandbox SMS sender", Name: SMSSenderID, Type: "CUSTOM", Country: "NG", Env: "TEST",
		Status: "ACTIVE", CreatedAt: seedStamp, UpdatedAt: seedStamp},
	{ID: EmailChannelID, Identifier: "support", Medium: "EMAIL",
		Credentials: map[string]any{"email": EmailAddress, "emailDomain": "mail.oneroute.io"},
		Description: "Email Account to Sendgrid", Name: EmailAddress, Type: "CUSTOM", Country: "NG", Env: "TEST",
		Status: "ACTIVE", CreatedAt: seedStamp, UpdatedAt: seedStamp},
}

func channelByID(id string) (*channel, bool) {
	for i := range channels {
		if channels[i].ID == id {
			return &channels[i], true
		}
	}
	return nil, false
}

func (s *Server) fetchChannels(w http.ResponseWriter, r *http.Request) {
	medium := strings.ToUpper(r.PathValue("medium"))
	if medium != "WHATSAPP" && medium != "SMS" && medium != "EMAIL" {
		fail(w, http.StatusBadRequest, oneOf("medium", "whatsapp", "sms", "email"))
		return
	}
	out := []channel{}
	for _, c := range channels {
		if c.Medium == medium {
			out = append(out, c)
		}
	}
	ok(w, "Channels fetched successfully", out)
}

func (s *Server) fetchChannel(w http.ResponseWriter, r *http.Request) {
	c, found := channelByID(r.PathValue("id"))
	if !found {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	ok(w, "Channel fetched successfully", c)
}

// waNamespace is the WhatsApp Business namespace of the seeded templates.
const waNamespace = "5000f34c_d9ab_4fd8_aa48_d9091f1d21ff"

// template is a seeded WhatsApp template.
type template struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Body       string `json:"body"`
	Namespace  string `json:"namespace"`
	Data       []any  `json:"data"`
	Locale     string `json:"locale"`
	Policy     string `json:"policy"`
	Status     string `json:"status"`
	Type       string `json:"type"`
	Category   string `json:"category"`
	Components []any  `json:"components"`
	CreatedAt  string `json:"createdAt"`
	UpdatedAt  string `json:"updatedAt"`
	FirmID     *int   `json:"firm_id"`

	params  int    // body placeholders
	buttons int    // button values required
	header  string // media header format, lower case ("" without one)
}

func bodyComponent(text, example string) map[string]any {
	return map[string]any{"type": "BODY", "text": text, "example": map[string]any{"body_text": [][]string{{example}}}}
}

// waTemplate builds a seeded template with the fields all of them share.
func waTemplate(id, name, category, status, body, example string, buttons int) template {
	comps := []any{bodyComponent(body, example)}
	if buttons > 0 {
		comps = append(comps, map[string]any{"type": "BUTTONS", "buttons": []any{
			map[string]any{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}}})
	}
	return template{ID: id, Name: name, Body: body, Namespace: waNamespace, Data: []any{}, Locale: "en",
		Policy: "DETERMINISTIC", Status: status, Type: "text", Category: category, Components: comps,
		CreatedAt: seedStamp, UpdatedAt: seedStamp, params: strings.Count(body, "{{"), buttons: buttons}
}

// templates are the seeded WhatsApp templates: the two of the docs'
// examples, an authentication template with a copy-code button, one
// still pending approval (sending it is refused), one with two parameters
// (order_shipped), one in French only (bienvenue, sent with language
// fr), one with an IMAGE header (new_collection) and one with a URL button
// taking a suffix and a quick reply (track_order).
var templates = []template{
	waTemplate("c1a0c4f2-5b7e-4c61-9d38-0a1f7e6b0001", "first_welcome_messsage", "MARKETING", "approved",
		"Hello {{1}}, welcome to OneRoute! We are glad to have you.", "Michael", 0),
	waTemplate("c1a0c4f2-5b7e-4c61-9d38-0a1f7e6b0002", "new_conversation", "UTILITY", "approved",
		"Hi {{1}}, you have a new message. Reply to this message to continue the conversation.", "Ada", 0),
	waTemplate("c1a0c4f2-5b7e-4c61-9d38-0a1f7e6b0003", "otp_auth", "AUTHENTICATION", "approved",
		"{{1}} is your verification code. For your security, do not share this code.", "123456", 1),
	waTemplate("c1a0c4f2-5b7e-4c61-9d38-0a1f7e6b0004", "summer_promo", "MARKETING", "pending",
		"Hi {{1}}, our summer sale starts today!", "Ada", 0),
	waTemplate("c1a0c4f2-5b7e-4c61-9d38-0a1f7e6b0005", "order_shipped", "UTILITY", "approved",
		"Hi {{1}}, your order {{2}} has shipped.", "Ada", 0),
	inLocale("fr", waTemplate("c1a0c4f2-5b7e-4c61-9d38-0a1f7e6b0006", "bienvenue", "MARKETING", "approved",
		"Bonjour {{1}}, bienvenue chez OneRoute !", "Ada", 0)),
	withHeader("image", waTemplate("c1a0c4f2-5b7e-4c61-9d38-0a1f7e6b0007", "new_collection", "MARKETING", "approved",
		"Hi {{1}}, our new collection is here.", "Ada", 0)),
	withButtons(waTemplate("c1a0c4f2-5b7e-4c61-9d38-0a1f7e6b0008", "track_order", "UTILITY", "approved",
		"Hi {{1}}, your order is on its way.", "Ada", 0),
		map[string]any{"type": "URL", "text": "Track", "url": "https://track.example.com/{{1}}", "example": []string{"https://track.example.com/A1B2"}},
		map[string]any{"type": "QUICK_REPLY", "text": "Stop updates"}),
}

// withHeader gives a seeded template a media header of format (image,
// document or video): a send must give a header of that type with a link.
func withHeader(format string, t template) template {
	t.Components = append([]any{map[string]any{"type": "HEADER", "format": strings.ToUpper(format),
		"example": map[string]any{"header_handle": []string{"https://cdn.example.com/sample"}}}}, t.Components...)
	t.header = format
	return t
}

// withButtons gives a seeded template buttons: a send gives one value per
// URL button with a placeholder and per quick reply, in order.
func withButtons(t template, buttons ...map[string]any) template {
	list := make([]any, len(buttons))
	for i, b := range buttons {
		list[i] = b
		switch b["type"] {
		case "QUICK_REPLY":
			t.buttons++
		case "URL":
			if strings.Contains(b["url"].(string), "{{") {
				t.buttons++
			}
		}
	}
	t.Components = append(t.Components, map[string]any{"type": "BUTTONS", "buttons": list})
	return t
}

// inLocale sets a seeded template's language: a send must name it.
func inLocale(locale string, t template) template {
	t.Locale = locale
	return t
}

func templateByName(name string) (*template, bool) {
	for i := range templates {
		if templates[i].Name == name {
			return &templates[i], true
		}
	}
	return nil, false
}

func (s *Server) fetchTemplates(w http.ResponseWriter, r *http.Request) {
	c, found := channelByID(r.PathValue("id"))
	if !found || c.Medium != "WHATSAPP" {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	ok(w, "Templates fetched successfully", templates)
}

// otpTemplate is a OneOTP template, as the docs show them.
type otpTemplate struct {
	ID        string `json:"id"`
	Body      string `json:"body"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Data      []any  `json:"data"`
	Locale    string `json:"locale"`
	Policy    string `json:"policy"`
	Status    string `json:"status"`
	Type      string `json:"type"`
	Scope     string `json:"scope"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	FirmID    *int   `json:"firm_id"`
}

// OneOTP template ids, as documented.
const (
	OTPTemplateSimple = "86681a74-ecdb-4492-9e75-93dadb9f8a29"
	OTPTemplate       = "ad90555b-46fa-433c-a350-9cc8911b4362"
	OTPTemplateExpiry = "63d45b42-0898-43b3-b81d-1fb2d45bc78f"
)

// otpTmpl builds a documented OneOTP template.
func otpTmpl(id, name, locale, body string) otpTemplate {
	return otpTemplate{ID: id, Body: body, Name: name, Namespace: waNamespace, Data: []any{}, Locale: locale,
		Policy: "DETERMINISTIC", Status: "approved", Type: "text", Scope: "oneOTP", CreatedAt: seedStamp, UpdatedAt: seedStamp}
}

var otpTemplates = []otpTemplate{
	otpTmpl(OTPTemplateSimple, "otp_template_simple", "en", "Your {{firm}} OTP code is {{otp}}."),
	otpTmpl(OTPTemplate, "otp_template", "en_GB", "Your One Time Password (OTP) for {{firm}} is {{otp}}. Do not share your OTP with anyone."),
	otpTmpl(OTPTemplateExpiry, "otp_template_expiry", "en", "Your {{firm}} OTP code is {{otp}}. This code will expire in {{minutes}} minutes."),
}

func otpTemplateByID(id string) (*otpTemplate, bool) {
	for i := range otpTemplates {
		if otpTemplates[i].ID == id {
			return &otpTemplates[i], true
		}
	}
	return nil, false
}

func (s *Server) fetchOTPTemplates(w http.ResponseWriter, r *http.Request) {
	okBody(w, "Templates fetched successfully", otpTemplates)
}
