package main

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/worker"
)

func cmdWorker(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "worker", "[flags]", `
Runs a worker: a long-lived asynq server that takes send tasks from Redis at
REDIS_URL and sends them through OneRoute at ONEROUTE_BASE_URL. Run as many as
you need, on any number of machines; they share rate limits through Redis.

SIGTERM or SIGINT stops it gracefully: it takes no new tasks and waits up to
FANOUT_SHUTDOWN_TIMEOUT (longer than ONEROUTE_TIMEOUT) for running sends.`)
	cfgFile := configFlag(fs)
	concurrency := fs.Int("concurrency", 0, fmt.Sprintf("tasks run at once (default FANOUT_CONCURRENCY, %d)", config.DefaultConcurrency))
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics, /healthz and /readyz on this `host:port` (default FANOUT_METRICS_ADDR; off when empty)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	cfg, err := loadConfig(e, *cfgFile)
	if err != nil {
		return err
	}
	if err := cfg.RequireAPIKey(); err != nil {
		return &inputError{err}
	}
	if *concurrency > 0 {
		cfg.Worker.Concurrency = *concurrency
	}
	if *metricsAddr != "" {
		cfg.Monitor.MetricsAddr = *metricsAddr
	}
	log := newLogger(e.stderr, cfg.Log)
	logStart(log, cfg)
	tuneGC(e.getenv)
	stopProfile, err := startProfile(e.getenv, e.stderr)
	if err != nil {
		return &inputError{err}
	}
	defer stopProfile()
	rdb, err := openRedis(ctx, cfg.Redis, cfg.Worker.Concurrency*2+10)
	if err != nil {
		return err
	}
	defer rdb.Close()
	client, lim, serveMetrics, err := instrumentWorker(ctx, cfg, rdb, ratelimit.NewRedis(rdb), log)
	if err != nil {
		return err
	}
	if d, err := storage.New(rdb).Durability(ctx); err == nil {
		// everysec loses the last second of writes on a host crash; the
		// workers detect a restart and verify (docs/configuration.md, Redis).
		log.Info().Str("redis_version", d.Version).Bool("aof", d.AOF).Str("appendfsync", d.AppendFsync).Bool("waitaof", d.WaitAOF).Msg("redis durability")
	}
	srv := newWorker(rdb, client, lim, cfg, log)
	served := make(chan struct{})
	go func() { serveMetrics(); close(served) }()
	// The auditor re-creates batch tasks deleted or archived outside fanout
	// and settles cancelled campaigns; one worker of the fleet leads it.
	aud := worker.NewAuditor(rdb, storage.New(rdb), log, worker.AuditOptions{RequestTimeout: cfg.OneRoute.Timeout, TaskTimeout: cfg.Worker.TaskTimeout})
	actx, stopAudit := context.WithCancel(ctx)
	audited := make(chan struct{})
	go func() { defer close(audited); aud.Run(actx) }() //nolint:errcheck // returns nil when actx ends
	err = srv.Run(ctx)
	stopAudit()
	<-audited
	<-served
	return err
}

// The worker's garbage collector, when neither GOGC nor GOMEMLIMIT is set:
// the heap may grow to three times what is live (Go's default is twice),
// which saves about a tenth of the worker's CPU at full speed
// (docs/benchmarks.md, issue 9), within a soft limit that keeps its memory
// under issue 9's 100 MB. The limit counts the Go runtime's memory, not the
// binary's pages, so peak RSS runs above it: 72 MiB gave peaks of 88-89
// MB where 80 MiB gave 88-96 MB, at no measurable CPU cost (docs/benchmarks.md,
// "Worker memory"). A worker's live heap (tasks in flight, pools) is
// a small part of that at the default concurrency; a worker run with far
// more concurrency, whose live heap nears the limit, should set GOGC or
// GOMEMLIMIT itself.
const (
	workerGCPercent   = 200
	workerMemoryLimit = 72 << 20
)

// tuneGC applies workerGCPercent and workerMemoryLimit unless GOGC or
// GOMEMLIMIT is set.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" && getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(workerGCPercent)
		debug.SetMemoryLimit(workerMemoryLimit)
	}
}
