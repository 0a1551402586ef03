package oneroute

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Channel media, as FetchChannels takes them.
const (
	MediumWhatsApp = "whatsapp"
	MediumSMS      = "sms"
	MediumEmail    = "email"
)

// Channel is a OneRoute channel (WhatsApp number, SMS sender, email account).
type Channel struct {
	// ID is the channel id the send methods take.
	ID string `json:"id"`
	// Phone is the business number of a WhatsApp channel (the From of its
	// sends).
	Phone *string `json:"phone"`
	// Identifier is the sender ID of an SMS channel.
	Identifier string `json:"identifier"`
	// Medium is "WHATSAPP", "SMS" or "EMAIL".
	Medium string `json:"medium"`
	// Credentials are provider details, e.g. the email address.
	Credentials map[string]any `json:"credentials,omitempty"`
	// Description is free text.
	Description string `json:"description"`
	// Name is the display name.
	Name string `json:"name"`
	// Type is e.g. "CUSTOM".
	Type string `json:"type"`
	// Provider names the upstream provider, when known.
	Provider *string `json:"provider"`
	// Country is an ISO code, e.g. "NG".
	Country string `json:"country"`
	// Env is "LIVE" or "TEST".
	Env string `json:"env"`
	// Status is "ACTIVE" or "INACTIVE".
	Status string `json:"status"`
	// WebhookURL is the channel's own webhook, if set.
	WebhookURL *string `json:"webhookUrl"`
	// CreatedAt and UpdatedAt are OneRoute's timestamps.
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// FetchChannels lists the account's channels of a medium: MediumWhatsApp,
// MediumSMS or MediumEmail (GET /api/public/channels/{medium}).
func (c *Client) FetchChannels(ctx context.Context, medium string) ([]Channel, error) {
	const op = "fetch channels"
	m := strings.ToLower(medium)
	if m != MediumWhatsApp && m != MediumSMS && m != MediumEmail {
		return nil, fmt.Errorf("oneroute %s: %w: medium %q is not whatsapp, sms or email", op, ErrInvalidRequest, medium)
	}
	var out []Channel
	_, err := c.send(ctx, call{op: op, method: "GET", path: "/api/public/channels/" + m, out: &out})
	return out, err
}

// FetchChannel reads one channel (GET /api/public/channel/{id}). An unknown
// id is an error matching ErrNotFound.
func (c *Client) FetchChannel(ctx context.Context, channelID string) (Channel, error) {
	const op = "fetch channel"
	var out Channel
	id, err := pathID(op, "channel id", channelID)
	if err != nil {
		return out, err
	}
	_, err = c.send(ctx, call{op: op, method: "GET", path: "/api/public/channel/" + id, out: &out})
	return out, err
}
