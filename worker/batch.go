package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// batchSender runs the send path shared by every channel: claim, reconcile,
// rate-limit, stamp, call, record, follow up.
type batchSender struct {
	deps Deps
	opts Options
	// drain is closed when the worker is stopping: no new provider call
	// starts, and recipients not yet sent are given back.
	drain <-chan struct{}
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
}

// attempt is one execution of a batch task: its token owns the claims.
type attempt struct {
	s     *batchSender
	b     *campaigns.Batch
	token string
}

// callFunc sends items of a batch through the attempt's batchCall or
// eachCall and returns one outcome per item, in order.
type callFunc func(ctx context.Context, a *attempt, items []campaigns.Item) []outcome

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

// process is the whole life of one batch task.
func (s *batchSender) process(ctx context.Context, b *campaigns.Batch, call callFunc) error {
	log := zerolog.Ctx(ctx)
	a := &attempt{s: s, b: b, token: storage.NewToken()}
	rows := make([]int, len(b.Items))
	for i, it := range b.Items {
		rows[i] = it.Row
	}
	expired := b.ExpiresAt > 0 && time.Now().Unix() >= b.ExpiresAt
	reply, err := s.deps.Store.Claim(ctx, b.Campaign, a.token, rows, s.opts.staleAfter())
	if errors.Is(err, storage.ErrNotFound) {
		log.Warn().Msg("campaign not found; dropping task")
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	switch reply.State {
	case campaigns.StateDispatching, campaigns.StateRunning:
	case campaigns.StatePaused:
		if expired {
			return s.stopAll(ctx, b, rows, "expired", false)
		}
		return &notFailure{reason: "campaign paused", retryIn: 10 * time.Second}
	case campaigns.StateCancelled:
		return s.stopAll(ctx, b, rows, "cancelled", true)
	default:
		return nil // completed: nothing left to do
	}

	var send, later []campaigns.Item
	var stale []staleItem
	var repoll []tasks.DLRItem
	for i, r := range reply.Results {
		switch r.Code {
		case storage.Claimed:
			send = append(send, b.Items[i])
		case storage.InFlight:
			later = append(later, b.Items[i])
		case storage.Stale:
			stale = append(stale, staleItem{item: b.Items[i], since: r.Since})
		case storage.AlreadyFinal:
			if r.Accepted != "" {
				repoll = append(repoll, tasks.DLRItem{Row: b.Items[i].Row, ID: r.Accepted})
			}
		}
	}
	// A re-run (crash, requeue) cannot tell whether the earlier run
	// scheduled delivery-report polls for its accepted rows: poll again.
	// Polls are idempotent.
	if len(repoll) > 0 && b.Channel.TracksDLR() {
		if err := s.scheduleDLR(ctx, a, repoll); err != nil {
			return err
		}
	}

	failed := false
	var lastErr error
	if len(stale) > 0 {
		resend, settled, again := s.reconcile(ctx, a, stale)
		if expired {
			for _, it := range resend {
				settled = append(settled, campaigns.Outcome{Row: it.Row, State: storage.LedgerSkipped, Value: "expired"})
			}
			resend = nil
		}
		// Settle what reconciliation decided at once, with its polls, before
		// anything below can return early.
		if err := s.settle(ctx, a, settled); err != nil {
			return err
		}
		send = append(send, resend...)
		later = append(later, again...)
		if len(again) > 0 {
			failed, lastErr = true, errors.New("reconciliation lookup failed")
		}
	}

	var outs []campaigns.Outcome
	if expired {
		// Past the campaign's deadline: send nothing more.
		for _, it := range send {
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerSkipped, Value: "expired"})
		}
		send = nil
	}
	if len(send) > 0 && s.draining() {
		outs = append(outs, releaseAll(send)...)
		if err := s.record(ctx, a, outs); err != nil {
			return err
		}
		return errStopping
	}
	if len(send) > 0 {
		if err := ratelimit.Wait(ctx, s.deps.Limiter, b.Sender(), s.limitFor(b), len(send), s.opts.MaxWait); err != nil {
			// Nothing was sent: give the claims back, let asynq bring the
			// task back after the wait without counting a failure.
			if rerr := s.record(ctx, a, append(outs, releaseAll(send)...)); rerr != nil {
				return rerr
			}
			var ce *ratelimit.CapacityError
			if errors.As(err, &ce) {
				// The batch can never fit the cap: every try would fail.
				s.pause(ctx, b, ce.Error()+"; lower batch_size or raise the limit, then resume")
				return &notFailure{reason: "campaign paused", retryIn: 30 * time.Second}
			}
			return err
		}
	}
	var results []outcome
	if len(send) > 0 {
		results = call(ctx, a, send)
	}

	var (
		accepted   []tasks.DLRItem
		pause      string
		retry      []campaigns.Item
		stopping   bool
		throttleTo time.Duration
	)
	if reason := sameFailure(results); reason != "" {
		// Every recipient of a sizeable batch refused for one reason: a
		// campaign-level mistake (wrong parameters, unknown sender), not
		// bad recipients. Pause instead of failing everyone.
		for i := range results {
			results[i].action, results[i].reason = PauseCampaign, "every recipient of a batch refused: "+reason
		}
	}
	for i, o := range results {
		it := send[i]
		switch {
		case o.notOwned:
			continue
		case o.released:
			outs = append(outs, campaigns.Outcome{Row: it.Row})
			retry = append(retry, it)
			stopping = true
			continue
		}
		switch o.action {
		case Succeed:
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerAccepted, Value: o.id})
			accepted = append(accepted, tasks.DLRItem{Row: it.Row, ID: o.id})
		case FailPermanently:
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerFailed, Value: o.reason})
		case PauseCampaign:
			outs = append(outs, campaigns.Outcome{Row: it.Row})
			retry = append(retry, it)
			pause = o.reason
		case Reschedule:
			outs = append(outs, campaigns.Outcome{Row: it.Row})
			retry = append(retry, it)
			throttleTo = max(throttleTo, o.retryAfter, time.Second)
		case RetryWithBackoff:
			if b.Failures+1 >= s.opts.MaxAttempts {
				outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerFailed,
					Value: fmt.Sprintf("gave up after %d attempts: %s", b.Failures+1, o.reason)})
				continue
			}
			outs = append(outs, campaigns.Outcome{Row: it.Row})
			retry = append(retry, it)
			failed, lastErr = true, o.err
		case Reconcile:
			switch {
			case b.Channel.TracksDLR():
				// Keep the claim; a follow-up finds it stale and looks it up.
				later = append(later, it)
			case b.AtLeastOnce:
				outs = append(outs, campaigns.Outcome{Row: it.Row})
				retry = append(retry, it)
			default:
				outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerUnknown, Value: o.reason})
			}
		}
	}
	// Record before anything else: if this fails, the task fails and its
	// re-run reconciles the rows this attempt stamped.
	if err := s.record(ctx, a, outs); err != nil {
		return err
	}
	if len(accepted) > 0 && b.Channel.TracksDLR() {
		if err := s.scheduleDLR(ctx, a, accepted); err != nil {
			return err
		}
	}
	if throttleTo > 0 && s.deps.Limiter != nil {
		// One worker's 429 slows every worker on this sender.
		if err := s.deps.Limiter.Block(context.WithoutCancel(ctx), b.Sender(), throttleTo); err != nil {
			log.Warn().Err(err).Msg("share provider throttle")
		}
	}
	var delay time.Duration
	if pause != "" {
		s.pause(ctx, b, "OneRoute refused the campaign: "+pause)
		delay = 30 * time.Second
	}
	if len(later) > 0 {
		delay = max(delay, s.opts.staleAfter())
	}
	if failed {
		delay = max(delay, Backoff(b.Failures+1, s.opts.RetryBase))
	}
	if stopping {
		delay = max(delay, time.Second)
	}
	delay = max(delay, throttleTo)
	rest := append(retry, later...)
	if len(rest) == 0 {
		return nil
	}
	child := *b
	child.Items = rest
	child.Attempt = b.Attempt + 1
	if failed {
		child.Failures = b.Failures + 1
	}
	if err := s.enqueueChild(ctx, &child, delay); err != nil {
		return err
	}
	ev := log.Info()
	if failed {
		ev = log.Warn().AnErr("last_error", lastErr)
	}
	ev.Int("retry_items", len(retry)).Int("later_items", len(later)).Dur("in", delay).Str("next", tasks.BatchID(&child)).Msg("part of the batch follows up")
	return nil
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

