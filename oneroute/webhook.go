package oneroute

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SignatureHeader is the header that carries a webhook's signature.
const SignatureHeader = "x-oneroute-signature"

// Webhook event types, as Event.EventType returns them.
const (
	EventNewMessage        = "newMessage"
	EventSMSDeliveryReport = "smsDeliveryReport"
	EventCampaignCompleted = "campaignCompleted"
	EventMessageStatus     = "messageStatus"
	EventOTPVerified       = "otpVerified"
)

// Webhook errors.
var (
	// ErrBadSignature is a webhook whose signature is missing, malformed or
	// does not match its body: forged, altered or truncated. Reject it.
	ErrBadSignature = errors.New("webhook signature does not match")
	// ErrNoWebhookSecret is a verifier with no secret: nothing can be
	// verified, so nothing is accepted.
	ErrNoWebhookSecret = errors.New("no webhook secret configured")
	// ErrMalformedEvent is a body that is not a OneRoute event.
	ErrMalformedEvent = errors.New("malformed webhook event")
	// ErrReplayed is a body already received: a replay, or OneRoute
	// retrying a delivery that was already processed. Do not process it
	// again.
	ErrReplayed = errors.New("webhook already received")
)

// Event is a parsed webhook: *NewMessage, *DLR, *CampaignCompleted,
// *MessageStatus, *OTPVerified or *UnknownEvent. Switch on its type.
type Event interface {
	// EventType is the event name, e.g. EventNewMessage.
	EventType() string
}

