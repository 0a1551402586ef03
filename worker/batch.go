package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// batchSender runs the send path shared by every channel. A channel handler
// says only how its requests are built (channel); process does the rest.
type batchSender struct {
	deps Deps
	opts Options
	// drain is closed when the worker is stopping: no new provider call
	// starts, and recipients not yet sent are given back.
	drain <-chan struct{}
	// senders run the per-message provider calls of every task.
	senders *senders
}

// newBatchSender returns the send path for options o (defaults applied);
// closing drain tells it the worker is stopping.
func newBatchSender(d Deps, o Options, drain <-chan struct{}) *batchSender {
	return &batchSender{deps: d, opts: o, drain: drain, senders: newSenders(o.InFlight)}
}

// attempt is one execution of a batch task: its token owns the claims.
type attempt struct {
	s     *batchSender
	b     *campaigns.Batch
	token string
	rows  []int
	// expired: the campaign is past schedule.expires_at; nothing more is
	// sent. Decided once, when the attempt starts.
	expired bool
	// guard is the deadlineGuard of the attempt's requests, set by send.
	guard time.Duration
	// early records the send step's acceptances before it ends (early.go);
	// set by send.
	early *earlyRecords
}

// errStopping gives a task back to asynq while the worker stops.
var errStopping = &notFailure{reason: "worker stopping", retryIn: time.Second}

func (s *batchSender) draining() bool {
	select {
	case <-s.drain:
		return true
	default:
		return false
	}
}

// process is the whole life of one batch task, in steps:
//
//   - claim: take the batch's rows in the ledger for this attempt;
//   - reconcile: settle rows whose request started in a vanished attempt;
//   - pace: reserve the first request's permits from the shared rate
//     limiter, or give the claims back;
//   - send: at each request's permit time, stamp its rows and make it;
//   - settle: record the outcomes atomically;
//   - follow: carry out the plan the steps left (delivery-report polls, the
//     unfinished part of the batch, a shared throttle, a pause).
func (s *batchSender) process(ctx context.Context, b *campaigns.Batch, send channelFunc) error {
	b, err := s.window(ctx, b)
	if b == nil {
		return err // outside the send window: nothing claimed, no retry used
	}
	a := s.newAttempt(b)
	c, err := a.claim(ctx)
	if c == nil {
		return err // gone, paused, cancelled or completed: nothing to send
	}
	var p plan
	err = a.deliver(ctx, c, send(b), &p)
	return s.follow(ctx, b, p, err)
}

// newAttempt starts an execution of b with a fresh token.
func (s *batchSender) newAttempt(b *campaigns.Batch) *attempt {
	rows := make([]int, len(b.Items))
	for i, it := range b.Items {
		rows[i] = it.Row
	}
	expired := b.ExpiresAt > 0 && s.opts.NowFunc().Unix() >= b.ExpiresAt
	return &attempt{s: s, b: b, token: storage.NewToken(), rows: rows, expired: expired}
}

// deliver takes the claimed rows through reconcile, pace, send and settle,
// and leaves in p what must follow. On an error p holds only what was
// already recorded (polls of accepted rows).
func (a *attempt) deliver(ctx context.Context, c *claim, ch channel, p *plan) error {
	p.later = c.inFlight
	// A re-run (crash, requeue) cannot tell whether the earlier run
	// scheduled delivery-report polls for its accepted rows: poll again.
	// Polls are idempotent.
	p.poll(a, c.accepted)
	if err := a.verifyAfterLoss(ctx, c); err != nil {
		return err
	}
	resend, err := a.reconcile(ctx, c.stale, p)
	if err != nil {
		return err
	}
	send := append(c.send, resend...)
	if a.expired {
		// Past the campaign's deadline: send nothing more.
		return a.settle(ctx, skipped(send, "expired"), p)
	}
	pc, send, err := a.pace(ctx, send, p)
	if err != nil {
		return err
	}
	results := a.send(ctx, ch, send, pc)
	// Rows recorded while the task sent the rest are accepted whatever
	// settle does: plan their delivery reports even if it fails.
	p.poll(a, a.early.acceptedEarly())
	return a.settle(ctx, a.outcomes(send, results, p), p)
}

