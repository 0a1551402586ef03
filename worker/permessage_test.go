package worker

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// campaigns.Channel.PerMessage, by which the dispatcher sizes tasks, says
// exactly what the channel handlers do: one request per recipient, or one
// for the batch.
func TestPerMessageMatchesHandlers(t *testing.T) {
	t.Parallel()
	s := &batchSender{}
	handlers := map[campaigns.Channel]channelFunc{
		campaigns.ChannelSMS:              (&SMSHandler{s}).send,
		campaigns.ChannelEmail:            (&EmailHandler{s}).send,
		campaigns.ChannelPush:             (&PushHandler{s}).send,
		campaigns.ChannelWhatsAppTemplate: (&WhatsAppHandler{s}).send,
		campaigns.ChannelWhatsAppCampaign: (&WhatsAppCampaignHandler{s}).send,
	}
	for ch, send := range handlers {
		for _, personal := range []bool{false, true} {
			b := &campaigns.Batch{Channel: ch}
			if !personal {
				b.Shared = &campaigns.Content{Text: "hi"}
			}
			if got, want := send(b).eachFunc != nil, ch.PerMessage(personal); got != want {
				t.Errorf("%s (personalised %v): handler sends one request per message: %v; PerMessage says %v", ch, personal, got, want)
			}
		}
	}
}

// The deadline guard is one request's timeout plus lateMargin, or half of
// a short task's time; a task without a deadline has none.
func TestDeadlineGuard(t *testing.T) {
	t.Parallel()
	long, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	short, cancel2 := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel2()
	if g := deadlineGuard(long, 15*time.Second); g != 15*time.Second+lateMargin {
		t.Errorf("an hour-long task: guard %s; want %s", g, 15*time.Second+lateMargin)
	}
	if g := deadlineGuard(short, 15*time.Second); g <= 0 || g > 2*time.Second {
		t.Errorf("a 4 s task: guard %s; want at most half of 4 s", g)
	}
	if g := deadlineGuard(context.Background(), 15*time.Second); g != 0 || late(context.Background(), time.Hour) {
		t.Errorf("no deadline: guard %s, late %v; want none", g, late(context.Background(), time.Hour))
	}
}