// Customer is the customer of a conversation.
type Customer struct {
	// Name and Email are as the customer gave them.
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Conversation is the conversation an inbound message belongs to.
type Conversation struct {
	// ID is the conversation id.
	ID string `json:"id"`
	// Subject is set for email conversations.
	Subject *string `json:"subject"`
	// Agent is the assigned agent, in OneRoute's shape (not documented).
	Agent json.RawMessage `json:"agent,omitempty"`
	// Customer is who wrote.
	Customer Customer `json:"customer"`
	// CustomerID is the customer's id, when present.
	CustomerID string `json:"customer_id,omitempty"`
	// LastMessageAt is the time of the latest message.
	LastMessageAt *time.Time `json:"lastMessageAt"`
}

// NewMessage is the newMessage event: a customer wrote on some channel. For
// WhatsApp it opens the 24-hour window for session messages.
type NewMessage struct {
	// Event is EventNewMessage.
	Event string `json:"event"`
	// Message is what the customer sent.
	Message ConversationMessage `json:"message"`
	// Conversation is where it belongs.
	Conversation Conversation `json:"conversation"`
}

// EventType returns EventNewMessage.
func (*NewMessage) EventType() string { return EventNewMessage }

// CampaignMessage is one message's outcome in a campaignCompleted event.
type CampaignMessage struct {
	// Identifier is the TemplateMessage.Identifier.
	Identifier string `json:"identifier"`
	// To is the recipient.
	To string `json:"to"`
	// Status is "sent", "delivered", "read" or "failed".
	Status string `json:"status"`
	// Response is the WhatsApp message id, or the reason of a failure.
	Response string `json:"response"`
}

// CampaignCompleted is the campaignCompleted event: every message of a
// campaign reached its final status. (OneRoute documents that the event
// exists, not its shape; this follows the project's reference.)
type CampaignCompleted struct {
	// Event is EventCampaignCompleted.
	Event string `json:"event"`
	// CampaignID is the id SendCampaign returned.
	CampaignID string `json:"campaign_id"`
	// Total, Sent and Failed count the messages.
	Total  int `json:"total"`
	Sent   int `json:"sent"`
	Failed int `json:"failed"`
	// Messages are the outcomes, one per message.
	Messages []CampaignMessage `json:"messages"`
}

// EventType returns EventCampaignCompleted.
func (*CampaignCompleted) EventType() string { return EventCampaignCompleted }

// MessageStatusUpdate is the message part of a messageStatus event.
type MessageStatusUpdate struct {
	// ExternalID is the WhatsApp message id.
	ExternalID string `json:"externalId"`
	// Status is "sent", "delivered", "read" or "failed".
	Status string `json:"status"`
	// Identifier is the caller's id, for campaign messages.
	Identifier string `json:"identifier,omitempty"`
	// CampaignID is the campaign, for campaign messages.
	CampaignID string `json:"campaign_id,omitempty"`
	// To is the recipient, when present.
	To string `json:"to,omitempty"`
	// Reason explains a failure.
	Reason string `json:"reason,omitempty"`
}

// MessageStatus is the messageStatus event: a WhatsApp message changed
// status.
type MessageStatus struct {
	// Event is EventMessageStatus.
	Event string `json:"event"`
	// Message is the update.
	Message MessageStatusUpdate `json:"message"`
}

// EventType returns EventMessageStatus.
func (*MessageStatus) EventType() string { return EventMessageStatus }

// OTPVerified is the event OneRoute pushes when a customer verified an OTP by
// dialling the USSD code. OneRoute sends it without an "event" field;
// ParseEvent recognises its shape.
type OTPVerified struct {
	// Event is EventOTPVerified when present, "" as OneRoute documents it.
	Event string `json:"event,omitempty"`
	// ID is the OTP template id.
	ID string `json:"id"`
	// OTP is the verified code.
	OTP string `json:"otp"`
	// Identifier is the phone number the OTP was sent to.
	Identifier string `json:"identifier"`
	// ExpirationTime is when the OTP would have expired.
	ExpirationTime *time.Time `json:"expiration_time"`
	// CreatedAt is when it was sent.
	CreatedAt *time.Time `json:"createdAt"`
}

// EventType returns EventOTPVerified.
func (*OTPVerified) EventType() string { return EventOTPVerified }

// UnknownEvent is a well-formed event of a type this client does not know.
// Acknowledge it and move on.
type UnknownEvent struct {
	// Type is its "event" field.
	Type string
	// Raw is the whole body.
	Raw json.RawMessage
}

// EventType returns the event's own type name.
func (e *UnknownEvent) EventType() string { return e.Type }

// ParseEvent decodes a webhook body. Verify the signature first (see
// VerifySignature and WebhookVerifier): ParseEvent trusts its input. Unknown
// fields are ignored and an unknown event type is an *UnknownEvent; a body
// that is not a JSON object, has no event type, or lacks the ids an event
// needs is an error matching ErrMalformedEvent.
func ParseEvent(raw []byte) (Event, error) {
	var head struct {
		Event      *string         `json:"event"`
		OTP        json.RawMessage `json:"otp"`
		Identifier json.RawMessage `json:"identifier"`
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedEvent)
	}
	if err := json.Unmarshal(trimmed, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	typ := ""
	if head.Event != nil {
		typ = *head.Event
	} else if len(head.OTP) > 0 && len(head.Identifier) > 0 {
		typ = EventOTPVerified // the USSD payload has no "event" field
	}
	var ev Event
	var check func() error
	switch typ {
	case "":
		return nil, fmt.Errorf("%w: no event type", ErrMalformedEvent)
	case EventNewMessage:
		e := &NewMessage{}
		ev, check = e, func() error { return need("conversation.id", e.Conversation.ID) }
	case EventSMSDeliveryReport:
		e := &DLR{}
		ev, check = e, func() error {
			return errors.Join(need("conversation.id", e.Conversation.ID), need("conversation.status", e.Conversation.Status))
		}
	case EventCampaignCompleted:
		e := &CampaignCompleted{}
		ev, check = e, func() error { return need("campaign_id", e.CampaignID) }
	case EventMessageStatus:
		e := &MessageStatus{}
		ev, check = e, func() error {
			return errors.Join(need("message.status", e.Message.Status), need("message.externalId or message.identifier", e.Message.ExternalID+e.Message.Identifier))
		}
	case EventOTPVerified:
		e := &OTPVerified{}
		ev, check = e, func() error { return need("identifier", e.Identifier) }
	default:
		return &UnknownEvent{Type: typ, Raw: bytes.Clone(trimmed)}, nil
	}
	if err := json.Unmarshal(trimmed, ev); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformedEvent, typ, err)
	}
	if err := check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformedEvent, typ, err)
	}
	return ev, nil
}

