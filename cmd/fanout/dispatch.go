package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/worker"
)

// dispatchArgs is dispatch's command line.
type dispatchArgs struct {
	cfgFile    string
	json       bool
	rejects    string
	id         string
	batch      int
	window     int
	dry        bool
	detach     bool
	recipients string
	format     string
	delimiter  string
	suppress   []string
	spec       string
	offline    bool
}

func cmdDispatch(ctx context.Context, e *env, args []string) error {
	a, err := parseDispatchArgs(e, args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(e, a.cfgFile)
	if err != nil {
		return err
	}
	spec, so, err := loadDispatchSpec(a, cfg)
	if err != nil {
		return err
	}
	if err := checkSpec(ctx, e, cfg, nil, spec, a.offline); err != nil {
		return err
	}
	opts := dispatchOptions(cfg)
	opts.DryRun, opts.SuppressFiles = a.dry, a.suppress
	if a.batch > 0 {
		opts.BatchSize = a.batch
	}
	if a.window >= 0 {
		opts.Window = a.window
	}
	var rw *rejectWriter
	if a.rejects != "" {
		if rw, err = newRejectWriter(a.rejects); err != nil {
			return err
		}
		defer rw.Close()
		opts.Reject = rw.Write
	}
	path := spec.RecipientsPath()
	if a.recipients != "" {
		path = a.recipients
	}
	in, err := dispatcher.Open(spec, path, e.stdin, so)
	if err != nil {
		return &inputError{err}
	}
	defer in.Close()
	res, err := dispatchInput(ctx, e, a, cfg, in, opts)
	if err != nil {
		return err
	}
	if rw != nil {
		if err := rw.Close(); err != nil {
			return err
		}
	}
	var final campaigns.State
	if !a.json && !a.dry && !a.detach && res.Enqueued == 0 {
		if final, err = finalState(ctx, cfg, res.ID); err != nil {
			return err
		}
	}
	return printDispatch(e, a, res, rw != nil, final)
}

// finalState is the campaign's state when its sending is over (sent,
// completed or cancelled), else "": a dispatch that enqueued nothing says
// why.
func finalState(ctx context.Context, cfg config.Config, id string) (campaigns.State, error) {
	rdb, err := openRedis(ctx, cfg.Redis, 0)
	if err != nil {
		return "", err
	}
	defer rdb.Close()
	p, err := storage.New(rdb).Progress(ctx, id)
	if err != nil || !p.SendingOver() {
		return "", err
	}
	return p.State, nil
}

// parseDispatchArgs parses dispatch's flags and its one argument, the spec
// file, and refuses flags that do not go together.
func parseDispatchArgs(e *env, args []string) (dispatchArgs, error) {
	fs := newFlags(e, "dispatch", "[flags] CAMPAIGN.yaml", `
Expands the campaign's recipients into Redis at REDIS_URL as send tasks for
'fanout worker', and prints the campaign id. Rows that cannot be sent are
counted and, with --rejects, written to a CSV report; duplicates and
suppressed recipients are skipped.

Running it again on the same spec and file enqueues nothing twice and goes
on from where an interrupted run stopped: give the spec an id, or pass the
printed one with --id.

With --detach the file is uploaded to Redis and the workers expand it, so
the command returns at once. With --dry-run nothing is enqueued: the rows
are validated and counted, and the sending time estimated from the rate
limits.

Before anything is enqueued, with or without --dry-run, the spec is
checked against OneRoute (the preflight): its channel_id or from number,
its template's approval and language, and the number of parameters. A
mismatch is refused with the spec's line and the fix; --offline skips the
check (and says so), so a dry run needs no API key.

Exit codes: 0 enqueued (or, with --dry-run, validated), 1 runtime error or
interrupted (run it again to go on), 2 bad input (spec, recipient file,
configuration or flags). See docs/cli.md.`)
	var a dispatchArgs
	cfgFile := configFlag(fs)
	fs.BoolVar(&a.json, "json", false, "print one JSON object for scripts instead of text")
	fs.StringVar(&a.rejects, "rejects", "", "write refused rows to this CSV `file` (row, line, value, reason)")
	fs.StringVar(&a.id, "id", "", "campaign `id` (overrides the spec's id)")
	fs.IntVar(&a.batch, "batch-size", 0, fmt.Sprintf("recipients per task, and per batched call (default FANOUT_BATCH_SIZE; unset: tasks of %d for a campaign with no rate limit, sent one request per message or in batched calls of %d (WhatsApp templates, one text for all), except whatsapp_session, whatsapp_campaign and personalised email; %d otherwise)", config.DefaultUnlimitedBatchSize, config.DefaultBatchSize, config.DefaultBatchSize))
	fs.IntVar(&a.window, "window", -1, "most unfinished batches kept in Redis; 0 means no limit (default FANOUT_WINDOW)")
	fs.BoolVar(&a.dry, "dry-run", false, "validate and count, enqueue nothing")
	fs.BoolVar(&a.detach, "detach", false, "upload the file to Redis and let the workers expand it")
	fs.StringVar(&a.recipients, "recipients", "", "read recipients from this `file` instead of the spec's; - is standard input")
	fs.StringVar(&a.format, "format", "", "recipient file `format`: csv, json or ndjson (default: the spec's, else from the file)")
	fs.StringVar(&a.delimiter, "delimiter", "", "CSV field `separator`: one character such as ; or |, or tab (default: the spec's, else ,)")
	fs.BoolVar(&a.offline, "offline", false, offlineUsage)
	fs.Func("suppress", "skip the numbers or emails in this `file` (one a line); repeatable, added to the spec's suppress", func(s string) error {
		a.suppress = append(a.suppress, s)
		return nil
	})
	pos, err := parse(fs, args)
	if err != nil {
		return a, err
	}
	if err := checkArgs(pos, "one campaign spec file"); err != nil {
		return a, err
	}
	if a.batch != 0 && (a.batch < 1 || a.batch > 1000) {
		return a, &usageError{fmt.Sprintf("--batch-size %d: use 1 to 1000", a.batch)}
	}
	if a.window < -1 {
		return a, &usageError{fmt.Sprintf("--window %d: use 0 (no limit) or more", a.window)}
	}
	if a.detach && a.dry {
		return a, &usageError{"--detach and --dry-run do not go together"}
	}
	a.cfgFile, a.spec = *cfgFile, pos[0]
	return a, nil
}

// loadDispatchSpec loads the spec with the flags that change it, and the
// reader settings the spec and the flags ask for.
func loadDispatchSpec(a dispatchArgs, cfg config.Config) (campaigns.Spec, recipients.SourceOptions, error) {
	var so recipients.SourceOptions
	if !a.dry {
		if err := cfg.RequireAPIKey(); err != nil {
			return campaigns.Spec{}, so, &inputError{err}
		}
	}
	spec, err := campaigns.LoadSpec(a.spec)
	if err != nil {
		return spec, so, &inputError{err}
	}
	if a.id != "" {
		spec.SetID(a.id)
		if err := spec.Validate(); err != nil {
			return spec, so, &inputError{err}
		}
	}
	if err := confineSpec(cfg, spec); err != nil {
		return spec, so, err
	}
	so = recipients.OptionsOf(spec)
	if a.format != "" {
		if a.format != "csv" && a.format != "json" && a.format != "ndjson" {
			return spec, so, &usageError{fmt.Sprintf("--format %q: use csv, json or ndjson", a.format)}
		}
		so.Format = a.format
	}
	if a.delimiter != "" {
		if so.Comma, err = campaigns.ParseDelimiter(a.delimiter); err != nil {
			return spec, so, &usageError{"--delimiter: " + err.Error()}
		}
	}
	for _, f := range a.suppress {
		if _, err := os.Stat(f); err != nil {
			return spec, so, &inputError{fmt.Errorf("--suppress: %w", err)}
		}
	}
	return spec, so, nil
}

// dispatchInput dispatches the checked input, or with --detach hands it
// to the workers, with a progress bar on a terminal.
func dispatchInput(ctx context.Context, e *env, a dispatchArgs, cfg config.Config, in *dispatcher.Input, opts dispatcher.Options) (dispatcher.Result, error) {
	if !a.json && !a.dry {
		fmt.Fprintf(e.stderr, "dispatching campaign %s into Redis at %s (rerun the same command to resume it if interrupted)\n",
			in.Spec.ID, config.Config{Redis: cfg.Redis}.Redacted().Redis.URL)
	}
	if canRedraw(e.stderr) && !a.json {
		bar := newProgressBar(e.stderr, in)
		opts.Progress = bar.update
		opts.ProgressEvery = 5000
		defer bar.finish()
	}
	log := newLogger(e.stderr, cfg.Log)
	if !a.detach {
		return dispatchSpec(ctx, cfg, in.Spec, in.Source, opts, log)
	}
	opts.Logger = log
	rdb, err := openRedis(ctx, cfg.Redis, 0)
	if err != nil {
		return dispatcher.Result{}, err
	}
	defer rdb.Close()
	res, err := dispatcher.DispatchDetached(ctx, storage.New(rdb), asynq.NewClientFromRedisClient(rdb), in, opts)
	if errors.Is(err, dispatcher.ErrBadInput) || errors.Is(err, storage.ErrSpecConflict) {
		err = &inputError{err}
	}
	return res, err
}

// printDispatch prints the result: one JSON object, or the id on standard
// output and a summary on standard error. final is the state of a campaign
// found already over, which the summary names instead of the counts.
func printDispatch(e *env, a dispatchArgs, res dispatcher.Result, rejects bool, final campaigns.State) error {
	if a.json {
		out := dispatchJSON{Result: res, Detached: a.detach}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	est := estimateText(res.Estimate)
	dups := plural(res.Duplicates, "duplicate", "duplicates")
	batches := plural(res.Batches, "batch", "batches")
	if res.DryRun {
		fmt.Fprintf(e.stdout, "dry run of %s: %s, %d valid, %d invalid, %s, %d suppressed, %s%s\n",
			res.ID, plural(res.Rows, "row", "rows"), res.Valid, res.Invalid, dups, res.Suppressed, batches, est)
		printStart(e.stderr, res)
		return nil
	}
	fmt.Fprintln(e.stdout, res.ID)
	if a.detach {
		fmt.Fprintf(e.stderr, "uploaded %s in %s (%d invalid, %s, %d suppressed%s); the workers expand it; follow it with: fanout status %s\n",
			plural(res.Valid, "recipient", "recipients"), batches, res.Invalid, dups, res.Suppressed, est, res.ID)
		printStart(e.stderr, res)
		return nil
	}
	if final != "" {
		fmt.Fprintf(e.stderr, "campaign %s is already %s: nothing enqueued (an earlier dispatch enqueued its %s); see it with: fanout status %s\n",
			res.ID, final, plural(res.Total, "recipient", "recipients"), res.ID)
		return nil
	}
	resumed := ""
	if res.Resumed > 0 {
		resumed = "; " + plural(res.Resumed, "batch was", "batches were") + " enqueued by an earlier run"
	}
	fmt.Fprintf(e.stderr, "enqueued %s in %s (%d invalid, %s, %d suppressed%s%s); follow it with: fanout status %s\n",
		plural(res.Total, "recipient", "recipients"), batches, res.Invalid, dups, res.Suppressed, est, resumed, res.ID)
	printStart(e.stderr, res)
	if res.Invalid > 0 && !rejects {
		fmt.Fprintf(e.stderr, "%s refused: see which and why with --rejects FILE.csv (or --dry-run --rejects FILE.csv)\n", plural(res.Invalid, "row was", "rows were"))
	}
	return nil
}

// dispatchJSON is dispatch's --json output: the dispatcher's result, and
// whether the expansion was handed to the workers.
type dispatchJSON struct {
	dispatcher.Result
	Detached bool `json:"detached,omitempty"`
}

// dispatchSpec dispatches a checked source.
func dispatchSpec(ctx context.Context, cfg config.Config, spec campaigns.Spec, src recipients.Source, opts dispatcher.Options, log zerolog.Logger) (dispatcher.Result, error) {
	defer src.Close()
	opts.Logger = log
	var store *storage.Store
	var enq dispatcher.Enqueuer
	if !opts.DryRun {
		rdb, err := openRedis(ctx, cfg.Redis, 0)
		if err != nil {
			return dispatcher.Result{}, err
		}
		defer rdb.Close()
		store = storage.New(rdb)
		enq = worker.KeepCopies(asynq.NewClientFromRedisClient(rdb), store) // the auditor re-creates lost tasks from copies
	}
	res, err := dispatcher.Dispatch(ctx, store, enq, spec, src, opts)
	if errors.Is(err, dispatcher.ErrBadInput) || errors.Is(err, storage.ErrSpecConflict) || errors.Is(err, dispatcher.ErrFileChanged) {
		return res, &inputError{err}
	}
	return res, err
}

// progressBar draws the dispatch's progress on a terminal with the same
// progress library as status --watch: a bar over the file's bytes when its
// size is known, then rows, rows per second and the valid and invalid
// counts (progressLine), redrawn in place.
type progressBar struct {
	in      interface{ Progress() (read, size int64) }
	start   time.Time
	prog    *mpb.Progress
	bar     *mpb.Bar
	refresh chan any
	last    time.Time
	mu      sync.Mutex
	line    string
}

func newProgressBar(w io.Writer, in interface{ Progress() (read, size int64) }) *progressBar {
	p := &progressBar{in: in, start: time.Now(), refresh: make(chan any)}
	p.prog = mpb.New(mpb.WithOutput(w), mpb.WithWidth(100), mpb.WithManualRefresh(p.refresh))
	_, size := in.Progress()
	text := decor.Any(func(decor.Statistics) string {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.line
	})
	var style mpb.BarFillerBuilder = mpb.BarStyle()
	if size <= 0 {
		style = mpb.NopStyle()
	}
	p.bar = p.prog.New(max(size, 1), style, mpb.BarWidth(20), mpb.AppendDecorators(text))
	return p
}

func (p *progressBar) update(r dispatcher.Result) {
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	rate := float64(r.Rows) / max(time.Since(p.start).Seconds(), 1e-3)
	done, size := p.in.Progress()
	p.mu.Lock()
	p.line = progressLine(r, rate, done, 0)
	if size > 0 {
		p.line = fmt.Sprintf(" %s of %s %3d%%", byteSize(done), byteSize(size), done*100/size) + p.line
	}
	p.mu.Unlock()
	if size > 0 {
		p.bar.SetCurrent(done)
	}
	p.refresh <- struct{}{}
}

// progressLine is the dispatch's progress: when the file's size is known, a
// bar with the bytes read and the percentage, then rows, rows per second
// and the valid and invalid counts.
func progressLine(r dispatcher.Result, rate float64, done, size int64) string {
	rows := " rows"
	if r.Rows == 1 {
		rows = " row"
	}
	line := fmt.Sprintf("  %s%s  %s rows/s  %d valid  %d invalid", commas(r.Rows), rows, commas(int(rate)), r.Valid, r.Invalid)
	if size > 0 {
		line = fmt.Sprintf("  %s %s of %s %3d%%", meter(done, size, 20), byteSize(done), byteSize(size), done*100/size) + line
	}
	return line
}

// byteSize writes a size in bytes with a decimal unit: 512 B, 1.5 KB,
// 12.3 MB, 2.0 GB.
func byteSize(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1000, "KB"
	for _, u := range []string{"MB", "GB", "TB"} {
		if v < 1000 {
			break
		}
		v, unit = v/1000, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

func (p *progressBar) finish() {
	p.bar.Abort(true) // the summary that follows replaces it
	p.prog.Wait()
}

// commas writes 1234567 as 1,234,567.
func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// rejectWriter writes refused rows as CSV, escaping cells that a spreadsheet
// would run as formulas.
type rejectWriter struct {
	f *os.File
	w *csv.Writer
}

func newRejectWriter(path string) (*rejectWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600) // refused rows hold recipients' addresses: owner-only
	if err != nil {
		return nil, &inputError{fmt.Errorf("--rejects: %w", err)}
	}
	w := csv.NewWriter(f)
	w.Write([]string{"row", "line", "value", "reason"})
	return &rejectWriter{f: f, w: w}, nil
}

func (r *rejectWriter) Write(rej dispatcher.Reject) {
	r.w.Write([]string{strconv.Itoa(rej.Row), strconv.Itoa(rej.Line), recipients.EscapeCell(rej.Value), recipients.EscapeCell(rej.Reason)})
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
