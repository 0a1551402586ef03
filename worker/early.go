package worker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// earlyRecords records a task's accepted recipients before the task ends.
//
// A task's outcomes are recorded in one step after its last request
// (settle). A task of several requests (a batch sent in calls of
// Batch.Request, or one request per message) would otherwise keep its
// first accepted rows stamped "sending" for as long as the rest takes, and
// two things go wrong when that is long:
//
//   - a row stamped longer ago than Options.staleAfter (the request
//     timeout plus 5 s) looks like a vanished attempt's: another attempt
//     of the task (asynq's redelivery after a lost lease, the auditor's
//     copy) takes it over and reconciles it, and a channel without a
//     look-up records it unknown or, with at_least_once, sends it again;
//   - a crash leaves every accepted but unrecorded row to reconcile, the
//     same way.
//
// So accepted rows are recorded early: a call's as soon as it returns when
// more calls follow (flushCall), so a crash finds at most one call's rows
// unrecorded, as when a task was one call; and per-message requests' within
// earlyDelay of the first waiting answer, well inside staleAfter (a row's
// staleness counts from its stamp, at most one request timeout before its
// answer, so it has at least 5 s after the answer), and at once when
// earlyEvery of them wait on a channel whose rows no look-up can settle.
// SMS rows can be looked up at OneRoute, so SMS records by time alone.
//
// Only acceptances are recorded early: they are final whatever follows,
// whereas a refusal may still turn into a pause of the whole batch
// (sameFailure). A failed early record leaves its rows to settle.
type earlyRecords struct {
	a     *attempt
	ctx   context.Context
	every int           // record as soon as this many wait; 0: by time only
	delay time.Duration // record a waiting row within this (earlyDelay)

	mu       sync.Mutex
	pending  []campaigns.Outcome
	timer    *time.Timer
	closed   bool
	rows     map[int]bool    // recorded early; nil until the first record
	accepted []tasks.DLRItem // recorded early, for settle's delivery-report plan

	flushing sync.Mutex // one record at a time; close waits for it
}

const (
	// earlyDelay is how long an accepted per-message row may wait to be
	// recorded while its task sends the rest.
	earlyDelay = time.Second
	// earlyEvery is how many accepted per-message rows may wait on a
	// channel without look-ups: the size of a task of one call before
	// tasks grew (config.DefaultBatchSize).
	earlyEvery = 50
)

// newEarlyRecords starts the early records of attempt a's send step.
func newEarlyRecords(ctx context.Context, a *attempt) *earlyRecords {
	r := &earlyRecords{a: a, ctx: ctx, delay: earlyDelay}
	if a.b.Channel != campaigns.ChannelSMS {
		r.every = earlyEvery
	}
	return r
}

// isAccepted reports whether o is an acceptance by OneRoute.
func isAccepted(o outcome) bool {
	return o.action == Succeed && !o.notOwned && !o.released && o.deferred == 0 && o.err == nil
}

// acceptance is the ledger outcome of row, accepted with provider id id.
func acceptance(row int, id string) campaigns.Outcome {
	return campaigns.Outcome{Row: row, State: storage.LedgerAccepted, Value: id}
}

// add notes row, accepted with provider id id: it is recorded within
// r.delay, or at once (on a goroutine of its own) when it makes r.every.
// Safe from any goroutine.
func (r *earlyRecords) add(row int, id string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.pending = append(r.pending, acceptance(row, id))
	now := r.every > 0 && len(r.pending) >= r.every
	if !now && r.timer == nil {
		r.timer = time.AfterFunc(r.delay, r.flush)
	}
	r.mu.Unlock()
	if now {
		// Not on the caller's goroutine: it holds a call slot, and a paced
		// request after it must start at its permit's time.
		go r.flush()
	}
}

// flushCall records the acceptances of one call at once (items and their
// outcomes res), when more calls of the task follow.
func (r *earlyRecords) flushCall(items []campaigns.Item, res []outcome) {
	if r == nil {
		return
	}
	r.mu.Lock()
	for i, o := range res {
		if isAccepted(o) {
			r.pending = append(r.pending, acceptance(items[i].Row, o.id))
		}
	}
	r.mu.Unlock()
	r.flush()
}

// flush records the waiting rows.
func (r *earlyRecords) flush() {
	r.flushing.Lock()
	defer r.flushing.Unlock()
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	outs, closed := r.pending, r.closed
	r.pending = nil
	r.mu.Unlock()
	if closed || len(outs) == 0 {
		return // settle records them
	}
	if err := r.a.record(r.ctx, outs); err != nil {
		zerolog.Ctx(r.ctx).Debug().Err(err).Int("outcomes", len(outs)).Msg("early record failed; the task records them at its end")
		return
	}
	r.mu.Lock()
	if r.rows == nil {
		r.rows = make(map[int]bool, len(outs))
	}
	for _, o := range outs {
		r.rows[o.Row] = true
		r.accepted = append(r.accepted, tasks.DLRItem{Row: o.Row, ID: o.Value})
	}
	r.mu.Unlock()
}

// close ends the early records once every request of the send step has
// returned; what still waits is left to settle. It waits for a record
// under way, so that recorded and acceptedEarly are final.
func (r *earlyRecords) close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.mu.Unlock()
	r.flushing.Lock()
	r.flushing.Unlock() //nolint:staticcheck // SA2001: waits for a flush under way
}

// recorded reports whether row was recorded early.
func (r *earlyRecords) recorded(row int) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rows[row]
}

// acceptedEarly lists the rows recorded early.
func (r *earlyRecords) acceptedEarly() []tasks.DLRItem {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}
