package recipients

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/fanoutdev/fanout/campaigns"
)

// Row is one recipient record read from a source.
type Row struct {
	// N is the record's position among the data records, from 1 (the header
	// is not counted). It identifies the recipient in the ledger.
	N int
	// Line is the line of the file where the record starts, for messages.
	Line int
	// Fields maps column names to values. Sources may reuse the map between
	// calls to Next: copy what you keep.
	Fields map[string]string
	// Err, when set, is why the record cannot be used (bad JSON, wrong
	// number of fields, invalid UTF-8, a field or the record over its size
	// cap). The row is rejected; reading goes on.
	Err error
}

// StopError is a row error after which a source cannot read on (a quote
// that never closes or that swallows lines, broken JSON): everything after
// it would be lost, so the whole file is refused rather than dispatched in
// part.
type StopError struct {
	Msg string
}

func (e *StopError) Error() string { return e.Msg + "; the rest of the file cannot be read" }

// Prescan reads a whole recipient source without normalising anything, and
// refuses it before anything is enqueued when it cannot be read to the end
// (a *StopError, named by line), when it holds no record at all, or when its
// first record lacks a field in need (JSON and NDJSON have no header to
// check up front). file names the source in errors.
func Prescan(src Source, file string, need []string) (rows int, err error) {
	first := true
	for {
		row, rerr := src.Next()
		if row.N > 0 {
			rows++
			var se *StopError
			if errors.As(row.Err, &se) {
				return rows, &campaigns.SpecError{File: file, Line: row.Line, Msg: se.Error() + "; fix it and dispatch again (nothing was enqueued)"}
			}
			if first && row.Err == nil && src.Columns() == nil {
				first = false
				for _, f := range need {
					if _, ok := row.Fields[f]; !ok {
						return rows, &campaigns.SpecError{File: file, Line: row.Line, Msg: fmt.Sprintf("the first recipient has no field %q, which the spec uses (its fields: %s); fix the spelling in the file or the spec", f, strings.Join(sortedKeys(row.Fields), ", "))}
					}
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rows, fmt.Errorf("%s: %w", file, rerr)
		}
	}
	if rows == 0 {
		return 0, &campaigns.SpecError{File: file, Msg: "the file holds no recipient (only a header, or nothing); nothing to send"}
	}
	return rows, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Source streams recipient records. Next returns io.EOF after the last one.
type Source interface {
	// Columns lists the header's columns, or nil when records may have any
	// keys (JSON).
	Columns() []string
	Next() (Row, error)
	Close() error
}

// SourceOptions tunes recipient readers.
type SourceOptions struct {
	// Format is csv, json or ndjson; default from the file name, else sniffed.
	Format string
	// Comma is the CSV delimiter; default ','.
	Comma rune
	// MaxField caps one field in bytes; default 64 KiB. A longer field
	// rejects its row.
	MaxField int
	// MaxLine caps one record (a CSV record, a JSON array element, an
	// NDJSON line) in bytes, its line end not counted; default 1 MiB. A
	// longer record is read to its end without being kept and rejects its
	// row; reading goes on.
	MaxLine int
}

func (o SourceOptions) withDefaults() SourceOptions {
	if o.Comma == 0 {
		o.Comma = ','
	}
	if o.MaxField <= 0 {
		o.MaxField = 64 << 10
	}
	if o.MaxLine <= 0 {
		o.MaxLine = 1 << 20
	}
	return o
}

// ErrSourceFormat reports a recipient file that cannot be read at all.
var ErrSourceFormat = errors.New("unreadable recipient file")

// NewSource reads recipients from r in opts.Format, sniffing it when empty:
// '[' starts a JSON array, '{' NDJSON, anything else CSV. Closing the source
// closes r when r is an io.Closer.
func NewSource(r io.Reader, opts SourceOptions) (Source, error) {
	opts = opts.withDefaults()
	br := bufio.NewReaderSize(r, 64<<10)
	// Strip a UTF-8 BOM; refuse UTF-16, which spreadsheets write as "Unicode text".
	if head, _ := br.Peek(3); bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
	} else if bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}) {
		return nil, fmt.Errorf("%w: the file is UTF-16; save it as CSV UTF-8", ErrSourceFormat)
	}
	format := opts.Format
	if format == "" {
		format = "csv"
		// '[' starts a JSON array, '{' NDJSON, after any leading white space.
		head, _ := br.Peek(256)
		if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 {
			switch t[0] {
			case '[':
				format = "json"
			case '{':
				format = "ndjson"
			}
		}
	}
	closer, _ := r.(io.Closer)
	switch format {
	case "csv":
		return newCSVSource(br, closer, opts)
	case "json":
		return newJSONSource(br, closer, opts)
	case "ndjson":
		return newNDJSONSource(br, closer, opts), nil
	default:
		return nil, fmt.Errorf("%w: unknown format %q (use csv, json or ndjson)", ErrSourceFormat, format)
	}
}

