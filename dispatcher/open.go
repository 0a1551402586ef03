package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// Input is a recipient file opened for a dispatch and checked against its
// spec; build it with Open, and Close it.
type Input struct {
	// Spec is the spec given to Open; a generated id is replaced by one
	// derived from the spec and the file (campaigns.Spec.DeriveID).
	Spec campaigns.Spec
	// Options are the reader settings, with what the file's name tells
	// filled in (recipients.SourceOptions.ForFile).
	Options recipients.SourceOptions
	// Source streams the rows, after the header Open read.
	Source recipients.Source

	file *recipients.File
	// head keeps what Open read of the file (the header, and what the
	// reader buffered with it), and tee receives what is read after, so a
	// detached dispatch uploads the file from its first byte.
	head    *bytes.Buffer
	opening bool
	tee     io.Writer
}

// Open opens the recipient file at path ("-" reads stdin) for a dispatch
// of spec, before anything connects anywhere: it reads the header and
// checks the spec against it (Check); a regular file is read to the end
// once (recipients.Prescan) and its first recipients rendered
// (CheckRender), so a file or template that cannot be sent is refused
// before anything is enqueued; and a spec without an id gets one derived
// from the spec and the file, so dispatching the same twice resumes
// instead of sending twice. Errors wrap ErrBadInput.
func Open(spec campaigns.Spec, path string, stdin io.Reader, so recipients.SourceOptions) (*Input, error) {
	f, err := recipients.OpenFile(path, stdin)
	if err != nil {
		return nil, badInput{spec.Errorf("recipients", "%v", err)}
	}
	in := &Input{Spec: spec, Options: so.ForFile(path), file: f, head: &bytes.Buffer{}, opening: true}
	deriveID(&in.Spec, path)
	err = in.check(path)
	in.opening = false
	if err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

// check reads the header and checks the spec against it, then prescans.
func (in *Input) check(path string) error {
	src, err := recipients.NewSource(in.read(), in.Options)
	if err != nil {
		return badInput{in.Spec.Errorf("recipients", "%s: %v", path, err)}
	}
	in.Source = src
	if err := Check(in.Spec, src); err != nil {
		return err
	}
	if path == "-" {
		return nil
	}
	return prescan(in.Spec, path, in.Options, src.Columns())
}

// read returns the file as the source reads it: while opening, what is
// read is kept in head; once a detached dispatch sets tee, it goes there.
func (in *Input) read() io.Reader { return readFunc(in.readTee) }

func (in *Input) readTee(p []byte) (int, error) {
	n, err := in.file.Read(p)
	var w io.Writer
	switch {
	case in.tee != nil:
		w = in.tee
	case in.opening:
		w = in.head
	}
	if n > 0 && w != nil {
		if _, werr := w.Write(p[:n]); werr != nil {
			return n, werr
		}
	}
	return n, err
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// Progress returns the bytes read so far and the file's size, 0 when
// unknown (standard input). It is safe to call from any goroutine, such as
// Options.Progress.
func (in *Input) Progress() (read, size int64) { return in.file.Progress() }

// Close closes the source and the file.
func (in *Input) Close() error {
	var err error
	if in.Source != nil {
		err = in.Source.Close()
	}
	return errors.Join(err, in.file.Close())
}

// prescan reads the whole file once, fast (no normalisation), so a file
// that cannot be read to the end (an unclosed quote, broken JSON), that is
// empty, or whose first JSON record lacks a field the spec uses is refused
// before anything is enqueued, rather than sent in part. It then renders
// the first recipients: a template that fails for all of them stops here.
func prescan(spec campaigns.Spec, path string, so recipients.SourceOptions, columns []string) error {
	f, err := os.Open(path)
	if err != nil {
		return badInput{spec.Errorf("recipients", "%s: %v", path, err)}
	}
	defer f.Close()
	src, err := recipients.NewSource(f, so)
	if err != nil {
		return badInput{spec.Errorf("recipients", "%s: %v", path, err)}
	}
	r, err := spec.Compile()
	if err != nil {
		return badInput{err}
	}
	need := append([]string(nil), r.Fields()...)
	if addr, err := recipients.AddressField(spec, columns); err == nil {
		need = append(need, addr)
	}
	if _, err := recipients.Prescan(src, path, need); err != nil {
		return badInput{err}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil // not seekable: the dispatcher checks as it reads
	}
	if src, err = recipients.NewSource(f, so); err != nil {
		return badInput{spec.Errorf("recipients", "%s: %v", path, err)}
	}
	return CheckRender(spec, src, 100)
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

// DispatchDetached dispatches in through the workers (fanout dispatch
// --detach): it uploads the file to Redis while checking every row as a
// dry run, then records the campaign and enqueues its expansion (Detach).
// The result counts the rows as the workers will; nothing is enqueued when
// a row stops the file.
func DispatchDetached(ctx context.Context, store *storage.Store, enq Enqueuer, in *Input, o Options) (Result, error) {
	up := store.NewUpload(ctx, in.Spec.ID, UploadMeta(in.Options, o))
	if _, err := up.Write(in.head.Bytes()); err != nil {
		return Result{ID: in.Spec.ID}, err
	}
	in.head, in.tee = nil, up
	o.DryRun = true
	res, err := Dispatch(ctx, nil, nil, in.Spec, in.Source, o)
	if err == nil {
		_, err = io.Copy(io.Discard, in.read()) // the rest of the file, past a stop on a bad row
	}
	if err == nil {
		err = up.Close()
	}
	if err == nil {
		o.DryRun = false
		err = Detach(ctx, store, enq, in.Spec, o)
	}
	res.DryRun = false
	return res, err
}
