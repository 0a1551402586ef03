package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
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

const chunkRows = 256

// rowRec is one row as it travels the pipeline.
type rowRec struct {
	n, line int
	err     error
	raw     string            // the address field
	has     bool              // the row has the address field
	fields  map[string]string // the template's fields, when personalised

	// Set by the workers.
	rowHash    uint64 // hash of raw, for checkpoints
	reason     string // why the row is refused before dedupe
	addr       string
	hash       uint64 // hash of addr
	suppressed bool
	renderErr  error
	content    *campaigns.Content
}

type chunk struct {
	rows []rowRec
	eof  bool
	err  error
	done chan struct{}
}

// snapshot is the state right after a batch was filled.
type snapshot struct {
	row     int
	rowHash uint64
	counts  storage.DispatchCounts
}

type job struct {
	b         *campaigns.Batch
	uncertain bool
}

type jobResult struct {
	seq     int
	resumed bool
	err     error
}

type run struct {
	d         *Dispatcher
	opts      Options
	spec      campaigns.Spec
	pf        checked
	batchSize int
	start     time.Time
	personal  bool
	needed    []string

	ck       storage.Checkpoint
	fast     bool // skip rows up to ck.Row, state restored from the checkpoint
	replayTo int  // batches below it were done by an earlier run

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
	enqueued       int
	resumed        int
	resumedAt      int

	free chan *chunk // applied chunks, for the reader to reuse

	todo          chan job
	results       chan jobResult
	poolWG        sync.WaitGroup
	inflight      int
	doneSeqs      map[int]bool
	frontier      int
	snaps         map[int]snapshot
	pendingSeen   []uint64
	committedSeen int
	lastCommitted int // last batch covered by a saved checkpoint; -1 none
	lastCommitAt  time.Time
	horizon       int
	uncertainEnd  int
	needObserve   bool
	observed      int // outstanding batches at the last observation
	handedSince   int // batches handed to enqueuers since
	poolErr       error
}

func newRun(d *Dispatcher, spec campaigns.Spec, pf checked, start time.Time) *run {
	bs := d.opts.BatchSize
	if spec.BatchSize > 0 {
		bs = spec.BatchSize
	}
	r := &run{d: d, opts: d.opts, spec: spec, pf: pf, batchSize: bs, start: start,
		personal: pf.renderer.Personalised(), needed: pf.renderer.Fields(),
		doneSeqs: map[int]bool{}, snaps: map[int]snapshot{}, lastCommitted: -1, needObserve: true}
	r.b = newBatch(spec, 0, pf.renderer, bs)
	return r
}

func (r *run) result() Result {
	res := Result{ID: r.spec.ID, Total: r.c.Valid, Rows: r.c.Rows, Valid: r.c.Valid, Invalid: r.c.Invalid,
		Duplicates: r.c.Duplicates, Suppressed: r.c.Suppressed, Batches: r.seq, Enqueued: r.enqueued,
		Resumed: r.resumed, ResumedAt: r.resumedAt, DryRun: r.opts.DryRun, Elapsed: time.Since(r.start).Seconds()}
	e := EstimateSend(r.c.Valid, EffectiveRate(r.opts.Rate, r.spec.Rate))
	res.Estimate = &e
	return res
}

