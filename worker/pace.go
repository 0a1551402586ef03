package worker

import (
	"context"
	"errors"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/ratelimit"
)

// paceMargin is the release lateness pacing absorbs: the burst told to the
// limiter is lowered by rate × paceMargin cells (at least one, at most
// half the burst), so a request that leaves a little after its time (a late
// timer, the stamp's round trip) does not land in a window with a full burst
// ahead of it. Measured on a loaded 2-core machine: 20 ms left the worst
// window at exactly limit + burst, 50 ms a few cells below it.
const paceMargin = 50 * time.Millisecond

// lateLimit is how late after its permits a request may still start (after
// its stamp); half the margin, leaving the other half for the request's
// trip. A later request is not sent: its permits are lost and its
// recipients go to the child task, so a stalled process never lands a lump
// in a second that is already full.
const lateLimit = paceMargin / 2

// pacer puts an attempt's requests on the wire when the shared limiter's
// permits for them conform, so the provider never sees more than the burst
// at once, whatever the shape of the requests. It reserves permits for at
// most size recipients at a time: a batched call is split into requests of
// at most size recipients, each sent at its last permit's time; per-message
// calls are each released at their own permit's time.
//
// A pacer with size 0 paces nothing: the sender has no per-second limit, and
// pace took the batch's permits (or only checked the shared 429 block) in
// one call.
type pacer struct {
	a        *attempt
	l        ratelimit.Limit // the burst lowered to size
	size     int
	interval time.Duration
	// first is the reservation pace made for the first request.
	first    time.Time
	hasFirst bool
}

// newPacer returns the pacer for limit l (size 0 without a per-second
// limit).
func newPacer(a *attempt, l ratelimit.Limit) *pacer {
	p := &pacer{a: a, l: l}
	if l.PerSecond <= 0 || a.s.deps.Limiter == nil {
		return p
	}
	burst := l.Burst
	if burst <= 0 {
		burst = l.PerSecond
	}
	margin := int((time.Duration(l.PerSecond)*paceMargin + time.Second - 1) / time.Second)
	p.size = burst - min(max(margin, 1), burst/2)
	p.l.Burst = p.size
	p.interval = time.Second / time.Duration(l.PerSecond)
	return p
}

// reserve returns when the permits of the next n recipients (n at most
// size) conform.
func (p *pacer) reserve(ctx context.Context, n int) (time.Time, error) {
	if p.hasFirst {
		p.hasFirst = false
		return p.first, nil
	}
	s := p.a.s
	return ratelimit.Schedule(ctx, s.deps.Limiter, p.a.b.Sender(), p.l, n, s.opts.MaxWait)
}

// cell is when recipient j of a reservation of n conforming at last may go:
// one interval apart, ending at last, never before now.
func (p *pacer) cell(last time.Time, j, n int) time.Time {
	return last.Add(-time.Duration(n-1-j) * p.interval)
}

// chunkSize is the most recipients one batched request carries: the
// pacer's size and request (Batch.Request), the smaller of those set; 0
// when neither is.
func (p *pacer) chunkSize(request int) int {
	if request > 0 && (p.size <= 0 || request < p.size) {
		return request
	}
	return p.size
}

// chunks splits items into requests of at most size recipients, and at
// most request (the batch's Batch.Request) when that is set; all in one
// when neither is.
func (p *pacer) chunks(items []campaigns.Item, request int) [][]campaigns.Item {
	size := p.chunkSize(request)
	if size <= 0 || len(items) <= size {
		return [][]campaigns.Item{items}
	}
	var out [][]campaigns.Item
	for len(items) > 0 {
		k := min(size, len(items))
		out = append(out, items[:k])
		items = items[k:]
	}
	return out
}

// until waits until t, or until the task ends or the worker stops; false
// when the request must not start.
func (p *pacer) until(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil && !p.a.s.draining()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return ctx.Err() == nil && !p.a.s.draining()
	case <-ctx.Done():
		return false
	case <-p.a.s.drain:
		return false
	}
}

// unsent is the outcome of items whose request did not start because the
// limiter had no permits soon enough (err) or the worker is stopping: they
// are given back, without a failure, to a child task.
func unsent(out []outcome, err error) {
	o := outcome{released: true, reason: "worker stopping"}
	var te *ratelimit.ThrottledError
	switch {
	case errors.As(err, &te):
		o = outcome{deferred: max(te.RetryIn, time.Millisecond), reason: "rate limited"}
	case err != nil && err != errStopping && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		o = outcome{deferred: ratelimit.ErrorRetryIn, reason: err.Error()}
	}
	fill(out, o)
}
