package worker

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Fast recovery after a Redis outage.
//
// asynq (v0.26) leases each active task for 30 s and extends the lease every
// few seconds. When Redis stalls or is down for longer than that, every
// worker's lease runs out; the worker then gives the task up without
// writing anything ("let the recoverer take care of it"), and asynq's
// recoverer, which runs once a minute and only takes leases expired more
// than 30 s ago, puts it back: 60 to 90 s after the outage ended, with a
// retry counted against the task. All of that is hard-coded in asynq.
//
// A worker that saw Redis go away and come back therefore looks, for a
// while, for tasks whose lease ran out more than leaseMargin ago and puts
// them back in their queue's pending list at once, as asynq's own Requeue
// does on shutdown (same keys, same steps, no retry counted: the outage
// was not the task's fault). The owner of such a lease has already given
// the task up (its local lease expired at the same time, clocks agreeing
// within leaseMargin), and if it has not, the ledger still lets no
// recipient be sent twice: claims are per attempt and a request in flight
// is reconciled before any resend.
//
// Tasks of a worker that died without an outage are left to asynq's
// recoverer, which counts the retry (a task that kills its worker must not
// loop for ever).

// requeueExpiredScript moves tasks whose lease ended before ARGV[1] (Unix
// seconds) from active back to pending, at most ARGV[3] of them.
// KEYS: asynq:{q}:lease, asynq:{q}:active, asynq:{q}:pending; ARGV[2]: the
// task key prefix asynq:{q}:t: (same hash slot). Mirrors asynq v0.26
// internal/rdb requeueCmd for each task. Returns the ids moved.
const requeueExpiredScript = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local moved = {}
for _, id in ipairs(ids) do
  if redis.call('LREM', KEYS[2], 0, id) > 0 then
    redis.call('ZREM', KEYS[1], id)
    redis.call('RPUSH', KEYS[3], id)
    redis.call('HSET', ARGV[2] .. id, 'state', 'pending')
    table.insert(moved, id)
  end
end
return moved`

const (
	// leaseMargin is how long past its end a lease must be before it is
	// taken back: room for clocks that disagree between hosts.
	leaseMargin = 5 * time.Second
	// outageMin is how long Redis must fail the probe to count as an
	// outage that may have cost leases.
	outageMin = 3 * time.Second
	// recoverFor is how long after an outage the watch keeps looking:
	// leases may run out up to their 30 s after the outage's start, and a
	// probe may see the end of the outage late.
	recoverFor = 90 * time.Second
)

// leaseWatch probes Redis and, after an outage, requeues the tasks whose
// leases ran out during it.
type leaseWatch struct {
	rdb    redis.UniversalClient
	queues []string
	every  time.Duration
	log    zerolog.Logger
	now    func() time.Time
	// minOutage is outageMin, shorter in tests.
	minOutage time.Duration

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newLeaseWatch(rdb redis.UniversalClient, queues map[string]int, every time.Duration, log zerolog.Logger) *leaseWatch {
	qs := make([]string, 0, len(queues))
	for q := range queues {
		qs = append(qs, q)
	}
	sort.Strings(qs)
	return &leaseWatch{rdb: rdb, queues: qs, every: every, log: log, now: time.Now, minOutage: outageMin,
		stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *leaseWatch) start() { go w.run() }

// close stops the watch; safe twice.
func (w *leaseWatch) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *leaseWatch) run() {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	// lastGood is when Redis last answered a probe. A probe that answers
	// after a silence longer than the probe interval plus minOutage ends an
	// outage, whether the probes in between failed or hung (a frozen Redis
	// answers late rather than not at all).
	lastGood := w.now()
	var recoverUntil time.Time
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(w.every, time.Second))
		err := w.rdb.Ping(ctx).Err()
		cancel()
		now := w.now()
		if err != nil {
			continue
		}
		if out := now.Sub(lastGood); out >= w.every+w.minOutage {
			w.log.Warn().Dur("outage", out.Round(time.Second)).Msg("Redis is back; requeueing tasks whose lease ran out during the outage")
			recoverUntil = now.Add(recoverFor)
		}
		lastGood = now
		if now.Before(recoverUntil) {
			if n, err := w.requeueExpired(context.Background(), now); err != nil {
				w.log.Warn().Err(err).Msg("requeue tasks after the Redis outage")
			} else if n > 0 {
				w.log.Info().Int("tasks", n).Msg("requeued tasks whose lease ran out during the Redis outage")
			}
		}
	}
}

// requeueExpired moves the tasks of every queue whose lease ended more than
// leaseMargin before now back to pending. It returns how many it moved.
func (w *leaseWatch) requeueExpired(ctx context.Context, now time.Time) (int, error) {
	cutoff := strconv.FormatInt(now.Add(-leaseMargin).Unix(), 10)
	total := 0
	var errs []error
	for _, q := range w.queues {
		p := "asynq:{" + q + "}:"
		for {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ids, err := w.rdb.Eval(ctx, requeueExpiredScript, []string{p + "lease", p + "active", p + "pending"}, cutoff, p+"t:", 500).StringSlice()
			cancel()
			if err != nil {
				errs = append(errs, err)
				break
			}
			total += len(ids)
			if len(ids) < 500 {
				break
			}
		}
	}
	return total, errors.Join(errs...)
}
