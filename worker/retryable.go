package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// Failure reasons of temporary failures, as the ledger records them: a
// recipient that failed only because OneRoute (or the task) kept failing
// for a while, and may well be sent now. Every other failed recipient was
// refused for good (Decide's FailPermanently: 400 validation, 404, invalid
// number, success:false) and is not retried unless asked by reason.
const (
	// reasonGaveUp starts the reason of a recipient whose temporary
	// failures (5xx, refused connections) reached MaxAttempts (batch.go).
	reasonGaveUp = "gave up after "
	// reasonAbandoned starts the reason of a recipient whose task asynq
	// gave up on (server.go handleError).
	reasonAbandoned = "abandoned after "
)

// Retryable reports whether a failed recipient's reason (as the ledger
// keeps it) says the failure was temporary, so that sending it again may
// succeed: the error class was oneroute.Temporary (or the task itself kept
// failing) until the attempts ran out. Permanent refusals are not
// retryable. fanout retry-failed sends the retryable ones again.
func Retryable(reason string) bool {
	return strings.HasPrefix(reason, reasonGaveUp) || strings.HasPrefix(reason, reasonAbandoned)
}

// saveRetrySource keeps the items of the outcomes that record rows failed,
// so fanout retry-failed can send them again (storage.SaveRetrySource). A
// failure to keep them is logged, not returned: the rows' outcome matters
// more, and a row without a source is only reported as not retryable.
func saveRetrySource(ctx context.Context, store *storage.Store, b *campaigns.Batch, outs []campaigns.Outcome) {
	var rows map[int]bool
	for _, o := range outs {
		if o.State == storage.LedgerFailed {
			if rows == nil {
				rows = map[int]bool{}
			}
			rows[o.Row] = true
		}
	}
	if len(rows) == 0 {
		return
	}
	items := make([]campaigns.Item, 0, len(rows))
	for _, it := range b.Items {
		if rows[it.Row] {
			items = append(items, it)
		}
	}
	if err := store.SaveRetrySource(ctx, b.Campaign, b, items); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Int("rows", len(items)).Msg("could not keep failed recipients for retry-failed")
	}
}

// RetryOptions tune RetryFailed.
type RetryOptions struct {
	// Reasons also retries recipients that failed for these reasons (a
	// reason matches when the recorded one starts with it), retryable or
	// not.
	Reasons []string
	// DryRun counts what would be retried and changes nothing.
	DryRun bool
	// BatchSize is the recipients per retry task; default
	// config.DefaultBatchSize (50).
	BatchSize int
	// TaskTimeout bounds one run of a retry task; default
	// config.DefaultTaskTimeout (5m).
	TaskTimeout time.Duration
	// Chunk is how many retry tasks are reset and enqueued per step;
	// default 20.
	Chunk int
}

// RetryResult says what RetryFailed did (or, dry, would do). JSON names
// are a contract with scripts.
type RetryResult struct {
	ID string `json:"id"`
	// Round is the campaign's retry round this run started (0 when nothing
	// was retried).
	Round int `json:"round"`
	// Failed counts the failed recipients found.
	Failed int `json:"failed"`
	// Retried counts the recipients sent again (dry: that would be).
	Retried int `json:"retried"`
	// Reasons counts the retried recipients by failure reason (as the
	// ledger keeps it, 59 bytes at most).
	Reasons map[string]int `json:"reasons"`
	// Kept counts the failed recipients left failed, by reason: permanent
	// failures not named by --reason.
	Kept map[string]int `json:"kept"`
	// NoSource counts retryable recipients that cannot be sent again
	// because no worker kept their address and content (they failed before
	// this version); they stay failed.
	NoSource int `json:"no_source"`
	// Batches counts the retry tasks enqueued.
	Batches int `json:"batches"`
	// State is the campaign's state afterwards.
	State  campaigns.State `json:"state"`
	DryRun bool            `json:"dry_run,omitempty"`
}

// wanted reports whether a failed recipient's reason is to be retried.
func (o RetryOptions) wanted(reason string) bool {
	if Retryable(reason) {
		return true
	}
	for _, r := range o.Reasons {
		// The ledger keeps 59 bytes of a reason: a longer reason given in
		// full matches its kept start.
		if r != "" && (strings.HasPrefix(reason, r) || (len(reason) >= 59 && strings.HasPrefix(r, reason))) {
			return true
		}
	}
	return false
}

