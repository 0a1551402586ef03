package worker

import (
	"context"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// SMSSender sends SMS; *oneroute.Client implements it.
type SMSSender interface {
	SendSMS(ctx context.Context, channelID string, r oneroute.SMSRequest) ([]oneroute.Result, error)
}

// TemplateSender sends WhatsApp templates.
type TemplateSender interface {
	SendTemplate(ctx context.Context, r oneroute.TemplateRequest) ([]oneroute.Result, error)
}

// EmailSender sends email.
type EmailSender interface {
	SendEmail(ctx context.Context, channelID string, r oneroute.EmailRequest) ([]oneroute.Result, error)
}

// DLRReader reads SMS delivery reports and lists a channel's messages to a
// number (for reconciliation).
type DLRReader interface {
	GetSMSDLR(ctx context.Context, messageID string) (oneroute.DLR, error)
	FetchSMSMessagesTo(ctx context.Context, channelID, to string, p oneroute.Page) ([]oneroute.SMSMessage, *oneroute.Meta, error)
}

// LogReader lists message logs one page at a time (OneRoute's Fetch Logs),
// for the WhatsApp and email statuses no webhook brought.
type LogReader interface {
	FetchLogs(ctx context.Context, f oneroute.LogFilter, p oneroute.Page) ([]oneroute.LogEntry, *oneroute.Meta, error)
}

// Provider is everything the handlers need from OneRoute.
type Provider interface {
	SMSSender
	TemplateSender
	EmailSender
	DLRReader
	SMSLister
	LogReader
}

var _ Provider = (*oneroute.Client)(nil)

// Enqueuer schedules follow-up tasks (DLR polls, retries of a batch's
// failed part).
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Deps are the handlers' collaborators.
type Deps struct {
	// Store holds the campaigns: their state, counters and send ledger.
	Store *storage.Store
	// Provider is OneRoute; *oneroute.Client implements it.
	Provider Provider
	// Enqueuer schedules follow-up tasks; *asynq.Client implements it.
	Enqueuer Enqueuer
	// Limiter paces sends per sender; nil means no limit.
	Limiter ratelimit.Limiter
	// Logger is the base of the per-task loggers handlers get from their
	// context, and of asynq's own logs.
	Logger zerolog.Logger
	// Handlers are extra task handlers to register by task type (for
	// example the dispatcher's detached expansion).
	Handlers map[string]asynq.Handler
	// NotifyClient posts completion notices to notify_url; default a
	// client with a 10s timeout.
	NotifyClient *http.Client
}

// Options tunes handlers and the server. A zero field takes its default;
// the defaults of the settings fanout's configuration has are config's
// (config.DefaultConcurrency and the like), so a worker built from a zero
// Options behaves as one built from config.Defaults().
type Options struct {
	// Concurrency is how many tasks run at once; default
	// config.DefaultConcurrency (50).
	Concurrency int
	// Queues weights the queues; default config.DefaultQueues() (sms=6,
	// whatsapp=6, email=3, dlr=2).
	Queues map[string]int
	// ShutdownTimeout is how long Stop waits for running tasks; must exceed
	// the OneRoute request timeout. Default RequestTimeout +
	// config.ShutdownMargin (25s).
	ShutdownTimeout time.Duration
	// RequestTimeout is the OneRoute client's timeout: a claim older than
	// this plus a margin can no longer be in flight. Default
	// config.DefaultOneRouteTimeout (15s).
	RequestTimeout time.Duration
	// MaxAttempts caps tries of a temporary failure; default
	// config.DefaultMaxAttempts (8).
	MaxAttempts int
	// TaskTimeout bounds follow-up tasks; default config.DefaultTaskTimeout
	// (5m).
	TaskTimeout time.Duration
	// RateLimit is the default per-sender limit; each field of a campaign's
	// rate wins over it. Zero: no limit.
	RateLimit campaigns.Rate
	// MaxWait is the longest a handler waits for the limiter before
	// rescheduling its task instead; default 2s.
	MaxWait time.Duration
	// DLRInterval is the first wait before polling delivery reports;
	// default config.DefaultDLRInterval (5s). Later polls back off up to 10
	// minutes.
	DLRInterval time.Duration
	// DLRMaxAge is how long delivery reports are awaited after a message
	// was accepted (and at most after the campaign's last send) before it
	// counts dlr_expired; default config.DefaultDLRMaxAge (24h). The
	// storage.Store's IndexTTL must exceed it.
	DLRMaxAge time.Duration
	// SweepPages caps the list pages one part of a delivery-report sweep
	// reads (see SweepHandler); default 100.
	SweepPages int
	// SweepPageSize is page[size] of the sweep's list requests; default
	// oneroute.MaxPageSize (1000).
	SweepPageSize int
	// SweepLookups caps the per-message delivery-report reads of one sweep
	// pass; default 1000.
	SweepLookups int
	// PollInterval is how often idle workers look for tasks and due
	// retries; default config.DefaultPollInterval (200ms).
	PollInterval time.Duration
	// StatusFallbackAfter is how long after a WhatsApp or email message was
	// accepted its status may come by webhook before the log sweep reads it
	// from the Logs API (see LogSweep); default
	// config.DefaultStatusFallbackAfter (2m).
	StatusFallbackAfter time.Duration
	// LeaseProbe is how often the worker probes Redis to notice the end of
	// an outage and requeue, at once, the tasks whose asynq lease ran out
	// during it (see leases.go); default 1s, negative: never (asynq's own
	// recoverer then brings them back 60 to 90 s later).
	LeaseProbe time.Duration
	// PerCallConcurrency bounds concurrent calls within one batch of
	// personalised messages; default 16.
	PerCallConcurrency int
	// RetryBase is the first retry delay of a temporary failure; default 2s.
	RetryBase time.Duration
	// InFlight bounds the worker's per-message provider requests in flight,
	// across all its tasks; default config.DefaultInFlight (512). Batched
	// calls (WhatsApp templates, email) are one request per task and are
	// bounded by Concurrency.
	InFlight int
	// NotifySecret keys the X-Fanout-Signature of completion notices
	// (config FANOUT_NOTIFY_SECRET); default none: notices go unsigned.
	NotifySecret string
	// WindowRecheck caps how far ahead one wait for a send window (or
	// schedule.start_at) schedules its task, so that a campaign's pause,
	// cancel or expiry is seen while it waits; default 1h.
	WindowRecheck time.Duration
	// NowFunc is the clock send windows and start_at are read by; default
	// time.Now. Tests set a fake clock.
	NowFunc func() time.Time
	// SessionMargin is how much of a WhatsApp session window must be left
	// for a whatsapp_session recipient to get the session message; default
	// config.DefaultSessionMargin (30m).
	SessionMargin time.Duration
}

func (o Options) withDefaults() Options {
	if o.SessionMargin <= 0 {
		o.SessionMargin = config.DefaultSessionMargin
	}
	if o.Concurrency <= 0 {
		o.Concurrency = config.DefaultConcurrency
	}
	if len(o.Queues) == 0 {
		o.Queues = config.DefaultQueues()
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = config.DefaultOneRouteTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = o.RequestTimeout + config.ShutdownMargin
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = config.DefaultMaxAttempts
	}
	if o.TaskTimeout <= 0 {
		o.TaskTimeout = config.DefaultTaskTimeout
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 2 * time.Second
	}
	if o.DLRInterval <= 0 {
		o.DLRInterval = config.DefaultDLRInterval
	}
	if o.DLRMaxAge <= 0 {
		o.DLRMaxAge = config.DefaultDLRMaxAge
	}
	if o.SweepPages <= 0 {
		o.SweepPages = 100
	}
	if o.SweepPageSize <= 0 {
		o.SweepPageSize = oneroute.MaxPageSize
	}
	if o.SweepLookups <= 0 {
		o.SweepLookups = 1000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = config.DefaultPollInterval
	}
	if o.StatusFallbackAfter <= 0 {
		o.StatusFallbackAfter = config.DefaultStatusFallbackAfter
	}
	if o.LeaseProbe == 0 {
		o.LeaseProbe = time.Second
	}
	if o.PerCallConcurrency <= 0 {
		o.PerCallConcurrency = 16
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 2 * time.Second
	}
	if o.InFlight <= 0 {
		o.InFlight = config.DefaultInFlight
	}
	if o.WindowRecheck <= 0 {
		o.WindowRecheck = time.Hour
	}
	if o.NowFunc == nil {
		o.NowFunc = time.Now
	}
	return o
}

// staleAfter is how old a claim must be before no attempt can still be
// sending it: the request timeout plus a margin for clock skew.
func (o Options) staleAfter() time.Duration { return o.RequestTimeout + 5*time.Second }

// NewMux registers every handler.
func NewMux(d Deps, o Options) *asynq.ServeMux {
	return newMux(d, o.withDefaults(), nil)
}

// newMux registers every handler; closing drain tells them the worker is
// stopping.
func newMux(d Deps, o Options, drain <-chan struct{}) *asynq.ServeMux {
	b := newBatchSender(d, o, drain)
	mux := asynq.NewServeMux()
	mux.Use(LogMiddleware(d.Logger))
	mux.Handle(tasks.TypeSMSSend, &SMSHandler{b})
	mux.Handle(tasks.TypeWhatsAppTemplate, &WhatsAppHandler{b})
	mux.Handle(tasks.TypeEmailSend, &EmailHandler{b})
	mux.Handle(tasks.TypeWhatsAppSession, &SessionHandler{b})
	mux.Handle(tasks.TypeWhatsAppCampaign, &WhatsAppCampaignHandler{b})
	mux.Handle(tasks.TypePushSend, &PushHandler{b})
	mux.Handle(tasks.TypeDLRPoll, &DLRHandler{deps: d, opts: o}) // queued before dlr:sweep
	mux.Handle(tasks.TypeDLRSweep, &SweepHandler{deps: d, opts: o})
	nc := d.NotifyClient
	if nc == nil {
		nc = &http.Client{Timeout: 10 * time.Second}
	}
	mux.Handle(tasks.TypeNotify, &NotifyHandler{store: d.Store, client: nc, secret: []byte(o.NotifySecret)})
	for typ, h := range d.Handlers {
		mux.Handle(typ, h)
	}
	return mux
}
