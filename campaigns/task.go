package campaigns

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
)

// Task types, namespaced by channel. They are stored in Redis with every
// task: never rename them.
const (
	TypeSMSSend          = "sms:send"
	TypeWhatsAppTemplate = "whatsapp:template"
	TypeEmailSend        = "email:send"
	TypeDLRPoll          = "dlr:poll"
)

// Queues, one per channel so that weights can favour one over another and a
// slow provider does not hold up the others.
const (
	QueueSMS      = "sms"
	QueueWhatsApp = "whatsapp"
	QueueEmail    = "email"
	QueueDLR      = "dlr"
)

// TaskType is the send task type of a channel.
func (c Channel) TaskType() string {
	switch c {
	case ChannelWhatsAppTemplate:
		return TypeWhatsAppTemplate
	case ChannelEmail:
		return TypeEmailSend
	default:
		return TypeSMSSend
	}
}

// Queue is the queue a channel's send tasks go to.
func (c Channel) Queue() string {
	switch c {
	case ChannelWhatsAppTemplate:
		return QueueWhatsApp
	case ChannelEmail:
		return QueueEmail
	default:
		return QueueSMS
	}
}

// TracksDLR reports whether accepted messages are followed to delivery.
func (c Channel) TracksDLR() bool { return c == ChannelSMS }

// Item is one recipient in a batch.
type Item struct {
	// Row is the recipient's record number in the source: its ledger id.
	Row int `json:"r"`
	// To is the normalised address: E.164 phone or lower-case email.
	To string `json:"to"`
	// Content is set when the campaign is personalised; otherwise the
	// batch's Shared content applies.
	Content *Content `json:"c,omitempty"`
}

// Batch is the payload of a send task: up to batch_size recipients of one
// campaign, with everything a worker needs to send them (never the API key).
type Batch struct {
	Campaign string `json:"cid"`
	Seq      int    `json:"seq"`
	// Attempt is 0 for a dispatched batch and counts up for each follow-up
	// task that carries a batch's unfinished part.
	Attempt int `json:"att,omitempty"`
	// Failures counts temporary failures so far (bounded by MaxAttempts).
	Failures  int     `json:"fail,omitempty"`
	Channel   Channel `json:"ch"`
	ChannelID string  `json:"chid,omitempty"`
	From      string  `json:"from,omitempty"`
	Template  string  `json:"tpl,omitempty"`
	Language  string  `json:"lang,omitempty"`
	// Shared is the content every item gets when not personalised.
	Shared      *Content `json:"sh,omitempty"`
	Items       []Item   `json:"items"`
	Rate        *Rate    `json:"rate,omitempty"`
	AtLeastOnce bool     `json:"alo,omitempty"`
	// ExpiresAt is the campaign deadline in unix seconds (0: none).
	ExpiresAt int64 `json:"exp,omitempty"`
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
	case ChannelWhatsAppTemplate:
		return "whatsapp:" + b.From
	case ChannelEmail:
		return "email:" + b.ChannelID
	default:
		return "sms:" + b.ChannelID
	}
}

// TaskMaxRetry is asynq's retry budget for fanout's tasks. It is large on
// purpose: the ledger, not asynq, bounds provider failures (the workers'
// MaxAttempts), and crashes or lease expiries must not exhaust a task and
// strand its recipients.
const TaskMaxRetry = 100

// Key is a short name of the batch within its campaign: "b12" for a
// dispatched batch, "b12r1-<hash>" for a follow-up, where the hash covers
// its rows so that two follow-ups with different rows never share an id.
func (b *Batch) Key() string {
	if b.Attempt > 0 {
		h := fnv.New32a()
		var buf [8]byte
		for _, it := range b.Items {
			binary.LittleEndian.PutUint64(buf[:], uint64(it.Row))
			h.Write(buf[:])
		}
		return fmt.Sprintf("b%dr%d-%08x", b.Seq, b.Attempt, h.Sum32())
	}
	return fmt.Sprintf("b%d", b.Seq)
}

// TaskID is the deterministic asynq task id of a batch: dispatching the same
// campaign twice enqueues nothing twice.
func (b *Batch) TaskID() string {
	return b.Campaign + ":" + b.Key()
}

// DLRItem is one accepted SMS whose delivery report is awaited.
type DLRItem struct {
	Row int    `json:"r"`
	ID  string `json:"id"`
}

// DLRPoll is the payload of a dlr:poll task.
type DLRPoll struct {
	Campaign string `json:"cid"`
	// Key names the send task the messages came from, e.g. "b12r1".
	Key     string    `json:"key"`
	Attempt int       `json:"att"`
	Since   int64     `json:"since"` // unix seconds of the first poll's scheduling
	Items   []DLRItem `json:"items"`
}

// TaskID is the deterministic id of a DLR poll round.
func (p *DLRPoll) TaskID() string {
	return fmt.Sprintf("%s:dlr:%s:%d", p.Campaign, p.Key, p.Attempt)
}

// Encode marshals a payload.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("campaigns: encode %T: %v", v, err)) // only plain structs are encoded
	}
	return b
}

// Decode unmarshals a task payload.
func Decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}
