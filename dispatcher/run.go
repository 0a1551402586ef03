package dispatcher

import (
	"cmp"
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// One dispatch runs as a pipeline:
//
//	reader ──chunks of rows──▶ workers (normalise, hash, render; every core)
//	   │                           │ close(chunk.done)
//	   └──same chunks, in order──▶ main loop (dedupe, count, batch) ──▶ enqueuers
//
// The main loop takes chunks in file order and waits for each to be
// processed, so dedupe and batch numbering are the same whatever the
// timing; only enqueues run out of order, and the checkpoint advances over
// the longest finished prefix of batches. Once applied, a chunk goes back
// to the reader (run.free) with its rows and field maps, so a file of
// millions of rows does not allocate a map per row.

// run is one dispatch: the settings every stage reads, and the state each
// stage owns.
type run struct {
	d         *Dispatcher
	opts      Options
	spec      campaigns.Spec
	pf        checked
	batchSize int
	request   int // Batch.Request of every batch
	start     time.Time
	personal  bool
	needed    []string

	reader  reader       // rows into chunks
	batcher batcher      // chunks in order into counts and batches
	pool    pool         // batches enqueued concurrently
	window  window       // the wait for workers
	ckpt    checkpointer // what an earlier run did, and saving what this one did

	zones       zoneSource // each recipient's zone for the send window
	tzDefaulted int        // recipients whose zone fell back to the window's
}

func newRun(d *Dispatcher, spec campaigns.Spec, pf checked, start time.Time) *run {
	bs, rq := batchSizeFor(spec, d.opts, pf.renderer.Personalised())
	r := &run{d: d, opts: d.opts, spec: spec, pf: pf, batchSize: bs, request: rq, start: start,
		personal: pf.renderer.Personalised(), needed: pf.renderer.Fields(),
		ckpt:   checkpointer{doneSeqs: map[int]bool{}, snaps: map[int]snapshot{}, lastCommitted: -1},
		window: window{needObserve: true}, zones: newZoneSource(spec)}
	r.batcher.b = r.newBatch(0)
	return r
}

// batchSizeFor is the recipients per task of spec, and the most a batched
// call of its batches carries (0: the whole batch in one call). A
// batch_size the spec or the operator (o.BatchSize) sets is both. Else a
// campaign under no rate limit at all whose batches go out as several
// requests gets tasks of config.DefaultUnlimitedBatchSize, which spread a
// task's fixed cost over more messages: one request per message, or
// batched calls of config.DefaultBatchSize recipients, so that no call is
// larger than before. Everything else gets config.DefaultBatchSize. A
// rate-limited campaign keeps the smaller size: its speed is the limit's,
// and its batches must fit a per-minute or per-day cap. So does a
// personalised email: each recipient's body rides in the task and may be
// campaigns.MaxEmailBytes (256 KiB), so a task of 200 could weigh 51 MiB
// in Redis and in every worker that holds one, for a gain that is small
// beside an email's own size.
func batchSizeFor(spec campaigns.Spec, o Options, personalised bool) (size, request int) {
	unlimited := EffectiveRate(o.Rate, spec.Rate).Steady() == 0
	switch {
	case spec.BatchSize > 0:
		return spec.BatchSize, 0
	case o.BatchSize > 0:
		return o.BatchSize, 0
	case unlimited && spec.Channel.PerMessage(personalised) && spec.Channel != campaigns.ChannelEmail:
		return config.DefaultUnlimitedBatchSize, 0
	case unlimited && spec.Channel.Chunked(personalised):
		return config.DefaultUnlimitedBatchSize, config.DefaultBatchSize
	}
	return config.DefaultBatchSize, 0
}

// newBatch starts the run's batch seq.
func (r *run) newBatch(seq int) *campaigns.Batch {
	b := newBatch(r.spec, seq, r.pf.renderer, r.batchSize)
	b.Request = r.request
	return b
}

func (r *run) result() Result {
	res := Result{ID: r.spec.ID, Total: r.batcher.c.Valid, Rows: r.batcher.c.Rows, Valid: r.batcher.c.Valid, Invalid: r.batcher.c.Invalid,
		Duplicates: r.batcher.c.Duplicates, Suppressed: r.batcher.c.Suppressed, Batches: r.batcher.seq, Enqueued: r.pool.enqueued,
		Resumed: r.pool.resumed, ResumedAt: r.ckpt.resumedAt, DryRun: r.opts.DryRun, Elapsed: time.Since(r.start).Seconds()}
	e := EstimateSend(r.batcher.c.Valid, EffectiveRate(r.opts.Rate, r.spec.Rate))
	res.Estimate = &e
	res.TimezoneDefaulted = r.tzDefaulted
	res.StartsAt = startsAt(r.spec, time.Now())
	return res
}

// run expands src. It returns nil once every row is read and every batch
// enqueued and recorded.
func (r *run) run(ctx context.Context, src recipients.Source) error {
	if err := r.resume(ctx); err != nil {
		return err
	}
	if r.ckpt.ck.Done && r.ckpt.fast {
		r.batcher.c, r.batcher.seq, r.pool.resumed, r.ckpt.resumedAt = r.ckpt.ck.Counts, r.ckpt.ck.Seq, r.ckpt.ck.Seq, r.ckpt.ck.Row
		return nil
	}
	if r.batcher.seen == nil {
		r.batcher.seen = newHashSet(0)
	}
	workers := r.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	jobs := make(chan *chunk, 2*workers)
	ordered := make(chan *chunk, 2*workers+2)
	r.reader.free = make(chan *chunk, 2*workers+2)
	wg.Add(1 + workers)
	go func() { defer wg.Done(); r.read(pctx, src, jobs, ordered) }()
	for i := 0; i < workers; i++ {
		go func() { defer wg.Done(); r.work(pctx, jobs) }()
	}
	if !r.opts.DryRun {
		r.startPool(context.WithoutCancel(ctx))
	}
	err := r.loop(ctx, ordered)
	cancel()
	// Unblock and wait for the reader and workers.
	for range ordered {
	}
	wg.Wait()
	if r.opts.DryRun {
		return err
	}
	if errors.Is(err, errSimulatedCrash) {
		r.stopPool(false)
		return err
	}
	r.stopPool(true)
	if err == nil && r.pool.err != nil {
		err = r.pool.err
	}
	if err == nil {
		// Everything is enqueued and recorded: the final checkpoint.
		if !r.ckpt.ck.Done {
			final := storage.Checkpoint{Seq: r.batcher.seq, Horizon: r.ckpt.horizon, Row: r.batcher.lastRow, RowHash: r.batcher.lastRowHash, Counts: r.batcher.c, Done: true}
			if serr := r.d.store.SaveCheckpoint(ctx, r.spec.ID, final, 0, nil); serr != nil {
				return serr
			}
		}
		return nil
	}
	// Stopped early (cancelled, suspended, failed): keep what is done.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	if cerr := r.commit(sctx, true); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

// resume reads the checkpoint of an earlier run and decides how to go on.
func (r *run) resume(ctx context.Context) error {
	if r.opts.DryRun {
		return nil
	}
	ck, err := r.d.store.Checkpoint(ctx, r.spec.ID)
	if err != nil {
		return err
	}
	r.ckpt.ck = ck
	// Cut the file as the run that started the dispatch did, whatever
	// this one's options, version or rate settings say.
	switch {
	case ck.BatchSize > 0:
		r.batchSize, r.request = ck.BatchSize, ck.Request
	case ck.Seq > 0 || ck.Horizon > 0:
		// Started by a version that did not record the shape: its batch
		// size was the spec's, the operator's or the default, each batch
		// one call.
		r.batchSize, r.request = config.DefaultBatchSize, 0
		if s := cmp.Or(r.spec.BatchSize, r.opts.BatchSize); s > 0 {
			r.batchSize = s
		}
	}
	r.batcher.b = r.newBatch(0)
	r.ckpt.uncertainEnd = max(ck.Horizon, ck.Seq)
	r.ckpt.horizon = r.ckpt.uncertainEnd
	if ck.Seq == 0 {
		return nil
	}
	if r.opts.Reject != nil {
		// Read everything again for a complete rejects report, enqueuing
		// only from the checkpoint on.
		r.ckpt.replayTo = ck.Seq
		r.batcher.firstSeq = ck.Seq
		r.ckpt.committedSeen = ck.Counts.Valid
		r.ckpt.lastCommitted = ck.Seq - 1
		r.ckpt.frontier = ck.Seq
		return nil
	}
	r.ckpt.fast = true
	r.ckpt.resumedAt = ck.Row
	if ck.Done {
		return nil
	}
	r.batcher.c = ck.Counts
	r.batcher.seq, r.ckpt.frontier, r.ckpt.lastCommitted = ck.Seq, ck.Seq, ck.Seq-1
	r.pool.resumed = ck.Seq
	r.ckpt.committedSeen = ck.Counts.Valid
	r.batcher.lastRow, r.batcher.lastRowHash = ck.Row, ck.RowHash
	r.batcher.b = r.newBatch(ck.Seq)
	r.batcher.firstSeq = ck.Seq
	r.batcher.seen = newHashSet(ck.Counts.Valid)
	return r.d.store.Seen(ctx, r.spec.ID, ck.Counts.Valid, func(h uint64) { r.batcher.seen.Add(h) })
}
