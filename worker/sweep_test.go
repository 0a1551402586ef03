package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// FetchSMSMessages: the fake provider lists nothing; sweeps are tested
// against the sandbox.
func (f *fakeProvider) FetchSMSMessages(ctx context.Context, ch, status string, p oneroute.Page) ([]oneroute.SMSMessage, *oneroute.Meta, error) {
	return nil, nil, &oneroute.APIError{Status: 503, Message: "no list"}
}

// sweepBundle is a testBundle whose handlers talk to the sandbox.
type sweepBundle struct {
	*testBundle
	rdb    *redis.Client
	sb     *sandbox.Server
	client *oneroute.Client
}

// setupSweep runs handlers against the sandbox (final reports at once,
// numbers ending in 9 pending for ever) with a fake enqueuer.
func setupSweep(t *testing.T, o Options) *sweepBundle {
	t.Helper()
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: -1})
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "sweep"})
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client(t)
	b := &sweepBundle{testBundle: &testBundle{ctx: context.Background(), store: storage.New(rdb), enq: &fakeEnqueuer{}, opts: o}, rdb: rdb, sb: sb, client: client}
	b.mux = NewMux(Deps{Store: b.store, Provider: client, Enqueuer: b.enq}, o)
	return b
}

// send creates an SMS campaign of n numbers and runs its batches, as the
// dispatcher and workers would.
func (b *sweepBundle) send(t *testing.T, id string, n int) {
	t.Helper()
	for _, batch := range smsCampaign(t, b.store, id, n) {
		if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.SendType(batch.Channel), tasks.Encode(batch))); err != nil {
			t.Fatal(err)
		}
	}
}

// smsCampaign creates a dispatched SMS campaign on the sandbox's channel of
// n personalised texts to numbers whose last digits run 1, 2, ... 9, 0 in
// turn, and returns its batches of 50.
func smsCampaign(t *testing.T, store *storage.Store, id string, n int) []*campaigns.Batch {
	t.Helper()
	ctx := context.Background()
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelSMS, ChannelID: sandbox.SMSChannelID, Message: "hi {{.x}}", Recipients: "r.csv"}
	if _, err := store.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	var batches []*campaigns.Batch
	for seq := 0; seq*50 < n; seq++ {
		batch := &campaigns.Batch{Campaign: id, Seq: seq, Channel: s.Channel, ChannelID: s.ChannelID}
		for row := seq*50 + 1; row <= min(seq*50+50, n); row++ {
			to := fmt.Sprintf("+234803%07d", row)
			batch.Items = append(batch.Items, campaigns.Item{Row: row, To: to, Content: &campaigns.Content{Text: "hi " + to}})
		}
		if _, err := store.AddBatch(ctx, id, seq, len(batch.Items), batch.Items[len(batch.Items)-1].Row); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, batch)
	}
	if err := store.FinishDispatch(ctx, id, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	return batches
}

// sweepUntilDone runs the campaign's sweep task the way asynq would: again
// after the delay each run asks for, until it ends. It returns the runs.
func (b *sweepBundle) sweepUntilDone(t *testing.T, id string, deadline time.Duration) int {
	t.Helper()
	sweeps := b.enq.take(tasks.TypeDLRSweep)
	if len(sweeps) == 0 {
		t.Fatal("no sweep enqueued")
	}
	task := sweeps[0]
	delay := RetryDelay(time.Second)
	end := time.Now().Add(deadline)
	for runs := 1; ; runs++ {
		err := b.mux.ProcessTask(b.ctx, task)
		if err == nil {
			return runs
		}
		if IsFailure(err) {
			t.Fatalf("sweep run %d failed: %v", runs, err)
		}
		if time.Now().After(end) {
			t.Fatalf("sweep still running after %s and %d runs: %v; %+v", deadline, runs, err, b.progress(t, id))
		}
		wait := min(delay(0, err, task), time.Until(end))
		select {
		case <-time.After(wait):
		case <-b.ctx.Done():
			t.Fatal(b.ctx.Err())
		}
	}
}

