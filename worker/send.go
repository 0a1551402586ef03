package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// channel is all a channel handler tells the send path about one batch:
// how its requests are built and made. Exactly one func is set. Every
// OneRoute send answers with one result per recipient, which the send path
// maps to outcomes (fromResults), the same way for every channel.
type channel struct {
	// batchFunc makes one request for all the items given (the recipients
	// of the batch this attempt still owns).
	batchFunc func(ctx context.Context, items []campaigns.Item) ([]oneroute.Result, error)
	// eachFunc makes one recipient's own request; the send path makes them
	// concurrently, up to Options.PerCallConcurrency.
	eachFunc func(ctx context.Context, it campaigns.Item) ([]oneroute.Result, error)
}

// channelFunc is a channel handler's send method: how a batch goes out.
type channelFunc func(b *campaigns.Batch) channel

// processBatch decodes a batch task and runs it through the send path.
func processBatch(ctx context.Context, s *batchSender, t *asynq.Task, send channelFunc) error {
	var b campaigns.Batch
	if err := tasks.Decode(t.Payload(), &b); err != nil {
		return skip(err)
	}
	return s.process(ctx, &b, send)
}

// outcome is what happened to one item of the batch.
type outcome struct {
	action     Action
	id         string // provider message id when accepted
	reason     string
	retryAfter time.Duration
	err        error
	// notOwned: the claim was taken over before the request started; the
	// item was not sent and belongs to another attempt now.
	notOwned bool
	// released: not sent because the worker is stopping; give it back
	// without counting a failure.
	released bool
	// deferred: not sent because the rate limiter had no permits soon
	// enough; give it back to a child that waits this long.
	deferred time.Duration
}

// send makes the channel's requests for items, each when pc releases it,
// and returns one outcome per item, in order. Each request's rows are
// stamped just before it starts, after its wait for permits; a row this
// attempt no longer owns is not sent.
func (a *attempt) send(ctx context.Context, ch channel, items []campaigns.Item, pc *pacer) []outcome {
	a.guard = deadlineGuard(ctx, a.s.opts.RequestTimeout)
	a.early = newEarlyRecords(ctx, a)
	defer a.early.close()
	switch {
	case len(items) == 0:
		return nil
	case ch.batchFunc != nil:
		return a.sendChunks(ctx, items, ch.batchFunc, pc)
	default:
		return a.sendEach(ctx, items, ch.eachFunc, pc)
	}
}

// sendChunks splits a batched call into requests of at most the pacer's
// size and the batch's Request, and sends each at its last permit's time
// (at once when unpaced). After a request the provider throttled, or one
// whose permits do not come soon enough, the rest is not sent; nor after
// one it refused whole, or recipient by recipient for one reason, which
// pauses the campaign.
func (a *attempt) sendChunks(ctx context.Context, items []campaigns.Item, call func(context.Context, []campaigns.Item) ([]oneroute.Result, error), pc *pacer) []outcome {
	out := make([]outcome, 0, len(items))
	chunks := pc.chunks(items, a.b.Request)
	for ci, chunk := range chunks {
		if ci > 0 {
			// As between per-message requests: no new call once the
			// worker stops or the task ends, or too near its deadline.
			stopping := ctx.Err() != nil || a.s.draining()
			if stopping || late(ctx, a.guard) {
				rest := make([]outcome, len(items)-len(out))
				if stopping {
					unsent(rest, nil)
				} else {
					fill(rest, deadlineNear)
				}
				return append(out, rest...)
			}
		}
		var at time.Time // when the request's permits conform; zero: not paced
		if pc.size > 0 {
			var err error
			at, err = pc.reserve(ctx, len(chunk))
			if err == nil && !pc.until(ctx, at) {
				err = ctx.Err()
			}
			if err != nil {
				rest := make([]outcome, len(items)-len(out))
				unsent(rest, err)
				return append(out, rest...)
			}
		}
		res := a.sendBatch(ctx, chunk, call, at)
		out = append(out, res...)
		var stop outcome
		switch reason, paused := sameFailure(res), pausing(res); {
		case throttled(res):
			stop = outcome{action: Reschedule, retryAfter: retryAfterOf(res), reason: "provider throttled the sender"}
		case paused != nil:
			stop = outcome{action: PauseCampaign, reason: paused.reason} // the request was refused whole
		case reason != "" && a.b.Retry == 0 && len(chunks) > 1:
			// Every recipient of the request refused for one reason: the
			// pause that outcomes gives a batch sent in one call and
			// refused so (sameFailure), for this request's recipients.
			stop = outcome{action: PauseCampaign, reason: "every recipient of a batch refused: " + reason}
			fill(out[len(out)-len(res):], stop)
		default:
			if ci+1 < len(chunks) {
				a.early.flushCall(chunk, res)
			}
			continue
		}
		rest := make([]outcome, len(items)-len(out))
		fill(rest, stop)
		return append(out, rest...)
	}
	return out
}

