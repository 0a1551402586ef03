package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// Enqueuer is the one method the dispatcher needs from *asynq.Client.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

var _ Enqueuer = (*asynq.Client)(nil)

// Options tunes a Dispatcher.
type Options struct {
	// BatchSize is the default recipients per task (a spec's batch_size
	// wins). When it is 0, a campaign's batch size follows from the
	// campaign (batchSizeFor): config.DefaultUnlimitedBatchSize (200) for
	// one with no rate limit whose batches go out as several requests (one
	// per message, or batched calls of config.DefaultBatchSize), except a
	// personalised email; config.DefaultBatchSize (50) otherwise.
	BatchSize int
	// Window is the most unfinished batches a campaign may have in Redis
	// before the dispatcher waits for workers; 0 means no limit.
	Window int
	// MaxAttempts caps asynq retries of a batch; default
	// config.DefaultMaxAttempts (8).
	MaxAttempts int
	// TaskTimeout bounds one run of a batch; default
	// config.DefaultTaskTimeout (5m).
	TaskTimeout time.Duration
	// Reject, when set, receives every refused row, in file order. When a
	// dispatch resumes, the rows before the checkpoint are read again (and
	// validated, without enqueuing) so the report is complete.
	Reject func(Reject)
	// Progress, when set, is called about every ProgressEvery rows and at
	// the end, from the dispatching goroutine.
	Progress      func(Result)
	ProgressEvery int
	// DryRun validates and counts without touching Redis.
	DryRun bool
	// SuppressFiles are suppression lists added to the spec's `suppress`.
	SuppressFiles []string
	// Rate is the configured per-sender limit, for Result.Estimate; the
	// spec's rate wins field by field. Zero: no limit.
	Rate campaigns.Rate
	// Logger; default a no-op logger.
	Logger zerolog.Logger
	// WindowPoll is how often a full window is re-checked; default 200ms.
	WindowPoll time.Duration
	// Workers parse and validate rows; default GOMAXPROCS.
	Workers int
	// Enqueuers enqueue batches concurrently; default 8.
	Enqueuers int
	// CheckpointEvery is the number of batches between checkpoints; default 64.
	CheckpointEvery int
	// MaxRun, when set, suspends the dispatch at the first batch boundary
	// after this long: Dispatch saves its checkpoint and returns
	// ErrSuspended; the next call goes on from there.
	MaxRun time.Duration

	// suppressed, when set, replaces the suppression files (a detached
	// dispatch uploads the hashes).
	suppressed *hashSet
	// crashAfterEnqueue, in tests, simulates a crash between a batch's
	// enqueue and its AddBatch: nothing after it is recorded.
	crashAfterEnqueue func(seq int) bool
}

func (o Options) withDefaults() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = config.DefaultMaxAttempts
	}
	if o.TaskTimeout <= 0 {
		o.TaskTimeout = config.DefaultTaskTimeout
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 10000
	}
	if o.WindowPoll <= 0 {
		o.WindowPoll = 200 * time.Millisecond
	}
	if o.Enqueuers <= 0 {
		o.Enqueuers = 8
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 64
	}
	return o
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
	Enqueued int `json:"enqueued"`
	Resumed  int `json:"resumed"`
	// ResumedAt is the row an earlier run's checkpoint let this one skip to.
	ResumedAt int  `json:"resumed_at_row,omitempty"`
	DryRun    bool `json:"dry_run,omitempty"`
	// Estimate is the sending time at the campaign's rate limits.
	Estimate *Estimate `json:"estimate,omitempty"`
	// Elapsed is the dispatch's wall time in seconds.
	Elapsed float64 `json:"elapsed_s"`
	// TimezoneDefaulted counts recipients (of this run) whose zone for the
	// send window fell back to the window's: an empty or unknown
	// schedule.timezone_column value, or a number of no known zone.
	TimezoneDefaulted int `json:"timezone_defaulted,omitempty"`
	// StartsAt is when sending starts, by the spec's schedule.start_at and
	// schedule.window, when that is after the dispatch; absent otherwise.
	StartsAt *time.Time `json:"starts_at,omitempty"`
}

// Dispatcher expands campaigns. It is safe for concurrent use by several
// campaigns.
type Dispatcher struct {
	store *storage.Store
	enq   Enqueuer
	opts  Options
}

// New returns a dispatcher. store and enq may be nil for dry runs.
func New(store *storage.Store, enq Enqueuer, o Options) *Dispatcher {
	return &Dispatcher{store: store, enq: enq, opts: o.withDefaults()}
}

