package dispatcher

import (
	"context"
	"sync"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
)

// pool is the enqueue stage: Options.Enqueuers goroutines enqueue and
// record batches; their results come back to the applier's goroutine.
type pool struct {
	todo     chan job
	results  chan jobResult
	wg       sync.WaitGroup
	inflight int
	err      error // the first enqueue that failed
	enqueued int
	resumed  int
}

// window tracks the campaign's unfinished batches in Redis for
// Options.Window.
type window struct {
	needObserve bool
	observed    int // outstanding batches at the last observation
	handedSince int // batches handed to enqueuers since
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

// waitWindow blocks while the campaign has Window or more unfinished
// batches. It counts batches handed out since the last look at Redis, so it
// reads the campaign's progress only when the window may be full.
func (r *run) waitWindow(ctx context.Context) error {
	w := r.opts.Window
	if w <= 0 {
		return nil
	}
	for {
		if !r.window.needObserve && r.window.observed+r.window.handedSince < w {
			return nil
		}
		n, err := r.d.outstanding(ctx, r.spec.ID, r.batchSize)
		if err != nil {
			return err
		}
		// Batches handed out but not yet recorded are not in Pending.
		r.window.observed, r.window.handedSince, r.window.needObserve = n+r.pool.inflight, 0, false
		if r.window.observed < w {
			return nil
		}
		t := time.NewTimer(r.opts.WindowPoll)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case res := <-r.pool.results:
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
	r.pool.todo = make(chan job, n)
	r.pool.results = make(chan jobResult, 2*n+1)
	r.pool.wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer r.pool.wg.Done()
			for j := range r.pool.todo {
				resumed, err := r.d.enqueueBatch(ctx, r.spec, j.b, j.uncertain)
				r.pool.results <- jobResult{seq: j.b.Seq, resumed: resumed, err: err}
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
			case <-r.pool.todo:
				r.pool.inflight--
			default:
				break drop
			}
		}
	}
	close(r.pool.todo)
	go func() { r.pool.wg.Wait(); close(r.pool.results) }()
	for res := range r.pool.results {
		r.pool.inflight--
		if keep {
			r.record(res)
		}
	}
}

// drain records finished enqueues without waiting.
func (r *run) drain(ctx context.Context) error {
	for {
		select {
		case res := <-r.pool.results:
			if err := r.handle(ctx, res); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (r *run) handle(ctx context.Context, res jobResult) error {
	r.pool.inflight--
	r.record(res)
	if r.pool.err != nil {
		return r.pool.err
	}
	return r.commit(ctx, false)
}

func (r *run) record(res jobResult) {
	if res.err != nil {
		if r.pool.err == nil {
			r.pool.err = res.err
		}
		return
	}
	if res.resumed {
		r.pool.resumed++
	} else {
		r.pool.enqueued++
	}
	r.ckpt.done(res.seq)
}
