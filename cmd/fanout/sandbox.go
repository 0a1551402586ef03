package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

func cmdSandbox(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sandbox", "[flags]", `
Serves the fake OneRoute API: the same paths as https://api.oneroute.io, any
API key that starts with "test_", seeded channels and templates, and SMS
delivery decided by the recipient's last digit (0 undelivered, 9 stays
pending, others delivered after --dlr-delay).

  GET  /sandbox/stats    counters: requests, accepted, duplicates, by_medium, ...
  POST /sandbox/reset    clear counters and messages
  POST /sandbox/faults   inject faults, e.g. {"error_rate": 0.1, "latency_ms": 50}

Point fanout at it with ONEROUTE_BASE_URL=http://ADDR ONEROUTE_API_KEY=test_key.`)
	addr := fs.String("addr", "127.0.0.1:8765", "listen `address`")
	dlrDelay := fs.Duration("dlr-delay", 2*time.Second, "time until an SMS becomes delivered or undelivered")
	var f sandbox.Faults
	fs.IntVar(&f.LatencyMS, "latency-ms", 0, "added latency per API request, in ms")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "share of requests answered 500")
	fs.Float64Var(&f.ThrottleRate, "throttle-rate", 0, "share of requests answered 429 with Retry-After")
	fs.IntVar(&f.RetryAfterS, "retry-after-s", 1, "Retry-After of 429 answers, in seconds")
	fs.Float64Var(&f.HangRate, "hang-rate", 0, "share of sends accepted and then left hanging")
	fs.Float64Var(&f.ResetRate, "reset-rate", 0, "share of sends accepted and then reset")
	fs.IntVar(&f.RateLimitPerSec, "rate-limit", 0, "answer 429 above this many requests per second (0: none)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	sb := sandbox.New(sandbox.Options{DLRDelay: *dlrDelay, Faults: f})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stderr, "OneRoute sandbox on http://%s (API keys: test_*)\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
