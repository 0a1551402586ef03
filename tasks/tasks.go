// Package tasks owns fanout's asynq wire contract: every task type, queue,
// payload and task id, and the only code that builds asynq tasks. Task
// types, queue names and payload fields are stored in Redis with every
// task: never rename them.
//
// A producer builds a task and enqueues it in one call; a task id that is
// already taken means the task was enqueued before, which is success:
//
//	err := tasks.Enqueue(ctx, client, tasks.Send(batch, tasks.Options{Timeout: 5 * time.Minute}))
//
// A handler decodes its payload with Decode, and CampaignOf reads the
// campaign back from any task id.
package tasks

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
)

// Task types, namespaced by what they do.
const (
	TypeSMSSend          = "sms:send"
	TypeWhatsAppTemplate = "whatsapp:template"
	TypeEmailSend        = "email:send"
	// TypeWhatsAppSession sends a whatsapp_session batch.
	TypeWhatsAppSession = "whatsapp:session"
	// TypeWhatsAppCampaign sends a whatsapp_campaign batch through
	// OneRoute's campaign endpoint.
	TypeWhatsAppCampaign = "whatsapp:campaign"
	// TypeDLRPoll reads delivery reports one message at a time. Workers no
	// longer enqueue it; they still run the ones queued before dlr:sweep.
	TypeDLRPoll = "dlr:poll"
	// TypeDLRSweep reads a campaign's delivery reports in bulk from its
	// channel's message list; one per campaign at a time.
	TypeDLRSweep = "dlr:sweep"
	// TypeExpand is a detached expansion: its handler runs the dispatcher
	// inside a worker, from the campaign's checkpoint, on the file
	// `fanout dispatch --detach` uploaded.
	TypeExpand = "campaign:expand"
	// TypePushSend sends a push batch: one Embed push notification per
	// recipient.
	TypePushSend = "push:send"
)

// Queues, one per channel so that weights can favour one over another and a
// slow provider does not hold up the others.
const (
	QueueSMS      = "sms"
	QueueWhatsApp = "whatsapp"
	QueueEmail    = "email"
	QueueDLR      = "dlr"
)

// MaxRetry is asynq's retry budget for fanout's send and poll tasks. It is
// large on purpose: the ledger, not asynq, bounds provider failures (the
// workers' MaxAttempts), and crashes or lease expiries must not exhaust a
// task and strand its recipients.
const MaxRetry = 100

// SendType is the send task type of a channel.
func SendType(c campaigns.Channel) string {
	switch c {
	case campaigns.ChannelWhatsAppTemplate:
		return TypeWhatsAppTemplate
	case campaigns.ChannelWhatsAppSession:
		return TypeWhatsAppSession
	case campaigns.ChannelWhatsAppCampaign:
		return TypeWhatsAppCampaign
	case campaigns.ChannelEmail:
		return TypeEmailSend
	case campaigns.ChannelPush:
		return TypePushSend
	default:
		return TypeSMSSend
	}
}

// Queue is the queue a channel's tasks go to.
func Queue(c campaigns.Channel) string {
	switch c {
	case campaigns.ChannelWhatsAppTemplate, campaigns.ChannelWhatsAppSession, campaigns.ChannelWhatsAppCampaign:
		return QueueWhatsApp
	case campaigns.ChannelEmail, campaigns.ChannelPush:
		// Push shares the email queue and its weight.
		return QueueEmail
	default:
		return QueueSMS
	}
}

// BatchKey is a short name of a batch within its campaign: "b12" for a
// dispatched batch, "b12r1-<hash>" for a follow-up, where the hash covers
// its rows so that two follow-ups with different rows never share an id.
// A batch of retry round n (fanout retry-failed) is "b12xn" (and
// "b12xnr1-<hash>" for its follow-ups), so it never takes the id of a
// batch of the first run or of another round.
func BatchKey(b *campaigns.Batch) string {
	base := fmt.Sprintf("b%d", b.Seq)
	if b.Retry > 0 {
		base += fmt.Sprintf("x%d", b.Retry)
	}
	if b.Attempt > 0 {
		h := fnv.New32a()
		var buf [8]byte
		for _, it := range b.Items {
			binary.LittleEndian.PutUint64(buf[:], uint64(it.Row))
			h.Write(buf[:])
		}
		return fmt.Sprintf("%sr%d-%08x", base, b.Attempt, h.Sum32())
	}
	return base
}

// BatchID is the deterministic task id of a batch: dispatching the same
// campaign twice enqueues nothing twice.
func BatchID(b *campaigns.Batch) string { return b.Campaign + ":" + BatchKey(b) }

// DLRItem is one accepted SMS whose delivery report is awaited.
type DLRItem struct {
	Row int    `json:"r"`
	ID  string `json:"id"`
}

// DLRPoll is the payload of a dlr:poll task.
type DLRPoll struct {
	Campaign string `json:"cid"`
	// Key names the send attempt the messages came from, e.g. "b12r1-…".
	Key     string    `json:"key"`
	Attempt int       `json:"att"`
	Since   int64     `json:"since"` // unix seconds of the first poll's scheduling
	Items   []DLRItem `json:"items"`
}

