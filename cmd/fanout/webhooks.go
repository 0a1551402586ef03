package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/metrics"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/webhooks"
	"github.com/fanoutdev/fanout/worker"
)

// defaultWebhooksAddr is where `fanout webhooks` listens by default.
const defaultWebhooksAddr = ":8090"

func cmdWebhooks(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "webhooks", "[flags]", `
Receives OneRoute's signed webhook events at POST /webhooks/oneroute and
applies them to the campaigns in Redis at REDIS_URL: SMS delivery reports,
WhatsApp message statuses, campaign completions, inbound messages.

Each event is checked (at most 256 KiB, x-oneroute-signature with the secret
ONEROUTE_WEBHOOK_SECRET or ONEROUTE_WEBHOOK_SECRET_FILE, a OneRoute event)
and recorded in Redis before the 200; a replayed event is acknowledged and
not applied again. Refusals: 401 bad signature, 400 not an event, 413 too
large, 503 Redis unavailable (OneRoute retries).

Also serves /healthz (the process answers) and /readyz (Redis answers).
Set the URL https://<host>/webhooks/oneroute on OneRoute's Settings page.
See docs/architecture.md, "Webhooks".`)
	cfgFile := configFlag(fs)
	addr := fs.String("addr", defaultWebhooksAddr, "listen on this `host:port`")
	noApply := fs.Bool("no-apply", false, "only receive and record events; another process applies them")
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
	if cfg.OneRoute.WebhookSecret == "" {
		return &inputError{errors.New("ONEROUTE_WEBHOOK_SECRET is not set: export it (or ONEROUTE_WEBHOOK_SECRET_FILE) with your account's OneRoute secret key, which signs the webhooks")}
	}
	log := newLogger(e.stderr, cfg.Log)
	rdb, err := openRedis(ctx, cfg.Redis, 0)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return &inputError{fmt.Errorf("listen on %s: %w (pick another --addr)", *addr, err)}
	}
	svc, err := startWebhooks(ctx, rdb, cfg, log, !*noApply, 0)
	if err != nil {
		ln.Close()
		return err
	}
	defer svc.stop()
	mux := http.NewServeMux()
	mux.Handle("POST "+webhooks.Path, svc.recv)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("GET /readyz", metrics.ReadyHandler(map[string]metrics.CheckFunc{
		"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
	}))
	log.Info().Str("url", "http://"+ln.Addr().String()+webhooks.Path).Bool("apply", !*noApply).Msg("webhooks listening")
	return serveHTTP(ctx, ln, mux, log)
}

// webhookService is a started receiver and, optionally, an applier.
type webhookService struct {
	recv   *webhooks.Receiver
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startWebhooks starts a receiver on rdb and, when apply, an applier that
// runs until ctx is done or stop; liveFor is the applier's LiveFor (0: its
// default). Inbound stop words become opt-outs (worker.OptOuts). Call stop
// after the HTTP server stopped.
func startWebhooks(ctx context.Context, rdb redis.UniversalClient, cfg config.Config, log zerolog.Logger, apply bool, liveFor time.Duration) (*webhookService, error) {
	store := storage.New(rdb, storage.IndexTTL(cfg.Worker.DLRMaxAge+time.Hour))
	optOuts, err := worker.NewOptOuts(store, cfg.OptOut.StopWords, cfg.OptOut.Region)
	if err != nil {
		return nil, &inputError{err}
	}
	s := &webhookService{recv: webhooks.NewReceiver(store, webhooks.ReceiverOptions{Secret: cfg.OneRoute.WebhookSecret.Reveal(), Logger: log})}
	s.recv.Start()
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	if apply {
		inbound := func(ctx context.Context, ev *oneroute.NewMessage) error {
			err := optOuts.Inbound(log.WithContext(ctx), ev)
			if errors.Is(err, worker.ErrNoSender) {
				log.Warn().Err(err).Msg("stop word without a sender: not recorded")
				return nil // the same body again would not have one either
			}
			if err != nil {
				return err
			}
			return recordSession(ctx, store, cfg.OptOut.WhatsAppNumber, optOuts, ev, log)
		}
		app := webhooks.NewApplier(store, webhooks.ApplierOptions{Logger: log, LiveFor: liveFor, Inbound: inbound})
		s.wg.Add(1)
		go func() { defer s.wg.Done(); app.Run(actx) }() //nolint:errcheck // returns nil when actx ends
	}
	return s, nil
}

// recordSession records a customer's inbound WhatsApp message as opening
// the business number's 24-hour session window (storage.RecordInbound), at
// the message's own time when it has one. Without a business number
// (FANOUT_WHATSAPP_NUMBER), messages from the business side, email
// conversations and senders with no number record nothing.
func recordSession(ctx context.Context, store *storage.Store, business string, o *worker.OptOuts, m *oneroute.NewMessage, log zerolog.Logger) error {
	if business == "" || m.Message.Sender.AuthUser {
		return nil
	}
	kind, customer, err := o.Sender(m)
	if err != nil || kind != storage.OptOutWhatsApp {
		return nil
	}
	now := time.Now()
	at := now
	if c := m.Message.CreatedAt; c != nil && !c.IsZero() {
		at = *c
	}
	if _, err := store.RecordInbound(ctx, now, storage.Inbound{Business: business, Customer: customer, At: at}); err != nil {
		return fmt.Errorf("record the session window of %s: %w", customer, err)
	}
	return nil
}

// stop stops the receiver (writing what it holds), then the applier.
func (s *webhookService) stop() {
	s.recv.Stop()
	s.cancel()
	s.wg.Wait()
}

// withWebhooks serves POST /webhooks/oneroute with recv and everything else
// with h (the monitor's handler, with its authentication).
func withWebhooks(h, recv http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+webhooks.Path, recv)
	mux.Handle("/", h)
	return mux
}

// listenRunWebhooks is the receiver of fanout run --sandbox --webhooks: a
// listener on the loopback, and the sandbox option that posts the events
// there, signed with the secret it sets in cfg.
func listenRunWebhooks(cfg *config.Config) (net.Listener, func(*sandbox.Options), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen for webhooks: %w", err)
	}
	cfg.OneRoute.WebhookSecret = config.Secret(sandbox.DefaultWebhookSecret)
	if cfg.OptOut.WhatsAppNumber == "" {
		cfg.OptOut.WhatsAppNumber = sandbox.WhatsAppNumber // its inbound messages open session windows
	}
	url := "http://" + ln.Addr().String() + webhooks.Path
	return ln, func(o *sandbox.Options) { o.WebhookURL, o.WebhookSecret = url, sandbox.DefaultWebhookSecret }, nil
}

// serveRunWebhooks serves the receiver and runs the applier on ln until
// the returned func is called.
func serveRunWebhooks(ctx context.Context, ln net.Listener, rdb redis.UniversalClient, cfg config.Config, log zerolog.Logger) (func(), error) {
	// The sandbox's reports come within a second: its sweep need not wait
	// 30 s for more before the demo's short max age expires the rest.
	svc, err := startWebhooks(ctx, rdb, cfg, log, true, 2*time.Second)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+webhooks.Path, svc.recv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln) //nolint:errcheck // http.ErrServerClosed once the returned func closes hs
	return func() {
		hs.Close()
		svc.stop()
	}, nil
}
