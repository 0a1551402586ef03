// Package dispatcher expands a campaign into asynq tasks: it streams the
// recipient source, validates and normalises every row, drops duplicates and
// suppressed recipients, renders each message, and enqueues batches of
// recipients under deterministic task ids, so that running it twice, or again
// after a crash, enqueues nothing twice and skips nothing.
//
//	d := dispatcher.New(store, asynqClient, dispatcher.Options{BatchSize: 50})
//	res, err := d.Dispatch(ctx, spec, src)
//	fmt.Println(res.ID, res.Valid, res.Invalid)
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
)

// Enqueuer is the one method the dispatcher needs from *asynq.Client.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

var _ Enqueuer = (*asynq.Client)(nil)

// Options tunes a Dispatcher.
type Options struct {
	// BatchSize is the default recipients per task (a spec's batch_size
	// wins); default 50.
	BatchSize int
	// Window is the most unfinished batches a campaign may have in Redis
	// before the dispatcher waits for workers; 0 means no limit.
	Window int
	// MaxAttempts caps asynq retries of a batch; default 8.
	MaxAttempts int
	// TaskTimeout bounds one run of a batch; default 5m.
	TaskTimeout time.Duration
	// Reject, when set, receives every refused row.
	Reject func(Reject)
	// Progress, when set, is called about every ProgressEvery rows and at
	// the end.
	Progress      func(Result)
	ProgressEvery int
	// DryRun validates and counts without touching Redis.
	DryRun bool
	// Logger; default a no-op logger.
	Logger zerolog.Logger
	// WindowPoll is how often a full window is re-checked; default 200ms.
	WindowPoll time.Duration
}