// ID is the deterministic task id of a DLR poll round.
func (p *DLRPoll) ID() string { return fmt.Sprintf("%s:dlr:%s:%d", p.Campaign, p.Key, p.Attempt) }

// DLRSweep is the payload of a dlr:sweep task. It never changes: the sweep
// keeps what it learns between passes in the campaign's sweep memory
// (storage.Sweep), and comes back as a retry of the same task.
type DLRSweep struct {
	Campaign  string `json:"cid"`
	ChannelID string `json:"chid"`
	// Channel is the campaign's channel: empty or "sms" sweeps SMS
	// delivery reports, "whatsapp_template" and "email" read statuses from
	// the Logs API (worker/logsweep.go).
	Channel string `json:"ch,omitempty"`
}

// ID is the task id of a campaign's sweep: one per campaign, so enqueuing
// it while one is scheduled, running or waiting to run again is a no-op.
func (p DLRSweep) ID() string { return p.Campaign + ":dlr:sweep" }

// Expand is the payload of a campaign:expand task. Gen counts the
// continuations of one expansion: each task runs at most its slice, then
// hands over to the next generation.
type Expand struct {
	Campaign string `json:"cid"`
	Gen      int    `json:"gen"`
}

// ID is the deterministic task id of an expansion generation.
func (p Expand) ID() string { return p.Campaign + ":expand:" + strconv.Itoa(p.Gen) }

// CampaignOf returns the campaign of a fanout task id: every task id starts
// with "<campaign id>:" and campaign ids hold no ':'.
func CampaignOf(taskID string) string {
	c, _, _ := strings.Cut(taskID, ":")
	return c
}

// Options are the asynq settings of one task.
type Options struct {
	// Timeout bounds one run of the task; 0 keeps asynq's default.
	Timeout time.Duration
	// Delay holds the task back; 0 runs it as soon as a worker is free.
	Delay time.Duration
	// MaxRetry overrides MaxRetry (expansions use the workers' attempts).
	MaxRetry int
}

func (o Options) asynq(id, queue string) []asynq.Option {
	retry := o.MaxRetry
	if retry <= 0 {
		retry = MaxRetry
	}
	opts := []asynq.Option{asynq.TaskID(id), asynq.Queue(queue), asynq.MaxRetry(retry)}
	if o.Timeout > 0 {
		opts = append(opts, asynq.Timeout(o.Timeout))
	}
	if o.Delay > 0 {
		opts = append(opts, asynq.ProcessIn(o.Delay))
	}
	return opts
}

// Task is an asynq task with its id, ready to enqueue.
type Task struct {
	ID string
	*asynq.Task
}

// Send builds the send task of a batch (dispatched or a follow-up).
func Send(b *campaigns.Batch, o Options) Task {
	id := BatchID(b)
	return Task{id, asynq.NewTask(SendType(b.Channel), Encode(b), o.asynq(id, Queue(b.Channel))...)}
}

// Poll builds a dlr:poll task.
func Poll(p *DLRPoll, o Options) Task {
	return Task{p.ID(), asynq.NewTask(TypeDLRPoll, Encode(p), o.asynq(p.ID(), QueueDLR)...)}
}

// Sweep builds a dlr:sweep task.
func Sweep(p DLRSweep, o Options) Task {
	return Task{p.ID(), asynq.NewTask(TypeDLRSweep, Encode(p), o.asynq(p.ID(), QueueDLR)...)}
}

// NewExpand builds a campaign:expand task on the campaign channel's queue.
func NewExpand(p Expand, ch campaigns.Channel, o Options) Task {
	return Task{p.ID(), asynq.NewTask(TypeExpand, Encode(p), o.asynq(p.ID(), Queue(ch))...)}
}

// Enqueuer is what producers need of *asynq.Client.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

var _ Enqueuer = (*asynq.Client)(nil)

// Enqueue enqueues a task. A task id already taken means this task was
// enqueued before (ids are deterministic), so it is success.
func Enqueue(ctx context.Context, enq Enqueuer, t Task) error {
	if _, err := enq.EnqueueContext(ctx, t.Task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue %s: %w", t.ID, err)
	}
	return nil
}

// Encode marshals a payload.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("tasks: encode %T: %v", v, err)) // only plain structs are encoded
	}
	return b
}

// Decode unmarshals a task payload. A send batch in the usual shape is
// read without reflection, to the same value (see decodeBatch).
func Decode(data []byte, v any) error {
	if decodeFast(data, v) {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// TypeNotify posts a campaign's completion notice to its notify_url.
const TypeNotify = "campaign:notify"

// Notify is the payload of a campaign:notify task. Retries is the
// campaign's retry rounds (fanout retry-failed) when it completed, so each
// completion is notified once.
type Notify struct {
	Campaign string `json:"cid"`
	Retries  int    `json:"retries"`
}

// ID is the task id of one completion's notice: <cid>:notify:<retries>.
func (p Notify) ID() string { return p.Campaign + ":notify:" + strconv.Itoa(p.Retries) }

// NewNotify builds a campaign:notify task on the dlr queue (housekeeping,
// low weight); asynq retries it with backoff until the URL answers 2xx.
func NewNotify(p Notify, o Options) Task {
	return Task{p.ID(), asynq.NewTask(TypeNotify, Encode(p), o.asynq(p.ID(), QueueDLR)...)}
}