type csvSource struct {
	cr      *csv.Reader
	split   *recordSplitter
	closer  io.Closer
	columns []string
	opts    SourceOptions
	n       int
	fields  map[string]string
	// shift is how many lines the placeholders of records over the cap hid
	// from the csv reader so far: a record's line in the file is the csv
	// reader's plus shift.
	shift int
}

func newCSVSource(br *bufio.Reader, closer io.Closer, opts SourceOptions) (*csvSource, error) {
	split := newRecordSplitter(br, opts)
	cr := csv.NewReader(split)
	cr.Comma = opts.Comma
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // checked per row so one bad row does not stop the file
	var header []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: the file is empty; it needs a header row such as \"phone,first_name\"", ErrSourceFormat)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: header row: %v", ErrSourceFormat, err)
		}
		if sk, ok := split.met(cr.InputOffset()); ok {
			line, _ := cr.FieldPos(0)
			var se *StopError
			if err := sk.err(line, opts.MaxLine); errors.As(err, &se) {
				return nil, fmt.Errorf("%w: header row: %s", ErrSourceFormat, se.Msg)
			}
			return nil, fmt.Errorf("%w: the header row is %s bytes, over the %s-byte cap; is this a CSV file?", ErrSourceFormat, groupDigits(sk.size), groupDigits(int64(opts.MaxLine)))
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		header = make([]string, len(rec))
		for i, h := range rec {
			header[i] = strings.TrimSpace(h)
		}
		break
	}
	seen := map[string]bool{}
	for i, h := range header {
		if h == "" {
			return nil, fmt.Errorf("%w: header column %d is empty; name every column", ErrSourceFormat, i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("%w: header column %q appears twice", ErrSourceFormat, h)
		}
		seen[h] = true
	}
	return &csvSource{cr: cr, split: split, closer: closer, columns: header, opts: opts, fields: make(map[string]string, len(header))}, nil
}

func (s *csvSource) Columns() []string { return s.columns }

func (s *csvSource) Next() (Row, error) {
	for {
		rec, err := s.cr.Read()
		if err == io.EOF {
			return Row{}, io.EOF
		}
		line := 0
		if err == nil && len(rec) > 0 {
			// FieldPos panics after an error: the record has no fields.
			line, _ = s.cr.FieldPos(0)
			line += s.shift
			if sk, ok := s.split.met(s.cr.InputOffset()); ok {
				// A record over the cap, which the splitter read past.
				s.n++
				s.shift += sk.lines - 1
				return Row{N: s.n, Line: line, Err: sk.err(line, s.opts.MaxLine)}, nil
			}
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				s.n++
				line = pe.StartLine + s.shift
				if errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine {
					// A quote opened on one line swallowed the lines after it:
					// those recipients would be lost without a trace.
					return Row{N: s.n, Line: line, Err: &StopError{Msg: fmt.Sprintf("a quote opens on line %d and is not closed properly before line %d, swallowing the lines between", line, pe.Line+s.shift)}}, nil
				}
				// A bad quote within one line: encoding/csv goes on with the
				// next record.
				return Row{N: s.n, Line: line, Err: fmt.Errorf("malformed CSV: %v", pe.Err)}, nil
			}
			return Row{}, err
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		s.n++
		clear(s.fields)
		row := Row{N: s.n, Line: line, Fields: s.fields}
		if len(rec) != len(s.columns) {
			// Keep what is there, so the rejects report shows the value.
			for i := 0; i < len(rec) && i < len(s.columns); i++ {
				if len(rec[i]) <= s.opts.MaxField && utf8.ValidString(rec[i]) {
					s.fields[s.columns[i]] = strings.TrimSpace(rec[i])
				}
			}
			row.Err = fmt.Errorf("has %d fields, the header has %d", len(rec), len(s.columns))
			return row, nil
		}
		for i, v := range rec {
			if len(v) > s.opts.MaxField {
				row.Err = fmt.Errorf("field %q is %d bytes, over the %d-byte cap", s.columns[i], len(v), s.opts.MaxField)
				return row, nil
			}
			if !utf8.ValidString(v) {
				row.Err = fmt.Errorf("field %q is not valid UTF-8; save the file as CSV UTF-8", s.columns[i])
				return row, nil
			}
			s.fields[s.columns[i]] = strings.TrimSpace(v)
		}
		return row, nil
	}
}

func (s *csvSource) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

type jsonSource struct {
	elems  *elementReader
	closer io.Closer
	opts   SourceOptions
	n      int
	done   bool
}

func newJSONSource(br *bufio.Reader, closer io.Closer, opts SourceOptions) (*jsonSource, error) {
	elems := &elementReader{br: br, max: int64(opts.MaxLine)}
	if err := elems.open(); err != nil {
		return nil, err
	}
	return &jsonSource{elems: elems, closer: closer, opts: opts}, nil
}

func (s *jsonSource) Columns() []string { return nil }