func need(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is missing", field)
	}
	return nil
}

// WebhookSignature returns the x-oneroute-signature of body: the hex
// HMAC-SHA512 of the raw bytes, keyed with the account's OneRoute secret.
func WebhookSignature(secret string, body []byte) string {
	m := hmac.New(sha512.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a webhook's x-oneroute-signature header against the
// raw body, in constant time. Pass the bytes exactly as received: JSON
// decoded and encoded again may differ from what OneRoute signed. A
// missing, malformed or wrong signature is ErrBadSignature; an empty secret
// is ErrNoWebhookSecret.
func VerifySignature(secret string, rawBody []byte, header string) error {
	if secret == "" {
		return ErrNoWebhookSecret
	}
	h := strings.TrimSpace(header)
	h = strings.TrimPrefix(h, "sha512=")
	if len(h) != 2*sha512.Size {
		return fmt.Errorf("%w: want %d hex characters, got %d", ErrBadSignature, 2*sha512.Size, len(h))
	}
	got, err := hex.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrBadSignature)
	}
	m := hmac.New(sha512.New, []byte(secret))
	m.Write(rawBody)
	if !hmac.Equal(m.Sum(nil), got) {
		return ErrBadSignature
	}
	return nil
}

// ReplayKey is the key a ReplayGuard remembers for a body: the hex SHA-256
// of its raw bytes. OneRoute's webhooks carry no id or timestamp, so the
// body itself is the identity.
func ReplayKey(rawBody []byte) string {
	sum := sha256.Sum256(rawBody)
	return hex.EncodeToString(sum[:])
}

// ReplayGuard remembers the webhooks already received. Implement it on
// Redis (SET key NX EX ttl, DEL key) to share it between processes;
// MemoryReplayGuard is the in-process twin.
type ReplayGuard interface {
	// Claim records key and reports whether it is new; false means it was
	// claimed before and not released.
	Claim(ctx context.Context, key string) (bool, error)
	// Release forgets key, so that a delivery whose processing failed is
	// accepted when OneRoute retries it.
	Release(ctx context.Context, key string) error
}

// WebhookVerifier accepts a webhook only if its signature matches, it parses
// as an event, and its body was not received before. A rejected webhook
// changes nothing: its body is not remembered.
type WebhookVerifier struct {
	// Secret is the account's OneRoute secret key. Required.
	Secret string
	// Guard remembers received bodies; nil disables replay protection.
	Guard ReplayGuard
	// MaxBodyBytes caps a body read by Handler; default 1 MiB.
	MaxBodyBytes int64
}

// Verify checks a raw body and its signature header and returns the event.
// Errors match ErrBadSignature, ErrNoWebhookSecret, ErrMalformedEvent or
// ErrReplayed; any other error comes from the Guard. On success the body
// is claimed: call Forget if processing it fails, so a retry is accepted.
func (v *WebhookVerifier) Verify(ctx context.Context, rawBody []byte, signature string) (Event, error) {
	if err := VerifySignature(v.Secret, rawBody, signature); err != nil {
		return nil, err
	}
	ev, err := ParseEvent(rawBody)
	if err != nil {
		return nil, err
	}
	if v.Guard != nil {
		fresh, err := v.Guard.Claim(ctx, ReplayKey(rawBody))
		if err != nil {
			return nil, fmt.Errorf("webhook replay guard: %w", err)
		}
		if !fresh {
			return nil, ErrReplayed
		}
	}
	return ev, nil
}

