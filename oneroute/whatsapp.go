package oneroute

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// TemplateParam is one WhatsApp template body parameter or button value.
type TemplateParam struct {
	// Type is "text".
	Type string `json:"type"`
	// Text is the value.
	Text string `json:"text"`
}

// TemplateHeader is a template's media or text header (not documented by
// OneRoute; sent only when set).
type TemplateHeader struct {
	// Type is "image", "video", "document" or "text".
	Type string `json:"type"`
	// Link is the media URL.
	Link string `json:"link,omitempty"`
	// Text is the header text.
	Text string `json:"text,omitempty"`
}

// TemplateRef names an approved WhatsApp template and its parameters.
type TemplateRef struct {
	// Name is the template name, lowercase with underscores.
	Name string `json:"name"`
	// Language is the template locale (not documented; OneRoute defaults to
	// en).
	Language string `json:"language,omitempty"`
	// Parameters fill the body placeholders in order; sent as [] when nil.
	Parameters []TemplateParam `json:"parameters"`
	// Buttons carry button values, e.g. the copy-code of an authentication
	// template.
	Buttons []TemplateParam `json:"buttons,omitempty"`
	// Header is an optional media or text header.
	Header *TemplateHeader `json:"header,omitempty"`
}

// TemplateMessage is one item of a template or campaign send.
type TemplateMessage struct {
	// To is the recipient's number; sent without '+'.
	To string `json:"to"`
	// Save stores the message as a OneRoute conversation.
	Save bool `json:"save"`
	// Template is the template and its values.
	Template TemplateRef `json:"template"`
	// Metadata is custom data OneRoute keeps with the message.
	Metadata map[string]any `json:"metadata,omitempty"`
	// Identifier is a caller-chosen unique id per message (campaign
	// endpoint): it names the message in FetchLogs and in webhooks. Give
	// every message one, or its status cannot be followed.
	Identifier string `json:"identifier,omitempty"`
}