// Next reads one element. An element over MaxLine is read to its end and
// rejected; reading goes on with the next one. Broken JSON stops the file.
func (s *jsonSource) Next() (Row, error) {
	if s.done {
		return Row{}, io.EOF
	}
	elem, size, err := s.elems.next()
	var se jsonSyntaxError
	switch {
	case err == io.EOF:
		s.done = true
		return Row{}, io.EOF
	case errors.As(err, &se):
		s.done = true
		s.n++
		return Row{N: s.n, Line: s.n, Err: &StopError{Msg: fmt.Sprintf("invalid JSON in element %d: %v", s.n, se)}}, nil
	case err != nil:
		return Row{}, err
	}
	s.n++
	if size > int64(s.opts.MaxLine) {
		return Row{N: s.n, Line: s.n, Err: &recordSizeError{Size: size, Max: int64(s.opts.MaxLine)}}, nil
	}
	if !json.Valid(elem) {
		s.done = true
		var raw json.RawMessage
		return Row{N: s.n, Line: s.n, Err: &StopError{Msg: fmt.Sprintf("invalid JSON in element %d: %v", s.n, json.Unmarshal(elem, &raw))}}, nil
	}
	fields, err := flatObject(elem, s.opts.MaxField)
	return Row{N: s.n, Line: s.n, Fields: fields, Err: err}, nil
}

func (s *jsonSource) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

type ndjsonSource struct {
	br     *bufio.Reader
	closer io.Closer
	opts   SourceOptions
	n      int
	line   int
}

func newNDJSONSource(br *bufio.Reader, closer io.Closer, opts SourceOptions) *ndjsonSource {
	// Wrapped, so that bufio does not hand back br and its larger buffer;
	// +2 for the line end after a line of MaxLine bytes.
	return &ndjsonSource{br: bufio.NewReaderSize(struct{ io.Reader }{br}, opts.MaxLine+2), closer: closer, opts: opts}
}

func (s *ndjsonSource) Columns() []string { return nil }

// Next reads one line. A line over MaxLine is skipped to its end and
// rejected; reading goes on with the next line.
func (s *ndjsonSource) Next() (Row, error) {
	for {
		b, err := s.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(trimEOL(b)) > s.opts.MaxLine {
			s.line++
			s.n++
			size := int64(len(b))
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = s.br.ReadSlice('\n')
				size += int64(len(b))
			}
			if err != nil && err != io.EOF {
				return Row{}, err
			}
			size -= int64(len(b) - len(trimEOL(b)))
			return Row{N: s.n, Line: s.line, Err: &recordSizeError{Size: size, Max: int64(s.opts.MaxLine)}}, nil
		}
		if err != nil && err != io.EOF {
			return Row{}, err
		}
		if len(b) == 0 && err == io.EOF {
			return Row{}, io.EOF
		}
		s.line++
		t := bytes.TrimSpace(b)
		if len(t) == 0 {
			if err == io.EOF {
				return Row{}, io.EOF
			}
			continue
		}
		s.n++
		fields, ferr := flatObject(t, s.opts.MaxField)
		return Row{N: s.n, Line: s.line, Fields: fields, Err: ferr}, nil
	}
}

// trimEOL cuts a line's "\n" or "\r\n".
func trimEOL(b []byte) []byte {
	b, _ = bytes.CutSuffix(b, []byte{'\n'})
	b, _ = bytes.CutSuffix(b, []byte{'\r'})
	return b
}

func (s *ndjsonSource) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

// flatObject decodes one JSON object whose values are strings, numbers,
// booleans or null into string fields.
func flatObject(raw []byte, maxField int) (map[string]string, error) {
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("not valid UTF-8; save the file as UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	// Every plain field is kept, even when another one is refused, so a
	// rejects report shows the address; the error names the first bad key
	// in sorted order, so it is the same on every run.
	out := make(map[string]string, len(obj))
	var bad []string
	problem := map[string]string{}
	for k, v := range obj {
		switch {
		case len(v) > maxField:
			problem[k] = fmt.Sprintf("field %q is %d bytes, over the %d-byte cap", k, len(v), maxField)
		case len(v) == 0 || string(v) == "null":
			out[k] = ""
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				problem[k] = fmt.Sprintf("field %q: %v", k, err)
				continue
			}
			out[k] = strings.TrimSpace(s)
		case v[0] == '{' || v[0] == '[':
			problem[k] = fmt.Sprintf("field %q is an object or array; use plain values", k)
		default:
			out[k] = string(v)
		}
	}
	if len(problem) == 0 {
		return out, nil
	}
	for k := range problem {
		bad = append(bad, k)
	}
	sort.Strings(bad)
	return out, errors.New(problem[bad[0]])
}

// OptionsOf returns the reader settings the spec asks for (format and
// delimiter); flags may override them.
func OptionsOf(s campaigns.Spec) SourceOptions {
	comma, _ := campaigns.ParseDelimiter(s.Delimiter) // checked by Validate
	return SourceOptions{Format: s.Format, Comma: comma}
}
