package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// window is the gate of a batch before anything is claimed: it returns the
// part of b that may be sent now, by the campaign's schedule.start_at and
// schedule.window (read in each recipient's zone). A batch without either
// passes untouched.
//
// When no recipient may be sent now, it returns nil and a notFailure that
// brings the task back at the earliest opening (at most
// Options.WindowRecheck ahead, so that a pause or cancel is seen, and no
// later than the campaign's expires_at, when it is skipped): no row
// is claimed and no retry is used. When only some may, the rest go to a
// follow-up task scheduled for their opening, whose id is deterministic
// (tasks.BatchKey of its rows), so a re-run of this task enqueues it once.
//
// A campaign that is not sending (paused, cancelled, completed, gone) or
// past its deadline is not held here: the claim step settles it as usual.
func (s *batchSender) window(ctx context.Context, b *campaigns.Batch) (*campaigns.Batch, error) {
	if b.StartAt == 0 && b.Window == nil {
		return b, nil
	}
	now := s.opts.NowFunc()
	if b.ExpiresAt > 0 && now.Unix() >= b.ExpiresAt {
		return b, nil
	}
	var ready, waiting []campaigns.Item
	var opens time.Time // the earliest opening of the waiting items
	for _, it := range b.Items {
		at := b.OpensAt(it, now)
		if !at.After(now) {
			ready = append(ready, it)
			continue
		}
		waiting = append(waiting, it)
		if opens.IsZero() || at.Before(opens) {
			opens = at
		}
	}
	if len(waiting) == 0 {
		return b, nil
	}
	act, err := s.deps.Store.Activity(ctx, b.Campaign)
	if errors.Is(err, storage.ErrNotFound) {
		return b, nil // the claim drops the task
	}
	if err != nil {
		return nil, err
	}
	if act.State != campaigns.StateDispatching && act.State != campaigns.StateRunning {
		return b, nil
	}
	if err := s.deps.Store.NoteOpening(ctx, b.Campaign, opens, now); err != nil {
		return nil, err
	}
	in := min(opens.Sub(now), s.opts.WindowRecheck)
	if b.ExpiresAt > 0 {
		in = min(in, time.Unix(b.ExpiresAt, 0).Sub(now)) // expire on time, not at the opening
	}
	log := zerolog.Ctx(ctx)
	if len(ready) == 0 {
		log.Debug().Time("opens", opens).Dur("in", in).Int("items", len(waiting)).Msg("outside the send window; waiting")
		return nil, &notFailure{reason: fmt.Sprintf("outside the send window until %s", opens.UTC().Format(time.RFC3339)), retryIn: in}
	}
	later := *b
	later.Items = waiting
	later.Attempt = b.Attempt + 1
	t := tasks.Send(&later, tasks.Options{Timeout: s.opts.TaskTimeout, Delay: in})
	if err := tasks.Enqueue(context.WithoutCancel(ctx), s.deps.Enqueuer, t); err != nil {
		return nil, err
	}
	log.Info().Int("now_items", len(ready)).Int("later_items", len(waiting)).Time("opens", opens).Str("next", t.ID).
		Msg("part of the batch is outside its send window; it follows up at the opening")
	part := *b
	part.Items = ready
	return &part, nil
}
