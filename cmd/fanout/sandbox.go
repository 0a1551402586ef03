package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

func cmdSandbox(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sandbox", "[flags]", `
Serves the fake OneRoute API: the same paths as https://api.oneroute.io, any
API key that starts with "test_", seeded channels and templates, delivery
decided by the recipient's last digit (0 undelivered, 9 stays pending,
others delivered after --dlr-delay; a WhatsApp message to 2-7 then read
after --read-delay), the 24-hour WhatsApp session window,
OneOTP, campaign logs and, with --webhook-url, signed webhooks.

  GET  /sandbox/stats          counters: requests, accepted, duplicates, by_medium, ...
  POST /sandbox/reset          clear counters, messages, logs, OTPs
  POST /sandbox/faults         inject faults, e.g. {"error_rate": 0.1, "latency_ms": 50}
  POST /sandbox/inbound        a customer's WhatsApp message {"from", "message"}
  GET  /sandbox/otp/{key}      read an issued OTP
  POST /sandbox/otp/{key}/ussd verify an OTP by USSD (pushes otpVerified)

Point fanout at it with ONEROUTE_BASE_URL=http://ADDR ONEROUTE_API_KEY=test_key.
See docs/oneroute.md.`)
	addr := fs.String("addr", "127.0.0.1:8765", "listen `address`")
	dlrDelay := fs.Duration("dlr-delay", 2*time.Second, "time until a message reaches its final delivery status")
	readDelay := fs.Duration("read-delay", time.Second, "time after its delivery until a WhatsApp message to a number ending in 2-7 is read")
	campaignDelay := fs.Duration("campaign-delay", 200*time.Millisecond, "time until a WhatsApp campaign is processed")
	webhookURL := fs.String("webhook-url", "", "POST signed events (smsDeliveryReport, messageStatus, campaignCompleted, newMessage, otpVerified) to this `URL`")
	webhookSecret := fs.String("webhook-secret", "", "HMAC-SHA512 `secret` of x-oneroute-signature (default "+sandbox.DefaultWebhookSecret+")")
	maxMessages := fs.Int("max-messages", 1_000_000, "SMS kept for delivery reports and message lists, oldest forgotten first")
	var f sandbox.Faults
	fs.IntVar(&f.LatencyMS, "latency-ms", 0, "added latency per API request, in ms")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "share of requests answered 500")
	fs.Float64Var(&f.ThrottleRate, "throttle-rate", 0, "share of requests answered 429 with Retry-After")
	fs.IntVar(&f.RetryAfterS, "retry-after-s", 1, "Retry-After of 429 answers, in seconds")
	fs.Float64Var(&f.HangRate, "hang-rate", 0, "share of sends accepted and then left hanging until the client gives up")
	fs.IntVar(&f.HangMS, "hang-ms", 0, "bound a hang to this many ms (0: until the client goes away)")
	fs.Float64Var(&f.ResetRate, "reset-rate", 0, "share of sends accepted and then reset")
	fs.IntVar(&f.RateLimitPerSec, "rate-limit", 0, "answer 429 above this many requests per second (0: none)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	if *webhookURL != "" {
		if u, err := url.Parse(*webhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &usageError{fmt.Sprintf("--webhook-url %q: want http(s)://host[:port]/path", *webhookURL)}
		}
	}
	stopProfile, err := startProfile(e.getenv, e.stderr)
	if err != nil {
		return &inputError{err}
	}
	defer stopProfile()
	sb := sandbox.New(sandbox.Options{DLRDelay: *dlrDelay, ReadDelay: *readDelay, CampaignDelay: *campaignDelay, Faults: f,
		WebhookURL: *webhookURL, WebhookSecret: *webhookSecret, MaxMessages: *maxMessages})
	defer sb.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(e.stderr, "OneRoute sandbox on http://%s (API keys: test_*)\n", ln.Addr())
	if *webhookURL != "" {
		fmt.Fprintf(e.stderr, "webhooks to %s, signed with the secret given\n", *webhookURL)
	}
	go func() { //nolint:gosec // G118: ctx is done here; the shutdown needs its own deadline
		<-ctx.Done()
		sb.Close() // release hung requests so Shutdown can finish
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // past the deadline the process exits anyway
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
