package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// Server is a long-running asynq server with fanout's handlers, error
// policy and logging.
type Server struct {
	srv      *asynq.Server
	mux      *asynq.ServeMux
	log      zerolog.Logger
	opts     Options
	drain    chan struct{}
	running  atomic.Int64
	stopOnce sync.Once
	mu       sync.Mutex
	on       bool
	leases   *leaseWatch // nil when Options.LeaseProbe < 0
}

// NewServer builds a worker server on rdb. It does not start it.
func NewServer(rdb redis.UniversalClient, d Deps, o Options) *Server {
	o = o.withDefaults()
	s := &Server{log: d.Logger, opts: o, drain: make(chan struct{})}
	cfg := asynq.Config{
		Concurrency:              o.Concurrency,
		Queues:                   o.Queues,
		ShutdownTimeout:          o.ShutdownTimeout,
		IsFailure:                IsFailure,
		RetryDelayFunc:           RetryDelay(o.RetryBase),
		TaskCheckInterval:        o.PollInterval,
		DelayedTaskCheckInterval: o.PollInterval,
		Logger:                   asynqLogger{d.Logger.With().Str("component", "asynq").Logger()},
		LogLevel:                 asynqLevel(d.Logger.GetLevel()),
		ErrorHandler:             asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) { s.handleError(ctx, d.Store, t, err) }),
	}
	s.mux = newMux(d, o, s.drain)
	s.mux.Use(s.track)
	s.srv = asynq.NewServerFromRedisClient(rdb, cfg)
	if o.LeaseProbe > 0 {
		s.leases = newLeaseWatch(rdb, o.Queues, o.LeaseProbe, d.Logger.With().Str("component", "leases").Logger())
	}
	return s
}

// track counts running handlers, so Stop can wait for their records.
func (s *Server) track(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		s.running.Add(1)
		defer s.running.Add(-1)
		return next.ProcessTask(ctx, t)
	})
}

// handleError logs every failed run with its campaign, and settles the
// recipients of a task asynq gives up on (archives), so none is left
// pending forever: not yet sent ones fail with the reason, ones whose
// request started become unknown; delivery polls that give up count as
// dlr_expired.
func (s *Server) handleError(ctx context.Context, store *storage.Store, t *asynq.Task, err error) {
	id, _ := asynq.GetTaskID(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	final := IsFailure(err) && retried >= maxRetry
	ev := s.log.Warn()
	switch {
	case final:
		ev = s.log.Error().Bool("final", true)
	case !IsFailure(err):
		ev = s.log.Debug()
	}
	ev.Err(err).Str("task", id).Str("type", t.Type()).Str("campaign", tasks.CampaignOf(id)).
		Int("retried", retried).Int("max_retry", maxRetry).Msg("task did not finish")
	if !final || store == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var outs []campaigns.Outcome
	var campaign string
	mode := storage.ModeAbandon
	switch t.Type() {
	case tasks.TypeSMSSend, tasks.TypeWhatsAppTemplate, tasks.TypeEmailSend, tasks.TypeWhatsAppSession, tasks.TypeWhatsAppCampaign, tasks.TypePushSend:
		var b campaigns.Batch
		if tasks.Decode(t.Payload(), &b) != nil {
			return
		}
		campaign = b.Campaign
		reason := fmt.Sprintf("abandoned after %d task errors: %v", retried+1, err)
		for _, it := range b.Items {
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerFailed, Value: reason})
		}
		saveRetrySource(rctx, store, &b, outs) // for fanout retry-failed
	case tasks.TypeDLRPoll:
		var p tasks.DLRPoll
		if tasks.Decode(t.Payload(), &p) != nil {
			return
		}
		campaign, mode = p.Campaign, storage.ModeDLR
		for _, it := range p.Items {
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerDLRExpired, Value: it.ID})
		}
	default:
		return
	}
	n, rerr := store.Record(rctx, campaign, mode, "", outs)
	if rerr != nil {
		s.log.Error().Err(rerr).Str("task", id).Msg("settle recipients of an abandoned task")
		return
	}
	s.log.Error().Str("task", id).Str("campaign", campaign).Int("settled", n).Msg("task abandoned; its unsettled recipients are recorded failed or unknown")
}

// Run serves tasks until ctx is cancelled, then stops gracefully.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	s.Stop()
	return nil
}

// Start starts serving in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.srv.Start(s.mux); err != nil {
		return err
	}
	s.on = true
	if s.leases != nil {
		s.leases.start()
	}
	return nil
}

// Stop stops the worker gracefully and is safe to call twice and before
// Start. Handlers are told to start no new provider call and give back what
// they have not sent; asynq stops dequeuing and waits up to ShutdownTimeout;
// then Stop waits for the handlers themselves to return (up to the request
// timeout more), so every send they made is recorded before the caller
// closes Redis.
func (s *Server) Stop() {
	s.mu.Lock()
	on := s.on
	s.mu.Unlock()
	if !on {
		return
	}
	s.stopOnce.Do(func() {
		start := time.Now()
		close(s.drain)
		if s.leases != nil {
			s.leases.close()
		}
		s.srv.Stop()
		s.srv.Shutdown()
		deadline := time.Now().Add(s.opts.RequestTimeout + 10*time.Second)
		for s.running.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		s.log.Info().Dur("took", time.Since(start)).Int64("abandoned_handlers", s.running.Load()).Msg("worker stopped")
	})
}
