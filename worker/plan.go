package worker

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/tasks"
)

// plan is what an attempt leaves to do once its outcomes are recorded:
// delivery reports to sweep, the unfinished part of the batch to run again
// (one smaller child task), and what the provider's answers ask of every
// worker (throttle the sender, pause the campaign). The steps of process
// fill it; follow carries it out, and is the only place a batch task
// enqueues other tasks.
type plan struct {
	// sweep is the campaign's delivery-report sweep (its log sweep for
	// WhatsApp and email), set when the attempt recorded (or found) rows
	// of a tracked channel accepted.
	sweep *tasks.DLRSweep
	// retry: claims given back; sent again by the child.
	retry []campaigns.Item
	// later: in flight elsewhere, or a lookup to try again; the child
	// reconciles them once their claims are stale.
	later []campaigns.Item
	// failed: a temporary failure; the child counts one more failure and
	// waits for Backoff. lastErr is the last such failure.
	failed  bool
	lastErr error
	// stopping: claims given back because the worker stops.
	stopping bool
	// pause is OneRoute's refusal of the whole campaign, if any.
	pause string
	// throttle is how long OneRoute asked every worker to wait (429).
	throttle time.Duration
	// paced is how long the shared limiter said to wait for the permits of
	// the part not sent; unlike throttle, nothing is shared.
	paced time.Duration
}

// fail notes a temporary failure.
func (p *plan) fail(err error) {
	p.failed, p.lastErr = true, err
}

// poll plans the delivery reports of rows the attempt recorded (or found)
// accepted: the campaign's dlr:sweep, which reads them in bulk for every
// row of the campaign, so one per attempt is enough. Their provider ids are
// already in the campaign's index (Record wrote them).
func (p *plan) poll(a *attempt, items []tasks.DLRItem) {
	if len(items) == 0 || !a.b.Channel.Tracked() {
		return
	}
	p.sweep = &tasks.DLRSweep{Campaign: a.b.Campaign, ChannelID: a.b.ChannelID}
	if a.b.Channel.TrackedByLogs() {
		p.sweep.Channel = string(a.b.Channel)
	}
}

// child is the follow-up batch of b: the items to retry, then those to
// reconcile later; nil when nothing is left.
func (p *plan) child(b *campaigns.Batch) *campaigns.Batch {
	rest := append(p.retry, p.later...)
	if len(rest) == 0 {
		return nil
	}
	c := *b
	c.Items = rest
	c.Attempt = b.Attempt + 1
	if p.failed {
		c.Failures = b.Failures + 1
	}
	return &c
}

// delay is how long the child of b waits: the longest of what every part
// of the plan asks for.
func (p *plan) delay(b *campaigns.Batch, o Options) time.Duration {
	var d time.Duration
	if p.pause != "" {
		d = 30 * time.Second
	}
	if len(p.later) > 0 {
		d = max(d, o.staleAfter())
	}
	if p.failed {
		d = max(d, Backoff(b.Failures+1, o.RetryBase))
	}
	if p.stopping {
		d = max(d, time.Second)
	}
	return max(d, p.throttle, p.paced)
}

// follow carries out the plan of an attempt of b that ended with err. The
// sweep always goes out: its rows are recorded accepted. The rest only when
// the attempt ended without error; otherwise asynq runs the same task
// again, which takes its place.
func (s *batchSender) follow(ctx context.Context, b *campaigns.Batch, p plan, err error) error {
	if p.sweep != nil {
		if serr := enqueueSweep(ctx, s.deps.Enqueuer, *p.sweep, s.opts.DLRInterval, s.opts); serr != nil {
			if err != nil {
				return err
			}
			return serr
		}
	}
	if err != nil {
		return err
	}
	log := zerolog.Ctx(ctx)
	if p.throttle > 0 && s.deps.Limiter != nil {
		// One worker's 429 slows every worker on this sender.
		if err := s.deps.Limiter.Block(context.WithoutCancel(ctx), b.Sender(), p.throttle); err != nil {
			log.Warn().Err(err).Msg("share provider throttle")
		}
	}
	if p.pause != "" {
		s.pause(ctx, b, "OneRoute refused the campaign: "+p.pause)
	}
	child := p.child(b)
	if child == nil {
		return nil
	}
	delay := p.delay(b, s.opts)
	t := tasks.Send(child, tasks.Options{Timeout: s.opts.TaskTimeout, Delay: delay})
	if err := tasks.Enqueue(context.WithoutCancel(ctx), s.deps.Enqueuer, t); err != nil {
		return err
	}
	ev := log.Info()
	if p.failed {
		ev = log.Warn().AnErr("last_error", p.lastErr)
	}
	ev.Int("retry_items", len(p.retry)).Int("later_items", len(p.later)).Dur("in", delay).Str("next", t.ID).Msg("part of the batch follows up")
	return nil
}
