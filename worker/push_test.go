package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// countingPush is a OneRoute client that records when each push was sent.
// Its first lose sends fail ambiguously (written, no answer) without
// reaching the sandbox.
type countingPush struct {
	*oneroute.Client
	lose atomic.Int64
	mu   sync.Mutex
	at   []time.Time
	req  []oneroute.PushRequest
}

func (c *countingPush) SendPush(ctx context.Context, r oneroute.PushRequest) (string, error) {
	c.mu.Lock()
	c.at, c.req = append(c.at, time.Now()), append(c.req, r)
	c.mu.Unlock()
	if c.lose.Add(-1) >= 0 {
		return "", &oneroute.TransportError{Op: "send push", Written: true, Err: errors.New("connection reset")}
	}
	return c.Client.SendPush(ctx, r)
}

func (c *countingPush) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.at)
}

type pushBundle struct {
	ctx      context.Context
	sb       *sandbox.Server
	store    *storage.Store
	enq      *asynq.Client
	provider *countingPush
	deps     Deps
	opts     Options
}

// setupPush runs a real worker with the shared Redis rate limiter against
// the sandbox.
func setupPush(t *testing.T) *pushBundle {
	t.Helper()
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{})
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	rdb := srv.Client(t)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "push", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := &pushBundle{ctx: context.Background(), sb: sb, store: storage.New(rdb), enq: asynq.NewClientFromRedisClient(rdb),
		provider: &countingPush{Client: client}}
	b.deps = Deps{Store: b.store, Provider: b.provider, Enqueuer: b.enq, Limiter: ratelimit.NewRedis(rdb)}
	b.opts = Options{Concurrency: 10, PollInterval: 20 * time.Millisecond, RequestTimeout: time.Second, RetryBase: 100 * time.Millisecond}
	w := NewServer(rdb, b.deps, b.opts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return b
}

// campaign creates and enqueues a dispatched push campaign of n
// recipients in batches of 50: odd rows by customer id, even rows by
// email, each with its own title and url.
func (b *pushBundle) campaign(t *testing.T, id string, n int, rate *campaigns.Rate) []*campaigns.Batch {
	t.Helper()
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelPush, WidgetID: sandbox.WidgetID, Title: "Hi {{.name}}",
		Message: "Your order shipped", URL: "https://shop.example/o/{{.name}}", Recipients: "r.csv", Rate: rate}
	if _, err := b.store.Create(b.ctx, s); err != nil {
		t.Fatal(err)
	}
	var batches []*campaigns.Batch
	for seq := 0; seq*50 < n; seq++ {
		batch := &campaigns.Batch{Campaign: id, Seq: seq, Channel: s.Channel, WidgetID: s.WidgetID, Rate: rate}
		for row := seq*50 + 1; row <= min(seq*50+50, n); row++ {
			to := fmt.Sprintf("cust-%d", row)
			if row%2 == 0 {
				to = fmt.Sprintf("user%d@example.com", row)
			}
			name := fmt.Sprintf("u%d", row)
			batch.Items = append(batch.Items, campaigns.Item{Row: row, To: to,
				Content: &campaigns.Content{Subject: "Hi " + name, Text: "Your order shipped", URL: "https://shop.example/o/" + name}})
		}
		if _, err := b.store.AddBatch(b.ctx, id, seq, len(batch.Items), batch.Items[len(batch.Items)-1].Row); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, batch)
	}
	if err := b.store.FinishDispatch(b.ctx, id, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	for _, batch := range batches {
		if err := tasks.Enqueue(b.ctx, b.enq, tasks.Send(batch, tasks.Options{})); err != nil {
			t.Fatal(err)
		}
	}
	return batches
}

func (b *pushBundle) waitCompleted(t *testing.T, id string) campaigns.Progress {
	t.Helper()
	var p campaigns.Progress
	testwait.For(t, "campaign "+id+" completed", time.Minute, func() bool {
		var err error
		if p, err = b.store.Progress(b.ctx, id); err != nil {
			t.Fatal(err)
		}
		return p.State == campaigns.StateCompleted
	})
	return p
}

