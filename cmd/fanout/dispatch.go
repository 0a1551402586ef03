package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

func cmdDispatch(ctx context.Context, e *env, args []string) error {
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

Exit codes: 0 enqueued (or, with --dry-run, validated), 1 runtime error or
interrupted (run it again to go on), 2 bad input (spec, recipient file,
configuration or flags). See docs/cli.md.`)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object for scripts instead of text")
	rejects := fs.String("rejects", "", "write refused rows to this CSV `file` (row, line, value, reason)")
	id := fs.String("id", "", "campaign `id` (overrides the spec's id)")
	batch := fs.Int("batch-size", 0, fmt.Sprintf("recipients per task (default from FANOUT_BATCH_SIZE, %d)", config.DefaultBatchSize))
	window := fs.Int("window", -1, "most unfinished batches kept in Redis; 0 means no limit (default FANOUT_WINDOW)")
	dry := fs.Bool("dry-run", false, "validate and count, enqueue nothing")
	detach := fs.Bool("detach", false, "upload the file to Redis and let the workers expand it")
	recipientsFlag := fs.String("recipients", "", "read recipients from this `file` instead of the spec's; - is standard input")
	format := fs.String("format", "", "recipient file `format`: csv, json or ndjson (default: the spec's, else from the file)")
	delimiter := fs.String("delimiter", "", "CSV field `separator`: one character such as ; or |, or tab (default: the spec's, else ,)")
	var suppress []string
	fs.Func("suppress", "skip the numbers or emails in this `file` (one a line); repeatable, added to the spec's suppress", func(s string) error {
		suppress = append(suppress, s)
		return nil
	})
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &usageError{"want exactly one campaign spec file"}
	}
	if *batch != 0 && (*batch < 1 || *batch > 1000) {
		return &usageError{fmt.Sprintf("--batch-size %d: use 1 to 1000", *batch)}
	}
	if *window < -1 {
		return &usageError{fmt.Sprintf("--window %d: use 0 (no limit) or more", *window)}
	}
	if *detach && *dry {
		return &usageError{"--detach and --dry-run do not go together"}
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
		spec.SetID(*id)
		if err := spec.Validate(); err != nil {
			return &inputError{err}
		}
	}
	if err := confineSpec(cfg, spec); err != nil {
		return err
	}
	so := recipients.OptionsOf(spec)
	if *format != "" {
		if *format != "csv" && *format != "json" && *format != "ndjson" {
			return &usageError{fmt.Sprintf("--format %q: use csv, json or ndjson", *format)}
		}
		so.Format = *format
	}
	if *delimiter != "" {
		if so.Comma, err = campaigns.ParseDelimiter(*delimiter); err != nil {
			return &usageError{"--delimiter: " + err.Error()}
		}
	}
	for _, f := range suppress {
		if _, err := os.Stat(f); err != nil {
			return &inputError{fmt.Errorf("--suppress: %w", err)}
		}
	}
	opts := dispatchOptions(cfg)
	opts.DryRun, opts.SuppressFiles = *dry || *detach, suppress
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
	path := spec.RecipientsPath()
	if *recipientsFlag != "" {
		path = *recipientsFlag
	}
	in, err := openInput(spec, path, e.stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	deriveID(&spec, path)
	if !*asJSON && !*dry {
		fmt.Fprintf(e.stderr, "dispatching campaign %s into Redis at %s (rerun the same command to resume it if interrupted)\n",
			spec.ID, config.Config{Redis: cfg.Redis}.Redacted().Redis.URL)
	}
	var up *storage.Upload
	var upRedis interface{ Close() error }
	var reader io.Reader = in
	var store *storage.Store
	var enq dispatcher.Enqueuer
	if *detach {
		// Connect first: the upload streams while the file is checked.
		rdb, err := openRedis(ctx, cfg.Redis, 0)
		if err != nil {
			return err
		}
		upRedis = rdb
		defer upRedis.Close()
		store = storage.New(rdb)
		enq = asynq.NewClientFromRedisClient(rdb)
		up = store.NewUpload(ctx, spec.ID, dispatcher.UploadMeta(so, opts))
		reader = io.TeeReader(in, up)
	}
	src, err := checkSource(spec, path, reader, so)
	if err != nil {
		return err
	}
	if isTerminal(e.stderr) && !*asJSON {
		bar := &progressBar{w: e.stderr, in: in, start: time.Now()}
		opts.Progress = bar.update
		opts.ProgressEvery = 5000
		defer bar.finish()
	}
	log := newLogger(e.stderr, cfg.Log)
	var res dispatcher.Result
	if *detach {
		opts.Logger = log
		res, err = dispatcher.Dispatch(ctx, nil, nil, spec, src, opts)
		if err == nil {
			_, err = io.Copy(io.Discard, reader) // the rest of the file, past a stop on a bad row
		}
		if err == nil {
			err = up.Close()
		}
		if err == nil {
			opts.DryRun = false
			err = dispatcher.Detach(ctx, store, enq, spec, opts)
		}
		src.Close()
		res.DryRun = false
		if errors.Is(err, dispatcher.ErrBadInput) || errors.Is(err, storage.ErrSpecConflict) {
			err = &inputError{err}
		}
	} else {
		res, err = dispatchSpec(ctx, cfg, spec, src, opts, log)
	}
	if err != nil {
		return err
	}
	if rw != nil {
		if err := rw.Close(); err != nil {
			return err
		}
	}
	if *asJSON {
		out := dispatchJSON{Result: res, Detached: *detach}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	est := ""
	if res.Estimate != nil {
		est = ", sending time at the rate limits " + res.Estimate.Human
	}
	if res.DryRun {
		fmt.Fprintf(e.stdout, "dry run of %s: %d rows, %d valid, %d invalid, %d duplicates, %d suppressed, %d batches%s\n",
			res.ID, res.Rows, res.Valid, res.Invalid, res.Duplicates, res.Suppressed, res.Batches, est)
		return nil
	}
	fmt.Fprintln(e.stdout, res.ID)
	if *detach {
		fmt.Fprintf(e.stderr, "uploaded %d recipients in %d batches (%d invalid, %d duplicates, %d suppressed%s); the workers expand it; follow it with: fanout status %s\n",
			res.Valid, res.Batches, res.Invalid, res.Duplicates, res.Suppressed, est, res.ID)
		return nil
	}
	resumed := ""
	if res.Resumed > 0 {
		resumed = fmt.Sprintf("; %d batches were enqueued by an earlier run", res.Resumed)
	}
	fmt.Fprintf(e.stderr, "enqueued %d recipients in %d batches (%d invalid, %d duplicates, %d suppressed%s%s); follow it with: fanout status %s\n",
		res.Total, res.Batches, res.Invalid, res.Duplicates, res.Suppressed, est, resumed, res.ID)
	if res.Invalid > 0 && rw == nil {
		fmt.Fprintf(e.stderr, "%d rows were refused: see which and why with --rejects FILE.csv (or --dry-run --rejects FILE.csv)\n", res.Invalid)
	}
	return nil
}

// dispatchJSON is dispatch's --json output: the dispatcher's result, and
// whether the expansion was handed to the workers.
type dispatchJSON struct {
	dispatcher.Result
	Detached bool `json:"detached,omitempty"`
}

// countingReader counts the bytes read, for the progress bar.
type countingReader struct {
	r    io.Reader
	c    io.Closer
	n    atomic.Int64
	size int64 // 0 when unknown (a pipe)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error {
	if c.c != nil {
		return c.c.Close()
	}
	return nil
}

// openInput opens a recipient file, or stdin for "-".
func openInput(spec campaigns.Spec, path string, stdin io.Reader) (*countingReader, error) {
	if path == "-" {
		return &countingReader{r: stdin}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &inputError{spec.Errorf("recipients", "recipients file %s does not exist: check the recipients key of the spec (paths are relative to the spec file)", path)}
		}
		return nil, &inputError{spec.Errorf("recipients", "open recipients: %v", err)}
	}
	c := &countingReader{r: f, c: f}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		c.size = st.Size()
	}
	return c, nil
}

// checkSource reads a source's header from r and checks the spec against it.
func checkSource(spec campaigns.Spec, path string, r io.Reader, so recipients.SourceOptions) (recipients.Source, error) {
	if so.Format == "" && path != "-" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".json":
			so.Format = "json"
		case ".ndjson", ".jsonl":
			so.Format = "ndjson"
		case ".tsv":
			if so.Comma == 0 {
				so.Comma = '\t'
			}
		}
	}
	src, err := recipients.NewSource(r, so)
	if err != nil {
		return nil, &inputError{spec.Errorf("recipients", "%s: %v", path, err)}
	}
	if err := dispatcher.Check(spec, src); err != nil {
		src.Close()
		return nil, &inputError{err}
	}
	if path != "-" {
		if err := prescan(spec, path, so, src.Columns()); err != nil {
			src.Close()
			return nil, err
		}
	}
	return src, nil
}

// prescan reads the whole file once, fast (no normalisation), so a file
// that cannot be read to the end (an unclosed quote, broken JSON), that is
// empty, or whose first JSON record lacks a field the spec uses is refused
// before anything is enqueued, rather than sent in part.
func prescan(spec campaigns.Spec, path string, so recipients.SourceOptions, columns []string) error {
	f, err := os.Open(path)
	if err != nil {
		return &inputError{spec.Errorf("recipients", "%s: %v", path, err)}
	}
	defer f.Close()
	src, err := recipients.NewSource(f, so)
	if err != nil {
		return &inputError{spec.Errorf("recipients", "%s: %v", path, err)}
	}
	r, err := spec.Compile()
	if err != nil {
		return &inputError{err}
	}
	need := append([]string(nil), r.Fields()...)
	if addr, err := recipients.AddressField(spec, columns); err == nil {
		need = append(need, addr)
	}
	if _, err := recipients.Prescan(src, path, need); err != nil {
		return &inputError{err}
	}
	// Render the first recipients: a template that fails for all of them
	// stops here, before anything is enqueued or detached.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil // not seekable: the dispatcher checks as it reads
	}
	if src, err = recipients.NewSource(f, so); err != nil {
		return &inputError{spec.Errorf("recipients", "%s: %v", path, err)}
	}
	if err := dispatcher.CheckRender(spec, src, 100); err != nil {
		return &inputError{err}
	}
	return nil
}

// openChecked opens the spec's recipients and checks the spec against the
// file's header, before anything connects anywhere.
func openChecked(spec campaigns.Spec) (recipients.Source, error) {
	in, err := openInput(spec, spec.RecipientsPath(), os.Stdin)
	if err != nil {
		return nil, err
	}
	src, err := checkSource(spec, spec.RecipientsPath(), in, recipients.OptionsOf(spec))
	if err != nil {
		in.Close()
		return nil, err
	}
	return closeBoth{src, in}, nil
}

// deriveID gives a spec without an id one derived from the spec and the
// recipient file, so running the same dispatch twice resumes instead of
// sending twice. Standard input keeps its random id.
func deriveID(spec *campaigns.Spec, path string) {
	if path == "-" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	abs, _ := filepath.Abs(path)
	spec.DeriveID(abs, strconv.FormatInt(fi.Size(), 10), strconv.FormatInt(fi.ModTime().UnixNano(), 10))
}

// closeBoth closes a source and the file under it.
type closeBoth struct {
	recipients.Source
	c io.Closer
}

func (c closeBoth) Close() error { return errors.Join(c.Source.Close(), c.c.Close()) }

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
		enq = asynq.NewClientFromRedisClient(rdb)
	}
	res, err := dispatcher.Dispatch(ctx, store, enq, spec, src, opts)
	if errors.Is(err, dispatcher.ErrBadInput) || errors.Is(err, storage.ErrSpecConflict) || errors.Is(err, dispatcher.ErrFileChanged) {
		return res, &inputError{err}
	}
	return res, err
}

// progressBar draws the dispatch's progress on a terminal: rows, rows per
// second and, when the file's size is known, a percentage.
type progressBar struct {
	w     io.Writer
	in    *countingReader
	start time.Time
	last  time.Time
	drawn bool
}

func (p *progressBar) update(r dispatcher.Result) {
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	rate := float64(r.Rows) / max(now.Sub(p.start).Seconds(), 1e-3)
	line := fmt.Sprintf("  %s rows  %s rows/s  %d valid  %d invalid", commas(r.Rows), commas(int(rate)), r.Valid, r.Invalid)
	if p.in.size > 0 {
		done := p.in.n.Load()
		line = fmt.Sprintf("  %s %3d%%", bar(done, p.in.size, 20), done*100/p.in.size) + line
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
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
	f, err := os.Create(path)
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