// pausing returns the first outcome of res that pauses the campaign, or nil.
func pausing(res []outcome) *outcome {
	for i := range res {
		if res[i].action == PauseCampaign && !res[i].notOwned && !res[i].released && res[i].deferred == 0 {
			return &res[i]
		}
	}
	return nil
}

// throttled reports whether the provider throttled a request (429).
func throttled(res []outcome) bool {
	for _, o := range res {
		if o.action == Reschedule {
			return true
		}
	}
	return false
}

// retryAfterOf is the longest Retry-After among res.
func retryAfterOf(res []outcome) time.Duration {
	var d time.Duration
	for _, o := range res {
		d = max(d, o.retryAfter)
	}
	return d
}

// sendBatch stamps items and sends those this attempt still owns in one
// provider call. A paced request (due set) that would start more than
// lateLimit after its permits is not sent, as in sendOne.
func (a *attempt) sendBatch(ctx context.Context, items []campaigns.Item, call func(context.Context, []campaigns.Item) ([]oneroute.Result, error), due time.Time) []outcome {
	out := make([]outcome, len(items))
	owned, err := a.stamp(ctx, items)
	if err != nil {
		fill(out, stampFailed(err))
		return out
	}
	var mine []campaigns.Item
	var idx []int
	for i, ok := range owned {
		if !ok {
			out[i] = outcome{notOwned: true}
			continue
		}
		mine = append(mine, items[i])
		idx = append(idx, i)
	}
	if len(mine) == 0 {
		return out
	}
	if !due.IsZero() && time.Since(due) > lateLimit {
		for _, i := range idx {
			out[i] = outcome{deferred: time.Second, reason: "released too late for its permits"}
		}
		return out
	}
	res, err := call(ctx, mine)
	for j, o := range fromResults(res, err, len(mine)) {
		out[idx[j]] = o
	}
	return out
}

// sendEach sends each item in its own call, concurrently up to
// Options.PerCallConcurrency for the task and Options.InFlight for the
// worker. Once the worker is stopping, the task's context is done, the
// limiter has no permits soon enough or the provider throttled the sender,
// no new request starts.
func (a *attempt) sendEach(ctx context.Context, items []campaigns.Item, call func(context.Context, campaigns.Item) ([]oneroute.Result, error), pc *pacer) []outcome {
	e := &eachCalls{a: a, ctx: ctx, call: call, out: make([]outcome, len(items)),
		sem: make(chan struct{}, a.s.opts.PerCallConcurrency)}
	if pc.size > 0 {
		e.paced(items, pc)
	} else {
		e.grouped(items)
	}
	e.wg.Wait()
	return e.out
}

// eachCalls is one sendEach: the requests of a batch of per-message calls.
type eachCalls struct {
	a    *attempt
	ctx  context.Context
	call func(context.Context, campaigns.Item) ([]oneroute.Result, error)
	out  []outcome
	sem  chan struct{} // the task's calls in flight
	wg   sync.WaitGroup
	// throttle is the provider's Retry-After once a call was throttled.
	throttle atomic.Int64
}

// stampGroup is how many rows one ledger script stamps for unpaced
// per-message calls: one round trip for the group instead of one per
// message (bench/ledgermicro: 60 µs of CPU per row alone, 7 in groups of
// 16). A group is stamped only once the task has room for its requests,
// so a stamped row waits at most one request's time before its own starts.
const stampGroup = 16

// grouped sends items without a per-second limit: it stamps them in groups
// and starts each owned row's request at once. A row stamped but not sent
// (the worker stops, the provider throttles) is given back unsent.
func (e *eachCalls) grouped(items []campaigns.Item) {
	g := min(stampGroup, cap(e.sem))
	for start := 0; start < len(items); start += g {
		group := items[start:min(start+g, len(items))]
		if e.throttled(e.out[start:]) {
			return
		}
		if !e.acquire(len(group)) {
			unsent(e.out[start:], nil)
			return
		}
		if start > 0 && e.late(e.out[start:]) {
			for range group {
				<-e.sem
			}
			return
		}
		out := e.out[start : start+len(group)]
		owned, err := e.a.stamp(e.ctx, group)
		for i, it := range group {
			switch {
			case err != nil:
				out[i] = stampFailed(err)
			case !owned[i]:
				out[i] = outcome{notOwned: true}
			case e.ctx.Err() != nil || e.a.s.draining():
				out[i] = outcome{released: true, reason: "worker stopping"}
			case e.throttled(out[i : i+1]):
			default:
				e.start(&out[i], it, time.Time{}, false)
				continue
			}
			<-e.sem // the slot this row does not use
		}
	}
}