// settle records reconciliation's verdicts and polls the accepted ones.
func (s *batchSender) settle(ctx context.Context, a *attempt, outs []campaigns.Outcome) error {
	if err := s.record(ctx, a, outs); err != nil {
		return err
	}
	var accepted []tasks.DLRItem
	for _, o := range outs {
		if o.State == storage.LedgerAccepted {
			accepted = append(accepted, tasks.DLRItem{Row: o.Row, ID: o.Value})
		}
	}
	if len(accepted) > 0 && a.b.Channel.TracksDLR() {
		return s.scheduleDLR(ctx, a, accepted)
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

// record writes the attempt's ledger outcomes even when the task's context
// is being cancelled (shutdown, lease loss): a send that happened must be
// recorded. An error fails the task, whose re-run reconciles.
func (s *batchSender) record(ctx context.Context, a *attempt, outs []campaigns.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	n, err := s.deps.Store.Record(rctx, a.b.Campaign, storage.ModeSend, a.token, outs)
	if err != nil {
		return fmt.Errorf("record %d outcomes: %w", len(outs), err)
	}
	if n < len(outs) {
		zerolog.Ctx(ctx).Warn().Int("outcomes", len(outs)).Int("applied", n).Msg("some claims were taken over by another attempt; its outcome stands")
	}
	return nil
}

func (s *batchSender) limitFor(b *campaigns.Batch) ratelimit.Limit {
	return limiterLimit(b.Rate.Over(s.opts.RateLimit))
}

func (s *batchSender) enqueueChild(ctx context.Context, child *campaigns.Batch, delay time.Duration) error {
	return tasks.Enqueue(context.WithoutCancel(ctx), s.deps.Enqueuer, tasks.Send(child, tasks.Options{Timeout: s.opts.TaskTimeout, Delay: delay}))
}

// scheduleDLR starts polling delivery reports of accepted rows. The poll's
// id names the attempt and hashes its rows, so two polls of one attempt
// (rows settled by reconciliation, rows sent) never share an id.
func (s *batchSender) scheduleDLR(ctx context.Context, a *attempt, items []tasks.DLRItem) error {
	h := fnv.New32a()
	for _, it := range items {
		fmt.Fprintf(h, "%d,", it.Row)
	}
	key := fmt.Sprintf("%s-%s-%08x", tasks.BatchKey(a.b), a.token, h.Sum32())
	p := &tasks.DLRPoll{Campaign: a.b.Campaign, Key: key, Since: time.Now().Unix(), Items: items}
	return enqueueDLR(ctx, s.deps.Enqueuer, p, s.opts.DLRInterval, s.opts)
}

// outcomeOf turns a provider error into an outcome.
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

// fromResults maps a batch call's per-message results to outcomes. A result
// list of the wrong length is ambiguous: something was accepted, but what?
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
		for i := range out {
			out[i] = o
		}
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

// batchCall stamps items and sends those this attempt still owns in one
// provider call.
func (a *attempt) batchCall(ctx context.Context, items []campaigns.Item, send func(context.Context, []campaigns.Item) []outcome) []outcome {
	out := make([]outcome, len(items))
	owned, err := a.stamp(ctx, items)
	if err != nil {
		for i := range out {
			out[i] = stampFailed(err)
		}
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
	for j, o := range send(ctx, mine) {
		out[idx[j]] = o
	}
	return out
}

// eachCall sends each item in its own call, concurrently up to the
// configured limit, stamping each just before its request.
func (a *attempt) eachCall(ctx context.Context, items []campaigns.Item, send func(context.Context, campaigns.Item) ([]oneroute.Result, error)) []outcome {
	out := make([]outcome, len(items))
	sem := make(chan struct{}, a.s.opts.PerCallConcurrency)
	var wg sync.WaitGroup
	for i, it := range items {
		stop := false
		select {
		case sem <- struct{}{}:
			stop = ctx.Err() != nil || a.s.draining()
		case <-ctx.Done():
			stop = true
		case <-a.s.drain:
			stop = true
		}
		if stop {
			// Not sent: give back without counting a failure.
			for j := i; j < len(items); j++ {
				out[j] = outcome{released: true, reason: "worker stopping"}
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			owned, err := a.stamp(ctx, []campaigns.Item{it})
			switch {
			case err != nil:
				out[i] = stampFailed(err)
			case !owned[0]:
				out[i] = outcome{notOwned: true}
			case ctx.Err() != nil:
				out[i] = outcome{released: true, reason: "worker stopping"}
			default:
				res, err := send(ctx, it)
				out[i] = fromResults(res, err, 1)[0]
			}
		}()
	}
	wg.Wait()
	return out
}

// stampFailed is the outcome of an item that could not be stamped: given
// back, without a failure when the campaign was just paused or cancelled.
func stampFailed(err error) outcome {
	if errors.Is(err, storage.ErrStopped) {
		return outcome{released: true, reason: "campaign paused or cancelled"}
	}
	return outcome{action: RetryWithBackoff, err: err, reason: reasonOf(err)}
}

func (a *attempt) stamp(ctx context.Context, items []campaigns.Item) ([]bool, error) {
	rows := make([]int, len(items))
	for i, it := range items {
		rows[i] = it.Row
	}
	return a.s.deps.Store.Stamp(context.WithoutCancel(ctx), a.b.Campaign, a.token, rows)
}