// Reject is a refused row: its record number, file line, value and reason.
type Reject struct {
	Row    int    `json:"row"`
	Line   int    `json:"line"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// Result counts what a dispatch did. JSON names are a contract with scripts.
type Result struct {
	ID string `json:"id"`
	// Total is the number of valid recipients enqueued (the campaign total).
	Total int `json:"total"`
	// Rows is the number of records read.
	Rows       int `json:"rows"`
	Valid      int `json:"valid"`
	Invalid    int `json:"invalid"`
	Duplicates int `json:"duplicates"`
	Suppressed int `json:"suppressed"`
	Batches    int `json:"batches"`
	// Enqueued counts batches enqueued by this run; Resumed those found
	// enqueued by an earlier run.
	Enqueued int  `json:"enqueued"`
	Resumed  int  `json:"resumed"`
	DryRun   bool `json:"dry_run,omitempty"`
	// Elapsed is the dispatch's wall time in seconds.
	Elapsed float64 `json:"elapsed_s"`
}

// Dispatcher expands campaigns. It is safe for concurrent use by several
// campaigns.
type Dispatcher struct {
	store *campaigns.Store
	enq   Enqueuer
	opts  Options
}

// New returns a dispatcher. store and enq may be nil for dry runs.
func New(store *campaigns.Store, enq Enqueuer, o Options) *Dispatcher {
	if o.BatchSize <= 0 {
		o.BatchSize = 50
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.TaskTimeout <= 0 {
		o.TaskTimeout = 5 * time.Minute
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 10000
	}
	if o.WindowPoll <= 0 {
		o.WindowPoll = 200 * time.Millisecond
	}
	return &Dispatcher{store: store, enq: enq, opts: o}
}

// Dispatch is New(store, enq, o).Dispatch(ctx, spec, src).
func Dispatch(ctx context.Context, store *campaigns.Store, enq Enqueuer, spec campaigns.Spec, src campaigns.Source, o Options) (Result, error) {
	return New(store, enq, o).Dispatch(ctx, spec, src)
}

// ErrBadInput marks errors in the spec or recipient file (exit code 2).
var ErrBadInput = errors.New("bad input")

// Dispatch expands one campaign from src. Errors in the spec or the file's
// header stop it before anything is enqueued; a bad row is rejected and the
// rest goes on.
func (d *Dispatcher) Dispatch(ctx context.Context, spec campaigns.Spec, src campaigns.Source) (Result, error) {
	start := time.Now()
	res := Result{ID: spec.ID, DryRun: d.opts.DryRun}
	pf, err := preflight(spec, src.Columns())
	if err != nil {
		return res, err
	}
	renderer, addrField, suppressed := pf.renderer, pf.addrField, pf.suppressed
	if !d.opts.DryRun {
		if _, err := d.store.Create(ctx, spec); err != nil {
			return res, err
		}
	}
	batchSize := d.opts.BatchSize
	if spec.BatchSize > 0 {
		batchSize = spec.BatchSize
	}
	seed := maphash.MakeSeed()
	seen := make(map[uint64]struct{})
	b := d.newBatch(spec, 0, renderer, batchSize)

	flush := func() error {
		if len(b.Items) == 0 {
			return nil
		}
		res.Batches++
		if !d.opts.DryRun {
			if err := d.enqueue(ctx, spec, b, batchSize, &res); err != nil {
				return err
			}
		}
		b = d.newBatch(spec, b.Seq+1, renderer, batchSize)
		return nil
	}

	for {
		row, err := src.Next()
		if row.N > 0 {
			res.Rows++
			d.handleRow(spec, renderer, addrField, row, seed, seen, suppressed, b, &res)
			if len(b.Items) >= batchSize {
				if ferr := flush(); ferr != nil {
					return res, ferr
				}
			}
			if d.opts.Progress != nil && res.Rows%d.opts.ProgressEvery == 0 {
				res.Elapsed = time.Since(start).Seconds()
				d.opts.Progress(res)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("dispatch %s: read recipients: %w", spec.ID, err)
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.Total = res.Valid
	if !d.opts.DryRun {
		err := d.store.FinishDispatch(ctx, spec.ID, campaigns.DispatchCounts{
			Rows: res.Rows, Invalid: res.Invalid, Duplicates: res.Duplicates, Suppressed: res.Suppressed})
		if err != nil {
			return res, err
		}
	}
	res.Elapsed = time.Since(start).Seconds()
	if d.opts.Progress != nil {
		d.opts.Progress(res)
	}
	return res, nil
}

type checked struct {
	renderer   *campaigns.Renderer
	addrField  string
	suppressed map[string]bool
}

// Check validates a spec against a source's header before anything is
// enqueued: templates parse, every column they use exists, the address
// column is found and the suppression list reads. Errors wrap ErrBadInput.
func Check(spec campaigns.Spec, src campaigns.Source) error {
	_, err := preflight(spec, src.Columns())
	return err
}

func preflight(spec campaigns.Spec, cols []string) (checked, error) {
	var c checked
	var err error
	if c.renderer, err = spec.Compile(); err != nil {
		return c, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if cols != nil {
		if err := spec.CheckColumns(c.renderer, spec.Recipients, cols); err != nil {
			return c, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
	}
	if c.addrField, err = spec.AddressField(cols); err != nil {
		return c, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if c.suppressed, err = loadSuppression(spec); err != nil {
		return c, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return c, nil
}

func (d *Dispatcher) newBatch(spec campaigns.Spec, seq int, r *campaigns.Renderer, size int) *campaigns.Batch {
	b := &campaigns.Batch{
		Campaign: spec.ID, Seq: seq, Channel: spec.Channel, ChannelID: spec.ChannelID, From: spec.From,
		Items: make([]campaigns.Item, 0, size), Rate: spec.Rate, AtLeastOnce: spec.AtLeastOnce,
	}
	if spec.Template != nil {
		b.Template, b.Language = spec.Template.Name, spec.Template.Language
	}
	if !r.Personalised() {
		c, _ := r.Render(nil)
		b.Shared = &c
	}
	return b
}

// handleRow validates one row and adds it to the batch or rejects it.
func (d *Dispatcher) handleRow(spec campaigns.Spec, r *campaigns.Renderer, addrField string, row campaigns.Row,
	seed maphash.Seed, seen map[uint64]struct{}, suppressed map[string]bool, b *campaigns.Batch, res *Result) {
	raw := row.Fields[addrField]
	reject := func(reason string) {
		res.Invalid++
		if d.opts.Reject != nil {
			d.opts.Reject(Reject{Row: row.N, Line: row.Line, Value: raw, Reason: reason})
		}
	}
	if row.Err != nil {
		reject(row.Err.Error())
		return
	}
	if _, has := row.Fields[addrField]; !has {
		reject(fmt.Sprintf("no %q field", addrField))
		return
	}
	addr, err := spec.Normalize(raw)
	if err != nil {
		reject(err.Error())
		return
	}
	if suppressed[addr] {
		res.Suppressed++
		return
	}
	h := maphash.String(seed, addr)
	if _, dup := seen[h]; dup {
		res.Duplicates++
		return
	}
	item := campaigns.Item{Row: row.N, To: addr}
	if r.Personalised() {
		c, err := r.Render(row.Fields)
		if err != nil {
			reject(err.Error())
			return
		}
		item.Content = &c
	}
	seen[h] = struct{}{}
	res.Valid++
	b.Items = append(b.Items, item)
}

// enqueue records and enqueues one batch. A batch an earlier run recorded was
// enqueued then (the record follows the enqueue), so it is skipped.
func (d *Dispatcher) enqueue(ctx context.Context, spec campaigns.Spec, b *campaigns.Batch, batchSize int, res *Result) error {
	done, err := d.store.HasBatch(ctx, spec.ID, b.Seq)
	if err != nil {
		return err
	}
	if done {
		res.Resumed++
		return nil
	}
	if err := d.waitWindow(ctx, spec.ID, batchSize); err != nil {
		return err
	}
	task := asynq.NewTask(spec.Channel.TaskType(), campaigns.Encode(b),
		asynq.TaskID(b.TaskID()), asynq.Queue(spec.Channel.Queue()),
		asynq.MaxRetry(d.opts.MaxAttempts), asynq.Timeout(d.opts.TaskTimeout))
	if _, err := d.enq.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("dispatch %s: enqueue batch %d: %w", spec.ID, b.Seq, err)
	}
	maxRow := 0
	for _, it := range b.Items {
		maxRow = max(maxRow, it.Row)
	}
	if _, err := d.store.AddBatch(ctx, spec.ID, b.Seq, len(b.Items), maxRow); err != nil {
		return err
	}
	res.Enqueued++
	return nil
}

// waitWindow blocks while the campaign has Window or more unfinished batches.
func (d *Dispatcher) waitWindow(ctx context.Context, id string, batchSize int) error {
	if d.opts.Window <= 0 {
		return nil
	}
	for {
		p, err := d.store.Progress(ctx, id)
		if err != nil {
			return err
		}
		outstanding := (p.Pending + int64(batchSize) - 1) / int64(batchSize)
		if outstanding < int64(d.opts.Window) {
			return nil
		}
		t := time.NewTimer(d.opts.WindowPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