// A task whose deadline is within its guard sends nothing more after its
// first group (unpaced) or its first request (paced): the rest goes to a
// follow-up task, not into requests the deadline would cut off. A task
// whose deadline is beyond its guard sends everything.
func TestLateTaskDefersTheRest(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	b.campaign(t, "late", 1) // rows 1..10
	for _, tc := range []struct {
		guard     time.Duration // against a deadline 30 minutes away
		paced     bool
		wantCalls int
	}{{time.Hour, false, 4}, {time.Minute, false, 10}, {time.Hour, true, 1}, {time.Minute, true, 10}} {
		s := &batchSender{deps: Deps{Store: b.store, Limiter: ratelimit.NewMemory(time.Now)}, drain: make(chan struct{}),
			opts: Options{RequestTimeout: time.Second, PerCallConcurrency: 4}, senders: newSenders(4)}
		a := &attempt{s: s, b: &campaigns.Batch{Campaign: "late"}, token: storage.NewToken(), guard: tc.guard}
		var items []campaigns.Item
		var rows []int
		for r := 1; r <= 10; r++ {
			items, rows = append(items, campaigns.Item{Row: r}), append(rows, r)
		}
		if _, err := b.store.Claim(b.ctx, "late", a.token, rows, time.Minute); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int32
		call := func(context.Context, campaigns.Item) ([]oneroute.Result, error) {
			calls.Add(1)
			return []oneroute.Result{{Status: "success", Response: "id"}}, nil
		}
		pc := &pacer{}
		if tc.paced {
			pc = newPacer(a, ratelimit.Limit{PerSecond: 1000, Burst: 100})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		out := a.sendEach(ctx, items, call, pc)
		cancel()
		if int(calls.Load()) != tc.wantCalls {
			t.Fatalf("guard %s, paced %v: %d calls; want %d", tc.guard, tc.paced, calls.Load(), tc.wantCalls)
		}
		for i, o := range out[tc.wantCalls:] {
			if o.deferred <= 0 || !strings.Contains(o.reason, "deadline") {
				t.Errorf("guard %s, item %d: %+v; want deferred to a follow-up task", tc.guard, tc.wantCalls+i, o)
			}
		}
		// Let the next case claim the rows again.
		if _, err := b.store.Record(b.ctx, "late", storage.ModeSend, a.token, releaseAll(items)); err != nil {
			t.Fatal(err)
		}
	}
}

// An unpaced batch with Request set goes out in calls of at most Request
// recipients. A call refused whole, or whose recipients are all refused for
// one reason (the last call included), pauses the campaign: the rest is not
// sent, and nobody is recorded failed for a campaign-level mistake.
func TestBatchIsSentInCallsOfRequest(t *testing.T) {
	t.Parallel()
	refuseEach := func(to []string) ([]oneroute.Result, error) {
		res := make([]oneroute.Result, len(to))
		for i := range res {
			res[i] = oneroute.Result{Status: "failed", Response: "template paused"}
		}
		return res, nil
	}
	for _, tc := range []struct {
		name       string
		answer     func(call int, to []string) ([]oneroute.Result, error)
		wantCalls  []int
		sent, left int // left: carried by the follow-up task, for after the pause
	}{
		{name: "AllSent", wantCalls: []int{50, 50, 20}, sent: 120},
		{name: "RefusedWhole", wantCalls: []int{50}, left: 120, answer: func(int, []string) ([]oneroute.Result, error) {
			return nil, &oneroute.APIError{Status: 400, Message: "template not approved"}
		}},
		{name: "EachRefused", wantCalls: []int{50}, left: 120, answer: func(_ int, to []string) ([]oneroute.Result, error) { return refuseEach(to) }},
		{name: "LastEachRefused", wantCalls: []int{50, 50, 20}, sent: 100, left: 20, answer: func(call int, to []string) ([]oneroute.Result, error) {
			if call == 3 {
				return refuseEach(to)
			}
			return ok(to), nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s := spec("calls-"+tc.name, campaigns.ChannelWhatsAppTemplate)
			to := phones(120)
			batch := b.campaign(t, s, to...)
			batch.Request = 50
			var n atomic.Int32
			calls := b.templateCalls(func(to []string) ([]oneroute.Result, error) {
				call := int(n.Add(1))
				if tc.answer != nil {
					return tc.answer(call, to)
				}
				return ok(to), nil
			})
			if err := b.run(t, batch); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(calls()) != fmt.Sprint(tc.wantCalls) {
				t.Errorf("calls of %v; want %v", calls(), tc.wantCalls)
			}
			p := b.progress(t, s.ID)
			left := b.childRecipients(t, tasks.TypeWhatsAppTemplate)
			paused := tc.left > 0
			if (p.State == campaigns.StatePaused) != paused || p.Failed != 0 || p.Sent != int64(tc.sent) || left != tc.left {
				t.Errorf("state %s, failed %d, sent %d, %d left; want paused %v, 0 failed, %d sent, %d left", p.State, p.Failed, p.Sent, left, paused, tc.sent, tc.left)
			}
		})
	}
}

// Between the calls of a batch, as between per-message requests, no new
// call starts once the worker is stopping, and none once the task's
// deadline is too near for it: the rest is given back unsent, or to a
// follow-up task.
func TestCallsStopWhenDrainingOrLate(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	b.campaign(t, "stop", 12) // rows 1..120
	for ci, tc := range []struct {
		name  string
		guard time.Duration // against a deadline 30 minutes away
		drain bool          // the worker starts stopping during the first call
		check func(o outcome) bool
	}{
		{"draining", time.Minute, true, func(o outcome) bool { return o.released }},
		{"late", time.Hour, false, func(o outcome) bool { return o.deferred > 0 && strings.Contains(o.reason, "deadline") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drain := make(chan struct{})
			s := &batchSender{deps: Deps{Store: b.store}, drain: drain, opts: Options{RequestTimeout: time.Second}}
			a := &attempt{s: s, b: &campaigns.Batch{Campaign: "stop", Request: 50}, token: storage.NewToken(), guard: tc.guard}
			var items []campaigns.Item
			var rows []int
			for r := ci*60 + 1; r <= ci*60+60; r++ {
				items, rows = append(items, campaigns.Item{Row: r}), append(rows, r)
			}
			if _, err := b.store.Claim(b.ctx, "stop", a.token, rows, time.Minute); err != nil {
				t.Fatal(err)
			}
			calls := 0
			call := func(_ context.Context, its []campaigns.Item) ([]oneroute.Result, error) {
				calls++
				if tc.drain {
					close(drain)
				}
				res := make([]oneroute.Result, len(its))
				for i := range res {
					res[i] = oneroute.Result{Status: "success", Response: "id"}
				}
				return res, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			out := a.sendChunks(ctx, items, call, &pacer{})
			if calls != 1 || len(out) != 60 {
				t.Fatalf("%d calls, %d outcomes; want 1 call, 60 outcomes", calls, len(out))
			}
			for i, o := range out[50:] {
				if !tc.check(o) {
					t.Errorf("item %d: %+v", 50+i, o)
				}
			}
		})
	}
}

// A task larger than a per-minute cap that only the workers know of (the
// dispatcher sized it as unthrottled) sends a part the size of a task
// under a limit (50), even through a window others partly used, and leaves
// the rest to a follow-up task, instead of pausing a campaign whose queued
// tasks would never fit; the follow-ups, as the cap allows, send the rest.
func TestTaskOverAWorkersCapSendsWhatFits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("cap-split", campaigns.ChannelWhatsAppTemplate)
	to := phones(200)
	batch := b.campaign(t, s, to...)
	batch.Request = 50
	calls := b.templateCalls(func(to []string) ([]oneroute.Result, error) { return ok(to), nil })
	opts := b.opts
	opts.RateLimit = campaigns.Rate{PerMinute: 120}
	run := func(bt *campaigns.Batch, lim ratelimit.Limiter) {
		t.Helper()
		mux := NewMux(Deps{Store: b.store, Provider: b.prov, Enqueuer: b.enq, Limiter: lim}, opts)
		if err := mux.ProcessTask(b.ctx, asynq.NewTask(tasks.SendType(bt.Channel), tasks.Encode(bt))); err != nil {
			t.Fatal(err)
		}
	}
	// Another campaign on the sender already used 10 of the minute's 120.
	lim := ratelimit.NewMemory(time.Now)
	if res, err := lim.Allow(b.ctx, batch.Sender(), ratelimit.Limit{PerMinute: 120}, 10); err != nil || res.Allowed != 10 {
		t.Fatalf("pre-use: %+v, %v", res, err)
	}
	run(batch, lim)
	kids := b.children(t, tasks.TypeWhatsAppTemplate)
	p := b.progress(t, s.ID)
	if fmt.Sprint(calls()) != "[50]" || p.Sent != 50 || p.State == campaigns.StatePaused || len(kids) != 1 || len(kids[0].Items) != 150 {
		t.Fatalf("calls %v, sent %d, state %s, %d follow-ups; want calls [50], 50 sent, not paused, one follow-up of 150", calls(), p.Sent, p.State, len(kids))
	}
	// Each later minute (a fresh limiter), the follow-up sends its part.
	for len(kids) == 1 {
		run(kids[0], ratelimit.NewMemory(time.Now))
		kids = b.children(t, tasks.TypeWhatsAppTemplate)
	}
	if p := b.progress(t, s.ID); p.Sent != 200 || fmt.Sprint(calls()) != "[50 50 50 50]" {
		t.Errorf("sent %d in calls %v after the follow-ups; want 200 in [50 50 50 50]", p.Sent, calls())
	}
	for _, n := range to {
		if k := b.prov.times(n); k != 1 {
			t.Fatalf("%s sent %d times; want 1", n, k)
		}
	}
}