// Dispatch is New(store, enq, o).Dispatch(ctx, spec, src).
func Dispatch(ctx context.Context, store *storage.Store, enq Enqueuer, spec campaigns.Spec, src recipients.Source, o Options) (Result, error) {
	return New(store, enq, o).Dispatch(ctx, spec, src)
}

// ErrBadInput marks errors in the spec or recipient file (exit code 2).
var ErrBadInput = errors.New("bad input")

// stopWatch remembers the first row after which the source could not read on.
type stopWatch struct {
	recipients.Source
	stop *recipients.StopError
	line int
}

func (w *stopWatch) Next() (recipients.Row, error) {
	row, err := w.Source.Next()
	var se *recipients.StopError
	if w.stop == nil && errors.As(row.Err, &se) {
		w.stop, w.line = se, row.Line
	}
	return row, err
}

// badInput marks err as bad input without changing its message, which
// already names the file, the line and the fix.
type badInput struct{ err error }

func (b badInput) Error() string   { return b.err.Error() }
func (b badInput) Unwrap() []error { return []error{ErrBadInput, b.err} }

// ErrSuspended is returned when Options.MaxRun stopped a dispatch at a batch
// boundary; its checkpoint is saved and dispatching again goes on from there.
var ErrSuspended = errors.New("dispatch suspended")

// ErrFileChanged is returned when a resumed dispatch finds the recipient
// file differs from the one the checkpoint was taken on.
var ErrFileChanged = errors.New("recipient file changed since the interrupted dispatch")

// Dispatch expands one campaign from src. Errors in the spec or the file's
// header stop it before anything is enqueued; a bad row is rejected and the
// rest goes on. When an earlier run of the same campaign stopped part way,
// Dispatch goes on from its checkpoint.
func (d *Dispatcher) Dispatch(ctx context.Context, spec campaigns.Spec, src recipients.Source) (Result, error) {
	start := time.Now()
	res := Result{ID: spec.ID, DryRun: d.opts.DryRun}
	pf, err := preflight(spec, src.Columns(), d.opts)
	if err != nil {
		return res, err
	}
	if !d.opts.DryRun {
		if d.store == nil || d.enq == nil {
			return res, errors.New("dispatcher: a store and an enqueuer are needed unless DryRun is set")
		}
		if _, err := d.store.Create(ctx, spec); err != nil {
			return res, err
		}
	}
	r := newRun(d, spec, pf, start)
	w := &stopWatch{Source: src}
	err = r.run(ctx, w)
	res = r.result()
	if err != nil {
		return res, err
	}
	if w.stop != nil {
		// The source could not be read to the end (a stream cannot be
		// prescanned like a file): hold what was enqueued, never finish.
		reason := fmt.Sprintf("%s: the recipients broke off at line %d: %v", spec.Recipients, w.line, w.stop)
		if !d.opts.DryRun {
			if _, perr := d.store.Pause(ctx, spec.ID, reason+"; resume to send the part read, or cancel"); perr != nil {
				return res, perr
			}
			reason += fmt.Sprintf("; campaign %s is paused with the %d recipients read before it", spec.ID, res.Valid)
		}
		return res, badInput{errors.New(reason)}
	}
	if !d.opts.DryRun {
		err := d.store.FinishDispatch(ctx, spec.ID, storage.DispatchCounts{
			Rows: res.Rows, Invalid: res.Invalid, Duplicates: res.Duplicates, Suppressed: res.Suppressed})
		if err != nil {
			return res, err
		}
	}
	if d.opts.Progress != nil {
		d.opts.Progress(res)
	}
	return res, nil
}

type checked struct {
	renderer   *campaigns.Renderer
	addrField  string
	suppressed *hashSet
}

// Check validates a spec against a source's header before anything is
// enqueued: templates parse, every column they use exists, the address
// column is found and the suppression list reads. Errors wrap ErrBadInput.
func Check(spec campaigns.Spec, src recipients.Source) error {
	_, err := preflight(spec, src.Columns(), Options{})
	return err
}

// CheckRender renders the spec's content for the first recipients of src
// (at most n, after any that do not read) before anything is enqueued: a
// template that fails or renders empty for every one of them is a mistake
// in the spec, reported as bad input with the spec's line and the first
// reason. src is read from where it stands; pass a fresh one.
func CheckRender(spec campaigns.Spec, src recipients.Source, n int) error {
	r, err := spec.Compile()
	if err != nil {
		return badInput{err}
	}
	if !r.Personalised() {
		return nil
	}
	var first error
	var firstRow recipients.Row
	tried := 0
	for tried < n {
		row, err := src.Next()
		if row.N > 0 && row.Err == nil {
			tried++
			_, rerr := r.Render(row.Fields)
			if rerr == nil {
				return nil
			}
			if first == nil {
				first, firstRow = rerr, row
			}
		}
		if err != nil {
			break
		}
	}
	if first == nil {
		return nil
	}
	return templateFails(spec, fmt.Sprintf("each of the first %d recipients", tried), firstRow.N, firstRow.Line, first)
}

