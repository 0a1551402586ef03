package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// Detach prepares a detached dispatch of a campaign whose recipient file
// was uploaded with up (already closed): it records the campaign, stores the
// suppression list's hashes and enqueues the first campaign:expand task.
// Running it twice enqueues one task.
func Detach(ctx context.Context, store *storage.Store, enq Enqueuer, spec campaigns.Spec, o Options) error {
	o = o.withDefaults()
	pf, err := preflight(spec, nil, o)
	if err != nil {
		return err
	}
	if _, err := store.Create(ctx, spec); err != nil {
		return err
	}
	if err := store.SaveSuppressed(ctx, spec.ID, pf.suppressed.members()); err != nil {
		return fmt.Errorf("detach %s: store suppression list: %w", spec.ID, err)
	}
	p := tasks.Expand{Campaign: spec.ID}
	if err := tasks.Enqueue(ctx, enq, tasks.NewExpand(p, spec.Channel, expandOptions(o))); err != nil {
		return fmt.Errorf("detach %s: %w", spec.ID, err)
	}
	return nil
}

// UploadMeta is what storage's NewUpload stores beside a file for the
// expansion: the reader settings and the dispatch options the command line
// chose.
func UploadMeta(so recipients.SourceOptions, o Options) map[string]any {
	return map[string]any{"format": so.Format, "comma": strconv.Itoa(int(so.Comma)),
		"batch_size": o.BatchSize, "window": o.Window, "max_attempts": o.MaxAttempts,
		"task_timeout_ms": o.TaskTimeout.Milliseconds()}
}

const defaultMaxRun = 10 * time.Minute

// expandOptions are the asynq settings of an expansion task: a timeout
// past its slice, and the workers' attempts.
func expandOptions(o Options) tasks.Options {
	run := o.MaxRun
	if run <= 0 {
		run = defaultMaxRun
	}
	return tasks.Options{Timeout: run + 5*time.Minute, MaxRetry: max(o.MaxAttempts, 1)}
}

// ExpandHandler runs detached expansions; build it with NewExpandHandler.
type ExpandHandler struct {
	store *storage.Store
	enq   Enqueuer
	opts  Options
}

// NewExpandHandler returns the campaign:expand handler. o supplies what the
// upload does not (Workers, Enqueuers, Logger, ...); MaxRun defaults to 10
// minutes, after which a task hands over to a continuation so no task holds
// a worker for hours.
func NewExpandHandler(store *storage.Store, enq Enqueuer, o Options) asynq.Handler {
	if o.MaxRun <= 0 {
		o.MaxRun = defaultMaxRun
	}
	return &ExpandHandler{store: store, enq: enq, opts: o}
}

// ProcessTask expands the campaign from its checkpoint for up to MaxRun.
func (h *ExpandHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p tasks.Expand
	if err := tasks.Decode(t.Payload(), &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if ok, err := h.store.ClaimGeneration(ctx, p.Campaign, p.Gen); err != nil {
		return err
	} else if !ok {
		return nil // a later generation took over
	}
	prog, err := h.store.Progress(ctx, p.Campaign)
	if err != nil {
		return fmt.Errorf("expand %s: %w", p.Campaign, err)
	}
	up, meta, err := h.store.OpenUpload(ctx, p.Campaign)
	if errors.Is(err, storage.ErrNoUpload) {
		if prog.Dispatched {
			return nil // done, and cleaned up
		}
		return fmt.Errorf("expand %s: %w; dispatch the file again with fanout dispatch --detach: %w", p.Campaign, err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if prog.State == campaigns.StateCancelled || prog.State == campaigns.StateCompleted {
		return h.store.DeleteUpload(ctx, p.Campaign, up.Chunks())
	}
	spec, err := h.store.Spec(ctx, p.Campaign)
	if err != nil {
		return err
	}
	o := h.opts
	n := func(k string) int { v, _ := strconv.Atoi(meta[k]); return v }
	o.BatchSize, o.Window, o.MaxAttempts = n("batch_size"), n("window"), n("max_attempts")
	o.TaskTimeout = time.Duration(n("task_timeout_ms")) * time.Millisecond
	o.DryRun, o.Reject = false, nil
	suppressed, err := h.store.Suppressed(ctx, p.Campaign)
	if err != nil {
		return fmt.Errorf("expand %s: read suppression list: %w", p.Campaign, err)
	}
	o.suppressed = hashSetOf(suppressed)
	src, err := recipients.NewSource(up, recipients.SourceOptions{Format: meta["format"], Comma: rune(n("comma"))})
	if err != nil {
		return fmt.Errorf("expand %s: %w: %w", p.Campaign, err, asynq.SkipRetry)
	}
	defer src.Close()
	res, err := New(h.store, h.enq, o).Dispatch(ctx, spec, src)
	switch {
	case errors.Is(err, ErrSuspended):
		next := tasks.Expand{Campaign: p.Campaign, Gen: p.Gen + 1}
		if err := tasks.Enqueue(ctx, h.enq, tasks.NewExpand(next, spec.Channel, expandOptions(o))); err != nil {
			return fmt.Errorf("expand %s: continuation: %w", p.Campaign, err)
		}
		o.Logger.Info().Str("campaign", p.Campaign).Int("gen", p.Gen).Int("row", res.Rows).Int("batches", res.Batches).Msg("expansion continues in a new task")
		return nil
	case errors.Is(err, ErrBadInput), errors.Is(err, ErrFileChanged), errors.Is(err, storage.ErrSpecConflict):
		return fmt.Errorf("expand %s: %w: %w", p.Campaign, err, asynq.SkipRetry)
	case err != nil:
		return fmt.Errorf("expand %s: %w", p.Campaign, err)
	}
	o.Logger.Info().Str("campaign", p.Campaign).Int("valid", res.Valid).Int("invalid", res.Invalid).Int("batches", res.Batches).Msg("expansion done")
	return h.store.DeleteUpload(ctx, p.Campaign, up.Chunks())
}
