package main

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/recipients"
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

// dispatchKeeping expands a spec file as fanout dispatch does: each batch
// task's copy is kept for the auditor.
func (c *chaosBundle) dispatchKeeping(t *testing.T, path string, batch int) dispatcher.Result {
	t.Helper()
	spec, err := campaigns.LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := recipients.OpenSource(spec.RecipientsPath(), recipients.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	enq := worker.KeepCopies(asynq.NewClientFromRedisClient(c.rdb), c.store)
	res, err := dispatcher.Dispatch(c.ctx, c.store, enq, spec, src, dispatcher.Options{BatchSize: batch, MaxAttempts: 20})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A batch task deleted and another archived from outside fanout (the
// Asynq UI) before any worker ran them do not strand the campaign: the
// auditor finds the campaign stalled, re-creates the deleted task from its
// copy and runs the archived one again, and the campaign completes on its
// own within 60 s, every recipient sent once.
func TestDeletedAndArchivedTasksDoNotStrand(t *testing.T) {
	t.Parallel()
	c := setupChaos(t, redistest.Options{}, 100*time.Millisecond)
	const n = 200
	res := c.dispatchKeeping(t, writeCampaign(t, n, ""), 50)
	insp := asynq.NewInspectorFromRedisClient(c.rdb)
	if err := insp.DeleteTask("sms", res.ID+":b0"); err != nil {
		t.Fatal(err)
	}
	if err := insp.ArchiveTask("sms", res.ID+":b1"); err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	c.startWorkers(t, 2, opts)
	aud := worker.NewAuditor(c.rdb, c.store, zerolog.Nop(), worker.AuditOptions{Interval: 500 * time.Millisecond, RequestTimeout: opts.RequestTimeout})
	ctx, stop := context.WithCancel(c.ctx)
	done := make(chan struct{})
	go func() { defer close(done); aud.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	start := time.Now()
	p := c.waitFinal(t, res.ID, 60*time.Second)
	st := c.sb.Stats()
	t.Logf("deleted b0 and archived b1 of %d recipients: completed %s after the workers started; sent %d, accepted %d, duplicates %d",
		n, time.Since(start).Round(100*time.Millisecond), p.Sent, st.Accepted, st.Duplicates)
	c.checkLedger(t, p)
	if p.State != campaigns.StateCompleted || p.Sent != n || st.Accepted != n || st.Duplicates != 0 {
		t.Errorf("state %s sent %d accepted %d duplicates %d, want completed %d %d 0", p.State, p.Sent, st.Accepted, st.Duplicates, n, n)
	}
}

// cancel settles every recipient at once, even those whose task was
// deleted outside fanout and will never run: sent + failed + unknown +
// skipped = total right after the command, and nothing is sent afterwards.
func TestCancelSettlesRowsOfDeletedTasks(t *testing.T) {
	t.Parallel()
	c := setupChaos(t, redistest.Options{}, 100*time.Millisecond)
	res := c.dispatchKeeping(t, writeCampaign(t, 120, ""), 50)
	insp := asynq.NewInspectorFromRedisClient(c.rdb)
	if err := insp.DeleteTask("sms", res.ID+":b0"); err != nil {
		t.Fatal(err)
	}
	cli := setup(t)
	cli.env["REDIS_URL"] = c.redis.URL()
	if code := cli.run(t, "cancel", res.ID); code != exitOK {
		t.Fatalf("fanout cancel: exit %d\n%s%s", code, cli.stdout.String(), cli.stderr.String())
	}
	out := cli.stdout.String()
	p, err := c.store.Progress(c.ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fanout cancel: %q; skipped %d of %d", out, p.Skipped, p.Total)
	if p.State != campaigns.StateCancelled || p.Skipped != 120 || p.Sent+p.Failed+p.Unknown+p.Skipped != p.Total {
		t.Fatalf("after cancel: %+v; want every one of 120 skipped", p)
	}
	c.checkLedger(t, p)
	c.startWorkers(t, 1, fastOptions())
	testwait.For(t, "the remaining tasks to drain", 30*time.Second, func() bool {
		q, err := insp.GetQueueInfo("sms")
		return err == nil && q.Pending+q.Active+q.Scheduled+q.Retry == 0
	})
	if st := c.sb.Stats(); st.Accepted != 0 {
		t.Errorf("sandbox accepted %d messages of a cancelled campaign", st.Accepted)
	}
}
