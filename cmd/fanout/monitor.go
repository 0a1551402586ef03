package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/metrics"
	"github.com/fanoutdev/fanout/monitor"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/preflight"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

func cmdMonitor(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "monitor", "[flags]", `
Serves the monitoring web app for the campaigns in Redis at REDIS_URL:

  /              campaign dashboard (refreshes itself; pause, resume, cancel)
  /monitoring/   the Asynq web UI (queues and tasks; payloads as one-line summaries)
  /api/          JSON API: list, status, submit, pause, resume, cancel
  /metrics       Prometheus metrics of campaigns and queues
  /healthz       the process answers (no authentication)
  /readyz        Redis answers (no authentication)
  /webhooks/oneroute  OneRoute's signed events, when ONEROUTE_WEBHOOK_SECRET
                 is set (see fanout webhooks; the signature stands for auth)

Everything but health asks for HTTP basic auth when FANOUT_MONITOR_AUTH
(operators) or FANOUT_MONITOR_READONLY_AUTH (viewers) is set. Without them
monitor listens only on a loopback address, unless --insecure.
See docs/monitoring.md.`)
	cfgFile := configFlag(fs)
	addr := fs.String("addr", "", "listen on this `host:port` (default FANOUT_MONITOR_ADDR, "+config.DefaultMonitorAddr+")")
	insecure := fs.Bool("insecure", false, "allow a non-loopback address without authentication")
	sample := fs.Duration("sample", 5*time.Second, "how often the dashboard samples running campaigns for its charts")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	if *sample <= 0 {
		return &usageError{fmt.Sprintf("--sample %s: want a positive duration such as 5s", *sample)}
	}
	cfg, err := loadConfig(e, *cfgFile)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.Monitor.Addr = *addr
	}
	auth, err := monitorAuth(cfg.Monitor)
	if err != nil {
		return &inputError{err}
	}
	if err := monitor.CheckListen(cfg.Monitor.Addr, auth, *insecure); err != nil {
		return &inputError{fmt.Errorf("%s: %w", cfg.Monitor.Addr, err)}
	}
	log := newLogger(e.stderr, cfg.Log)
	rdb, err := openRedis(ctx, cfg.Redis, 0)
	if err != nil {
		return err
	}
	defer rdb.Close()
	app, closeApp, err := newMonitor(rdb, cfg, auth, log)
	if err != nil {
		return err
	}
	defer closeApp()
	ln, err := net.Listen("tcp", cfg.Monitor.Addr)
	if err != nil {
		return &inputError{fmt.Errorf("listen on %s: %w (is another monitor running? pick another --addr)", cfg.Monitor.Addr, err)}
	}
	if !auth.Enabled() {
		log.Warn().Msg("no FANOUT_MONITOR_AUTH: anyone who reaches this address can pause, cancel and submit campaigns")
	}
	log.Info().Str("url", "http://"+ln.Addr().String()+"/").Bool("auth", auth.Enabled()).Bool("readonly", auth.ReadOnly).Msg("monitor listening")
	sampled := make(chan struct{})
	go func() { app.history.Run(ctx, app.store, *sample); close(sampled) }() //nolint:errcheck // returns nil when ctx ends
	handler := app.handler
	if cfg.OneRoute.WebhookSecret != "" {
		// OneRoute's webhooks on the same port (signed: no basic auth).
		svc, err := startWebhooks(ctx, rdb, cfg, log, true, 0)
		if err != nil {
			ln.Close()
			return err
		}
		defer svc.stop()
		handler = withWebhooks(handler, svc.recv)
	}
	err = serveHTTP(ctx, ln, handler, log)
	<-sampled // Run returns once ctx is done, as serveHTTP does
	return err
}

// monitorAuth reads the monitor's credentials from configuration.
func monitorAuth(c config.Monitor) (monitor.Auth, error) {
	a := monitor.Auth{ReadOnly: c.ReadOnly, Token: c.Token.Reveal()}
	for _, s := range []struct {
		name string
		val  config.Secret
		dst  **monitor.Credentials
	}{{"FANOUT_MONITOR_AUTH", c.Auth, &a.Operator}, {"FANOUT_MONITOR_READONLY_AUTH", c.ReadOnlyAuth, &a.Viewer}} {
		if s.val == "" {
			continue
		}
		cr, err := monitor.ParseCredentials(s.val.Reveal())
		if err != nil {
			return a, fmt.Errorf("%s: %w", s.name, err)
		}
		*s.dst = &cr
	}
	return a, nil
}

