package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/config"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
)

func cmdDispatch(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "dispatch", "[flags] CAMPAIGN.yaml", `
Expands the campaign's recipients into Redis at REDIS_URL as send tasks for
'fanout worker', and prints the campaign id. Rows that cannot be sent are
counted and, with --rejects, written to a CSV report; duplicates and
suppressed recipients are skipped.

Running it again on the same spec and file enqueues nothing twice: give the
spec an id, or pass the printed one with --id.

Exit codes: 0 enqueued, 1 runtime error (Redis unreachable, ...),
2 bad input (spec, recipient file, configuration or flags).`)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object for scripts instead of text")
	rejects := fs.String("rejects", "", "write refused rows to this CSV `file` (row, line, value, reason)")
	id := fs.String("id", "", "campaign `id` (overrides the spec's id)")
	batch := fs.Int("batch-size", 0, "recipients per task (default from FANOUT_BATCH_SIZE, 50)")
	window := fs.Int("window", -1, "most unfinished batches kept in Redis; 0 means no limit (default FANOUT_WINDOW)")
	dry := fs.Bool("dry-run", false, "validate and count, enqueue nothing")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &usageError{"want exactly one campaign spec file"}
	}
	cfg, err := loadConfig(e, *cfgFile)
	if err != nil {
		return err
	}
	if !*dry {
		if err := cfg.RequireAPIKey(); err != nil {
			return &inputError{err}
		}
	}
	spec, err := campaigns.LoadSpec(pos[0])
	if err != nil {
		return &inputError{err}
	}
	if *id != "" {
		spec.ID = *id
		if err := spec.Validate(); err != nil {
			return &inputError{err}
		}
	}
	opts := dispatcher.Options{BatchSize: cfg.Dispatch.BatchSize, Window: cfg.Dispatch.Window,
		MaxAttempts: cfg.Worker.MaxAttempts, TaskTimeout: cfg.Worker.TaskTimeout, DryRun: *dry}
	if *batch > 0 {
		opts.BatchSize = *batch
	}
	if *window >= 0 {
		opts.Window = *window
	}
	var rw *rejectWriter
	if *rejects != "" {
		if rw, err = newRejectWriter(*rejects); err != nil {
			return err
		}
		defer rw.Close()
		opts.Reject = rw.Write
	}
	src, err := openChecked(spec)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.Log)
	res, err := dispatchSpec(ctx, cfg, spec, src, opts, log)
	if err != nil {
		return err
	}
	if rw != nil {
		if err := rw.Close(); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	if res.DryRun {
		fmt.Fprintf(e.stdout, "dry run of %s: %d rows, %d valid, %d invalid, %d duplicates, %d suppressed, %d batches\n",
			res.ID, res.Rows, res.Valid, res.Invalid, res.Duplicates, res.Suppressed, res.Batches)
		return nil
	}
	fmt.Fprintln(e.stdout, res.ID)
	fmt.Fprintf(e.stderr, "enqueued %d recipients in %d batches (%d invalid, %d duplicates, %d suppressed); follow it with: fanout status %s\n",
		res.Total, res.Batches, res.Invalid, res.Duplicates, res.Suppressed, res.ID)
	return nil
}

// openChecked opens the spec's recipients and checks the spec against the
// file's header, before anything connects anywhere.
func openChecked(spec campaigns.Spec) (campaigns.Source, error) {
	src, err := campaigns.OpenSource(spec.RecipientsPath(), campaigns.SourceOptions{})
	if err != nil {
		return nil, &inputError{spec.Errorf("recipients", "%v", err)}
	}
	if err := dispatcher.Check(spec, src); err != nil {
		src.Close()
		return nil, &inputError{err}
	}
	return src, nil
}

// dispatchSpec dispatches a checked source.
func dispatchSpec(ctx context.Context, cfg config.Config, spec campaigns.Spec, src campaigns.Source, opts dispatcher.Options, log zerolog.Logger) (dispatcher.Result, error) {
	defer src.Close()
	opts.Logger = log
	var store *campaigns.Store
	var enq dispatcher.Enqueuer
	if !opts.DryRun {
		rdb, err := openRedis(ctx, cfg.Redis, 0)
		if err != nil {
			return dispatcher.Result{}, err
		}
		defer rdb.Close()
		store = campaigns.NewStore(rdb)
		enq = asynq.NewClientFromRedisClient(rdb)
	}
	res, err := dispatcher.Dispatch(ctx, store, enq, spec, src, opts)
	if errors.Is(err, dispatcher.ErrBadInput) || errors.Is(err, campaigns.ErrSpecConflict) {
		return res, &inputError{err}
	}
	return res, err
}

// rejectWriter writes refused rows as CSV, escaping cells that a spreadsheet
// would run as formulas.
type rejectWriter struct {
	f *os.File
	w *csv.Writer
}

func newRejectWriter(path string) (*rejectWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, &inputError{fmt.Errorf("--rejects: %w", err)}
	}
	w := csv.NewWriter(f)
	w.Write([]string{"row", "line", "value", "reason"})
	return &rejectWriter{f: f, w: w}, nil
}

func (r *rejectWriter) Write(rej dispatcher.Reject) {
	r.w.Write([]string{strconv.Itoa(rej.Row), strconv.Itoa(rej.Line), campaigns.EscapeCell(rej.Value), campaigns.EscapeCell(rej.Reason)})
}

func (r *rejectWriter) Close() error {
	if r.f == nil {
		return nil
	}
	r.w.Flush()
	err := errors.Join(r.w.Error(), r.f.Close())
	r.f = nil
	return err
}