// checkOutcomes fails unless the campaign's delivery counters are the
// sandbox's own outcomes: delivered and undelivered as it reports them,
// and every message it keeps pending expired.
func checkOutcomes(t *testing.T, p campaigns.Progress, st sandbox.Stats) {
	t.Helper()
	if p.State != campaigns.StateCompleted || p.Delivered != st.SMSStatus["delivered"] || p.Undelivered != st.SMSStatus["undelivered"] ||
		p.DLRExpired != st.SMSStatus["pending"] || p.Sent != st.Accepted {
		t.Fatalf("campaign %s: sent %d, delivered %d, undelivered %d, dlr_expired %d; sandbox: accepted %d, %v",
			p.State, p.Sent, p.Delivered, p.Undelivered, p.DLRExpired, st.Accepted, st.SMSStatus)
	}
}

// A sweep settles a campaign's delivery reports from pages of the channel's
// message list: its counts equal the sandbox's outcomes, the pending ones
// expire at DLRMaxAge, no report is read on its own, and it takes far
// fewer than 0.1 requests per message.
func TestSweepMatchesTheSandbox(t *testing.T) {
	t.Parallel()
	const n = 1200
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: 2 * time.Second, SweepPageSize: 100})
	b.send(t, "sw", n)
	if polls := b.enq.take(tasks.TypeDLRPoll); len(polls) != 0 {
		t.Fatalf("%d dlr:poll tasks enqueued; sends enqueue the sweep only", len(polls))
	}
	runs := b.sweepUntilDone(t, "sw", 30*time.Second)
	st := b.sb.Stats()
	checkOutcomes(t, b.progress(t, "sw"), st)
	if st.DLRRequests != 0 {
		t.Errorf("%d per-message report requests; the sandbox's pending ones are all listed", st.DLRRequests)
	}
	if perMsg := float64(st.SMSListRequests+st.DLRRequests) / n; perMsg > 0.1 {
		t.Errorf("%.3f requests per message (%d list, %d dlr), want <= 0.1", perMsg, st.SMSListRequests, st.DLRRequests)
	}
	w, _ := b.store.LoadSweep(b.ctx, "sw")
	if w.Pages != st.SMSListRequests || w.Lookups != st.DLRRequests {
		t.Errorf("sweep memory counts %d pages and %d lookups; the sandbox saw %d and %d", w.Pages, w.Lookups, st.SMSListRequests, st.DLRRequests)
	}
	t.Logf("%d runs, %d list requests for %d messages", runs, st.SMSListRequests, n)
}

// A report that turned final after the sweep stopped looking at fresh
// messages, and is in no list the sweep reads, is read on its own before
// it would expire.
func TestSweepLooksUpTheMissing(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: time.Minute})
	b.send(t, "miss", 20)
	sweep := b.enq.take(tasks.TypeDLRSweep)[0]
	// As if the sends had ended 10 minutes ago and the last pass over fresh
	// messages had found these reports still pending: now final, they are
	// in no list the stragglers' pass reads.
	ageCampaign(t, b, "miss", 10*time.Minute)
	now := time.Now().UnixMilli()
	if err := b.store.SaveSweep(b.ctx, "miss", storage.Sweep{Floor: now, FreshAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := b.mux.ProcessTask(b.ctx, sweep); err != nil && IsFailure(err) {
		t.Fatal(err)
	}
	p := b.progress(t, "miss")
	st := b.sb.Stats()
	checkOutcomes(t, p, st)
	if st.DLRRequests != p.Delivered+p.Undelivered {
		t.Errorf("%d per-message reads; want one per final report (%d)", st.DLRRequests, p.Delivered+p.Undelivered)
	}
}

// xBucket is storage's index bucket of a provider id (FNV-1a mod 1024,
// pinned by storage's TestKeySpace).
func xBucket(pid string) int {
	h := fnv.New32a()
	h.Write([]byte(pid))
	return int(h.Sum32() % 1024)
}

// ageCampaign moves the campaign's send times back by d, as if its sends
// had ended d ago.
func ageCampaign(t *testing.T, b *sweepBundle, id string, d time.Duration) {
	t.Helper()
	for _, f := range []string{"started_at", "settled_at", "updated_at"} {
		if err := b.rdb.HIncrBy(b.ctx, "fanout:{"+id+"}", f, -d.Milliseconds()).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// A 429 while listing puts the sweep off for Retry-After without counting
// a failure, and records nothing wrong.
func TestSweepHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: time.Minute})
	b.send(t, "thr", 10)
	b.sb.SetFaults(sandbox.Faults{ThrottleRate: 1, RetryAfterS: 7})
	sweep := b.enq.take(tasks.TypeDLRSweep)[0]
	err := b.mux.ProcessTask(b.ctx, sweep)
	var nf *notFailure
	if !errors.As(err, &nf) || IsFailure(err) {
		t.Fatalf("sweep answered %v; want a not-a-failure wait", err)
	}
	if d := RetryDelay(time.Second)(0, err, sweep); d != 7*time.Second {
		t.Fatalf("next run in %s, want Retry-After's 7s", d)
	}
	if p := b.progress(t, "thr"); p.Delivered+p.Undelivered+p.DLRExpired != 0 {
		t.Fatalf("progress %+v", p)
	}
}

