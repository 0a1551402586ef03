package dispatcher

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

func hgetallCalls(ctx context.Context, b *testBundle) int {
	info, _ := b.rdb.Info(ctx, "commandstats").Result()
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_hgetall:calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// With a window, Redis never holds more than Window unfinished batches of a
// campaign, and its memory stays flat while the window is full: the
// dispatcher waits for the workers instead of growing the queue.
func TestWindowBoundsRedis(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const window = 5
	spec := b.spec(t, "window", smsSpec, recipientsCSV(2000, 11))
	src := openSource(t, spec)
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Dispatch(ctx, b.store, b.client, spec, src, Options{BatchSize: 10, Window: window, WindowPoll: 5 * time.Millisecond})
		done <- outcome{res, err}
	}()
	pending := func() int {
		q, err := b.insp.GetQueueInfo(tasks.Queue(spec.Channel))
		if err != nil {
			return 0
		}
		return q.Pending
	}
	testwait.For(t, "a full window", 30*time.Second, func() bool { return pending() >= window })

	if b.srv.Real {
		// Full window, no workers: the dispatcher polls, Redis does not grow.
		c0 := hgetallCalls(ctx, b)
		testwait.For(t, "10 window checks", 30*time.Second, func() bool { return hgetallCalls(ctx, b) >= c0+10 })
		m1, c1 := usedMemory(ctx, b.rdb), hgetallCalls(ctx, b)
		testwait.For(t, "50 window checks", 30*time.Second, func() bool { return hgetallCalls(ctx, b) >= c1+50 })
		m2 := usedMemory(ctx, b.rdb)
		if m2-m1 > 16<<10 {
			t.Errorf("Redis grew by %d bytes while the window was full", m2-m1)
		}
		t.Logf("window full: used_memory %d, then %d after 50 more checks", m1, m2)
	}
	if n := pending(); n != window {
		t.Fatalf("%d tasks pending with a full window of %d", n, window)
	}

	// A worker stand-in: send (record as accepted) and remove each task.
	seen := map[int]bool{}
	most := 0
	var final outcome
	for finished := false; !finished; {
		select {
		case final = <-done:
			finished = true
		default:
		}
		pending, err := b.insp.ListPendingTasks(tasks.Queue(spec.Channel))
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, len(pending))
		for _, ti := range pending {
			var bt campaigns.Batch
			if err := tasks.Decode(ti.Payload, &bt); err != nil {
				t.Fatal(err)
			}
			if seen[bt.Seq] {
				t.Fatalf("batch %d enqueued twice", bt.Seq)
			}
			seen[bt.Seq] = true
			rows := make([]int, len(bt.Items))
			outs := make([]campaigns.Outcome, len(bt.Items))
			for i, it := range bt.Items {
				rows[i] = it.Row
				outs[i] = campaigns.Outcome{Row: it.Row, State: storage.LedgerAccepted, Value: "m" + strconv.Itoa(it.Row)}
			}
			if _, err := b.store.Claim(ctx, spec.ID, "w", rows, time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := b.store.Record(ctx, spec.ID, storage.ModeSend, "w", outs); err != nil {
				t.Fatal(err)
			}
			if err := b.insp.DeleteTask(tasks.Queue(spec.Channel), ti.ID); err != nil && err != asynq.ErrTaskNotFound {
				t.Fatal(err)
			}
		}
	}
	if final.err != nil {
		t.Fatal(final.err)
	}
	if most > window {
		t.Errorf("%d tasks pending at once, window %d", most, window)
	}
	if len(seen) != final.res.Batches {
		t.Errorf("worker saw %d batches, dispatcher made %d", len(seen), final.res.Batches)
	}
	p, err := b.store.Progress(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != int64(final.res.Valid) || p.Pending != 0 || !p.Dispatched {
		t.Errorf("sent %d of %d, pending %d, dispatched %v; want all, 0, true", p.Sent, final.res.Valid, p.Pending, p.Dispatched)
	}
}