// templateFails is the bad-input error for a template that failed for
// every recipient tried, located at the template's key in the spec.
func templateFails(spec campaigns.Spec, who string, row, line int, err error) error {
	key := "message"
	var re *campaigns.RenderError
	if errors.As(err, &re) {
		key = re.Key
	}
	return badInput{spec.Errorf(key, "the template fails for %s, so nothing was enqueued; the first (row %d, line %d): %v", who, row, line, err)}
}

func preflight(spec campaigns.Spec, cols []string, o Options) (checked, error) {
	var c checked
	var err error
	if c.renderer, err = spec.Compile(); err != nil {
		return c, badInput{err}
	}
	if cols != nil {
		if err := recipients.CheckColumns(spec, c.renderer, spec.Recipients, cols); err != nil {
			return c, badInput{err}
		}
	}
	if c.addrField, err = recipients.AddressField(spec, cols); err != nil {
		return c, badInput{err}
	}
	if err := checkZoneColumn(spec, cols); err != nil {
		return c, badInput{err}
	}
	if o.suppressed != nil {
		c.suppressed = o.suppressed
	} else if c.suppressed, err = loadSuppression(spec, o.SuppressFiles); err != nil {
		return c, badInput{err}
	}
	return c, nil
}

func newBatch(spec campaigns.Spec, seq int, r *campaigns.Renderer, size int) *campaigns.Batch {
	b := &campaigns.Batch{
		Campaign: spec.ID, Seq: seq, Channel: spec.Channel, ChannelID: spec.ChannelID, From: spec.From,
		Items: make([]campaigns.Item, 0, size), Rate: spec.Rate, AtLeastOnce: spec.AtLeastOnce, ExpiresAt: spec.Expiry(),
		StartAt: spec.StartUnix(), Window: spec.SendWindow(), WidgetID: spec.WidgetID,
	}
	if spec.Template != nil {
		b.Template, b.Language = spec.Template.Name, spec.Template.Language
	}
	if spec.Channel == campaigns.ChannelWhatsAppSession && spec.FallbackTemplate != nil {
		b.Template, b.Language, b.MediaURL = spec.FallbackTemplate.Name, spec.FallbackTemplate.Language, spec.MediaURL
	}
	if t := spec.SessionTemplate(); t != nil && t.Header != nil {
		b.HeaderType = t.Header.Type
	}
	if !r.Personalised() {
		c := r.Shared()
		b.Shared = &c
	}
	return b
}

// enqueueBatch enqueues one batch and records it. A batch in the uncertain
// zone of a resumed run is looked up first: a batch an earlier run recorded
// was enqueued then (the record follows the enqueue), so it is skipped.
func (d *Dispatcher) enqueueBatch(ctx context.Context, spec campaigns.Spec, b *campaigns.Batch, uncertain bool) (resumed bool, err error) {
	if uncertain {
		done, err := d.store.HasBatch(ctx, spec.ID, b.Seq)
		if err != nil {
			return false, err
		}
		if done {
			return true, nil
		}
	}
	if err := tasks.Enqueue(ctx, d.enq, tasks.Send(b, tasks.Options{Timeout: d.opts.TaskTimeout, Delay: startDelay(spec, time.Now())})); err != nil {
		return false, fmt.Errorf("dispatch %s: batch %d: %w", spec.ID, b.Seq, err)
	}
	if d.opts.crashAfterEnqueue != nil && d.opts.crashAfterEnqueue(b.Seq) {
		return false, errSimulatedCrash
	}
	maxRow := 0
	for _, it := range b.Items {
		maxRow = max(maxRow, it.Row)
	}
	if _, err := d.store.AddBatch(ctx, spec.ID, b.Seq, len(b.Items), maxRow); err != nil {
		return false, err
	}
	return false, nil
}

var errSimulatedCrash = errors.New("simulated crash between enqueue and AddBatch")

// outstanding estimates the campaign's unfinished batches in Redis.
func (d *Dispatcher) outstanding(ctx context.Context, id string, batchSize int) (int, error) {
	p, err := d.store.Progress(ctx, id)
	if err != nil {
		return 0, err
	}
	return int((p.Pending + int64(batchSize) - 1) / int64(batchSize)), nil
}