// Forget releases a body Verify accepted, so that OneRoute's retry of it is
// accepted again.
func (v *WebhookVerifier) Forget(ctx context.Context, rawBody []byte) error {
	if v.Guard == nil {
		return nil
	}
	return v.Guard.Release(ctx, ReplayKey(rawBody))
}

// Handler serves OneRoute's webhook POSTs: it verifies each one and calls fn
// with the event. It answers 200 when fn succeeds and also for a replay
// (acknowledged, fn not called), 401 for a bad signature, 400 for a
// malformed event, 413 for a body over MaxBodyBytes, and 500 when fn fails
// (the body is forgotten so OneRoute's retry is processed). Keep fn fast:
// enqueue work rather than doing it.
func (v *WebhookVerifier) Handler(fn func(context.Context, Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			webhookReply(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		limit := v.MaxBodyBytes
		if limit <= 0 {
			limit = 1 << 20
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				webhookReply(w, http.StatusRequestEntityTooLarge, "body too large")
				return
			}
			webhookReply(w, http.StatusBadRequest, "cannot read body")
			return
		}
		ev, err := v.Verify(r.Context(), body, r.Header.Get(SignatureHeader))
		switch {
		case err == nil:
		case errors.Is(err, ErrReplayed):
			webhookReply(w, http.StatusOK, "duplicate ignored")
			return
		case errors.Is(err, ErrBadSignature), errors.Is(err, ErrNoWebhookSecret):
			webhookReply(w, http.StatusUnauthorized, "invalid signature")
			return
		case errors.Is(err, ErrMalformedEvent):
			webhookReply(w, http.StatusBadRequest, "malformed event")
			return
		default:
			webhookReply(w, http.StatusServiceUnavailable, "try again")
			return
		}
		if err := fn(r.Context(), ev); err != nil {
			// Forget with a fresh context: the request's may be done.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
			defer cancel()
			v.Forget(fctx, body) //nolint:errcheck // best effort: if it fails, the retry is a replay and the next sweep settles the event
			webhookReply(w, http.StatusInternalServerError, "processing failed")
			return
		}
		webhookReply(w, http.StatusOK, "ok")
	})
}

func webhookReply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"success": status == http.StatusOK, "message": msg})
	w.Write(b)
}

// MemoryReplayGuard is an in-process ReplayGuard. The zero value is ready:
// it remembers up to Max bodies for TTL each, forgetting the oldest first.
type MemoryReplayGuard struct {
	// TTL is how long a key is remembered; default 24h.
	TTL time.Duration
	// Max bounds the keys remembered; default 100000.
	Max int
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu    sync.Mutex
	seen  map[string]time.Time // key → expiry
	order []claim              // claims in order, for eviction
}

type claim struct {
	key string
	exp time.Time
}

var _ ReplayGuard = (*MemoryReplayGuard)(nil)

// Claim records key and reports whether it is new.
func (g *MemoryReplayGuard) Claim(_ context.Context, key string) (bool, error) {
	now := time.Now()
	if g.Now != nil {
		now = g.Now()
	}
	ttl, limit := g.TTL, g.Max
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	if limit <= 0 {
		limit = 100000
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]time.Time{}
	}
	if exp, ok := g.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	// Forget expired claims and, above the limit, the oldest ones. A claim
	// released or renewed since leaves a stale entry that only pops.
	for len(g.order) > 0 {
		c := g.order[0]
		if now.Before(c.exp) && len(g.seen) < limit {
			break
		}
		if exp, ok := g.seen[c.key]; ok && exp.Equal(c.exp) {
			delete(g.seen, c.key)
		}
		g.order = g.order[1:]
	}
	exp := now.Add(ttl)
	g.seen[key] = exp
	g.order = append(g.order, claim{key, exp})
	return true, nil
}

// Release forgets key.
func (g *MemoryReplayGuard) Release(_ context.Context, key string) error {
	g.mu.Lock()
	delete(g.seen, key)
	g.mu.Unlock()
	return nil
}
