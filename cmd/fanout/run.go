package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// runArgs is run's command line.
type runArgs struct {
	cfgFile   string
	sandbox   bool
	json      bool
	dlrMaxAge time.Duration
	rejects   string
	timeout   time.Duration
	spec      string
	offline   bool
	webhooks  bool
}

func cmdRun(ctx context.Context, e *env, args []string) error {
	a, err := parseRunArgs(e, args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(e, a.cfgFile)
	if err != nil {
		return err
	}
	spec, in, err := openRunSpec(e, a, cfg)
	if err != nil {
		return err
	}
	defer in.Close()
	log := newLogger(e.stderr, cfg.Log)
	if a.sandbox && e.getenv("LOG_LEVEL") == "" {
		log = log.Level(zerolog.WarnLevel)
	}
	var b runBackends
	defer b.close()
	if err := b.open(ctx, e, a, &cfg); err != nil {
		return err
	}
	if err := checkSpec(ctx, e, cfg, b.client, spec, a.offline); err != nil {
		return err
	}
	srv := newWorker(b.rdb, b.client, ratelimit.NewRedis(b.rdb), cfg, log)
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Stop()

	start := time.Now()
	res, err := dispatchRun(ctx, e, a, cfg, spec, in.Source, log)
	if err != nil {
		return err
	}
	p, err := followRun(ctx, e, a.timeout, storage.New(b.rdb), res.ID, spec.Rate.Over(defaultRate(cfg)).Steady(), spec.Channel.Tracked())
	if err != nil {
		return err
	}
	srv.Stop()
	return printRun(e, a.json, p, time.Since(start), b.sb)
}

// parseRunArgs parses run's flags and its one argument, the spec file.
func parseRunArgs(e *env, args []string) (runArgs, error) {
	fs := newFlags(e, "run", "[--sandbox] [flags] CAMPAIGN.yaml", `
Runs a campaign end to end in one process: dispatcher and worker together,
with live progress, and a summary once every recipient is final.

With --sandbox it needs nothing installed: OneRoute is the built-in sandbox
and, unless REDIS_URL is set, Redis is embedded in memory. Without --sandbox
it sends for real through ONEROUTE_BASE_URL with ONEROUTE_API_KEY, using
Redis at REDIS_URL.

Before anything is sent, the spec's channel, template and parameters are
checked against OneRoute (the sandbox with --sandbox); --offline skips it.

Exit codes: 0 campaign finished, 1 runtime error, 2 bad input.`)
	var a runArgs
	cfgFile := configFlag(fs)
	fs.BoolVar(&a.sandbox, "sandbox", false, "send to the built-in OneRoute sandbox (and embedded Redis unless REDIS_URL is set)")
	fs.BoolVar(&a.json, "json", false, "print the final status as one JSON object instead of the summary")
	fs.DurationVar(&a.dlrMaxAge, "dlr-max-age", 0, fmt.Sprintf("stop polling delivery reports after this long (default %s; %s with --sandbox)",
		shortDuration(config.DefaultDLRMaxAge), shortDuration(sandboxDLRMaxAge)))
	fs.StringVar(&a.rejects, "rejects", "", "write refused rows to this CSV `file`")
	fs.DurationVar(&a.timeout, "timeout", 0, "give up waiting after this long (0: wait until the campaign is final)")
	fs.BoolVar(&a.offline, "offline", false, offlineUsage)
	fs.BoolVar(&a.webhooks, "webhooks", false, "with --sandbox: delivery reports come by webhook to an embedded receiver (see fanout webhooks)")
	pos, err := parse(fs, args)
	if err != nil {
		return a, err
	}
	if a.webhooks && !a.sandbox {
		return a, &usageError{"--webhooks needs --sandbox: with OneRoute itself, run fanout webhooks at a public URL"}
	}
	if err := checkArgs(pos, "one campaign spec file"); err != nil {
		return a, err
	}
	a.cfgFile, a.spec = *cfgFile, pos[0]
	return a, nil
}

// openRunSpec loads the spec and opens its recipients, checked against it,
// before anything connects anywhere.
func openRunSpec(e *env, a runArgs, cfg config.Config) (campaigns.Spec, *dispatcher.Input, error) {
	spec, err := campaigns.LoadSpec(a.spec)
	if err != nil {
		return spec, nil, &inputError{err}
	}
	if err := confineSpec(cfg, spec); err != nil {
		return spec, nil, err
	}
	in, err := dispatcher.Open(spec, spec.RecipientsPath(), e.stdin, recipients.OptionsOf(spec))
	if err != nil {
		return spec, nil, &inputError{err}
	}
	if e.getenv("REDIS_URL") != "" || !a.sandbox {
		// A Redis that outlives this run: the same spec and file resume the
		// same campaign instead of sending it twice.
		spec = in.Spec
	}
	return spec, in, nil
}

// runBackends are what run sends through: Redis, OneRoute and, with
// --sandbox, the sandbox that plays OneRoute.
type runBackends struct {
	rdb    redis.UniversalClient
	client *oneroute.Client
	sb     *sandbox.Server // nil without --sandbox
	stops  []func()
	hooks  net.Listener // the embedded receiver's, with --webhooks
}

// open connects to Redis and OneRoute; with --sandbox it first starts the
// sandbox and, unless REDIS_URL is set, an embedded Redis, and points cfg
// at them. Call close even when open fails.
func (b *runBackends) open(ctx context.Context, e *env, a runArgs, cfg *config.Config) error {
	if a.sandbox {
		var opts []func(*sandbox.Options)
		if a.webhooks {
			ln, opt, err := listenRunWebhooks(cfg)
			if err != nil {
				return err
			}
			b.hooks, opts = ln, append(opts, opt)
		}
		sb, url, stop, err := startSandboxAPI(opts...)
		if err != nil {
			return err
		}
		b.sb, b.stops = sb, append(b.stops, stop)
		useSandbox(cfg, url)
	} else if err := cfg.RequireAPIKey(); err != nil {
		return &inputError{err}
	}
	if a.dlrMaxAge > 0 {
		cfg.Worker.DLRMaxAge = a.dlrMaxAge
	}
	redisNote := "Redis at " + config.Config{Redis: cfg.Redis}.Redacted().Redis.URL
	if a.sandbox && e.getenv("REDIS_URL") == "" {
		url, stop, err := startDemoRedis()
		if err != nil {
			return err
		}
		b.stops = append(b.stops, stop)
		cfg.Redis.URL, redisNote = url, "embedded Redis (in memory)"
	}
	rdb, err := openRedis(ctx, cfg.Redis, cfg.Worker.Concurrency*2+10)
	if err != nil {
		return err
	}
	b.rdb, b.stops = rdb, append(b.stops, func() { rdb.Close() })
	if b.hooks != nil {
		stop, err := serveRunWebhooks(ctx, b.hooks, rdb, *cfg, newLogger(e.stderr, cfg.Log).Level(zerolog.WarnLevel))
		if err != nil {
			b.hooks.Close()
			return err
		}
		b.stops = append(b.stops, stop)
	}
	if b.client, err = newOneRoute(cfg.OneRoute); err != nil {
		return &inputError{err}
	}
	if a.sandbox {
		fmt.Fprintf(e.stderr, "fanout run: %s, OneRoute sandbox at %s\n", redisNote, cfg.OneRoute.BaseURL)
	} else {
		fmt.Fprintf(e.stderr, "fanout run: %s, sending for real through OneRoute at %s\n", redisNote, cfg.OneRoute.BaseURL)
	}
	return nil
}

// close stops what open started, last started first.
func (b *runBackends) close() {
	for i := len(b.stops) - 1; i >= 0; i-- {
		b.stops[i]()
	}
	b.stops = nil
}

// dispatchRun dispatches the checked source, reporting refused rows to
// --rejects or, the first ten, to standard error.
func dispatchRun(ctx context.Context, e *env, a runArgs, cfg config.Config, spec campaigns.Spec, src recipients.Source, log zerolog.Logger) (res dispatcher.Result, err error) {
	opts := dispatchOptions(cfg)
	if a.rejects != "" {
		rw, rerr := newRejectWriter(a.rejects) // not err: the deferred Join below sets the result
		if rerr != nil {
			return dispatcher.Result{}, rerr
		}
		defer func() { err = errors.Join(err, rw.Close()) }() // a failed write of the --rejects file fails the run
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
	res, err = dispatchSpec(ctx, cfg, spec, src, opts, log)
	if err == nil && !a.json {
		fmt.Fprintf(e.stderr, "fanout run: campaign %s: %s enqueued in %s (%d invalid, %s, %d suppressed)\n",
			res.ID, plural(res.Total, "recipient", "recipients"), plural(res.Batches, "batch", "batches"), res.Invalid,
			plural(res.Duplicates, "duplicate", "duplicates"), res.Suppressed)
	}
	return res, err
}

// followRun shows the campaign's progress until it is final, or until
// --timeout; limit is its steady rate limit (0: none), for the ETA.
func followRun(ctx context.Context, e *env, timeout time.Duration, store *storage.Store, id string, limit float64, dlr bool) (campaigns.Progress, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p, err := follow(ctx, e.stderr, store, id, limit, dlr)
	if errors.Is(err, context.DeadlineExceeded) {
		return p, fmt.Errorf("campaign %s not final after %s (state %s, %d of %d done)", id, timeout, p.State, p.Done(), p.Total)
	}
	return p, err
}

// printRun prints the final status: a JSON object with --json, else the
// summary.
func printRun(e *env, asJSON bool, p campaigns.Progress, took time.Duration, sb *sandbox.Server) error {
	if asJSON {
		out := runResult{Progress: p}
		if sb != nil {
			st := sb.Stats()
			out.Sandbox = &st
		}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	summary(e.stdout, p, took, sb)
	return nil
}

// runResult is run's --json output: the campaign's status object, plus the
// sandbox's counters with --sandbox.
type runResult struct {
	campaigns.Progress
	Sandbox *sandbox.Stats `json:"sandbox,omitempty"`
}

// follow shows live progress until the campaign is final: on a terminal
// the block of status --watch, redrawn in place; otherwise one line every
// 2 s and the last one. The counters are read every 100 ms, so the end is
// seen at once. A paused campaign stops it with the fix.
func follow(ctx context.Context, w io.Writer, store *storage.Store, id string, limit float64, dlr bool) (campaigns.Progress, error) {
	var v view = &throttledView{v: lineView{w}, every: 2 * time.Second}
	if canRedraw(w) {
		v = newBarView(w, dlr)
	}
	p, err := watchStatus(ctx, store, id, limit, 100*time.Millisecond, v, func(p campaigns.Progress) bool {
		return p.Final() || p.State == campaigns.StatePaused
	})
	if err != nil {
		return p, err
	}
	if err := ctx.Err(); err != nil {
		return p, err
	}
	if p.State == campaigns.StatePaused {
		return p, fmt.Errorf("campaign %s paused: %s (fix the cause, then: fanout resume %s)", id, p.Reason, id)
	}
	return p, nil
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
	if p.Channel == campaigns.ChannelWhatsAppSession {
		row("session", p.SessionSent, "of the sent, session messages (window open)")
		row("template", p.TemplateSent, "of the sent, fallback templates (window closed)")
	}
	if p.Channel.Tracked() {
		row("delivered", p.Delivered, "")
		row("undelivered", p.Undelivered, "")
		row("dlr_expired", p.DLRExpired, "no final delivery report in time")
		if p.Channel == campaigns.ChannelWhatsAppTemplate || p.Channel == campaigns.ChannelWhatsAppCampaign {
			row("read", p.Read, "of the delivered, read by the customer")
		}
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
		fmt.Fprintf(w, "\n  sandbox: %s, %s accepted, %s\n", plural(st.Requests, "API request", "API requests"),
			plural(st.Accepted, "message", "messages"), plural(st.Duplicates, "duplicate", "duplicates"))
	}
	fmt.Fprintln(w)
}