// claim is what the ledger answered when an attempt claimed its rows.
type claim struct {
	send     []campaigns.Item // claimed, never stamped: send now
	inFlight []campaigns.Item // another live attempt is sending them
	stale    []staleItem      // stamped by an attempt that vanished: reconcile first
	accepted []tasks.DLRItem  // accepted by an earlier run: poll again
}

// claim takes the batch's rows for this attempt. It returns no claim when
// the campaign is not running; the error then tells asynq what to do.
func (a *attempt) claim(ctx context.Context) (*claim, error) {
	b := a.b
	// Recipients who opted out since the dispatch are settled first, so
	// the claim finds them final (optout.go).
	if err := a.skipOptedOut(ctx); err != nil {
		return nil, err
	}
	reply, err := a.s.deps.Store.Claim(ctx, b.Campaign, a.token, a.rows, a.s.opts.staleAfter())
	if errors.Is(err, storage.ErrNotFound) {
		zerolog.Ctx(ctx).Warn().Msg("campaign not found; dropping task")
		return nil, skip(err)
	}
	if err != nil {
		return nil, err
	}
	switch reply.State {
	case campaigns.StateDispatching, campaigns.StateRunning:
	case campaigns.StatePaused:
		if a.expired {
			return nil, a.s.stopAll(ctx, b, a.rows, "expired", false)
		}
		return nil, &notFailure{reason: "campaign paused", retryIn: 10 * time.Second}
	case campaigns.StateCancelled:
		return nil, a.s.stopAll(ctx, b, a.rows, "cancelled", true)
	default:
		return nil, nil // completed: nothing left to do
	}
	c := &claim{}
	for i, r := range reply.Results {
		switch r.Code {
		case storage.Claimed:
			c.send = append(c.send, b.Items[i])
		case storage.InFlight:
			c.inFlight = append(c.inFlight, b.Items[i])
		case storage.Stale:
			c.stale = append(c.stale, staleItem{item: b.Items[i], since: r.Since})
		case storage.AlreadyFinal:
			if r.Accepted != "" {
				c.accepted = append(c.accepted, tasks.DLRItem{Row: b.Items[i].Row, ID: r.Accepted})
			}
		}
	}
	return c, nil
}

// pace asks the shared rate limiter for the batch's first permits and
// returns the pacer that releases the rest (see pacer), with the items to
// send now. A sender without a per-second limit takes the whole batch's
// permits in one call, which also checks the fleet-wide block after a 429.
// When the worker is stopping or the limiter says wait, nothing is sent:
// the claims are given back and asynq brings the task back without
// counting a failure.
//
// A batch larger than a per-minute or per-day cap sends a part the size
// of a task under a limit (config.DefaultBatchSize, or the cap if smaller)
// and leaves the rest to the child task (p.retry). The dispatcher sizes
// tasks by the limits it knows; a cap set on the workers alone, or after
// the dispatch, would otherwise pause the campaign on every resume, since
// its queued tasks keep their size. The part is no larger than a task the
// dispatcher would have made, so it can go through a window that others
// partly use (the limiter grants a request whole or not at all).
func (a *attempt) pace(ctx context.Context, items []campaigns.Item, p *plan) (*pacer, []campaigns.Item, error) {
	if len(items) == 0 {
		return nil, nil, nil
	}
	if a.s.draining() {
		if err := a.record(ctx, releaseAll(items)); err != nil {
			return nil, nil, err
		}
		return nil, nil, errStopping
	}
	pc := newPacer(a, a.s.limitFor(a.b))
	var err error
	if pc.size == 0 {
		for {
			err = ratelimit.Wait(ctx, a.s.deps.Limiter, a.b.Sender(), pc.l, len(items), a.s.opts.MaxWait)
			var ce *ratelimit.CapacityError
			if !errors.As(err, &ce) || ce.Limit < 1 || len(items) <= ce.Limit {
				break
			}
			part := min(ce.Limit, config.DefaultBatchSize)
			rest := items[part:]
			if rerr := a.record(ctx, releaseAll(rest)); rerr != nil {
				return nil, nil, rerr
			}
			p.retry, p.paced = append(p.retry, rest...), max(p.paced, time.Second)
			items = items[:part]
		}
	} else {
		pc.first, err = pc.reserve(ctx, min(pc.chunkSize(a.b.Request), len(items)))
		pc.hasFirst = err == nil
	}
	if err == nil {
		return pc, items, nil
	}
	if rerr := a.record(ctx, releaseAll(items)); rerr != nil {
		return nil, nil, rerr
	}
	var ce *ratelimit.CapacityError
	if errors.As(err, &ce) {
		// Not even part of the batch can fit the cap: every try would fail.
		a.s.pause(ctx, a.b, ce.Error()+"; lower batch_size or raise the limit, then resume")
		return nil, nil, &notFailure{reason: "campaign paused", retryIn: 30 * time.Second}
	}
	return nil, nil, err
}

