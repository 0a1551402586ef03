package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/tasks"
)

func items(rows ...int) []campaigns.Item {
	out := make([]campaigns.Item, len(rows))
	for i, r := range rows {
		out[i] = campaigns.Item{Row: r}
	}
	return out
}

func rowsOf(items []campaigns.Item) []int {
	var out []int
	for _, it := range items {
		out = append(out, it.Row)
	}
	return out
}

// The child of a batch carries the part to retry, then the part to
// reconcile later, and counts a failure only after a temporary one.
func TestPlanChild(t *testing.T) {
	t.Parallel()
	b := &campaigns.Batch{Campaign: "c", Seq: 3, Attempt: 1, Failures: 1, Items: items(1, 2, 3, 4)}
	for _, tc := range []struct {
		name         string
		p            plan
		wantRows     []int
		wantFailures int
	}{
		{"nothing left", plan{}, nil, 0},
		{"retry and later", plan{retry: items(2), later: items(4, 1)}, []int{2, 4, 1}, 1},
		{"temporary failure", plan{retry: items(3), failed: true}, []int{3}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.p.child(b)
			if tc.wantRows == nil {
				if c != nil {
					t.Fatalf("child %+v, want none", c)
				}
				return
			}
			if diff := cmp.Diff(tc.wantRows, rowsOf(c.Items)); diff != "" {
				t.Errorf("child rows (-want +got):\n%s", diff)
			}
			if c.Attempt != 2 || c.Failures != tc.wantFailures || c.Seq != 3 || c.Campaign != "c" {
				t.Errorf("child attempt %d failures %d seq %d campaign %q, want 2 %d 3 c", c.Attempt, c.Failures, c.Seq, c.Campaign, tc.wantFailures)
			}
		})
	}
	if len(b.Items) != 4 || b.Attempt != 1 || b.Failures != 1 {
		t.Fatalf("the batch itself changed: %+v", b)
	}
}

// The child waits for the longest of what each part of the plan asks.
func TestPlanDelay(t *testing.T) {
	t.Parallel()
	o := Options{RequestTimeout: 10 * time.Second, RetryBase: time.Minute}
	b := &campaigns.Batch{}
	for _, tc := range []struct {
		name     string
		p        plan
		min, max time.Duration
	}{
		{"nothing", plan{retry: items(1)}, 0, 0},
		{"worker stopping", plan{stopping: true}, time.Second, time.Second},
		{"throttled", plan{throttle: 3 * time.Second, stopping: true}, 3 * time.Second, 3 * time.Second},
		{"in flight elsewhere", plan{later: items(1)}, o.staleAfter(), o.staleAfter()},
		{"paused", plan{pause: "refused", later: items(1)}, 30 * time.Second, 30 * time.Second},
		{"temporary failure", plan{failed: true, pause: "refused"}, 45 * time.Second, 75 * time.Second}, // Backoff(1, 1m) ±25%
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if d := tc.p.delay(b, o); d < tc.min || d > tc.max {
				t.Fatalf("delay %s, want %s to %s", d, tc.min, tc.max)
			}
		})
	}
}

// follow is the one place a batch task enqueues: the campaign's
// delivery-report sweep goes out even when the attempt failed (its rows are
// recorded accepted), the child only when it did not.
func TestFollowEnqueuesThePlan(t *testing.T) {
	t.Parallel()
	for _, failed := range []bool{false, true} {
		b := setup(t)
		s := newBatchSender(Deps{Store: b.store, Provider: b.prov, Enqueuer: b.enq}, b.opts.withDefaults(), nil)
		batch := &campaigns.Batch{Campaign: "c", Channel: campaigns.ChannelSMS, ChannelID: "ch", Seq: 7, Items: items(1, 2, 3)}
		a := s.newAttempt(batch)
		var p plan
		p.poll(a, []tasks.DLRItem{{Row: 1, ID: "m1"}})
		p.poll(a, []tasks.DLRItem{{Row: 3, ID: "m3"}})
		p.retry = items(2)
		var err error
		if failed {
			err = errStopping
		}
		if got := s.follow(b.ctx, batch, p, err); !errors.Is(got, err) || (err == nil && got != nil) {
			t.Fatalf("follow returned %v, want %v", got, err)
		}
		var ids []string
		for _, task := range b.enq.take(tasks.TypeDLRSweep) {
			var sw tasks.DLRSweep
			if err := tasks.Decode(task.Payload(), &sw); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, sw.ID()+"/"+sw.ChannelID)
		}
		if d := cmp.Diff([]string{"c:dlr:sweep/ch"}, ids); d != "" {
			t.Errorf("failed=%v: sweeps (-want +got):\n%s", failed, d)
		}
		if polls := b.enq.take(tasks.TypeDLRPoll); len(polls) != 0 {
			t.Errorf("failed=%v: %d dlr:poll tasks, want none", failed, len(polls))
		}
		kids := b.children(t, tasks.TypeSMSSend)
		switch {
		case failed && len(kids) != 0:
			t.Errorf("a failed attempt enqueued a child: %+v", kids)
		case !failed && (len(kids) != 1 || tasks.BatchID(kids[0]) != tasks.BatchID(p.child(batch))):
			t.Errorf("children %+v, want the plan's child", kids)
		}
	}
}
