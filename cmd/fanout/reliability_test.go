package main

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/worker"
)

// startWorkers starts n in-process workers on the bundle's Redis and
// sandbox, stopped when the test ends.
func (c *chaosBundle) startWorkers(t *testing.T, n int, opts worker.Options) {
	t.Helper()
	client, err := oneroute.New(oneroute.Options{BaseURL: c.api.URL, APIKey: "test_reliability", Timeout: opts.RequestTimeout})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		deps := worker.Deps{Store: c.store, Provider: client, Enqueuer: asynq.NewClientFromRedisClient(c.rdb),
			Limiter: ratelimit.NewRedis(c.rdb), Logger: zerolog.Nop()}
		w := worker.NewServer(c.rdb, deps, opts)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
}

// fastOptions are worker options for tests: short timeouts and polls.
func fastOptions() worker.Options {
	return worker.Options{Concurrency: 40, RequestTimeout: time.Second, MaxAttempts: 20, RetryBase: 100 * time.Millisecond,
		PollInterval: 100 * time.Millisecond, DLRInterval: 200 * time.Millisecond, DLRMaxAge: 30 * time.Second, ShutdownTimeout: 5 * time.Second}
}

// A gateway that answers 502 or 504 after OneRoute accepted the message
// (10% of sends) must not cause a resend: the answer is ambiguous, so the
// recipient is reconciled with the provider first. Every recipient ends
// final, none twice at the provider, and the counters equal the ledger.
// 300 recipients in make test, 5,000 under make chaos.
func TestGatewayErrorAfterAcceptSendsNoDuplicate(t *testing.T) {
	t.Parallel()
	n := 300
	if chaos() {
		n = 5_000
	}
	c := setupChaos(t, redistest.Options{}, 100*time.Millisecond)
	c.sb.SetFaults(sandbox.Faults{GatewayRate: 0.10})
	c.startWorkers(t, 2, fastOptions())
	start := time.Now()
	res := c.dispatch(t, writeCampaign(t, n, ""), 50)
	p := c.waitFinal(t, res.ID, soakWait())
	st := c.sb.Stats()
	t.Logf("gateway 502/504 after accept at 10%%: %d recipients in %s: sent %d failed %d unknown %d; sandbox send requests %d, accepted %d, duplicates %d, gateway faults %d",
		n, time.Since(start).Round(time.Millisecond), p.Sent, p.Failed, p.Unknown, st.SendRequests, st.Accepted, st.Duplicates, st.Faults)
	c.checkLedger(t, p)
	if st.Faults == 0 {
		t.Fatalf("no gateway fault was injected; the test proves nothing")
	}
	if st.Duplicates != 0 {
		t.Errorf("sandbox saw %d duplicate messages, want 0", st.Duplicates)
	}
	if st.Accepted != p.Sent || p.Sent != int64(n) {
		t.Errorf("sandbox accepted %d, ledger sent %d, want both %d", st.Accepted, p.Sent, n)
	}
}