// A 200-recipient push campaign sends exactly 200 notifications (by
// customer id and by email), none twice, with exact counters; running its
// tasks again sends nothing.
func TestPushCampaign(t *testing.T) {
	t.Parallel()
	const n = 200
	b := setupPush(t)
	batches := b.campaign(t, "push200", n, nil)
	p := b.waitCompleted(t, "push200")
	st := b.sb.Stats()
	if st.ByMedium["push"] != n || st.Duplicates != 0 || st.Accepted != n {
		t.Fatalf("sandbox: %d pushes, %d accepted, %d duplicates; want %d, %d, 0", st.ByMedium["push"], st.Accepted, st.Duplicates, n, n)
	}
	if p.Sent != n || p.Failed != 0 || p.Unknown != 0 || p.Skipped != 0 {
		t.Errorf("counters: sent %d failed %d unknown %d skipped %d; want %d 0 0 0", p.Sent, p.Failed, p.Unknown, p.Skipped, n)
	}
	var byID, byEmail int
	b.provider.mu.Lock()
	for _, r := range b.provider.req {
		switch {
		case r.CustomerID != "" && r.Email == "":
			byID++
		case r.Email != "" && r.CustomerID == "":
			byEmail++
		}
		if r.WidgetID != sandbox.WidgetID || r.Title == "" || r.Message == "" || r.URL == "" {
			t.Errorf("request %+v: want widget, title, message and url", r)
		}
	}
	b.provider.mu.Unlock()
	if byID != n/2 || byEmail != n/2 {
		t.Errorf("%d pushes by customer id and %d by email; want %d each", byID, byEmail, n/2)
	}

	// Re-run every task, as a redelivery would: the ledger sends nothing.
	h := &PushHandler{newBatchSender(b.deps, b.opts.withDefaults(), nil)}
	for _, batch := range batches {
		if err := h.ProcessTask(b.ctx, tasks.Send(batch, tasks.Options{}).Task); err != nil {
			t.Fatalf("re-run batch %d: %v", batch.Seq, err)
		}
	}
	if got := b.provider.calls(); got != n {
		t.Errorf("after re-running the tasks: %d push requests, want %d", got, n)
	}
	if st := b.sb.Stats(); st.ByMedium["push"] != n || st.Duplicates != 0 {
		t.Errorf("after re-run: sandbox %d pushes, %d duplicates; want %d, 0", st.ByMedium["push"], st.Duplicates, n)
	}
}

// A push campaign is paced per widget: at rate.per_second 20, no one-second
// window holds more than 20 requests (loosely: 30), and 60 recipients take
// at least two seconds.
func TestPushRateLimited(t *testing.T) {
	t.Parallel()
	const n, perSecond = 60, 20
	b := setupPush(t)
	b.campaign(t, "pushrate", n, &campaigns.Rate{PerSecond: perSecond, Burst: perSecond})
	p := b.waitCompleted(t, "pushrate")
	if p.Sent != n {
		t.Fatalf("sent %d, want %d", p.Sent, n)
	}
	b.provider.mu.Lock()
	at := append([]time.Time(nil), b.provider.at...)
	b.provider.mu.Unlock()
	if len(at) != n {
		t.Fatalf("%d push requests, want %d", len(at), n)
	}
	first, last := at[0], at[0]
	most := 0
	for i, a := range at {
		if a.Before(first) {
			first = a
		}
		if a.After(last) {
			last = a
		}
		in := 0
		for _, c := range at[i:] {
			if !c.Before(a) && c.Sub(a) < time.Second {
				in++
			}
		}
		for _, c := range at[:i] {
			if !c.Before(a) && c.Sub(a) < time.Second {
				in++
			}
		}
		most = max(most, in)
	}
	if most > perSecond*3/2 {
		t.Errorf("%d requests within one second; the limit is %d per second", most, perSecond)
	}
	if d := last.Sub(first); d < 1500*time.Millisecond {
		t.Errorf("%d requests in %s at %d per second; want at least 1.5 s", n, d, perSecond)
	}
	t.Logf("%d pushes over %s, at most %d in any second", n, last.Sub(first).Round(time.Millisecond), most)
}

// A push whose answer is lost after it was written has no lookup: it ends
// unknown and is never sent again, as an email does.
func TestPushAmbiguousUnknown(t *testing.T) {
	t.Parallel()
	const n, lost = 100, 5
	b := setupPush(t)
	b.provider.lose.Store(lost)
	b.campaign(t, "pushlost", n, nil)
	p := b.waitCompleted(t, "pushlost")
	st := b.sb.Stats()
	if p.Sent != n-lost || p.Unknown != lost || p.Failed != 0 {
		t.Errorf("counters: sent %d unknown %d failed %d; want %d %d 0", p.Sent, p.Unknown, p.Failed, n-lost, lost)
	}
	if got := b.provider.calls(); got != n {
		t.Errorf("%d push requests, want %d (an unknown recipient is not resent)", got, n)
	}
	if st.ByMedium["push"] != n-lost || st.Duplicates != 0 {
		t.Errorf("sandbox: %d pushes, %d duplicates; want %d, 0", st.ByMedium["push"], st.Duplicates, n-lost)
	}
}

// Refusals that may pass (500s, 429s with Retry-After) are retried until
// every push is sent, once.
func TestPushWithFaults(t *testing.T) {
	t.Parallel()
	const n = 200
	b := setupPush(t)
	b.sb.SetFaults(sandbox.Faults{ErrorRate: 0.1, ThrottleRate: 0.05, RetryAfterS: 1})
	b.campaign(t, "pushfaults", n, nil)
	p := b.waitCompleted(t, "pushfaults")
	st := b.sb.Stats()
	if p.Sent != n || p.Unknown != 0 || p.Failed != 0 {
		t.Errorf("counters: sent %d unknown %d failed %d; want %d 0 0", p.Sent, p.Unknown, p.Failed, n)
	}
	if st.ByMedium["push"] != n || st.Duplicates != 0 {
		t.Errorf("sandbox: %d pushes, %d duplicates; want %d, 0", st.ByMedium["push"], st.Duplicates, n)
	}
	if st.Faults == 0 || st.Throttled == 0 {
		t.Fatalf("no faults injected (faults %d, throttled %d): the test proves nothing", st.Faults, st.Throttled)
	}
	t.Logf("%d pushes: %d requests, %d faults, %d throttled", n, st.SendRequests, st.Faults, st.Throttled)
}