// acquire takes n of the task's call slots, or none if the task ends or
// the worker stops first.
func (e *eachCalls) acquire(n int) bool {
	got := 0
	for got < n {
		select {
		case e.sem <- struct{}{}:
			got++
			if e.ctx.Err() == nil && !e.a.s.draining() {
				continue
			}
		case <-e.ctx.Done():
		case <-e.a.s.drain:
		}
		for range got {
			<-e.sem
		}
		return false
	}
	return true
}

// throttled fills out with the provider's throttle, if a call was
// throttled, and reports whether it was.
func (e *eachCalls) throttled(out []outcome) bool {
	ra := e.throttle.Load()
	if ra <= 0 {
		return false
	}
	fill(out, outcome{action: Reschedule, retryAfter: time.Duration(ra), reason: "provider throttled the sender"})
	return true
}

// lateMargin is how long before the task's deadline its last request may
// end: time to record the outcomes.
const lateMargin = 10 * time.Second

// deadlineGuard is how much of its time a task must have left to start a
// request after its first: one request's timeout plus lateMargin, so that
// the request ends before the task's deadline (FANOUT_TASK_TIMEOUT); a
// request cut off by the deadline would end ambiguous, to be reconciled.
// Only a task of many slow requests gets there (a provider that answers at
// its timeout). A task whose whole time is short keeps sending for the
// first half of what it had when its sends began. 0: no deadline.
func deadlineGuard(ctx context.Context, requestTimeout time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return min(requestTimeout+lateMargin, time.Until(dl)/2)
}

// late reports whether ctx's deadline is within guard (deadlineGuard).
// Callers ask only after a task's first request, so that every task sends
// something.
func late(ctx context.Context, guard time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && guard > 0 && time.Until(dl) <= guard
}

// deadlineNear is the outcome of a recipient not sent because its task's
// deadline is near: a follow-up task sends it.
var deadlineNear = outcome{deferred: time.Second, reason: "task deadline near: the rest goes to a follow-up task"}

// fill sets every outcome of out to o.
func fill(out []outcome, o outcome) {
	for i := range out {
		out[i] = o
	}
}

// late fills out with deadlineNear, and reports true, when the task's
// deadline is too near for another per-message request.
func (e *eachCalls) late(out []outcome) bool {
	if !late(e.ctx, e.a.guard) {
		return false
	}
	fill(out, deadlineNear)
	return true
}

// start makes one request on a sender goroutine, holding a task slot the
// caller took; stamp says whether the row must be stamped first (paced
// rows are stamped one by one, at their permit's time).
func (e *eachCalls) start(o *outcome, it campaigns.Item, due time.Time, stamp bool) {
	e.wg.Add(1)
	run := func() {
		defer e.wg.Done()
		defer func() { <-e.sem }()
		if stamp {
			*o = e.a.sendOne(e.ctx, it, e.call, due)
		} else {
			res, err := e.call(e.ctx, it)
			*o = fromResults(res, err, 1)[0]
		}
		if o.action == Reschedule {
			e.throttle.Store(int64(max(o.retryAfter, time.Second)))
		}
		if isAccepted(*o) {
			e.a.early.add(it.Row, o.id)
		}
	}
	if !e.a.s.senders.do(e.ctx, e.a.s.drain, run) {
		// Not started: nothing was sent.
		e.wg.Done()
		<-e.sem
		*o = outcome{released: true, reason: "worker stopping"}
	}
}

