package campaigns

// TracksDLR reports whether accepted messages are followed to delivery by
// SMS delivery reports (and reconciled by listing the channel's messages).
func (c Channel) TracksDLR() bool { return c == ChannelSMS }

// Tracked reports whether a campaign of the channel awaits its messages'
// delivery statuses, so that it completes only once each is final or
// expired: SMS delivery reports, WhatsApp template statuses (delivered,
// read, failed) and email statuses. WhatsApp and email statuses come from
// webhooks, or from the Logs API when none came in time.
func (c Channel) Tracked() bool {
	return c == ChannelSMS || c == ChannelWhatsAppTemplate || c == ChannelEmail || c == ChannelWhatsAppCampaign
}

// TrackedByLogs reports whether the channel's statuses are read from the
// Logs API (by message identifier) rather than from SMS delivery reports.
func (c Channel) TrackedByLogs() bool {
	return c == ChannelWhatsAppTemplate || c == ChannelEmail || c == ChannelWhatsAppCampaign
}

// Item is one recipient in a batch.
type Item struct {
	// Row is the recipient's record number in the source: its ledger id.
	Row int `json:"r"`
	// To is the normalised address: E.164 phone or lower-case email.
	To string `json:"to"`
	// Content is set when the campaign is personalised; otherwise the
	// batch's Shared content applies.
	Content *Content `json:"c,omitempty"`
	// TZ is the recipient's IANA time zone for the batch's Window, set
	// only when it differs from the window's own.
	TZ string `json:"tz,omitempty"`
}

// Batch is the payload of a send task: up to batch_size recipients of one
// campaign, with everything a worker needs to send them (never the API key).
type Batch struct {
	Campaign string `json:"cid"`
	Seq      int    `json:"seq"`
	// Attempt is 0 for a dispatched batch and counts up for each follow-up
	// task that carries a batch's unfinished part.
	Attempt int `json:"att,omitempty"`
	// Retry is 0 for a batch of the campaign's first run, and the
	// campaign's retry round (fanout retry-failed) for a batch that sends
	// failed recipients again.
	Retry int `json:"rty,omitempty"`
	// Failures counts temporary failures so far (bounded by MaxAttempts).
	Failures  int     `json:"fail,omitempty"`
	Channel   Channel `json:"ch"`
	ChannelID string  `json:"chid,omitempty"`
	WidgetID  string  `json:"wid,omitempty"` // a push campaign's live-chat widget
	From      string  `json:"from,omitempty"`
	Template  string  `json:"tpl,omitempty"`
	Language  string  `json:"lang,omitempty"`
	// Request is the most recipients one batched call of this batch
	// carries (0: the whole batch in one call). The dispatcher sets it when
	// it chose a task larger than a call (see Channel.Chunked).
	Request int `json:"rq,omitempty"`
	// Shared is the content every item gets when not personalised.
	Shared      *Content `json:"sh,omitempty"`
	Items       []Item   `json:"items"`
	Rate        *Rate    `json:"rate,omitempty"`
	AtLeastOnce bool     `json:"alo,omitempty"`
	// ExpiresAt is the campaign deadline in unix seconds (0: none).
	ExpiresAt int64 `json:"exp,omitempty"`
	// StartAt is the campaign's schedule.start_at in unix seconds (0:
	// none), and Window its schedule.window: a worker sends nothing before
	// either lets it (see OpensAt).
	StartAt int64   `json:"start,omitempty"`
	Window  *Window `json:"win,omitempty"`
	// MediaURL is a whatsapp_session message's media link.
	MediaURL string `json:"media,omitempty"`
	// HeaderType is the template header's type (image, document, video or
	// text) when the spec gives one; its value is in Content.Header.
	HeaderType string `json:"hdt,omitempty"`
}

// ContentOf returns the content for an item of the batch.
func (b *Batch) ContentOf(it Item) Content {
	if it.Content != nil {
		return *it.Content
	}
	if b.Shared != nil {
		return *b.Shared
	}
	return Content{}
}

// Sender is the key rate limits are shared by: the provider endpoint and the
// sending identity.
func (b *Batch) Sender() string {
	switch b.Channel {
	case ChannelWhatsAppTemplate, ChannelWhatsAppSession, ChannelWhatsAppCampaign:
		return "whatsapp:" + b.From
	case ChannelEmail:
		return "email:" + b.ChannelID
	case ChannelPush:
		return "push:" + b.WidgetID
	default:
		return "sms:" + b.ChannelID
	}
}
