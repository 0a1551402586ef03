package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
	"github.com/fanoutdev/fanout/worker"
)

// configFlag adds --config to a flag set.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "read settings from this YAML `file` (the environment still wins)")
}

func loadConfig(e *env, file string) (config.Config, error) {
	cfg, err := config.Load(e.getenv, file)
	if err != nil {
		return cfg, &inputError{fmt.Errorf("configuration:\n%w", err)}
	}
	return cfg, nil
}

// newLogger builds the process logger: JSON, or console on a terminal.
func newLogger(w io.Writer, c config.Log) zerolog.Logger {
	level := strings.ToLower(c.Level)
	if level == "warning" {
		level = "warn"
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || c.Level == "" {
		lvl = zerolog.InfoLevel
	}
	format := strings.ToLower(c.Format)
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "console"
		}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func newOneRoute(c config.OneRoute) (*oneroute.Client, error) {
	return oneroute.New(oneroute.Options{BaseURL: c.BaseURL, APIKey: c.APIKey.Reveal(), Timeout: c.Timeout, UserAgent: "fanout/" + version})
}

// workerOptions maps configuration to worker options.
func workerOptions(cfg config.Config) worker.Options {
	return worker.Options{
		Concurrency:     cfg.Worker.Concurrency,
		InFlight:        cfg.Worker.InFlight,
		Queues:          cfg.Worker.Queues,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout,
		RequestTimeout:  cfg.OneRoute.Timeout,
		MaxAttempts:     cfg.Worker.MaxAttempts,
		TaskTimeout:     cfg.Worker.TaskTimeout,
		DLRInterval:     cfg.Worker.DLRInterval,
		DLRMaxAge:       cfg.Worker.DLRMaxAge,
		PollInterval:    cfg.Worker.PollInterval,
		RateLimit:       defaultRate(cfg),
		NotifySecret:    cfg.Worker.NotifySecret.Reveal(),

		StatusFallbackAfter: cfg.Worker.StatusFallbackAfter,
		SessionMargin:       cfg.Worker.SessionMargin,
	}
}

// dispatchOptions maps configuration to dispatcher options; commands add
// what their flags choose (rejects, dry run, logger, ...).
func dispatchOptions(cfg config.Config) dispatcher.Options {
	o := dispatcher.Options{
		Window:      cfg.Dispatch.Window,
		MaxAttempts: cfg.Worker.MaxAttempts,
		TaskTimeout: cfg.Worker.TaskTimeout,
		Rate:        defaultRate(cfg),
	}
	if cfg.Dispatch.BatchSizeSet {
		o.BatchSize = cfg.Dispatch.BatchSize // else by campaign
	}
	return o
}

// defaultRate is the configured per-sender limit as the rate fanout passes
// around. config keeps a type of its own (it imports none of fanout's
// packages); the conversion compiles only while both have the same fields.
func defaultRate(cfg config.Config) campaigns.Rate { return campaigns.Rate(cfg.RateLimit) }

// newWorker wires a worker server.
func newWorker(rdb redis.UniversalClient, client *oneroute.Client, lim ratelimit.Limiter, cfg config.Config, log zerolog.Logger) *worker.Server {
	// The provider-id index must outlive the delivery-report max age, or a
	// late report can no longer be matched to its recipient.
	store := storage.New(rdb, storage.IndexTTL(cfg.Worker.DLRMaxAge+time.Hour))
	enq := worker.KeepCopies(asynq.NewClientFromRedisClient(rdb), store) // the auditor re-creates lost tasks from copies
	opts := dispatchOptions(cfg)
	opts.Logger = log
	expand := dispatcher.NewExpandHandler(store, enq, opts)
	deps := worker.Deps{
		Store:    store,
		Provider: client,
		Enqueuer: enq,
		Limiter:  lim,
		Logger:   log,
		// Detached dispatches (fanout dispatch --detach) expand in workers.
		Handlers: map[string]asynq.Handler{tasks.TypeExpand: expand},
	}
	return worker.NewServer(rdb, deps, workerOptions(cfg))
}

// shortDuration writes d as people do: 24h, 5m, 1h30m, 3s rather than
// 24h0m0s or 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// openConfigRedis loads the configuration and connects to its Redis, for
// the commands that only read or change campaigns. Close the client when
// done.
func openConfigRedis(ctx context.Context, e *env, cfgFile string) (config.Config, redis.UniversalClient, error) {
	cfg, err := loadConfig(e, cfgFile)
	if err != nil {
		return cfg, nil, err
	}
	rdb, err := openRedis(ctx, cfg.Redis, 0)
	return cfg, rdb, err
}

// campaignStore parses a command that takes one campaign id, and opens the
// store at REDIS_URL. Call the returned close when done.
func campaignStore(ctx context.Context, e *env, fs *flag.FlagSet, cfgFile *string, args []string) (id string, store *storage.Store, notFound func() error, closeFn func(), err error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", nil, nil, nil, err
	}
	if err := checkArgs(pos, "one campaign id"); err != nil {
		return "", nil, nil, nil, err
	}
	cfg, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return "", nil, nil, nil, err
	}
	id = pos[0]
	notFound = func() error {
		return &inputError{fmt.Errorf("no campaign %q in Redis at %s", id, redisWhere(cfg.Redis))}
	}
	return id, storage.New(rdb), notFound, func() { rdb.Close() }, nil
}

// confineSpec refuses a spec whose recipients or suppress file lies outside
// the spec root (FANOUT_SPEC_ROOT), before any file is opened: a spec
// written by someone else must not read the server's files. Without a spec
// root every path is allowed. Paths given on the command line (--recipients,
// --suppress) are the operator's and are not checked.
func confineSpec(cfg config.Config, spec campaigns.Spec) error {
	root := cfg.Dispatch.SpecRoot
	if root == "" {
		return nil
	}
	for _, f := range []struct{ key, path string }{
		{"recipients", spec.RecipientsPath()},
		{"suppress", spec.Resolve(spec.Suppress)},
	} {
		if f.path == "" {
			continue
		}
		if _, err := recipients.Confine(root, f.path); err != nil {
			where := spec.File()
			if n := spec.Line(f.key); n > 0 {
				where = fmt.Sprintf("%s:%d", where, n)
			}
			return &inputError{fmt.Errorf("%s: %s: %w", where, f.key, err)}
		}
	}
	return nil
}
