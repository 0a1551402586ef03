package worker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
)

// asynq v0.26's dequeue (internal/rdb dequeueCmd), to put tasks in the state
// a worker leaves them in: active, with a lease.
const testDequeueScript = `
local id = redis.call("RPOPLPUSH", KEYS[1], KEYS[2])
if id then
  redis.call("HSET", ARGV[2] .. id, "state", "active")
  redis.call("HDEL", ARGV[2] .. id, "pending_since")
  redis.call("ZADD", KEYS[3], ARGV[1], id)
end
return id`

// dequeueWithLease enqueues a task and puts it in the active state with
// the given lease end, as a worker's dequeue does.
func dequeueWithLease(t *testing.T, rdb *redis.Client, q, id string, lease time.Time) {
	t.Helper()
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask("sms:send", []byte(id)), asynq.Queue(q), asynq.TaskID(id), asynq.MaxRetry(3)); err != nil {
		t.Fatal(err)
	}
	p := "asynq:{" + q + "}:"
	got, err := rdb.Eval(context.Background(), testDequeueScript, []string{p + "pending", p + "active", p + "lease"}, strconv.FormatInt(lease.Unix(), 10), p+"t:").Text()
	if err != nil || got != id {
		t.Fatalf("dequeue %s: %q, %v", id, got, err)
	}
}

// The watch leaves lapsed leases to asynq while Redis is healthy (a worker
// that died: asynq counts the retry), and requeues them once it has seen
// Redis go away and come back.
func TestLeaseWatchActsAfterAnOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	if !srv.Real {
		t.Skip("needs redis-server to freeze (FANOUT_TEST_REDIS=miniredis)")
	}
	rdb := srv.Client(t)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	dequeueWithLease(t, rdb, "sms", "orphan", time.Now().Add(-time.Minute))
	w := newLeaseWatch(rdb, map[string]int{"sms": 1}, 50*time.Millisecond, zerolog.Nop())
	w.minOutage = 300 * time.Millisecond
	w.start()
	t.Cleanup(w.close)
	state := func() asynq.TaskState {
		info, err := insp.GetTaskInfo("sms", "orphan")
		if err != nil {
			return 0
		}
		return info.State
	}
	time.Sleep(500 * time.Millisecond) // ten probes of a healthy Redis: nothing to wait for
	if st := state(); st != asynq.TaskStateActive {
		t.Fatalf("with no outage the orphan is %s; want it left active for asynq", st)
	}
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the outage
	if err := srv.Thaw(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the orphan requeued", 10*time.Second, func() bool { return state() == asynq.TaskStatePending })
}

// Only tasks whose lease ended more than leaseMargin ago go back to
// pending, as asynq's own Requeue leaves them: asynq sees them pending and
// runs them again, with no retry counted.
func TestRequeueExpiredLeases(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	const q = "sms"
	now := time.Unix(2_000_000_000, 0)
	leases := map[string]time.Time{
		"gone":    now.Add(-time.Minute),               // lease ran out long ago: requeue
		"edge":    now.Add(-leaseMargin + time.Second), // within the clock margin: leave
		"healthy": now.Add(25 * time.Second),           // still leased: leave
	}
	for _, id := range []string{"gone", "edge", "healthy"} {
		if _, err := client.Enqueue(asynq.NewTask("sms:send", []byte(id)), asynq.Queue(q), asynq.TaskID(id), asynq.MaxRetry(3)); err != nil {
			t.Fatal(err)
		}
		p := "asynq:{" + q + "}:"
		got, err := rdb.Eval(ctx, testDequeueScript, []string{p + "pending", p + "active", p + "lease"}, strconv.FormatInt(leases[id].Unix(), 10), p+"t:").Text()
		if err != nil || got != id {
			t.Fatalf("dequeue %s: %q, %v", id, got, err)
		}
	}
	w := newLeaseWatch(rdb, map[string]int{q: 1, "dlr": 1}, time.Second, zerolog.Nop())
	n, err := w.requeueExpired(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("requeued %d, %v; want 1", n, err)
	}
	want := map[string]asynq.TaskState{"gone": asynq.TaskStatePending, "edge": asynq.TaskStateActive, "healthy": asynq.TaskStateActive}
	for id, st := range want {
		info, err := insp.GetTaskInfo(q, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.State != st || info.Retried != 0 {
			t.Errorf("%s: %s, retried %d; want %s, 0", id, info.State, info.Retried, st)
		}
	}
	if n, _ := w.requeueExpired(ctx, now); n != 0 {
		t.Errorf("a second pass requeued %d, want 0", n)
	}
	qi, _ := insp.GetQueueInfo(q)
	if qi.Pending != 1 || qi.Active != 2 {
		t.Errorf("queue: %d pending, %d active; want 1, 2", qi.Pending, qi.Active)
	}
}