// monitorApp is the monitor's handler and what it runs beside it.
type monitorApp struct {
	handler http.Handler
	store   *storage.Store
	history *monitor.History
}

// newMonitor wires the monitor on rdb: the store, the Asynq UI (for
// operators and, without buttons, for viewers), the metrics registry and
// the submit path of dispatch --detach. Call the returned func when done.
func newMonitor(rdb redis.UniversalClient, cfg config.Config, auth monitor.Auth, log zerolog.Logger) (*monitorApp, func(), error) {
	uiRedis, err := asynqRedisOpt(cfg.Redis)
	if err != nil {
		return nil, nil, err
	}
	store := storage.New(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.NewCampaignCollector(store, cfg.Monitor.MetricsRecent), metrics.NewQueueCollector(insp))
	ui := asynqUI(uiRedis, cfg.Monitor.ReadOnly)
	viewUI := asynqUI(uiRedis, true)
	history := monitor.NewHistory()
	srv := monitor.New(monitor.Options{
		Store:           store,
		Auth:            auth,
		AsynqUI:         ui,
		AsynqUIReadOnly: viewUI,
		Metrics:         promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Ready:           metrics.ReadyHandler(map[string]metrics.CheckFunc{"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}),
		Submit:          submitCampaign(cfg, store, asynq.NewClientFromRedisClient(rdb), log),
		MaxUpload:       int64(cfg.Monitor.MaxUploadMB) << 20,
		History:         history,
		DefaultRate:     defaultRate(cfg),
		Logger:          log,
	})
	return &monitorApp{handler: srv, store: store, history: history}, func() {
		ui.Close()
		viewUI.Close()
		insp.Close()
	}, nil
}

// asynqUI is asynqmon v0.7.2 mounted at /monitoring/, showing fanout's
// payloads through monitor.FormatPayload. It opens its own Redis
// connections to the same Redis (asynqRedisOpt: the same topology, user
// and TLS).
func asynqUI(conn asynq.RedisConnOpt, readOnly bool) *asynqmon.HTTPHandler {
	return asynqmon.New(asynqmon.Options{
		RootPath:         "/monitoring",
		RedisConnOpt:     conn,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(monitor.FormatPayload),
		ResultFormatter:  asynqmon.ResultFormatterFunc(monitor.FormatResult),
		ReadOnly:         readOnly,
	})
}

// submitCampaign is POST /api/campaigns: the path of fanout dispatch
// --detach (dispatcher.Open, then DispatchDetached), on a spec and a
// recipient file uploaded instead of read from disk. The spec may not name
// a suppress file: files on the server are not read on a request's word.
func submitCampaign(cfg config.Config, store *storage.Store, enq dispatcher.Enqueuer, log zerolog.Logger) monitor.SubmitFunc {
	return func(ctx context.Context, sub monitor.Submission) (string, any, error) {
		bad := func(err error) error { return fmt.Errorf("%w: %w", monitor.ErrBadInput, err) }
		spec, err := campaigns.ParseSpec(sub.SpecName, withRecipients(sub.Spec))
		if err != nil {
			return "", nil, bad(err)
		}
		if sub.ID != "" {
			spec.SetID(sub.ID)
			if err := spec.Validate(); err != nil {
				return "", nil, bad(err)
			}
		}
		if spec.Suppress != "" {
			return "", nil, bad(spec.Errorf("suppress", "suppress: a campaign posted to the monitor cannot name a file on the server; drop the suppressed addresses from the recipient file, or dispatch it with the command line"))
		}
		if err := submitPreflight(ctx, cfg, spec); err != nil {
			if preflight.IsFinding(err) {
				return spec.ID, nil, bad(err)
			}
			return spec.ID, nil, err
		}
		opts := dispatchOptions(cfg)
		opts.Logger = log
		in, err := dispatcher.Open(spec, sub.RecipientsPath, nil, recipients.OptionsOf(spec))
		if err != nil {
			return spec.ID, nil, bad(err)
		}
		defer in.Close()
		res, err := dispatcher.DispatchDetached(ctx, store, enq, in, opts)
		switch {
		case errors.Is(err, dispatcher.ErrBadInput):
			return res.ID, nil, bad(err)
		case err != nil:
			return res.ID, nil, err
		}
		return res.ID, dispatchJSON{Result: res, Detached: true}, nil
	}
}

// recipientsKey finds a top-level recipients key in a YAML spec.
var recipientsKey = regexp.MustCompile(`(?m)^recipients\s*:`)

// withRecipients gives a posted spec without a recipients key one: the
// uploaded file stands in for it, whatever the spec says.
func withRecipients(spec []byte) []byte {
	if recipientsKey.Match(spec) {
		return spec
	}
	out := append([]byte(nil), spec...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, "recipients: uploaded\n"...)
}

// serveHTTP serves h on ln until ctx is done, then shuts down, giving
// requests in flight 10 seconds.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log zerolog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done //nolint:errcheck // Serve's http.ErrServerClosed after Shutdown; Shutdown's error is returned
	log.Info().Msg("http server stopped")
	return err
}

// workerHealth serves the worker's metrics and health port: /metrics,
// /healthz (the process answers) and /readyz (Redis answers and this
// process's asynq server has sent its heartbeat).
func workerHealth(rdb redis.UniversalClient, m *metrics.Worker) http.Handler {
	insp := asynq.NewInspectorFromRedisClient(rdb)
	host, _ := os.Hostname()
	pid := os.Getpid()
	return metrics.HealthHandler(m.Handler(), map[string]metrics.CheckFunc{
		"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		"asynq": func(ctx context.Context) error {
			servers, err := insp.Servers()
			if err != nil {
				return err
			}
			for _, s := range servers {
				if s.Host == host && s.PID == pid {
					return nil
				}
			}
			return errors.New("this worker's asynq server has not sent a heartbeat yet (starting, or stopped)")
		},
	})
}

