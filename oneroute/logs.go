package oneroute

import (
	"context"
	"net/url"
	"time"
)

// LogFilter selects log rows; empty fields do not filter.
type LogFilter struct {
	// CampaignID is the id SendCampaign returned.
	CampaignID string
	// Identifier is a TemplateMessage.Identifier.
	Identifier string
	// Medium is e.g. "WHATSAPP".
	Medium string
	// Status is "pending", "sent", "delivered", "read" or "failed".
	Status string
	// Before is a log row id: only rows older than it are listed, newest
	// first (a cursor that new rows do not shift). Guessed; page numbers
	// work without it.
	Before string
}

// LogEntry is one message in the logs.
type LogEntry struct {
	// ID is the log row id.
	ID string `json:"id"`
	// CampaignID is the campaign, for campaign messages.
	CampaignID *string `json:"campaign_id"`
	// Identifier is the caller's message id.
	Identifier *string `json:"identifier"`
	// Medium is e.g. "WHATSAPP".
	Medium string `json:"medium"`
	// From and To are the numbers, without '+'.
	From string `json:"from"`
	To   string `json:"to"`
	// Template is the template name.
	Template string `json:"template"`
	// Status is "pending", "sent", "delivered", "read" or "failed".
	Status string `json:"status"`
	// Response is the WhatsApp message id, or the failure reason.
	Response *string `json:"response"`
	// CreatedAt and UpdatedAt are OneRoute's timestamps.
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Final reports whether the row's status will change no more ("read" can
// still follow "delivered", so delivered counts as final only for
// deciding that a message was not lost).
func (e LogEntry) Final() bool {
	return e.Status == "delivered" || e.Status == "read" || e.Status == "failed"
}

// Log statuses, the values of LogEntry.Status.
const (
	LogPending   = "pending"
	LogSent      = "sent"
	LogDelivered = "delivered"
	LogRead      = "read"
	LogFailed    = "failed"
)

// FetchLogs lists message logs, by campaign id or by message identifier,
// one page at a time (GET /api/public/logs). Meta is nil when OneRoute sends
// none.
func (c *Client) FetchLogs(ctx context.Context, f LogFilter, p Page) ([]LogEntry, *Meta, error) {
	q := url.Values{}
	for k, v := range map[string]string{"campaign_id": f.CampaignID, "identifier": f.Identifier, "medium": f.Medium, "status": f.Status, "before": f.Before} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out []LogEntry
	meta, err := c.send(ctx, call{op: "fetch logs", method: "GET", path: "/api/public/logs", query: p.values(q), out: &out})
	return out, meta, err
}
