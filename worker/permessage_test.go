package worker

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
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

// A task whose deadline is too near for one more request sends only its
// first group: the rest goes to a follow-up task, not into requests the
// deadline would cut off. A task far from its deadline sends everything.
func TestLateTaskDefersTheRest(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	b.campaign(t, "late", 1) // rows 1..10
	for _, tc := range []struct {
		timeout   time.Duration
		wantCalls int
	}{{20 * time.Second, 4}, {time.Hour, 10}} { // 20 s: under 15 s + lateMargin
		s := &batchSender{deps: Deps{Store: b.store}, drain: make(chan struct{}),
			opts: Options{RequestTimeout: 15 * time.Second, PerCallConcurrency: 4}, senders: newSenders(4)}
		a := &attempt{s: s, b: &campaigns.Batch{Campaign: "late"}, token: storage.NewToken()}
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
		ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
		out := a.sendEach(ctx, items, call, &pacer{})
		cancel()
		if int(calls.Load()) != tc.wantCalls {
			t.Fatalf("timeout %s: %d calls; want %d", tc.timeout, calls.Load(), tc.wantCalls)
		}
		for i, o := range out[tc.wantCalls:] {
			if o.deferred <= 0 || !strings.Contains(o.reason, "deadline") {
				t.Errorf("timeout %s, item %d: %+v; want deferred to a follow-up task", tc.timeout, tc.wantCalls+i, o)
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
// one reason, pauses the campaign before the next call: the rest is not
// sent, and nobody is recorded failed for a campaign-level mistake.
func TestBatchIsSentInCallsOfRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		answer    func(to []string) ([]oneroute.Result, error)
		wantCalls []int
		paused    bool
	}{
		{name: "AllSent", wantCalls: []int{50, 50, 20}},
		{name: "RefusedWhole", wantCalls: []int{50}, paused: true, answer: func([]string) ([]oneroute.Result, error) {
			return nil, &oneroute.APIError{Status: 400, Message: "template not approved"}
		}},
		{name: "EachRefused", wantCalls: []int{50}, paused: true, answer: func(to []string) ([]oneroute.Result, error) {
			res := make([]oneroute.Result, len(to))
			for i := range res {
				res[i] = oneroute.Result{Status: "failed", Response: "template paused"}
			}
			return res, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s := spec("calls-"+tc.name, campaigns.ChannelWhatsAppTemplate)
			to := phones(120)
			batch := b.campaign(t, s, to...)
			batch.Request = 50
			answer := tc.answer
			if answer == nil {
				answer = func(to []string) ([]oneroute.Result, error) { return ok(to), nil }
			}
			calls := b.templateCalls(answer)
			if err := b.run(t, batch); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(calls()) != fmt.Sprint(tc.wantCalls) {
				t.Errorf("calls of %v; want %v", calls(), tc.wantCalls)
			}
			p := b.progress(t, s.ID)
			if tc.paused {
				left := b.childRecipients(t, tasks.TypeWhatsAppTemplate)
				if p.State != campaigns.StatePaused || p.Failed != 0 || p.Sent != 0 || left != len(to) {
					t.Errorf("state %s failed %d sent %d, %d left for after the pause; want paused, 0, 0, %d", p.State, p.Failed, p.Sent, left, len(to))
				}
				return
			}
			if p.Sent != int64(len(to)) {
				t.Errorf("sent %d; want %d", p.Sent, len(to))
			}
		})
	}
}
