package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
)

// batchSender runs the send path shared by every channel: claim, reconcile,
// rate-limit, call, record, follow up.
type batchSender struct {
	deps Deps
	opts Options
}

// outcome is what happened to one item of the batch.
type outcome struct {
	action     Action
	id         string // provider message id when accepted
	reason     string
	retryAfter time.Duration
	err        error
}

// call sends some items of a batch in one or more provider calls and returns
// one outcome per item, in order.
type callFunc func(ctx context.Context, b *campaigns.Batch, items []campaigns.Item) []outcome

// process is the whole life of one batch task.
func (s *batchSender) process(ctx context.Context, b *campaigns.Batch, call callFunc) error {
	log := zerolog.Ctx(ctx)
	rows := make([]int, len(b.Items))
	for i, it := range b.Items {
		rows[i] = it.Row
	}
	reply, err := s.deps.Store.Claim(ctx, b.Campaign, rows, s.opts.staleAfter())
	if errors.Is(err, campaigns.ErrNotFound) {
		log.Warn().Msg("campaign not found; dropping task")
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	switch reply.State {
	case campaigns.StateDispatching, campaigns.StateRunning:
	case campaigns.StatePaused:
		return &notFailure{reason: "campaign paused", retryIn: 10 * time.Second}
	case campaigns.StateCancelled:
		outs := make([]campaigns.Outcome, len(rows))
		for i, r := range rows {
			outs[i] = campaigns.Outcome{Row: r, State: campaigns.LedgerSkipped, Value: "cancelled"}
		}
		_, err := s.deps.Store.Record(ctx, b.Campaign, campaigns.ModeSkip, outs)
		return err
	default:
		return nil // completed: nothing left to do
	}

	var send, later []campaigns.Item
	var stale []staleItem
	for i, r := range reply.Results {
		switch r.Code {
		case campaigns.Claimed:
			send = append(send, b.Items[i])
		case campaigns.InFlight:
			later = append(later, b.Items[i])
		case campaigns.Stale:
			stale = append(stale, staleItem{item: b.Items[i], since: r.Since})
		}
	}
	var outs []campaigns.Outcome
	if len(stale) > 0 {
		resend, settled, again := s.reconcile(ctx, b, stale)
		send = append(send, resend...)
		outs = append(outs, settled...)
		later = append(later, again...)
	}
	var accepted []campaigns.DLRItem
	for _, o := range outs {
		if o.State == campaigns.LedgerAccepted {
			accepted = append(accepted, campaigns.DLRItem{Row: o.Row, ID: o.Value})
		}
	}
	if b.ExpiresAt > 0 && time.Now().Unix() >= b.ExpiresAt {
		// Past the campaign's deadline: send nothing more. Recipients that
		// reconciliation found sent keep that outcome.
		for _, it := range send {
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerSkipped, Value: "expired"})
		}
		send = nil
	}
	if len(send) > 0 {
		if err := ratelimit.Wait(ctx, s.deps.Limiter, b.Sender(), s.limitFor(b), len(send), s.opts.MaxWait); err != nil {
			// Nothing was sent: give the claims back, let asynq bring the
			// task back after the wait without counting a failure.
			s.record(ctx, b, campaigns.ModeSend, append(outs, releaseAll(send)...))
			var ce *ratelimit.CapacityError
			if errors.As(err, &ce) {
				// The batch can never fit the cap: every try would fail.
				reason := ce.Error() + "; lower batch_size or raise the limit, then resume"
				if perr := s.deps.Store.SetState(context.WithoutCancel(ctx), b.Campaign, campaigns.StatePaused, reason); perr != nil {
					log.Error().Err(perr).Msg("pause campaign")
				}
				log.Error().Str("reason", reason).Msg("campaign paused")
				return &notFailure{reason: "campaign paused", retryIn: 10 * time.Second}
			}
			return err
		}
	}
	results := []outcome{}
	if len(send) > 0 {
		results = call(ctx, b, send)
	}

	var (
		pause      string
		retry      []campaigns.Item
		delay      time.Duration
		failed     bool
		lastErr    error
		throttleTo time.Duration
	)
	for i, o := range results {
		it := send[i]
		switch o.action {
		case Succeed:
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerAccepted, Value: o.id})
			accepted = append(accepted, campaigns.DLRItem{Row: it.Row, ID: o.id})
		case FailPermanently:
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerFailed, Value: o.reason})
		case PauseCampaign:
			outs = append(outs, campaigns.Outcome{Row: it.Row})
			pause = o.reason
		case Reschedule:
			outs = append(outs, campaigns.Outcome{Row: it.Row})
			retry = append(retry, it)
			throttleTo = max(throttleTo, o.retryAfter, time.Second)
		case RetryWithBackoff:
			if b.Failures+1 >= s.opts.MaxAttempts {
				outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerFailed,
					Value: fmt.Sprintf("gave up after %d attempts: %s", b.Failures+1, o.reason)})
				continue
			}
			outs = append(outs, campaigns.Outcome{Row: it.Row})
			retry = append(retry, it)
			failed, lastErr = true, o.err
		case Reconcile:
			switch {
			case b.Channel.TracksDLR():
				// Keep the claim; the follow-up finds it stale and looks it up.
				later = append(later, it)
			case b.AtLeastOnce:
				outs = append(outs, campaigns.Outcome{Row: it.Row})
				retry = append(retry, it)
			default:
				outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerUnknown, Value: o.reason})
			}
		}
	}
	s.record(ctx, b, campaigns.ModeSend, outs)

	if len(accepted) > 0 && b.Channel.TracksDLR() {
		if err := s.scheduleDLR(ctx, b, accepted); err != nil {
			log.Error().Err(err).Msg("schedule delivery report polls")
		}
	}
	if throttleTo > 0 && s.deps.Limiter != nil {
		// One worker's 429 slows every worker on this sender.
		if err := s.deps.Limiter.Block(context.WithoutCancel(ctx), b.Sender(), throttleTo); err != nil {
			log.Warn().Err(err).Msg("share provider throttle")
		}
	}
	if pause != "" {
		reason := "OneRoute refused the campaign: " + pause
		if err := s.deps.Store.SetState(context.WithoutCancel(ctx), b.Campaign, campaigns.StatePaused, reason); err != nil {
			log.Error().Err(err).Msg("pause campaign")
		}
		log.Error().Str("reason", reason).Msg("campaign paused; fix the cause and resume it")
		// Everything not yet final in this batch comes back after resume.
		retry = append(retry, itemsWithAction(send, results, PauseCampaign)...)
		delay = max(delay, 10*time.Second)
	}
	if len(later) > 0 {
		delay = max(delay, s.opts.staleAfter())
	}
	if failed {
		delay = max(delay, Backoff(b.Failures+1, s.opts.RetryBase))
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
	ev.Int("retry", len(retry)).Int("later", len(later)).Dur("in", delay).Str("next", child.TaskID()).Msg("part of the batch follows up")
	return nil
}

