package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// DLRHandler runs dlr:poll tasks: it reads the delivery report of each
// accepted SMS of a batch, records the final ones, and polls the rest again
// with backoff until DLRMaxAge, after which they count as dlr_expired.
type DLRHandler struct {
	deps Deps
	opts Options
}

// maxDLRInterval caps the backoff between polls.
const maxDLRInterval = 10 * time.Minute

// polled is what one delivery-report read found: a final state, or the
// action for its error and how long OneRoute asked to wait.
type polled struct {
	state  byte
	id     string
	action Action
	wait   time.Duration
}

// ProcessTask implements asynq.Handler: read every report, record the
// final ones, poll the rest again.
func (h *DLRHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p tasks.DLRPoll
	if err := tasks.Decode(t.Payload(), &p); err != nil {
		return skip(err)
	}
	// A report already recorded (a webhook brought it, or a sweep) needs no
	// request: poll only the rows still accepted.
	items, err := h.awaited(ctx, &p)
	if err != nil {
		return err
	}
	if p.Items = items; len(items) == 0 {
		return nil
	}
	outs, rest, wait := h.sort(ctx, &p, h.read(ctx, p.Items))
	if len(outs) > 0 {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := h.deps.Store.Record(rctx, p.Campaign, storage.ModeDLR, "", outs); err != nil {
			return fmt.Errorf("record delivery reports: %w", err)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	return h.again(ctx, p, rest, wait)
}

// awaited is the items whose row is still accepted, awaiting its report,
// read from the ledger in one round trip.
func (h *DLRHandler) awaited(ctx context.Context, p *tasks.DLRPoll) ([]tasks.DLRItem, error) {
	rows := make([]int, len(p.Items))
	for i, it := range p.Items {
		rows[i] = it.Row
	}
	entries, err := h.deps.Store.Ledger(ctx, p.Campaign, rows)
	if err != nil {
		return nil, err
	}
	items := p.Items[:0:0]
	for i, e := range entries {
		if e.State == storage.LedgerAccepted {
			items = append(items, p.Items[i])
		}
	}
	return items, nil
}

// read reads the delivery report of every item, concurrently up to
// Options.PerCallConcurrency.
func (h *DLRHandler) read(ctx context.Context, items []tasks.DLRItem) []polled {
	res := make([]polled, len(items))
	sem := make(chan struct{}, h.opts.PerCallConcurrency)
	var wg sync.WaitGroup
	for i, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := h.deps.Provider.GetSMSDLR(ctx, it.ID)
			if err != nil {
				res[i] = polled{action: Decide(err), wait: oneroute.RetryAfter(err)}
				return
			}
			switch d.Conversation.Status {
			case oneroute.DLRDelivered:
				res[i] = polled{state: storage.LedgerDelivered, id: it.ID}
			case oneroute.DLRUndelivered:
				res[i] = polled{state: storage.LedgerUndelivered, id: it.ID}
			}
		}()
	}
	wg.Wait()
	return res
}

// sort splits the reads into outcomes to record (final reports, and every
// report once the poll is older than DLRMaxAge) and items to poll again,
// with the longest wait OneRoute asked for.
func (h *DLRHandler) sort(ctx context.Context, p *tasks.DLRPoll, res []polled) (outs []campaigns.Outcome, rest []tasks.DLRItem, wait time.Duration) {
	expired := time.Since(time.Unix(p.Since, 0)) >= h.opts.DLRMaxAge
	for i, r := range res {
		it := p.Items[i]
		switch {
		case r.state != 0:
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: r.state, Value: r.id})
		case expired:
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerDLRExpired, Value: it.ID})
		default:
			if r.action == PauseCampaign {
				zerolog.Ctx(ctx).Error().Msg("delivery report refused: API key rejected")
			}
			rest = append(rest, it)
			wait = max(wait, r.wait)
		}
	}
	return outs, rest, wait
}

// again polls rest once more, backing off from DLRInterval up to
// maxDLRInterval, never past DLRMaxAge, and never before wait.
func (h *DLRHandler) again(ctx context.Context, p tasks.DLRPoll, rest []tasks.DLRItem, wait time.Duration) error {
	next := p
	next.Attempt++
	next.Items = rest
	delay := min(h.opts.DLRInterval<<min(next.Attempt, 20), maxDLRInterval)
	if remaining := time.Until(time.Unix(p.Since, 0).Add(h.opts.DLRMaxAge)); remaining > 0 && delay > remaining {
		delay = remaining
	}
	return enqueueDLR(ctx, h.deps.Enqueuer, &next, max(delay, wait), h.opts)
}

// enqueueDLR enqueues a delivery-report poll to run after delay.
func enqueueDLR(ctx context.Context, enq Enqueuer, p *tasks.DLRPoll, delay time.Duration, o Options) error {
	return tasks.Enqueue(context.WithoutCancel(ctx), enq, tasks.Poll(p, tasks.Options{Timeout: o.TaskTimeout, Delay: delay}))
}