// outcomes turns the send step's results into ledger outcomes, and puts in
// p what follows from them: the part to send again, the part to reconcile
// later, a pause, a throttle.
func (a *attempt) outcomes(items []campaigns.Item, results []outcome, p *plan) []campaigns.Outcome {
	// A retry batch (fanout retry-failed) holds recipients chosen by their
	// failure reason: the same refusal again says nothing about the
	// campaign.
	if reason := sameFailure(results); reason != "" && a.b.Retry == 0 {
		// Every recipient of a sizeable batch refused for one reason: a
		// campaign-level mistake (wrong parameters, unknown sender), not
		// bad recipients. Pause instead of failing everyone.
		for i := range results {
			results[i].action, results[i].reason = PauseCampaign, "every recipient of a batch refused: "+reason
		}
	}
	var outs []campaigns.Outcome
	for i, o := range results {
		if a.early.recorded(items[i].Row) {
			continue // accepted, and recorded while the task sent the rest
		}
		if out, ok := a.outcome(items[i], o, p); ok {
			outs = append(outs, out)
		}
	}
	return outs
}

// outcome is the ledger outcome of one item (ok false: nothing to record)
// after Decide's action; an outcome without a state releases the claim.
func (a *attempt) outcome(it campaigns.Item, o outcome, p *plan) (out campaigns.Outcome, ok bool) {
	release := campaigns.Outcome{Row: it.Row}
	switch {
	case o.notOwned:
		return release, false
	case o.released:
		p.retry, p.stopping = append(p.retry, it), true
		return release, true
	case o.deferred > 0:
		// Not sent: the limiter had no permits soon enough.
		p.retry, p.paced = append(p.retry, it), max(p.paced, o.deferred)
		return release, true
	}
	switch o.action {
	case Succeed:
		return acceptance(it.Row, o.id), true
	case FailPermanently:
		return campaigns.Outcome{Row: it.Row, State: storage.LedgerFailed, Value: o.reason}, true
	case PauseCampaign:
		p.retry, p.pause = append(p.retry, it), o.reason
	case Reschedule:
		p.retry, p.throttle = append(p.retry, it), max(p.throttle, o.retryAfter, time.Second)
	case RetryWithBackoff:
		if a.b.Failures+1 >= a.s.opts.MaxAttempts {
			return campaigns.Outcome{Row: it.Row, State: storage.LedgerFailed,
				Value: fmt.Sprintf("gave up after %d attempts: %s", a.b.Failures+1, o.reason)}, true
		}
		p.retry = append(p.retry, it)
		p.fail(o.err)
	case Reconcile:
		switch {
		case a.b.Channel.TracksDLR(), reconcilesByIdentifier(a.b.Channel):
			// Keep the claim; a follow-up finds it stale and looks it up.
			p.later = append(p.later, it)
			return release, false
		case a.b.AtLeastOnce:
			p.retry = append(p.retry, it)
		default:
			return campaigns.Outcome{Row: it.Row, State: storage.LedgerUnknown, Value: o.reason}, true
		}
	}
	return release, true
}