// A 5xx late in a campaign, when most passes have been idle, puts the sweep
// off by a short backoff, not by minutes: the pass it interrupted may be the
// one that expires or looks up the last reports (the soak under provider
// faults once ran out of its 10 minutes waiting on such backoffs).
func TestSweepErrorBackoffStaysShortAfterIdlePasses(t *testing.T) {
	t.Parallel()
	o := Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: time.Minute}
	b := setupSweep(t, o)
	b.send(t, "idle", 10)
	if err := b.store.SaveSweep(b.ctx, "idle", storage.Sweep{Idle: 30, FreshAt: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	b.sb.SetFaults(sandbox.Faults{ErrorRate: 1})
	sweep := b.enq.take(tasks.TypeDLRSweep)[0]
	err := b.mux.ProcessTask(b.ctx, sweep)
	if err == nil || IsFailure(err) {
		t.Fatalf("sweep answered %v; want a not-a-failure wait", err)
	}
	// DLRInterval << 3, plus Backoff's jitter of at most a quarter.
	most := o.DLRInterval << 3 * 5 / 4
	if d := RetryDelay(time.Second)(0, err, sweep); d > most || d <= 0 {
		t.Fatalf("next run in %s after a 5xx with 30 idle passes, want at most %s", d, most)
	}
}

// An upgrade mid-campaign loses nothing: rows accepted before the index
// existed (no entry) and polled by dlr:poll tasks queued then are settled
// by those polls, the rest by the sweep, and the sweep waits for both.
func TestSweepBesideOldPolls(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: time.Second})
	b.send(t, "upg", 100)
	// Rows 1-50 were accepted by the old code: no index entries, one poll.
	first := make([]int, 50)
	for i := range first {
		first[i] = i + 1
	}
	entries, err := b.store.Ledger(b.ctx, "upg", first)
	if err != nil {
		t.Fatal(err)
	}
	var old []tasks.DLRItem
	for _, e := range entries {
		if e.State != storage.LedgerAccepted {
			t.Fatalf("row %d: state %q", e.Row, e.State)
		}
		old = append(old, tasks.DLRItem{Row: e.Row, ID: e.Value})
	}
	for _, it := range old {
		if err := b.rdb.HDel(b.ctx, fmt.Sprintf("fanout:{upg}:x:%d", xBucket(it.ID)), it.ID).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if rows, _ := b.store.RowsOf(b.ctx, "upg", []string{old[0].ID, old[49].ID}); rows[0] != -1 || rows[1] != -1 {
		t.Fatalf("old rows still indexed: %v", rows)
	}
	poll := tasks.Poll(&tasks.DLRPoll{Campaign: "upg", Key: "b0-old", Since: time.Now().Unix(), Items: old}, tasks.Options{})
	if err := b.mux.ProcessTask(b.ctx, poll.Task); err != nil {
		t.Fatal(err)
	}
	// The poll's pending rows come back in a later poll, which expires them.
	for _, next := range b.enq.take(tasks.TypeDLRPoll) {
		var p tasks.DLRPoll
		if err := tasks.Decode(next.Payload(), &p); err != nil {
			t.Fatal(err)
		}
		p.Since = time.Now().Add(-time.Hour).Unix()
		if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.TypeDLRPoll, tasks.Encode(&p))); err != nil {
			t.Fatal(err)
		}
	}
	b.sweepUntilDone(t, "upg", 30*time.Second)
	checkOutcomes(t, b.progress(t, "upg"), b.sb.Stats())
}