// run expands src. It returns nil once every row is read and every batch
// enqueued and recorded.
func (r *run) run(ctx context.Context, src recipients.Source) error {
	if err := r.resume(ctx); err != nil {
		return err
	}
	if r.ck.Done && r.fast {
		r.c, r.seq, r.resumed, r.resumedAt = r.ck.Counts, r.ck.Seq, r.ck.Seq, r.ck.Row
		return nil
	}
	if r.seen == nil {
		r.seen = newHashSet(0)
	}
	workers := r.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	jobs := make(chan *chunk, 2*workers)
	ordered := make(chan *chunk, 2*workers+2)
	r.free = make(chan *chunk, 2*workers+2)
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
	if err == nil && r.poolErr != nil {
		err = r.poolErr
	}
	if err == nil {
		// Everything is enqueued and recorded: the final checkpoint.
		if !r.ck.Done {
			final := storage.Checkpoint{Seq: r.seq, Horizon: r.horizon, Row: r.lastRow, RowHash: r.lastRowHash, Counts: r.c, Done: true}
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
	r.ck = ck
	r.uncertainEnd = max(ck.Horizon, ck.Seq)
	r.horizon = r.uncertainEnd
	if ck.Seq == 0 {
		return nil
	}
	if r.opts.Reject != nil {
		// Read everything again for a complete rejects report, enqueuing
		// only from the checkpoint on.
		r.replayTo = ck.Seq
		r.firstSeq = ck.Seq
		r.committedSeen = ck.Counts.Valid
		r.lastCommitted = ck.Seq - 1
		r.frontier = ck.Seq
		return nil
	}
	r.fast = true
	r.resumedAt = ck.Row
	if ck.Done {
		return nil
	}
	r.c = ck.Counts
	r.seq, r.frontier, r.lastCommitted = ck.Seq, ck.Seq, ck.Seq-1
	r.resumed = ck.Seq
	r.committedSeen = ck.Counts.Valid
	r.lastRow, r.lastRowHash = ck.Row, ck.RowHash
	r.b = newBatch(r.spec, ck.Seq, r.pf.renderer, r.batchSize)
	r.firstSeq = ck.Seq
	r.seen = newHashSet(ck.Counts.Valid)
	return r.d.store.Seen(ctx, r.spec.ID, ck.Counts.Valid, func(h uint64) { r.seen.Add(h) })
}

// read streams rows into chunks: every chunk goes to the workers and, in
// order, to the main loop.
func (r *run) read(ctx context.Context, src recipients.Source, jobs, ordered chan<- *chunk) {
	defer close(ordered)
	defer close(jobs)
	send := func(c *chunk, work bool) bool {
		select {
		case ordered <- c:
		case <-ctx.Done():
			return false
		}
		if !work {
			close(c.done)
			return true
		}
		select {
		case jobs <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	newChunk := func() *chunk {
		select {
		case c := <-r.free:
			c.rows, c.eof, c.err, c.done = c.rows[:0], false, nil, make(chan struct{})
			return c
		default:
			return &chunk{rows: make([]rowRec, 0, chunkRows), done: make(chan struct{})}
		}
	}
	cur := newChunk()
	verified := !r.fast || r.ck.Row == 0
	for {
		row, err := src.Next()
		if row.N > 0 {
			if r.fast && row.N <= r.ck.Row {
				if row.N == r.ck.Row {
					if addrHash(row.Fields[r.pf.addrField]) != r.ck.RowHash {
						send(&chunk{err: r.changed(row.N), done: make(chan struct{})}, false)
						return
					}
					verified = true
				}
			} else {
				if !verified {
					send(&chunk{err: r.changed(r.ck.Row), done: make(chan struct{})}, false)
					return
				}
				cur.rows = cur.rows[:len(cur.rows)+1]
				x := &cur.rows[len(cur.rows)-1]
				m := x.fields // a reused chunk's map
				*x = rowRec{n: row.N, line: row.Line, err: row.Err}
				x.raw, x.has = row.Fields[r.pf.addrField]
				if r.personal && row.Fields != nil {
					if m == nil {
						m = make(map[string]string, len(r.needed))
					}
					clear(m)
					for _, f := range r.needed {
						if v, ok := row.Fields[f]; ok {
							m[f] = v
						}
					}
					x.fields = m
				}
			}
		}
		if err == io.EOF {
			if !verified {
				cur.err = r.changed(r.ck.Row)
			}
			cur.eof = true
			send(cur, cur.err == nil)
			return
		}
		if err != nil {
			cur.err = fmt.Errorf("dispatch %s: read recipients: %w", r.spec.ID, err)
			send(cur, false)
			return
		}
		if len(cur.rows) == chunkRows {
			if !send(cur, true) {
				return
			}
			cur = newChunk()
		}
	}
}

func (r *run) changed(row int) error {
	return fmt.Errorf("dispatch %s: %w (row %d is not what it was); dispatch the new file under a new campaign id (--id), or restore the old file",
		r.spec.ID, ErrFileChanged, row)
}

// work validates rows: it runs on every core.
func (r *run) work(ctx context.Context, jobs <-chan *chunk) {
	normalize := recipients.NormalizeEmail
	if r.spec.Channel.AddressKind() != "email" {
		normalize = recipients.NewPhoneNormalizer(r.spec.DefaultRegion).Normalize
	}
	for {
		var c *chunk
		select {
		case c = <-jobs:
		case <-ctx.Done():
			return
		}
		if c == nil {
			return
		}
		for i := range c.rows {
			r.process(&c.rows[i], normalize)
		}
		close(c.done)
	}
}

func (r *run) process(x *rowRec, normalize func(string) (string, error)) {
	x.rowHash = addrHash(x.raw)
	if x.err != nil {
		x.reason = x.err.Error()
		return
	}
	if !x.has {
		x.reason = fmt.Sprintf("no %q field", r.pf.addrField)
		return
	}
	addr, err := normalize(x.raw)
	if err != nil {
		x.reason = err.Error()
		return
	}
	x.addr, x.hash = addr, addrHash(addr)
	if r.pf.suppressed.Has(x.hash) {
		x.suppressed = true
		return
	}
	if r.personal {
		c, err := r.pf.renderer.Render(x.fields)
		if err != nil {
			x.renderErr = err
			return
		}
		x.content = &c
	}
}

// loop is the main loop: it applies rows in file order.
func (r *run) loop(ctx context.Context, ordered <-chan *chunk) error {
	nextProgress := r.c.Rows + r.opts.ProgressEvery
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
			if r.renderFails > 0 && r.c.Valid == 0 {
				return r.templateFails()
			}
			return r.flush(ctx)
		}
		// Nothing refers to the chunk's rows any more: batches hold the
		// addresses and contents, not the rows.
		select {
		case r.free <- c:
		default:
		}
		if err := r.drain(ctx); err != nil {
			return err
		}
		if r.opts.Progress != nil && r.c.Rows >= nextProgress {
			r.opts.Progress(r.result())
			nextProgress = r.c.Rows + r.opts.ProgressEvery
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (r *run) reject(x *rowRec, reason string) {
	r.c.Invalid++
	if r.opts.Reject != nil {
		r.opts.Reject(Reject{Row: x.n, Line: x.line, Value: x.raw, Reason: reason})
	}
}

// apply counts one row and adds it to the current batch.
func (r *run) apply(ctx context.Context, x *rowRec) error {
	r.c.Rows++
	r.lastRow, r.lastRowHash = x.n, x.rowHash
	switch {
	case x.reason != "":
		r.reject(x, x.reason)
		return nil
	case x.suppressed:
		r.c.Suppressed++
		return nil
	case r.seen.Has(x.hash):
		r.c.Duplicates++
		return nil
	case x.renderErr != nil:
		r.reject(x, x.renderErr.Error())
		return r.renderFailed(x)
	}
	r.seen.Add(x.hash)
	r.c.Valid++
	r.b.Items = append(r.b.Items, campaigns.Item{Row: x.n, To: x.addr, Content: x.content})
	r.bHashes = append(r.bHashes, x.hash)
	if len(r.b.Items) < r.batchSize {
		return nil
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	// Suspend after MaxRun, but only once a checkpoint's worth of batches
	// went out, so every slice makes progress.
	if r.opts.MaxRun > 0 && time.Since(r.start) >= r.opts.MaxRun && r.seq-r.firstSeq >= r.opts.CheckpointEvery {
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
	if r.c.Valid > 0 {
		return nil
	}
	r.renderFails++
	if r.firstRenderErr == nil {
		cp := *x
		r.firstRenderErr = &cp
	}
	if r.renderFails >= renderFailLimit {
		return r.templateFails()
	}
	return nil
}

func (r *run) templateFails() error {
	who := fmt.Sprintf("all %d recipients read", r.renderFails)
	if r.renderFails >= renderFailLimit {
		who = fmt.Sprintf("each of the first %d recipients", r.renderFails)
	}
	x := r.firstRenderErr
	return templateFails(r.spec, who, x.n, x.line, x.renderErr)
}

// flush hands the current batch to the enqueuers.
func (r *run) flush(ctx context.Context) error {
	if len(r.b.Items) == 0 {
		return nil
	}
	b := r.b
	seq := r.seq
	r.seq++
	r.b = newBatch(r.spec, r.seq, r.pf.renderer, r.batchSize)
	hashes := r.bHashes
	r.bHashes = nil
	if r.opts.DryRun {
		return nil
	}
	snap := snapshot{row: r.lastRow, rowHash: r.lastRowHash, counts: r.c}
	if seq < r.replayTo {
		if seq == r.replayTo-1 && (snap.counts != r.ck.Counts || snap.row != r.ck.Row || snap.rowHash != r.ck.RowHash) {
			return r.changed(snap.row)
		}
		r.resumed++
		return nil
	}
	r.snaps[seq] = snap
	r.pendingSeen = append(r.pendingSeen, hashes...)
	if err := r.waitWindow(ctx); err != nil {
		return err
	}
	if seq >= r.horizon {
		r.horizon = seq + 4*r.opts.CheckpointEvery
		if err := r.d.store.SaveHorizon(ctx, r.spec.ID, r.horizon); err != nil {
			return err
		}
	}
	j := job{b: b, uncertain: seq < r.uncertainEnd}
	for {
		select {
		case r.todo <- j:
			r.inflight++
			r.handedSince++
			return r.drain(ctx)
		case res := <-r.results:
			if err := r.handle(ctx, res); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitWindow blocks while the campaign has Window or more unfinished
// batches. It counts batches handed out since the last look at Redis, so it
// reads the campaign's progress only when the window may be full.
func (r *run) waitWindow(ctx context.Context) error {
	w := r.opts.Window
	if w <= 0 {
		return nil
	}
	for {
		if !r.needObserve && r.observed+r.handedSince < w {
			return nil
		}
		n, err := r.d.outstanding(ctx, r.spec.ID, r.batchSize)
		if err != nil {
			return err
		}
		// Batches handed out but not yet recorded are not in Pending.
		r.observed, r.handedSince, r.needObserve = n+r.inflight, 0, false
		if r.observed < w {
			return nil
		}
		t := time.NewTimer(r.opts.WindowPoll)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case res := <-r.results:
				if err := r.handle(ctx, res); err != nil {
					t.Stop()
					return err
				}
			case <-t.C:
				break wait
			}
		}
	}
}

func (r *run) startPool(ctx context.Context) {
	n := r.opts.Enqueuers
	r.todo = make(chan job, n)
	r.results = make(chan jobResult, 2*n+1)
	r.poolWG.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer r.poolWG.Done()
			for j := range r.todo {
				resumed, err := r.d.enqueueBatch(ctx, r.spec, j.b, j.uncertain)
				r.results <- jobResult{seq: j.b.Seq, resumed: resumed, err: err}
			}
		}()
	}
}

// stopPool waits for the enqueuers; with keep it records their results.
func (r *run) stopPool(keep bool) {
	if !keep {
		// A crash: batches not yet picked up are never enqueued.
	drop:
		for {
			select {
			case <-r.todo:
				r.inflight--
			default:
				break drop
			}
		}
	}
	close(r.todo)
	go func() { r.poolWG.Wait(); close(r.results) }()
	for res := range r.results {
		r.inflight--
		if keep {
			r.record(res)
		}
	}
}

// drain records finished enqueues without waiting.
func (r *run) drain(ctx context.Context) error {
	for {
		select {
		case res := <-r.results:
			if err := r.handle(ctx, res); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (r *run) handle(ctx context.Context, res jobResult) error {
	r.inflight--
	r.record(res)
	if r.poolErr != nil {
		return r.poolErr
	}
	return r.commit(ctx, false)
}

func (r *run) record(res jobResult) {
	if res.err != nil {
		if r.poolErr == nil {
			r.poolErr = res.err
		}
		return
	}
	if res.resumed {
		r.resumed++
	} else {
		r.enqueued++
	}
	r.doneSeqs[res.seq] = true
	for r.doneSeqs[r.frontier] {
		delete(r.doneSeqs, r.frontier)
		r.frontier++
	}
}

// commit saves a checkpoint at the end of the finished prefix of batches,
// every CheckpointEvery batches or second, or now when force is set.
func (r *run) commit(ctx context.Context, force bool) error {
	last := r.frontier - 1
	if last <= r.lastCommitted || last < r.replayTo {
		return nil
	}
	if !force && last-r.lastCommitted < r.opts.CheckpointEvery && time.Since(r.lastCommitAt) < time.Second {
		return nil
	}
	snap, ok := r.snaps[last]
	if !ok {
		return nil
	}
	k := snap.counts.Valid - r.committedSeen
	ck := storage.Checkpoint{Seq: last + 1, Row: snap.row, RowHash: snap.rowHash, Counts: snap.counts}
	if err := r.d.store.SaveCheckpoint(ctx, r.spec.ID, ck, r.committedSeen, r.pendingSeen[:k]); err != nil {
		return err
	}
	r.committedSeen = snap.counts.Valid
	r.pendingSeen = append(r.pendingSeen[:0], r.pendingSeen[k:]...)
	for s := r.lastCommitted + 1; s <= last; s++ {
		delete(r.snaps, s)
	}
	r.lastCommitted = last
	r.lastCommitAt = time.Now()
	return nil
}
