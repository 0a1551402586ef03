package main

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// What `fanout run --sandbox` runs on instead of production: an embedded
// Redis, the OneRoute sandbox in process, and waits short enough for a demo
// campaign to finish in seconds.

// sandboxDLRMaxAge is how long run --sandbox polls delivery reports; the
// sandbox leaves numbers ending in 9 pending for ever.
const sandboxDLRMaxAge = 3 * time.Second

// sandboxStatusFallbackAfter is how long run --sandbox waits for a
// WhatsApp or email status webhook before reading the Logs API.
const sandboxStatusFallbackAfter = time.Second

// startDemoRedis starts an in-memory Redis (miniredis) on a free port of the
// loopback. Its data goes when stop is called.
func startDemoRedis() (url string, stop func(), err error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return "", nil, fmt.Errorf("start embedded Redis: %w", err)
	}
	return "redis://" + mr.Addr() + "/0", mr.Close, nil
}

// startSandboxAPI serves the OneRoute sandbox on a free port of the
// loopback, with delivery reports final after half a second and WhatsApp
// messages read a quarter of a second later, before the status fallback;
// opts may change its options (run --webhooks sets its webhook URL).
func startSandboxAPI(opts ...func(*sandbox.Options)) (sb *sandbox.Server, baseURL string, stop func(), err error) {
	o := sandbox.Options{DLRDelay: 500 * time.Millisecond, ReadDelay: 250 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	sb = sandbox.New(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sb.Close()
		return nil, "", nil, err
	}
	hs := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln) //nolint:errcheck // http.ErrServerClosed once stop closes hs
	stop = func() {
		hs.Close()
		sb.Close()
	}
	return sb, "http://" + ln.Addr().String(), stop, nil
}

// useSandbox points cfg at the sandbox at baseURL, with a sandbox key, and
// shortens the waits for a demo.
func useSandbox(cfg *config.Config, baseURL string) {
	// Never send a real key to the sandbox, nor sandbox traffic to OneRoute.
	cfg.OneRoute.BaseURL = baseURL
	cfg.OneRoute.APIKey = config.Secret(sandbox.KeyPrefix + "run")
	cfg.Worker.PollInterval = 200 * time.Millisecond
	cfg.Worker.DLRInterval = 500 * time.Millisecond
	cfg.Worker.DLRMaxAge = sandboxDLRMaxAge
	cfg.Worker.StatusFallbackAfter = sandboxStatusFallbackAfter
	cfg.Worker.Concurrency = 10
}
