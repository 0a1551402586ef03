//go:build profworker

// Command profworker is `fanout worker` with a CPU profile: the same wiring
// as cmd/fanout (config from the environment, Redis pool 2*concurrency+10,
// the OneRoute client, the shared Redis limiter, worker.NewServer), plus
// pprof (wiring as of efbf843). It exists because `fanout worker` has no pprof flag (issue 9 asks
// for one); it is built only with -tags profworker, so the package
// restructuring of issue 8 never breaks `go build ./...` through it.
//
//	go build -tags profworker -o /tmp/profworker ./bench/profworker
//	FANOUT_BENCH_CPUPROFILE=/tmp/worker.pprof REDIS_URL=... ONEROUTE_BASE_URL=... \
//	    ONEROUTE_API_KEY=test_bench /tmp/profworker worker
//	kill -USR1 $pid   # stop and write the CPU profile (the worker keeps running)
//	kill -TERM $pid   # stop the worker (writes the profile first if still running)
//
// FANOUT_BENCH_PPROF=127.0.0.1:6060 also serves net/http/pprof there.
package main

import (
	"context"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "profworker:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.Load(os.Getenv, "")
	if err != nil {
		return err
	}
	if addr := os.Getenv("FANOUT_BENCH_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
	var stopProfile func()
	if path := os.Getenv("FANOUT_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		var once sync.Once
		stopProfile = func() {
			once.Do(func() {
				pprof.StopCPUProfile()
				f.Close()
				fmt.Fprintln(os.Stderr, "profworker: CPU profile written to", path)
			})
		}
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go func() { <-usr1; stopProfile() }()
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	level, err := zerolog.ParseLevel(cfg.Log.Level)
	if err != nil || cfg.Log.Level == "" {
		level = zerolog.InfoLevel
	}
	log := zerolog.New(os.Stderr).Level(level).With().Timestamp().Logger()

	opt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return err
	}
	opt.PoolSize = cfg.Worker.Concurrency*2 + 10
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	client, err := oneroute.New(oneroute.Options{BaseURL: cfg.OneRoute.BaseURL, APIKey: cfg.OneRoute.APIKey.Reveal(), Timeout: cfg.OneRoute.Timeout})
	if err != nil {
		return err
	}
	deps := worker.Deps{
		Store:    storage.New(rdb),
		Provider: client,
		Enqueuer: asynq.NewClientFromRedisClient(rdb),
		Limiter:  ratelimit.NewRedis(rdb),
		Logger:   log,
	}
	opts := worker.Options{
		Concurrency:     cfg.Worker.Concurrency,
		Queues:          cfg.Worker.Queues,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout,
		RequestTimeout:  cfg.OneRoute.Timeout,
		MaxAttempts:     cfg.Worker.MaxAttempts,
		TaskTimeout:     cfg.Worker.TaskTimeout,
		DLRInterval:     cfg.Worker.DLRInterval,
		DLRMaxAge:       cfg.Worker.DLRMaxAge,
		PollInterval:    cfg.Worker.PollInterval,
		RateLimit:       campaigns.Rate(cfg.RateLimit),
	}
	srv := worker.NewServer(rdb, deps, opts)
	start := time.Now()
	err = srv.Run(ctx)
	if stopProfile != nil {
		stopProfile()
	}
	log.Info().Dur("ran", time.Since(start)).Msg("profworker stopped")
	return err
}