// TemplateRequest is the body of Send Template Message and Send Campaign
// Message.
type TemplateRequest struct {
	// From is the business WhatsApp number of a connected channel.
	From string `json:"from"`
	// Messages are the recipients, several per call.
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

// wire formats the numbers and fills the empty parameter arrays.
func (r TemplateRequest) wire() TemplateRequest {
	body := TemplateRequest{From: Phone(r.From), Messages: make([]TemplateMessage, len(r.Messages))}
	for i, m := range r.Messages {
		m.To = Phone(m.To)
		if m.Template.Parameters == nil {
			m.Template.Parameters = []TemplateParam{}
		}
		body.Messages[i] = m
	}
	return body
}

// SendTemplate sends approved WhatsApp templates, many recipients in one call
// (POST /api/public/conversation/template). One Result per message, in
// order; the Response of a success is the WhatsApp message id. An unknown or
// unapproved template is an error matching ErrTemplateRejected.
func (c *Client) SendTemplate(ctx context.Context, r TemplateRequest) ([]Result, error) {
	const op = "send template"
	var out []Result
	if _, err := c.send(ctx, call{op: op, method: "POST", path: "/api/public/conversation/template", in: r.wire(), out: &out}); err != nil {
		return nil, err
	}
	return out, checkResults(op, out, len(r.Messages))
}

// SendCampaign sends a WhatsApp template campaign in one request
// (POST /api/public/whatsapp/campaign) and returns its campaign id.
// OneRoute processes it asynchronously: follow it with FetchLogs (by
// campaign id, or by each message's Identifier) or the campaignCompleted
// webhook. Separate calls are separate campaigns.
func (c *Client) SendCampaign(ctx context.Context, r TemplateRequest) (campaignID string, err error) {
	const op = "send campaign"
	var out struct {
		CampaignID string `json:"campaign_id"`
	}
	if _, err := c.send(ctx, call{op: op, method: "POST", path: "/api/public/whatsapp/campaign", in: r.wire(), out: &out}); err != nil {
		return "", err
	}
	if out.CampaignID == "" {
		return "", &APIError{Op: op, Status: 200, Message: "response has no campaign_id", malformed: true}
	}
	return out.CampaignID, nil
}

// Attachment is media sent with a session message (not documented by
// OneRoute; mirrors the widget's attachment).
type Attachment struct {
	// Type is "IMAGE", "VIDEO", "DOCUMENT" or "AUDIO".
	Type string `json:"type"`
	// URL is where OneRoute fetches the media.
	URL string `json:"url"`
}

// SessionRequest is the body of Send Session Message.
type SessionRequest struct {
	// From is the business WhatsApp number.
	From string `json:"from"`
	// To is the customer's number; sent without '+'.
	To string `json:"to"`
	// Message is the free-form text.
	Message string `json:"message"`
	// Attachment is optional media.
	Attachment *Attachment `json:"attachment,omitempty"`
}

// Sender is who wrote a conversation message.
type Sender struct {
	// Name is the display name.
	Name string `json:"name"`
	// AuthUser is true for a OneRoute user or the API, false for the
	// customer.
	AuthUser bool `json:"authUser"`
	// LastActivity is the sender's last activity.
	LastActivity *time.Time `json:"lastActivity"`
}

// ConversationMessage is a message of a OneRoute conversation, as Send
// Session Message returns it and the newMessage webhook carries it.
type ConversationMessage struct {
	// ID is OneRoute's message id.
	ID string `json:"id,omitempty"`
	// Content is the text.
	Content string `json:"content"`
	// ContentType is "TEXT", "IMAGE", "VIDEO", "DOCUMENT" or "AUDIO".
	ContentType string `json:"contentType"`
	// Sender wrote the message.
	Sender Sender `json:"sender"`
	// ExternalID is the WhatsApp message id.
	ExternalID *string `json:"externalId"`
	// ConversationID is the conversation the message belongs to.
	ConversationID string `json:"conversation_id"`
	// Subject is the email subject, when there is one.
	Subject *string `json:"subject,omitempty"`
	// ImageURL, VideoURL, DocumentURL and AudioURL link the media.
	ImageURL    *string `json:"imageUrl"`
	VideoURL    *string `json:"videoUrl"`
	DocumentURL *string `json:"documentUrl"`
	AudioURL    *string `json:"audioUrl"`
	// QuotedMessageID is the message this one replies to.
	QuotedMessageID *string `json:"quoted_message_id"`
	// CreatedAt and UpdatedAt are OneRoute's timestamps, when present.
	CreatedAt *time.Time `json:"createdAt,omitempty"`
	UpdatedAt *time.Time `json:"updatedAt,omitempty"`
}

// SendSession sends a free-form WhatsApp message
// (POST /api/public/conversation/text). It works only within 24 hours of the
// customer's last message; outside that window the error matches
// ErrSessionExpired and a template message is the way to reach them.
func (c *Client) SendSession(ctx context.Context, r SessionRequest) (ConversationMessage, error) {
	const op = "send session message"
	body := r
	body.From, body.To = Phone(r.From), Phone(r.To)
	var out ConversationMessage
	_, err := c.send(ctx, call{op: op, method: "POST", path: "/api/public/conversation/text", in: body, out: &out})
	return out, err
}

// Template is an approved (or pending) WhatsApp template of a channel.
type Template struct {
	// ID is the template id.
	ID string `json:"id"`
	// Name is used in TemplateRef.Name.
	Name string `json:"name"`
	// Body is the text with {{1}}-style placeholders.
	Body string `json:"body"`
	// Namespace is the WhatsApp Business namespace.
	Namespace string `json:"namespace"`
	// Locale is the language, e.g. "en".
	Locale string `json:"locale"`
	// Policy is "DETERMINISTIC".
	Policy string `json:"policy"`
	// Status is "approved", "pending" or "rejected".
	Status string `json:"status"`
	// Type is "text".
	Type string `json:"type"`
	// Category is "MARKETING", "UTILITY" or "AUTHENTICATION".
	Category string `json:"category,omitempty"`
	// Components are the template parts in WhatsApp Cloud API form.
	Components json.RawMessage `json:"components,omitempty"`
	// CreatedAt and UpdatedAt are OneRoute's timestamps.
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Approved reports whether the template can be sent.
func (t Template) Approved() bool { return t.Status == "approved" }

// FetchTemplates lists a WhatsApp channel's templates
// (GET /api/public/channel/{id}/templates).
func (c *Client) FetchTemplates(ctx context.Context, channelID string) ([]Template, error) {
	const op = "fetch templates"
	id, err := pathID(op, "channel id", channelID)
	if err != nil {
		return nil, err
	}
	var out []Template
	_, err = c.send(ctx, call{op: op, method: "GET", path: "/api/public/channel/" + id + "/templates", out: &out})
	return out, err
}

// placeholderRe finds a numbered body placeholder such as {{1}}.
var placeholderRe = regexp.MustCompile(`\{\{\s*(\d+)\s*\}\}`)

// Placeholders returns the number of distinct numbered placeholders
// ({{1}}, {{2}}, ...) in the template's body: how many parameters a send
// must give. A template listed without a body is read from its BODY
// component.
func (t Template) Placeholders() int {
	body := t.Body
	if body == "" && len(t.Components) > 0 {
		var comps []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if json.Unmarshal(t.Components, &comps) == nil {
			for _, c := range comps {
				if strings.EqualFold(c.Type, "BODY") {
					body = c.Text
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range placeholderRe.FindAllStringSubmatch(body, -1) {
		seen[m[1]] = true
	}
	return len(seen)
}

// DefaultLanguage is the template language OneRoute assumes when a send
// gives none.
const DefaultLanguage = "en"

// HasLanguage reports whether the template is in language lang (DefaultLanguage
// when ""): the same code, ignoring case and '-' for '_' ("en_US" is
// "en-us"), or the same base language when either names no region ("en"
// matches "en_GB").
func (t Template) HasLanguage(lang string) bool {
	if lang == "" {
		lang = DefaultLanguage
	}
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "_")) }
	a, b := norm(lang), norm(t.Locale)
	if a == b {
		return true
	}
	baseA, regionA, _ := strings.Cut(a, "_")
	baseB, regionB, _ := strings.Cut(b, "_")
	return baseA == baseB && (regionA == "" || regionB == "")
}

// ButtonValues returns how many button values a send of the template must
// give in TemplateRef.Buttons: len(ButtonKinds()).
func (t Template) ButtonValues() int { return len(t.ButtonKinds()) }

// Button kinds, as ButtonKinds names them.
const (
	ButtonQuickReply = "quick_reply"
	ButtonURL        = "url"
	ButtonCopyCode   = "copy_code"
)

// templateComponent is a component of a template's definition.
type templateComponent struct {
	Type    string `json:"type"`
	Format  string `json:"format"`
	Text    string `json:"text"`
	Buttons []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"buttons"`
}

func (t Template) components() []templateComponent {
	var comps []templateComponent
	if len(t.Components) == 0 || json.Unmarshal(t.Components, &comps) != nil {
		return nil
	}
	return comps
}

// ButtonKinds lists, in order, the template's buttons a send gives a value
// for in TemplateRef.Buttons, read from its BUTTONS component: a quick reply
// (its payload), a URL button whose link has a placeholder (its suffix) and
// a copy-code (OTP, COPY_CODE) button (the code). Static URL and phone
// buttons take none.
func (t Template) ButtonKinds() []string {
	var kinds []string
	for _, c := range t.components() {
		if !strings.EqualFold(c.Type, "BUTTONS") {
			continue
		}
		for _, b := range c.Buttons {
			switch strings.ToUpper(b.Type) {
			case "QUICK_REPLY":
				kinds = append(kinds, ButtonQuickReply)
			case "OTP", "COPY_CODE":
				kinds = append(kinds, ButtonCopyCode)
			case "URL":
				if strings.Contains(b.URL, "{{") {
					kinds = append(kinds, ButtonURL)
				}
			}
		}
	}
	return kinds
}

// HeaderFormat returns the format of the template's HEADER component in
// lower case: "image", "document", "video", "text", or "" without a
// header.
func (t Template) HeaderFormat() string {
	for _, c := range t.components() {
		if strings.EqualFold(c.Type, "HEADER") {
			if c.Format == "" {
				return "text"
			}
			return strings.ToLower(c.Format)
		}
	}
	return ""
}

// HeaderValue reports whether a send of the template must give a header
// value: a media header's link, or a text header's {{1}}.
func (t Template) HeaderValue() bool {
	for _, c := range t.components() {
		if strings.EqualFold(c.Type, "HEADER") {
			f := strings.ToUpper(c.Format)
			return f == "IMAGE" || f == "DOCUMENT" || f == "VIDEO" || ((f == "TEXT" || f == "") && placeholderRe.MatchString(c.Text))
		}
	}
	return false
}