// RetryFailed sends again the failed recipients of a campaign whose
// failure was temporary (Retryable), or whose reason o.Reasons names,
// through the same ledger: in steps of o.Chunk tasks, it builds batches
// from the retry source the workers kept, saves their copies, resets the
// rows to pending atomically (storage.ResetFailed: only rows still
// failed; counters adjusted; the campaign running again) and enqueues the
// batches as retry round n (task ids <cid>:b<k>x<n>, never an id of the
// first run). Give enq through KeepCopies. A recipient accepted, unknown
// or skipped is never sent again.
func RetryFailed(ctx context.Context, store *storage.Store, enq Enqueuer, id string, o RetryOptions) (RetryResult, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = config.DefaultBatchSize
	}
	if o.TaskTimeout <= 0 {
		o.TaskTimeout = config.DefaultTaskTimeout
	}
	if o.Chunk <= 0 {
		o.Chunk = 20
	}
	res := RetryResult{ID: id, Reasons: map[string]int{}, Kept: map[string]int{}, DryRun: o.DryRun}
	retries, err := store.Retries(ctx, id)
	if err != nil {
		return res, err
	}
	round, first := retries+1, true
	var pending []campaigns.Item // retry source items not yet in a task
	var head *campaigns.Batch
	seq := 0
	flush := func(all bool) error {
		for len(pending) >= o.BatchSize*o.Chunk || (all && len(pending) > 0) {
			n := min(len(pending), o.BatchSize*o.Chunk)
			if err := retryStep(ctx, store, enq, head, pending[:n], &seq, round, &first, o, &res); err != nil {
				return err
			}
			pending = pending[n:]
		}
		return nil
	}
	err = store.FailedRows(ctx, id, func(chunk []storage.Entry) error {
		var rows []int
		reasonOf := map[int]string{}
		for _, e := range chunk {
			res.Failed++
			if !o.wanted(e.Value) {
				res.Kept[e.Value]++
				continue
			}
			rows = append(rows, e.Row)
			reasonOf[e.Row] = e.Value
		}
		if len(rows) == 0 {
			return nil
		}
		h, items, err := store.RetrySource(ctx, id, rows)
		if err != nil {
			return err
		}
		res.NoSource += len(rows) - len(items)
		if h == nil || len(items) == 0 {
			return nil
		}
		head = h
		for _, it := range items {
			res.Reasons[reasonOf[it.Row]]++
		}
		if o.DryRun {
			res.Retried += len(items)
			return nil
		}
		pending = append(pending, items...)
		return flush(false)
	})
	if err == nil && !o.DryRun {
		err = flush(true)
	}
	if o.DryRun {
		res.Batches = (res.Retried + o.BatchSize - 1) / o.BatchSize
	}
	if p, perr := store.Progress(ctx, id); perr == nil {
		res.State = p.State
	}
	return res, err
}

// retryStep resets and enqueues one chunk of a retry round: copies first,
// then the reset (which checks them), then the tasks.
func retryStep(ctx context.Context, store *storage.Store, enq Enqueuer, head *campaigns.Batch, items []campaigns.Item,
	seq *int, round int, first *bool, o RetryOptions, res *RetryResult) error {
	var batches []*campaigns.Batch
	var keys []string
	var rows []int
	for start := 0; start < len(items); start += o.BatchSize {
		b := *head
		b.Items = items[start:min(start+o.BatchSize, len(items))]
		b.Seq, b.Retry = *seq, round
		*seq++
		batches = append(batches, &b)
		key := tasks.BatchKey(&b)
		keys = append(keys, key)
		c := storage.Copy{Key: key, Payload: tasks.Encode(&b)}
		for _, it := range b.Items {
			c.Rows = append(c.Rows, it.Row)
			rows = append(rows, it.Row)
		}
		if err := store.SaveCopy(ctx, b.Campaign, c); err != nil {
			return err
		}
	}
	var rr storage.ResetResult
	var err error
	for try := 0; ; try++ {
		rr, err = store.ResetFailed(ctx, head.Campaign, round, *first, keys, rows)
		if errors.Is(err, storage.ErrCopiesGone) && try < 3 {
			// The auditor dropped the completed campaign's copies between
			// our save and the reset: save them again.
			for i, b := range batches {
				if err := store.SaveCopy(ctx, b.Campaign, storage.Copy{Key: keys[i], Rows: batchRows(b), Payload: tasks.Encode(b)}); err != nil {
					return err
				}
			}
			continue
		}
		break
	}
	if err != nil {
		store.DropCopies(context.WithoutCancel(ctx), head.Campaign, keys...) //nolint:errcheck // best effort: the auditor drops copies left behind
		return err
	}
	if rr.Reset != len(rows) {
		// Rows are chosen failed and only a retry moves them: this is
		// another retry-failed racing this one, which the round refuses.
		return fmt.Errorf("retry campaign %s: %d of %d rows were still failed", head.Campaign, rr.Reset, len(rows))
	}
	*first = rr.Retries != round
	res.Round = round
	res.Retried += rr.Reset
	for _, b := range batches {
		if err := tasks.Enqueue(ctx, enq, tasks.Send(b, tasks.Options{Timeout: o.TaskTimeout})); err != nil {
			// The copy stays: the auditor re-creates the task once the
			// campaign stalls.
			return fmt.Errorf("retry campaign %s: %w", b.Campaign, err)
		}
		res.Batches++
	}
	return nil
}

func batchRows(b *campaigns.Batch) []int {
	rows := make([]int, len(b.Items))
	for i, it := range b.Items {
		rows[i] = it.Row
	}
	return rows
}

// SortedReasons lists a reason count map by count, largest first, then by
// reason: for printing.
func SortedReasons(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] > m[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}