// instrumentWorker builds the worker's OneRoute client and limiter. With
// FANOUT_METRICS_ADDR (or --metrics-addr) set, the client's transport times
// every request and the limiter counts its waits, and serve runs the
// metrics and health port until ctx is done; otherwise they are the plain
// ones and serve returns at once.
func instrumentWorker(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, lim ratelimit.Limiter, log zerolog.Logger) (*oneroute.Client, ratelimit.Limiter, func(), error) {
	if cfg.Monitor.MetricsAddr == "" {
		client, err := newOneRoute(cfg.OneRoute)
		if err != nil {
			return nil, nil, nil, &inputError{err}
		}
		return client, lim, func() {}, nil
	}
	m := metrics.NewWorker()
	c := cfg.OneRoute
	client, err := oneroute.New(oneroute.Options{BaseURL: c.BaseURL, APIKey: c.APIKey.Reveal(), Timeout: c.Timeout, UserAgent: "fanout/" + version,
		HTTPClient: &http.Client{
			// oneroute's default client with a timed transport: 512
			// connections (its default), and no redirect followed, so the
			// apiKey header never reaches another host.
			Transport:     m.Transport(oneroute.NewTransport(512)),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}})
	if err != nil {
		return nil, nil, nil, &inputError{err}
	}
	ln, err := net.Listen("tcp", cfg.Monitor.MetricsAddr)
	if err != nil {
		return nil, nil, nil, &inputError{fmt.Errorf("FANOUT_METRICS_ADDR: listen on %s: %w", cfg.Monitor.MetricsAddr, err)}
	}
	log.Info().Str("url", "http://"+ln.Addr().String()+"/metrics").Msg("worker metrics and health listening")
	serve := func() {
		if err := serveHTTP(ctx, ln, workerHealth(rdb, m), log); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("worker metrics server stopped")
		}
	}
	return client, m.Limiter(lim), serve, nil
}
