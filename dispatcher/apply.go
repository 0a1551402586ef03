package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// batcher is the in-order stage: it applies the workers' rows in file
// order, counts them, drops duplicates and fills batches.
type batcher struct {
	c           storage.DispatchCounts
	seen        *hashSet
	b           *campaigns.Batch
	bHashes     []uint64
	seq         int
	firstSeq    int // the first batch this run hands out
	lastRow     int
	lastRowHash uint64
	// renderFails counts the rows refused by the template while no row
	// has rendered; firstRenderErr is the first of them.
	renderFails    int
	firstRenderErr *rowRec
}

// loop is the main loop: it applies rows in file order.
func (r *run) loop(ctx context.Context, ordered <-chan *chunk) error {
	nextProgress := r.batcher.c.Rows + r.opts.ProgressEvery
	for c := range ordered {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.err != nil && len(c.rows) == 0 {
			return c.err
		}
		for i := range c.rows {
			if err := r.apply(ctx, &c.rows[i]); err != nil {
				return err
			}
		}
		if c.err != nil {
			return c.err
		}
		if c.eof {
			if r.batcher.renderFails > 0 && r.batcher.c.Valid == 0 {
				return r.templateFails()
			}
			return r.flush(ctx)
		}
		// Nothing refers to the chunk's rows any more: batches hold the
		// addresses and contents, not the rows.
		select {
		case r.reader.free <- c:
		default:
		}
		if err := r.drain(ctx); err != nil {
			return err
		}
		if r.opts.Progress != nil && r.batcher.c.Rows >= nextProgress {
			r.opts.Progress(r.result())
			nextProgress = r.batcher.c.Rows + r.opts.ProgressEvery
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (r *run) reject(x *rowRec, reason string) {
	r.batcher.c.Invalid++
	if r.opts.Reject != nil {
		r.opts.Reject(Reject{Row: x.n, Line: x.line, Value: x.raw, Reason: reason})
	}
}

// apply counts one row and adds it to the current batch.
func (r *run) apply(ctx context.Context, x *rowRec) error {
	r.batcher.c.Rows++
	r.batcher.lastRow, r.batcher.lastRowHash = x.n, x.rowHash
	switch {
	case x.reason != "":
		r.reject(x, x.reason)
		return nil
	case x.suppressed:
		r.batcher.c.Suppressed++
		return nil
	case r.batcher.seen.Has(x.hash):
		r.batcher.c.Duplicates++
		return nil
	case x.renderErr != nil:
		r.reject(x, x.renderErr.Error())
		return r.renderFailed(x)
	}
	r.batcher.seen.Add(x.hash)
	r.batcher.c.Valid++
	if x.tzDefault {
		r.tzDefaulted++
	}
	r.batcher.b.Items = append(r.batcher.b.Items, campaigns.Item{Row: x.n, To: x.addr, Content: x.content, TZ: x.tz})
	r.batcher.bHashes = append(r.batcher.bHashes, x.hash)
	if len(r.batcher.b.Items) < r.batchSize {
		return nil
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	// Suspend after MaxRun, but only once a checkpoint's worth of batches
	// went out, so every slice makes progress.
	if r.opts.MaxRun > 0 && time.Since(r.start) >= r.opts.MaxRun && r.batcher.seq-r.batcher.firstSeq >= r.opts.CheckpointEvery {
		return ErrSuspended
	}
	return nil
}

// renderFailLimit is how many rows in a row, before any renders, the
// template may refuse before the dispatch stops as bad input.
const renderFailLimit = 100

// renderFailed counts a row the template refused. A template that fails
// for every one of the first recipients is a mistake in the spec, not in
// the rows: the dispatch stops, with nothing enqueued.
func (r *run) renderFailed(x *rowRec) error {
	if r.batcher.c.Valid > 0 {
		return nil
	}
	r.batcher.renderFails++
	if r.batcher.firstRenderErr == nil {
		cp := *x
		r.batcher.firstRenderErr = &cp
	}
	if r.batcher.renderFails >= renderFailLimit {
		return r.templateFails()
	}
	return nil
}

func (r *run) templateFails() error {
	who := fmt.Sprintf("all %d recipients read", r.batcher.renderFails)
	if r.batcher.renderFails >= renderFailLimit {
		who = fmt.Sprintf("each of the first %d recipients", r.batcher.renderFails)
	}
	x := r.batcher.firstRenderErr
	return templateFails(r.spec, who, x.n, x.line, x.renderErr)
}

// flush hands the current batch to the enqueuers.
func (r *run) flush(ctx context.Context) error {
	if len(r.batcher.b.Items) == 0 {
		return nil
	}
	b := r.batcher.b
	seq := r.batcher.seq
	r.batcher.seq++
	r.batcher.b = r.newBatch(r.batcher.seq)
	hashes := r.batcher.bHashes
	r.batcher.bHashes = nil
	if r.opts.DryRun {
		return nil
	}
	snap := snapshot{row: r.batcher.lastRow, rowHash: r.batcher.lastRowHash, counts: r.batcher.c}
	if seq < r.ckpt.replayTo {
		if seq == r.ckpt.replayTo-1 && (snap.counts != r.ckpt.ck.Counts || snap.row != r.ckpt.ck.Row || snap.rowHash != r.ckpt.ck.RowHash) {
			return r.changed(snap.row)
		}
		r.pool.resumed++
		return nil
	}
	r.ckpt.snaps[seq] = snap
	r.ckpt.pendingSeen = append(r.ckpt.pendingSeen, hashes...)
	if err := r.waitWindow(ctx); err != nil {
		return err
	}
	if seq >= r.ckpt.horizon {
		r.ckpt.horizon = seq + 4*r.opts.CheckpointEvery
		if err := r.d.store.SaveHorizon(ctx, r.spec.ID, r.ckpt.horizon, r.batchSize, r.request); err != nil {
			return err
		}
	}
	j := job{b: b, uncertain: seq < r.ckpt.uncertainEnd}
	for {
		select {
		case r.pool.todo <- j:
			r.pool.inflight++
			r.window.handedSince++
			return r.drain(ctx)
		case res := <-r.pool.results:
			if err := r.handle(ctx, res); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