// paced sends items under a per-second limit: each request starts at its
// own permit's time, one interval after the previous, never in a lump, and
// each row is stamped just before its request.
func (e *eachCalls) paced(items []campaigns.Item, pc *pacer) {
	var last time.Time // when the current reservation's last permit conforms
	left := 0          // permits of the current reservation not yet used
	var n int          // size of the current reservation
	for i, it := range items {
		var err error
		if left == 0 {
			n = min(pc.size, len(items)-i)
			last, err = pc.reserve(e.ctx, n)
			left = n
		}
		due := pc.cell(last, n-left, n)
		if err == nil && !pc.until(e.ctx, due) {
			err = e.ctx.Err() // nil when the worker is stopping
			if err == nil {
				err = errStopping
			}
		}
		left--
		if err != nil {
			unsent(e.out[i:], err)
			return
		}
		if e.throttled(e.out[i:]) {
			return
		}
		if !e.acquire(1) {
			// Not sent: give back without counting a failure.
			unsent(e.out[i:], nil)
			return
		}
		if i > 0 && e.late(e.out[i:]) {
			<-e.sem
			return
		}
		e.start(&e.out[i], it, due, true)
	}
}

// sendOne stamps one item and, if this attempt still owns it and the task
// goes on, makes its request. A paced item (due set) whose request would
// start more than lateLimit after its permit is not sent: it would land in
// a second already full (see paceMargin). Its permit is lost and it goes to
// the child task.
func (a *attempt) sendOne(ctx context.Context, it campaigns.Item, call func(context.Context, campaigns.Item) ([]oneroute.Result, error), due time.Time) outcome {
	owned, err := a.stamp(ctx, []campaigns.Item{it})
	switch {
	case err != nil:
		return stampFailed(err)
	case !owned[0]:
		return outcome{notOwned: true}
	case ctx.Err() != nil:
		return outcome{released: true, reason: "worker stopping"}
	case !due.IsZero() && time.Since(due) > lateLimit:
		return outcome{deferred: time.Second, reason: "released too late for its permit"}
	}
	res, err := call(ctx, it)
	return fromResults(res, err, 1)[0]
}

// stamp marks items sending, just before their request: only the rows this
// attempt still owns are stamped (true).
func (a *attempt) stamp(ctx context.Context, items []campaigns.Item) ([]bool, error) {
	rows := make([]int, len(items))
	for i, it := range items {
		rows[i] = it.Row
	}
	return a.s.deps.Store.Stamp(context.WithoutCancel(ctx), a.b.Campaign, a.token, rows)
}

// stampFailed is the outcome of an item that could not be stamped: given
// back, and never counted as a failure. Nothing was sent, and OneRoute was
// not asked: the campaign was just paused or cancelled, or Redis failed
// (unreachable, restarting, read-only). A Redis failure, however long,
// therefore never uses up the recipient's attempts; the item goes to the
// child task, which waits redisRetry and claims it again (fail-closed: no
// stamp, no send).
func stampFailed(err error) outcome {
	if errors.Is(err, storage.ErrStopped) {
		return outcome{released: true, reason: "campaign paused or cancelled"}
	}
	return outcome{deferred: Backoff(1, redisRetry), err: err, reason: "ledger unavailable before the request: " + err.Error()}
}

// fromResults maps a call's per-message results to outcomes. A result list
// of the wrong length is ambiguous: something was accepted, but what?
func fromResults(res []oneroute.Result, err error, n int) []outcome {
	out := make([]outcome, n)
	if err == nil && len(res) != n {
		err = &oneroute.TransportError{Op: "send", Written: true, Err: fmt.Errorf("got %d results for %d messages", len(res), n)}
	}
	if err != nil {
		o := outcomeOf(err)
		if o.action == FailPermanently && n >= 2 {
			// OneRoute refused the whole request, not one recipient: every
			// batch of the campaign would fail the same way.
			o.action = PauseCampaign
		}
		fill(out, o)
		return out
	}
	for i, r := range res {
		if r.Accepted() {
			out[i] = outcome{action: Succeed, id: r.Response}
		} else {
			out[i] = outcome{action: FailPermanently, reason: r.Response}
		}
	}
	return out
}

// outcomeOf turns a provider error into an outcome; Decide chooses the
// action.
func outcomeOf(err error) outcome {
	return outcome{action: Decide(err), err: err, reason: reasonOf(err), retryAfter: oneroute.RetryAfter(err)}
}

// reasonOf is a short reason for the ledger: the API message, not the URL.
func reasonOf(err error) string {
	var ae *oneroute.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("HTTP %d: %s", ae.Status, ae.Message)
	}
	return err.Error()
}

// sameFailure returns the reason when at least 10 outcomes all failed
// permanently for the same reason.
func sameFailure(results []outcome) string {
	if len(results) < 10 {
		return ""
	}
	for _, o := range results {
		if o.action != FailPermanently || o.notOwned || o.released || o.reason != results[0].reason {
			return ""
		}
	}
	return results[0].reason
}