// Rows awaited outside the index (its keys expired, or accepted before it
// existed and their polls lost) still expire once the grace after
// DLRMaxAge has passed: the campaign always completes.
func TestSweepExpiresRowsOutsideTheIndex(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: time.Minute})
	b.send(t, "orph", 20)
	keys, err := b.rdb.Keys(b.ctx, "fanout:{orph}:x:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("index keys %v, %v", keys, err)
	}
	if err := b.rdb.Del(b.ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	sweep := b.enq.take(tasks.TypeDLRSweep)[0]
	ageCampaign(t, b, "orph", time.Minute+30*time.Minute)
	if err := b.mux.ProcessTask(b.ctx, sweep); err == nil || IsFailure(err) {
		t.Fatalf("sweep within the grace: %v; want a wait", err)
	}
	if p := b.progress(t, "orph"); p.DLRExpired != 0 {
		t.Fatalf("expired %d within the grace", p.DLRExpired)
	}
	ageCampaign(t, b, "orph", time.Hour)
	if err := b.mux.ProcessTask(b.ctx, sweep); err != nil {
		t.Fatalf("sweep after the grace: %v; want the end", err)
	}
	if p := b.progress(t, "orph"); p.DLRExpired != 20 || p.State != campaigns.StateCompleted {
		t.Fatalf("progress %+v; want all 20 dlr_expired, completed", p)
	}
}

// End to end (asynq, a worker server, the sandbox): a personalised SMS
// campaign completes with delivered, undelivered and dlr_expired equal to
// the sandbox's own outcomes, and its delivery reports cost at most 0.1
// provider requests per message (issue 9).
func TestDeliveryReportsInBulk(t *testing.T) {
	t.Parallel()
	const n = 3000
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: 200 * time.Millisecond})
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	rdb := srv.Client(t)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "bulk"})
	if err != nil {
		t.Fatal(err)
	}
	store := storage.New(rdb)
	enq := asynq.NewClientFromRedisClient(rdb)
	w := NewServer(rdb, Deps{Store: store, Provider: client, Enqueuer: enq},
		Options{Concurrency: 10, PollInterval: 20 * time.Millisecond, DLRInterval: 200 * time.Millisecond, DLRMaxAge: 3 * time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx := context.Background()
	for _, batch := range smsCampaign(t, store, "bulk", n) {
		if err := tasks.Enqueue(ctx, enq, tasks.Send(batch, tasks.Options{})); err != nil {
			t.Fatal(err)
		}
	}
	var p campaigns.Progress
	testwait.For(t, "the campaign completed", 2*time.Minute, func() bool {
		if p, err = store.Progress(ctx, "bulk"); err != nil {
			t.Fatal(err)
		}
		return p.State == campaigns.StateCompleted
	})
	st := sb.Stats()
	if st.Duplicates != 0 {
		t.Fatalf("the sandbox saw %d duplicates", st.Duplicates)
	}
	checkOutcomes(t, p, st)
	reqs := st.SMSListRequests + st.DLRRequests
	t.Logf("%d messages: %d list requests, %d per-message report requests (%.4f per message)", n, st.SMSListRequests, st.DLRRequests, float64(reqs)/n)
	if float64(reqs) > 0.1*n {
		t.Errorf("%d delivery-report requests for %d messages, more than 0.1 per message", reqs, n)
	}
}

// OneRoute publishes no largest page size: when it refuses the sweep's
// pages, the sweep goes on with pages of 100 and still settles everything.
func TestSweepFallsBackToSmallPages(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: 2 * time.Second,
		SweepPageSize: oneroute.MaxPageSize + 1}) // the sandbox refuses it with a 400
	b.send(t, "small", 300)
	b.sweepUntilDone(t, "small", 30*time.Second)
	checkOutcomes(t, b.progress(t, "small"), b.sb.Stats())
	if w, _ := b.store.LoadSweep(b.ctx, "small"); w.PageSize != smallPage {
		t.Fatalf("page size %d after a refusal, want %d", w.PageSize, smallPage)
	}
}