func itemsWithAction(items []campaigns.Item, results []outcome, a Action) []campaigns.Item {
	var out []campaigns.Item
	for i, o := range results {
		if o.action == a {
			out = append(out, items[i])
		}
	}
	return out
}

func releaseAll(items []campaigns.Item) []campaigns.Outcome {
	out := make([]campaigns.Outcome, len(items))
	for i, it := range items {
		out[i] = campaigns.Outcome{Row: it.Row}
	}
	return out
}

// record writes ledger outcomes even when the task's context is being
// cancelled (shutdown, lease loss): a send that happened must be recorded.
func (s *batchSender) record(ctx context.Context, b *campaigns.Batch, mode campaigns.Mode, outs []campaigns.Outcome) {
	if len(outs) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.deps.Store.Record(rctx, b.Campaign, mode, outs); err != nil {
		// The claims stay: a later run finds them stale and reconciles.
		zerolog.Ctx(ctx).Error().Err(err).Int("outcomes", len(outs)).Msg("record outcomes")
	}
}

func (s *batchSender) limitFor(b *campaigns.Batch) ratelimit.Limit {
	l := s.opts.RateLimit
	if r := b.Rate; r != nil {
		if r.PerSecond > 0 {
			l.PerSecond = r.PerSecond
		}
		if r.PerMinute > 0 {
			l.PerMinute = r.PerMinute
		}
		if r.PerDay > 0 {
			l.PerDay = r.PerDay
		}
		if r.Burst > 0 {
			l.Burst = r.Burst
		}
	}
	return l
}

func (s *batchSender) enqueueChild(ctx context.Context, child *campaigns.Batch, delay time.Duration) error {
	task := asynq.NewTask(child.Channel.TaskType(), campaigns.Encode(child),
		asynq.TaskID(child.TaskID()), asynq.Queue(child.Channel.Queue()),
		asynq.MaxRetry(s.opts.MaxAttempts), asynq.Timeout(s.opts.TaskTimeout), asynq.ProcessIn(delay))
	_, err := s.deps.Enqueuer.EnqueueContext(context.WithoutCancel(ctx), task)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue follow-up %s: %w", child.TaskID(), err)
	}
	return nil
}

func (s *batchSender) scheduleDLR(ctx context.Context, b *campaigns.Batch, items []campaigns.DLRItem) error {
	p := &campaigns.DLRPoll{Campaign: b.Campaign, Key: b.Key(), Since: time.Now().Unix(), Items: items}
	return enqueueDLR(ctx, s.deps.Enqueuer, p, s.opts.DLRInterval, s.opts)
}

// outcomeOf turns a provider error into an outcome.
func outcomeOf(err error) outcome {
	a := Decide(err)
	o := outcome{action: a, err: err, reason: reasonOf(err), retryAfter: oneroute.RetryAfter(err)}
	return o
}

// reasonOf is a short reason for the ledger: the API message, not the URL.
func reasonOf(err error) string {
	var ae *oneroute.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("HTTP %d: %s", ae.Status, ae.Message)
	}
	return err.Error()
}

// fromResults maps a batch call's per-message results to outcomes.
func fromResults(res []oneroute.Result, err error, n int) []outcome {
	out := make([]outcome, n)
	if err != nil {
		o := outcomeOf(err)
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

// perMessage sends each item in its own call, concurrently up to limit.
func perMessage(ctx context.Context, items []campaigns.Item, limit int, send func(context.Context, campaigns.Item) ([]oneroute.Result, error)) []outcome {
	out := make([]outcome, len(items))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			// Not sent: release.
			for j := i; j < len(items); j++ {
				out[j] = outcome{action: RetryWithBackoff, err: ctx.Err(), reason: "stopped before sending"}
			}
			wg.Wait()
			return out
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := send(ctx, it)
			out[i] = fromResults(res, err, 1)[0]
		}()
	}
	wg.Wait()
	return out
}