// settle records outcomes, and plans delivery-report polls for the rows
// they accept. An error fails the task, whose re-run reconciles the rows
// this attempt stamped.
func (a *attempt) settle(ctx context.Context, outs []campaigns.Outcome, p *plan) error {
	if err := a.record(ctx, outs); err != nil {
		return err
	}
	var accepted []tasks.DLRItem
	for _, o := range outs {
		if o.State == storage.LedgerAccepted {
			accepted = append(accepted, tasks.DLRItem{Row: o.Row, ID: o.Value})
		}
	}
	p.poll(a, accepted)
	return nil
}

// record writes the attempt's ledger outcomes even when the task's context
// is being cancelled (shutdown, lease loss): a send that happened must be
// recorded. An error fails the task, whose re-run reconciles.
func (a *attempt) record(ctx context.Context, outs []campaigns.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	saveRetrySource(rctx, a.s.deps.Store, a.b, outs) // for fanout retry-failed
	n, err := a.s.deps.Store.Record(rctx, a.b.Campaign, storage.ModeSend, a.token, outs)
	if err != nil {
		return fmt.Errorf("record %d outcomes: %w", len(outs), err)
	}
	if n < len(outs) {
		zerolog.Ctx(ctx).Warn().Int("outcomes", len(outs)).Int("applied", n).Msg("some claims were taken over by another attempt; its outcome stands")
	}
	return nil
}

func releaseAll(items []campaigns.Item) []campaigns.Outcome {
	out := make([]campaigns.Outcome, len(items))
	for i, it := range items {
		out[i] = campaigns.Outcome{Row: it.Row}
	}
	return out
}

func skipped(items []campaigns.Item, reason string) []campaigns.Outcome {
	out := make([]campaigns.Outcome, len(items))
	for i, it := range items {
		out[i] = campaigns.Outcome{Row: it.Row, State: storage.LedgerSkipped, Value: reason}
	}
	return out
}

// stopAll settles a batch of a cancelled or expired campaign: recipients not
// being sent are skipped. With abandon, recipients whose request started
// and never settled become unknown (they may have been sent). Otherwise the
// task comes back until they are final.
func (s *batchSender) stopAll(ctx context.Context, b *campaigns.Batch, rows []int, reason string, abandon bool) error {
	outs := make([]campaigns.Outcome, len(rows))
	for i, r := range rows {
		outs[i] = campaigns.Outcome{Row: r, State: storage.LedgerSkipped, Value: reason}
	}
	if _, err := s.deps.Store.Record(ctx, b.Campaign, storage.ModeSkip, "", outs); err != nil {
		return err
	}
	if abandon {
		for i := range outs {
			outs[i] = campaigns.Outcome{Row: rows[i], State: storage.LedgerUnknown, Value: reason + " while sending"}
		}
		_, err := s.deps.Store.Record(ctx, b.Campaign, storage.ModeAbandon, "", outs)
		return err
	}
	entries, err := s.deps.Store.Ledger(ctx, b.Campaign, rows)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.State == 0 || e.State == storage.LedgerClaimed || e.State == storage.LedgerSending {
			return &notFailure{reason: "campaign paused with recipients in flight", retryIn: 30 * time.Second}
		}
	}
	return nil
}

func (s *batchSender) pause(ctx context.Context, b *campaigns.Batch, reason string) {
	log := zerolog.Ctx(ctx)
	if _, err := s.deps.Store.Pause(context.WithoutCancel(ctx), b.Campaign, reason); err != nil && !errors.Is(err, storage.ErrTransition) {
		log.Error().Err(err).Msg("pause campaign")
		return
	}
	log.Error().Str("reason", reason).Msg("campaign paused; fix the cause, then: fanout resume " + b.Campaign)
}

func (s *batchSender) limitFor(b *campaigns.Batch) ratelimit.Limit {
	return limiterLimit(b.Rate.Over(s.opts.RateLimit))
}
