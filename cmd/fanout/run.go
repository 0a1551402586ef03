package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
)

func cmdRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", "[--sandbox] [flags] CAMPAIGN.yaml", `
Runs a campaign end to end in one process: dispatcher and worker together,
with live progress, and a summary once every recipient is final.

With --sandbox it needs nothing installed: OneRoute is the built-in sandbox
and, unless REDIS_URL is set, Redis is embedded in memory. Without --sandbox
it sends for real through ONEROUTE_BASE_URL with ONEROUTE_API_KEY, using
Redis at REDIS_URL.

Exit codes: 0 campaign finished, 1 runtime error, 2 bad input.`)
	cfgFile := configFlag(fs)
	useSandbox := fs.Bool("sandbox", false, "send to the built-in OneRoute sandbox (and embedded Redis unless REDIS_URL is set)")
	asJSON := fs.Bool("json", false, "print the final status as one JSON object instead of the summary")
	dlrMaxAge := fs.Duration("dlr-max-age", 0, "stop polling delivery reports after this long (default 24h; 3s with --sandbox)")
	rejects := fs.String("rejects", "", "write refused rows to this CSV `file`")
	timeout := fs.Duration("timeout", 0, "give up waiting after this long (0: wait until the campaign is final)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &usageError{"want exactly one campaign spec file"}
	}
	cfg, err := loadConfig(e, *cfgFile)
	if err != nil {
		return err
	}
	spec, err := campaigns.LoadSpec(pos[0])
	if err != nil {
		return &inputError{err}
	}
	if err := confineSpec(cfg, spec); err != nil {
		return err
	}
	src, err := openChecked(spec)
	if err != nil {
		return err
	}
	defer src.Close()
	if e.getenv("REDIS_URL") != "" || !*useSandbox {
		// A Redis that outlives this run: the same spec and file resume the
		// same campaign instead of sending it twice.
		deriveID(&spec, spec.RecipientsPath())
	}
	log := newLogger(e.stderr, cfg.Log)
	if *useSandbox && e.getenv("LOG_LEVEL") == "" {
		log = log.Level(zerolog.WarnLevel)
	}

	var sb *sandbox.Server
	if *useSandbox {
		sb = sandbox.New(sandbox.Options{DLRDelay: 500 * time.Millisecond})
		defer sb.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		// Never send a real key to the sandbox, nor sandbox traffic to OneRoute.
		cfg.OneRoute.BaseURL = "http://" + ln.Addr().String()
		cfg.OneRoute.APIKey = config.Secret(sandbox.KeyPrefix + "run")
		cfg.Worker.PollInterval = 200 * time.Millisecond
		cfg.Worker.DLRInterval = 500 * time.Millisecond
		cfg.Worker.DLRMaxAge = 3 * time.Second
		cfg.Worker.Concurrency = 10
	} else if err := cfg.RequireAPIKey(); err != nil {
		return &inputError{err}
	}
	if *dlrMaxAge > 0 {
		cfg.Worker.DLRMaxAge = *dlrMaxAge
	}

	redisNote := "Redis at " + config.Config{Redis: cfg.Redis}.Redacted().Redis.URL
	if *useSandbox && e.getenv("REDIS_URL") == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return fmt.Errorf("start embedded Redis: %w", err)
		}
		defer mr.Close()
		cfg.Redis.URL = "redis://" + mr.Addr() + "/0"
		redisNote = "embedded Redis (in memory)"
	}
	rdb, err := openRedis(ctx, cfg.Redis, cfg.Worker.Concurrency*2+10)
	if err != nil {
		return err
	}
	defer rdb.Close()
	client, err := newOneRoute(cfg.OneRoute)
	if err != nil {
		return &inputError{err}
	}
	if *useSandbox {
		fmt.Fprintf(e.stderr, "fanout run: %s, OneRoute sandbox at %s\n", redisNote, cfg.OneRoute.BaseURL)
	} else {
		fmt.Fprintf(e.stderr, "fanout run: %s, sending for real through OneRoute at %s\n", redisNote, cfg.OneRoute.BaseURL)
	}

	lim := ratelimit.NewRedis(rdb)
	srv := newWorker(rdb, client, lim, cfg, log)
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Stop()

	opts := dispatchOptions(cfg)
	if *rejects != "" {
		rw, err := newRejectWriter(*rejects)
		if err != nil {
			return err
		}
		defer rw.Close()
		opts.Reject = rw.Write
	} else {
		shown := 0
		opts.Reject = func(r dispatcher.Reject) {
			switch shown++; {
			case shown <= 10:
				fmt.Fprintf(e.stderr, "  refused %s line %d: %s\n", spec.Recipients, r.Line, r.Reason)
			case shown == 11:
				fmt.Fprintf(e.stderr, "  ... more refused rows: write them all with --rejects FILE.csv\n")
			}
		}
	}
	start := time.Now()
	res, err := dispatchSpec(ctx, cfg, spec, src, opts, log)
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(e.stderr, "fanout run: campaign %s: %d recipients enqueued in %d batches (%d invalid, %d duplicates, %d suppressed)\n",
			res.ID, res.Total, res.Batches, res.Invalid, res.Duplicates, res.Suppressed)
	}

	store := storage.New(rdb)
	wctx := ctx
	if *timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	p, err := follow(wctx, e.stderr, store, res.ID)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("campaign %s not final after %s (state %s, %d of %d done)", res.ID, *timeout, p.State, p.Done(), p.Total)
		}
		return err
	}
	srv.Stop()
	if *asJSON {
		out := runResult{Progress: p}
		if sb != nil {
			st := sb.Stats()
			out.Sandbox = &st
		}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	summary(e.stdout, p, time.Since(start), sb)
	return nil
}

// runResult is run's --json output: the campaign's status object, plus the
// sandbox's counters with --sandbox.
type runResult struct {
	campaigns.Progress
	Sandbox *sandbox.Stats `json:"sandbox,omitempty"`
}

// follow shows live progress until the campaign is final.
func follow(ctx context.Context, w io.Writer, store *storage.Store, id string) (campaigns.Progress, error) {
	tty := isTerminal(w)
	every := 2 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	var last time.Time
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		p, err := store.Progress(ctx, id)
		if err != nil {
			return p, err
		}
		if p.Final() || time.Since(last) >= every {
			line := fmt.Sprintf("  %s  sent %d  failed %d  pending %d", bar(p.Done(), p.Total, 20), p.Sent, p.Failed, p.Pending)
			if p.Channel.TracksDLR() {
				line += fmt.Sprintf("  delivered %d  undelivered %d  awaiting DLR %d", p.Delivered, p.Undelivered, p.AwaitingDLR)
			}
			if p.Rate > 0 {
				line += fmt.Sprintf("  %.0f/s", p.Rate)
			}
			line += "  [" + string(p.State) + "]"
			if tty {
				fmt.Fprintf(w, "\r\033[K%s", line)
				if p.Final() {
					fmt.Fprintln(w)
				}
			} else {
				fmt.Fprintln(w, line)
			}
			last = time.Now()
		}
		if p.Final() {
			return p, nil
		}
		if p.State == campaigns.StatePaused {
			if tty {
				fmt.Fprintln(w)
			}
			return p, fmt.Errorf("campaign %s paused: %s (fix the cause, then: fanout resume %s)", id, p.Reason, id)
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return p, ctx.Err()
		case <-t.C:
		}
	}
}

func summary(w io.Writer, p campaigns.Progress, took time.Duration, sb *sandbox.Server) {
	fmt.Fprintf(w, "\nCampaign %s", p.ID)
	if p.Name != "" {
		fmt.Fprintf(w, " (%s)", p.Name)
	}
	fmt.Fprintf(w, " %s in %s\n\n", p.State, took.Round(10*time.Millisecond))
	row := func(k string, v int64, note string) { fmt.Fprintf(w, "  %-12s %7d  %s\n", k, v, note) }
	row("recipients", p.Total, "valid and enqueued")
	row("sent", p.Sent, "accepted by OneRoute")
	if p.Channel.TracksDLR() {
		row("delivered", p.Delivered, "")
		row("undelivered", p.Undelivered, "")
		row("dlr_expired", p.DLRExpired, "no final delivery report in time")
	}
	row("failed", p.Failed, "refused by OneRoute")
	row("unknown", p.Unknown, "ambiguous outcome; not resent")
	row("skipped", p.Skipped, "")
	row("invalid", p.Invalid, "rows refused by the dispatcher")
	row("duplicates", p.Duplicates, "skipped: same recipient twice in the file")
	row("suppressed", p.Suppressed, "skipped: on the suppression list")
	if len(p.FailureReasons) > 0 {
		fmt.Fprintln(w)
		printReasons(w, p.FailureReasons, 3)
	}
	if sb != nil {
		st := sb.Stats()
		fmt.Fprintf(w, "\n  sandbox: %d API requests, %d messages accepted, %d duplicates\n", st.Requests, st.Accepted, st.Duplicates)
	}
	fmt.Fprintln(w)
}
