package recipients

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// File is an opened recipient file, or standard input, that counts the
// bytes read from it, for a progress bar.
type File struct {
	// Path is the name it was opened by; "-" is standard input.
	Path string
	r    io.Reader
	c    io.Closer
	n    atomic.Int64
	size int64 // 0 when unknown (a pipe)
}

// OpenFile opens a recipient file; "-" reads stdin. The errors tell what
// to check in the spec, without naming it.
func OpenFile(path string, stdin io.Reader) (*File, error) {
	if path == "-" {
		return &File{Path: path, r: stdin}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("recipients file %s does not exist: check the recipients key of the spec (paths are relative to the spec file)", path)
		}
		return nil, fmt.Errorf("open recipients: %w", err)
	}
	in := &File{Path: path, r: f, c: f}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		in.size = st.Size()
	}
	return in, nil
}

// Read reads from the file and counts the bytes.
func (f *File) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.n.Add(int64(n))
	return n, err
}

// Progress returns the bytes read so far and the file's size, 0 when
// unknown (standard input, a pipe). It is safe to call from any goroutine.
func (f *File) Progress() (read, size int64) { return f.n.Load(), f.size }

// Close closes the file; standard input is left open.
func (f *File) Close() error {
	if f.c != nil {
		return f.c.Close()
	}
	return nil
}

// ForFile returns o with what the file's name tells filled in, when o
// leaves it open: .json is JSON, .ndjson and .jsonl NDJSON, .tsv has tab
// delimiters. Any other file, and standard input, is sniffed by NewSource.
func (o SourceOptions) ForFile(path string) SourceOptions {
	if o.Format != "" || path == "-" {
		return o
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		o.Format = "json"
	case ".ndjson", ".jsonl":
		o.Format = "ndjson"
	case ".tsv":
		if o.Comma == 0 {
			o.Comma = '\t'
		}
	}
	return o
}

// OpenSource opens a recipient file as a source, its format from
// opts.ForFile; "-" is standard input.
func OpenSource(path string, opts SourceOptions) (Source, error) {
	f, err := OpenFile(path, os.Stdin)
	if err != nil {
		return nil, err
	}
	src, err := NewSource(f, opts.ForFile(path))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return src, nil
}
