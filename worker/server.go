package worker

import (
	"context"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Server is a long-running asynq server with fanout's handlers, error
// policy and logging.
type Server struct {
	srv  *asynq.Server
	mux  *asynq.ServeMux
	log  zerolog.Logger
	once sync.Once
	mu   sync.Mutex
	on   bool
}

// NewServer builds a worker server on rdb. It does not start it.
func NewServer(rdb redis.UniversalClient, d Deps, o Options) *Server {
	o = o.withDefaults()
	log := d.Logger
	cfg := asynq.Config{
		Concurrency:              o.Concurrency,
		Queues:                   o.Queues,
		ShutdownTimeout:          o.ShutdownTimeout,
		IsFailure:                IsFailure,
		RetryDelayFunc:           RetryDelay(o.RetryBase),
		TaskCheckInterval:        o.PollInterval,
		DelayedTaskCheckInterval: o.PollInterval,
		Logger:                   asynqLogger{log.With().Str("component", "asynq").Logger()},
		LogLevel:                 asynqLevel(log.GetLevel()),
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			ev := log.Warn()
			if IsFailure(err) && retried >= maxRetry {
				ev = log.Error().Bool("final", true)
			} else if !IsFailure(err) {
				ev = log.Debug()
			}
			ev.Err(err).Str("task", id).Str("type", t.Type()).Str("campaign", CampaignOf(id)).
				Int("retried", retried).Int("max_retry", maxRetry).Msg("task did not finish")
		}),
	}
	return &Server{srv: asynq.NewServerFromRedisClient(rdb, cfg), mux: NewMux(d, o), log: log}
}

// Run serves tasks until ctx is cancelled, then stops taking tasks and waits
// up to ShutdownTimeout for running ones.
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
	return nil
}

// Stop stops dequeuing and waits for running tasks; safe to call twice and
// before Start.
func (s *Server) Stop() {
	s.mu.Lock()
	on := s.on
	s.mu.Unlock()
	if !on {
		return
	}
	s.once.Do(func() {
		start := time.Now()
		s.srv.Stop()
		s.srv.Shutdown()
		s.log.Info().Dur("took", time.Since(start)).Msg("worker stopped")
	})
}
