package campaigns

import "time"

// State is a campaign's lifecycle state.
type State string

// Campaign states. A campaign is dispatching while its recipients are being
// expanded (workers already send), running once expansion is done, sent
// once every recipient has a final send state while delivery reports of
// accepted SMS are still awaited, and completed when every recipient is
// final, delivery reports included. Paused and cancelled are an operator's
// (or a worker's, for a refused API key) doing.
const (
	StateDispatching State = "dispatching"
	StateRunning     State = "running"
	StateSent        State = "sent"
	StatePaused      State = "paused"
	StateCancelled   State = "cancelled"
	StateCompleted   State = "completed"
)

// Progress is a campaign's state and counters. JSON names are a contract with
// users' scripts: add fields, never rename.
type Progress struct {
	ID      string  `json:"id"`
	Name    string  `json:"name,omitempty"`
	Channel Channel `json:"channel,omitempty"`
	State   State   `json:"state"`
	Reason  string  `json:"reason,omitempty"`
	// Total is the number of valid recipients enqueued so far.
	Total int64 `json:"total"`
	// Sent counts recipients OneRoute accepted (delivered ones included).
	Sent        int64 `json:"sent"`
	Failed      int64 `json:"failed"`
	Delivered   int64 `json:"delivered"`
	Undelivered int64 `json:"undelivered"`
	// Read counts WhatsApp messages the customer read; they are counted in
	// Delivered as well (read is a subset of delivered).
	Read int64 `json:"read"`
	// DLRExpired counts accepted SMS whose delivery report never became final.
	DLRExpired int64 `json:"dlr_expired"`
	// Unknown counts recipients whose send had an ambiguous outcome that no
	// lookup could settle; they are never resent unless at_least_once is set.
	Unknown int64 `json:"unknown"`
	Skipped int64 `json:"skipped"`
	// Pending is Total less every final recipient.
	Pending int64 `json:"pending"`
	// Dispatcher counts: rows refused, duplicates and suppressed recipients.
	Invalid    int64 `json:"invalid"`
	Duplicates int64 `json:"duplicates"`
	Suppressed int64 `json:"suppressed"`
	Batches    int64 `json:"batches"`
	// OptedOut counts recipients a worker skipped at claim time because
	// their address opted out (a STOP reply, fanout suppress add) after the
	// campaign was dispatched. They are counted in Skipped (a final send
	// state) and in Suppressed too, which is the dispatcher's suppressed
	// plus OptedOut.
	OptedOut int64 `json:"opted_out"`
	// Dispatched is true once the whole recipient file has been expanded.
	Dispatched bool       `json:"dispatched"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// SentAt is when every recipient had a final send state (the state
	// became sent, or completed directly); absent before.
	SentAt *time.Time `json:"sent_at,omitempty"`
	// StartedAt is when the first outcome was recorded.
	StartedAt *time.Time `json:"started_at,omitempty"`
	// Rate is recipients settled per second from StartedAt to the last
	// settled recipient (or now, while some are pending), time spent paused
	// left out.
	Rate float64 `json:"rate_per_s"`
	// ETA estimates the seconds until every enqueued recipient is settled, at
	// Rate bounded by the campaign's per-second rate limit; absent when
	// unknown. status --watch puts its estimate from the recent rate here.
	ETA *float64 `json:"eta_s,omitempty"`
	// AwaitingDLR counts accepted SMS without a final delivery report yet.
	AwaitingDLR int64 `json:"awaiting_dlr"`
	// FailureReasons counts failed and unknown recipients by reason.
	FailureReasons map[string]int64 `json:"failure_reasons,omitempty"`
	// RedisLossAt is the last time Redis was seen to restart or fail over
	// while the campaign was not final: the writes of the seconds before
	// may have been lost. For a while after it, recipients were looked up
	// at OneRoute before being sent (and became unknown where the channel
	// has no lookup), so none was sent twice. Absent when never.
	RedisLossAt *time.Time `json:"redis_loss_at,omitempty"`
	// RedisLosses counts those restarts and failovers.
	RedisLosses int64 `json:"redis_losses,omitempty"`
	// Retries counts the retry rounds of fanout retry-failed that sent
	// failed recipients again.
	Retries int64 `json:"retries,omitempty"`
	// NextOpening is when sending resumes, while the campaign's recipients
	// wait for schedule.start_at or schedule.window; absent when they may
	// be sent now.
	NextOpening *time.Time `json:"next_opening,omitempty"`
	// SessionSent and TemplateSent count the recipients of a
	// whatsapp_session campaign OneRoute accepted by each route: a session
	// message, or the fallback template (a window closed, or closed after
	// all when the session message was sent).
	SessionSent  int64 `json:"session_sent"`
	TemplateSent int64 `json:"template_sent"`
	// SavedEstimate is SessionSent times the spec's template_price: what
	// the session messages saved over sending everyone the template.
	// Absent without a template_price.
	SavedEstimate float64 `json:"saved_estimate,omitempty"`
	// OneRouteCampaignIDs are the campaign_id values OneRoute returned for
	// a whatsapp_campaign's requests (one per batch request), oldest first;
	// absent for other channels.
	OneRouteCampaignIDs []string `json:"oneroute_campaign_ids,omitempty"`
}

// Done is the number of recipients in a final send state.
func (p Progress) Done() int64 { return p.Sent + p.Failed + p.Unknown + p.Skipped }

// Final reports whether the campaign will change no more.
func (p Progress) Final() bool { return p.State == StateCompleted || p.State == StateCancelled }

// SendingOver reports whether nothing is left to send: the campaign is sent
// (delivery reports may still be awaited), completed or cancelled.
func (p Progress) SendingOver() bool { return p.State == StateSent || p.Final() }

// Outcome is a ledger transition for one row, as the storage package
// records it.
type Outcome struct {
	Row int
	// State is one of the storage package's Ledger* bytes, or 0 to release
	// a claim (the recipient goes back to pending and will be sent again).
	State byte
	// Value is the provider message id (accepted, delivered, ...) or the
	// reason (failed, unknown, skipped).
	Value string
}
