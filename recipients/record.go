package recipients

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// recordSplitter sits between a CSV file's bufio.Reader and encoding/csv.
// It finds where each record ends by encoding/csv's own rules and passes
// complete records on unchanged, so the csv reader parses exactly the bytes
// it would without it. A record over max bytes is not passed on: it is read
// to its end without being kept, and a one-line placeholder takes its place,
// which csvSource turns into a refused row. It never holds more than one
// record of max bytes, plus the bufio.Reader's buffer.
//
// The rules, encoding/csv's with LazyQuotes and TrimLeadingSpace off: a
// quote opens a quoted field only as a field's first byte; inside one, `""`
// is a quote and `"` closes it, and it must be followed by the delimiter or
// the line end, else the csv reader drops the rest of the line (ErrQuote). A
// quote anywhere else in a field drops the rest of the line too
// (ErrBareQuote). A newline outside quotes ends the record.
type recordSplitter struct {
	br    *bufio.Reader
	max   int64
	comma []byte // the delimiter, UTF-8 encoded

	// The window is br's buffered bytes; off and ready are offsets into it.
	off   int   // the next byte to scan
	ready int   // bytes at the front that are whole records, to pass on; the current record starts there
	base  int64 // bytes consumed from br: the stream offset of the window's start
	// Stream offsets, so that they stay true while the window moves.
	qHit  int64 // the next quote at or after off, or -1
	qScan int64 // when qHit is -1: no quote from off up to here
	nlEnd int64 // a quote with no newline between off and it

	st      splitState
	cm      int    // outside quotes: how many bytes of the delimiter end the field so far; len(comma) at a field's start
	taken   int64  // bytes of the current record already taken out of br
	kept    []byte // them, unless the record is over the cap
	over    bool   // the current record is over the cap: its bytes are dropped
	nl      int    // newlines among the bytes taken
	last    byte   // the last byte taken
	quoteAt int64  // record offset of the quote that opened the last quoted field, or -1
	quoteNL int    // newlines before quoteAt, once taken
	badAt   int64  // record offset of a quote closed wrongly (ErrQuote), or -1
	badNL   int    // newlines before badAt, once taken

	out    []byte // a held record or a placeholder, passed on before anything else
	outOff int64  // bytes passed on so far
	rerr   error  // the error br returned (io.EOF at the end)
	err    error  // returned once everything before it is passed on
	skips  []skippedRecord
}

type splitState uint8

const (
	stOutside splitState = iota // outside quotes
	stQuoted                    // in a quoted field
	stSkip                      // after a misplaced quote, to the line's end
)

// placeholder is the record passed on instead of one over the cap: one
// line, no quote, not blank. csvSource recognises it by its offset, not its
// text, so no data can pass for it.
var placeholder = []byte("record over the cap\n")

// skippedRecord is a record the splitter did not pass on.
type skippedRecord struct {
	end      int64 // the csv reader's input offset just after the placeholder
	inEnd    int64 // the file's offset just after the record
	size     int64 // bytes, without the line end
	lines    int   // lines it spans
	unclosed int   // line (0 for the first) where a quote opens and never closes; -1 when none
	badLine  int   // line (0 for the first) where a quote is closed wrongly; -1 when none
}

func newRecordSplitter(br *bufio.Reader, opts SourceOptions) *recordSplitter {
	s := &recordSplitter{br: br, max: int64(opts.MaxLine), comma: utf8.AppendRune(nil, opts.Comma), qHit: -1, nlEnd: -1}
	s.reset()
	return s
}

// reset starts a new record.
func (s *recordSplitter) reset() {
	s.st, s.cm = stOutside, len(s.comma)
	s.taken, s.kept, s.over, s.nl, s.last = 0, s.kept[:0], false, 0, 0
	s.quoteAt, s.quoteNL, s.badAt, s.badNL = -1, -1, -1, -1
}

// Read passes on whole records, held records and placeholders, in file order.
func (s *recordSplitter) Read(p []byte) (int, error) {
	for {
		if len(s.out) > 0 {
			n := copy(p, s.out)
			s.out = s.out[n:]
			s.outOff += int64(n)
			return n, nil
		}
		if s.ready > 0 {
			n, _ := s.br.Read(p[:min(len(p), s.ready)]) // buffered: no I/O, no error
			s.consumed(n)
			s.ready -= n
			s.outOff += int64(n)
			return n, nil
		}
		if s.err != nil {
			return 0, s.err
		}
		s.fill()
	}
}

// met reports the skipped record whose placeholder the csv reader has just
// read, off being the reader's input offset after it.
func (s *recordSplitter) met(off int64) (skippedRecord, bool) {
	if len(s.skips) == 0 || s.skips[0].end != off {
		return skippedRecord{}, false
	}
	sk := s.skips[0]
	s.skips = s.skips[1:]
	return sk, true
}

// consumed notes that n bytes left the front of the window.
func (s *recordSplitter) consumed(n int) {
	s.off -= n
	s.base += int64(n)
}

// fill scans until there is something to pass on: whole records at the
// front of the window, a held record or a placeholder, or the error.
func (s *recordSplitter) fill() {
	for {
		win, _ := s.br.Peek(s.br.Buffered())
		eof := s.rerr != nil
		for s.scan(win, eof) {
			if !s.ended(win, false) {
				return
			}
		}
		if s.ready > 0 {
			return // whole records first; passing them on makes room
		}
		if eof {
			if s.rerr == io.EOF && (s.taken > 0 || s.off > 0) {
				s.ended(win, true) // the last record ends with the file
				return
			}
			s.err = s.rerr
			return
		}
		if !s.over && s.taken+int64(s.off) > s.max+1 {
			s.over = true // +1: a "\r" that may start the line end
		}
		if s.over || s.taken > 0 || len(win) == s.br.Size() {
			s.take(win, s.off)
		}
		if _, err := s.br.Peek(s.br.Buffered() + 1); err != nil {
			s.rerr = err
		}
	}
}

// scan goes on through win from off. Records that end within the window
// and within the cap it passes on itself (passOn); it returns true when
// another record ends, off just after it, for ended to settle, and false
// when it needs more input, off where it stopped (the window's end, or a
// quote it needs the bytes after). eof says win is all there is.
func (s *recordSplitter) scan(win []byte, eof bool) bool {
	quick := len(s.comma) == 1 && s.taken == 0 && int64(len(win)-s.ready) <= s.max
	for s.off < len(win) {
		if quick && s.st != stSkip {
			if s.scanQuick(win); s.off == len(win) {
				return false
			}
		}
		switch s.st {
		case stOutside:
			// Outside quotes only newlines and quotes matter, and the
			// delimiter just before a quote.
			q := s.nextQuote(win)
			seg := win[s.off:q]
			if s.nlEnd != s.base+int64(q) {
				// No record before q can be over the cap: end them all
				// at once, at the last newline.
				all := s.taken == 0 && int64(q-s.ready) <= s.max
				if i := indexNewline(seg, all); i >= 0 {
					s.off += i + 1
					if !all {
						return true
					}
					s.nlEnd = s.base + int64(q)
					s.passOn()
					continue
				}
			}
			s.cm = s.commaTail(s.cm, seg)
			s.off = q
			if q == len(win) {
				return false
			}
			if s.cm == len(s.comma) {
				s.st = stQuoted
				s.quoteAt = s.taken + int64(q-s.ready)
			} else {
				s.st = stSkip
			}
			s.off = q + 1
		case stQuoted:
			j := s.nextQuote(win)
			if j == len(win) {
				s.off = j
				return false
			}
			rest := win[j+1:]
			switch {
			case len(rest) == 0 || (len(rest) == 1 && rest[0] == '\r') ||
				(len(rest) < len(s.comma) && bytes.HasPrefix(s.comma, rest)):
				// The bytes after the quote decide. At the end of the
				// file, the quote closes the field (a "\r" is dropped), or
				// is closed wrongly, before a part of a delimiter.
				if !eof {
					s.off = j
					return false
				}
				if len(rest) == 0 || rest[0] == '\r' {
					s.st, s.off = stOutside, len(win)
					return false
				}
				s.badAt = s.taken + int64(j-s.ready)
				s.st, s.off = stSkip, j+1
			case rest[0] == '"':
				s.off = j + 2
			case rest[0] == '\n' || (rest[0] == '\r' && rest[1] == '\n'):
				s.off = j + 2
				if rest[0] == '\r' {
					s.off++
				}
				if s.taken > 0 || int64(s.off-s.ready) > s.max {
					return true
				}
				s.passOn()
			case bytes.HasPrefix(rest, s.comma):
				s.st, s.cm, s.off = stOutside, len(s.comma), j+1+len(s.comma)
			default:
				s.badAt = s.taken + int64(j-s.ready)
				s.st, s.off = stSkip, j+1
			}
		case stSkip:
			i := bytes.IndexByte(win[s.off:], '\n')
			if i < 0 {
				s.off = len(win)
				return false
			}
			s.off += i + 1
			return true
		}
	}
	return false
}

// scanQuick follows scan's rules through win from off in the common case
// (a one-byte delimiter, and a window in which no record can pass the cap,
// so that records need no counting, only their ends), as one tight loop,
// for quoted CSV. It stops short of anything else and leaves it to scan: a
// quote it needs more bytes after, a quote out of place or closed wrongly,
// a long stretch without a quote.
func (s *recordSplitter) scanQuick(win []byte) {
	c := s.comma[0]
	i, st, atField, rs, quoteAt := s.off, s.st, s.cm == 1, s.ready, s.quoteAt
loop:
	for i < len(win) {
		if st == stQuoted {
			j := indexQuote(win[i:])
			if j < 0 {
				i = len(win)
				break
			}
			j += i
			next := byte(0)
			if j+2 < len(win) {
				next = win[j+2]
			}
			switch {
			case j+1 == len(win):
				i = j
				break loop
			case win[j+1] == '"':
				i = j + 2
			case win[j+1] == c:
				i, st, atField = j+2, stOutside, true
			case win[j+1] == '\n':
				i, st, atField, rs, quoteAt = j+2, stOutside, true, j+2, -1
			case win[j+1] == '\r' && next == '\n':
				i, st, atField, rs, quoteAt = j+3, stOutside, true, j+3, -1
			default:
				i = j
				break loop
			}
			continue
		}
		// Outside quotes: a long stretch without a quote is scan's, which
		// ends its records at once.
		q := int(s.qHit - s.base)
		if s.qHit < s.base+int64(i) {
			s.off = i
			q = s.findQuote(win)
		}
		if q-i > 64 {
			break
		}
		// A field runs to the delimiter, a newline or the quote.
		k := i
		for k < q && win[k] != c && win[k] != '\n' {
			k++
		}
		switch {
		case k == len(win):
			i, atField = k, atField && k == i
			break loop
		case win[k] == c:
			i, atField = k+1, true
		case win[k] == '\n':
			i, atField, rs, quoteAt = k+1, true, k+1, -1
		case k == i && atField:
			i, st, atField, quoteAt = k+1, stQuoted, false, int64(k-rs)
		default:
			i, atField = k, false // a quote out of place
			break loop
		}
	}
	s.off, s.st, s.ready, s.quoteAt = i, st, rs, quoteAt
	s.cm = 0
	if atField {
		s.cm = 1
	}
}

// passOn ends records within the cap that lie whole in the window, at off,
// as ended does.
func (s *recordSplitter) passOn() {
	s.ready = s.off
	s.st, s.cm, s.quoteAt, s.badAt = stOutside, len(s.comma), -1, -1
}

// nextQuote returns the index in win of the first quote at or after off, or
// len(win) when there is none.
func (s *recordSplitter) nextQuote(win []byte) int {
	if q := s.qHit - s.base; q >= int64(s.off) {
		return int(q)
	}
	return s.findQuote(win)
}

func (s *recordSplitter) findQuote(win []byte) int {
	off := s.base + int64(s.off)
	from := off
	if s.qHit < 0 && s.qScan > from {
		from = s.qScan
	}
	i := indexQuote(win[from-s.base:])
	if i < 0 {
		s.qHit, s.qScan = -1, s.base+int64(len(win))
		return len(win)
	}
	s.qHit = from + int64(i)
	return int(s.qHit - s.base)
}

// indexQuote returns the index of the first quote in b, or -1. In quoted
// CSV the next quote is mostly a few bytes on, too near for a call to
// bytes.IndexByte to pay: it tests the first 64 bytes eight at a time.
func indexQuote(b []byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b) && i < 64; i += 8 {
		// The lowest byte flagged is the first quote (the flags above it
		// may be wrong).
		v := binary.LittleEndian.Uint64(b[i:]) ^ ('"' * lo)
		if t := (v - lo) &^ v & hi; t != 0 {
			return i + bits.TrailingZeros64(t)/8
		}
	}
	if i < 64 {
		for ; i < len(b); i++ {
			if b[i] == '"' {
				return i
			}
		}
		return -1
	}
	if j := bytes.IndexByte(b[i:], '"'); j >= 0 {
		return i + j
	}
	return -1
}

// indexNewline returns the index of the first newline in b, or of the last
// one when last is set, or -1. Most fields are short: a loop is quicker for
// them than a call.
func indexNewline(b []byte, last bool) int {
	if len(b) > 16 {
		if last {
			return bytes.LastIndexByte(b, '\n')
		}
		return bytes.IndexByte(b, '\n')
	}
	i := -1
	for k, c := range b {
		if c == '\n' {
			if i = k; !last {
				break
			}
		}
	}
	return i
}

// commaTail returns how many bytes of the delimiter end a field's bytes
// outside quotes, given prev for the bytes before b: len(comma) when they
// end with the delimiter (a quote next opens a quoted field), fewer when
// they end with its first bytes. A delimiter's UTF-8 bytes cannot overlap
// themselves, so the longest match is the only one.
func (s *recordSplitter) commaTail(prev int, b []byte) int {
	lc := len(s.comma)
	if len(b) == 0 {
		return prev
	}
	if lc == 1 {
		if b[len(b)-1] == s.comma[0] {
			return 1
		}
		return 0
	}
	if prev > 0 && prev < lc && prev+len(b) <= lc && bytes.Equal(b, s.comma[prev:prev+len(b)]) {
		return prev + len(b)
	}
	for k := min(lc, len(b)); k > 0; k-- {
		if bytes.Equal(b[len(b)-k:], s.comma[:k]) {
			return k
		}
	}
	return 0
}

// ended settles the record ending at off (or, with eof, at the file's end).
// It returns true when scanning may go on in this window.
func (s *recordSplitter) ended(win []byte, eof bool) bool {
	end := s.off
	eol := 0
	if !eof && win[end-1] == '\n' {
		eol = 1
		if (end-2 >= s.ready && win[end-2] == '\r') || (end-1 == s.ready && s.taken > 0 && s.last == '\r') {
			eol = 2
		}
	}
	size := s.taken + int64(end-s.ready) - int64(eol)
	if size <= s.max && !s.over {
		if s.taken == 0 {
			s.ready = end
			s.reset()
			return true
		}
		s.take(win, end)
		s.out = s.kept
		s.reset()
		return false
	}
	if s.ready > 0 {
		// Pass on the records before it first, then scan it again (the
		// quote cache only looks forward: forget it).
		s.off = s.ready
		s.qHit, s.qScan, s.nlEnd = -1, 0, -1
		s.reset()
		return false
	}
	s.over = true
	sk := skippedRecord{end: s.outOff + int64(len(placeholder)), inEnd: s.base + int64(end), size: size, unclosed: -1, badLine: -1}
	s.take(win, end)
	sk.lines = s.nl
	if s.last != '\n' {
		sk.lines++
	}
	if eof && s.st == stQuoted {
		sk.unclosed = s.quoteNL
	}
	if s.badAt >= 0 {
		sk.badLine = s.badNL
	}
	s.skips = append(s.skips, sk)
	s.out = placeholder
	s.reset()
	return false
}

// take moves the current record's bytes up to upTo out of the window: kept
// while the record is within the cap, dropped once it is over. Only the
// newlines are counted, and the lines of the quotes that may be reported.
func (s *recordSplitter) take(win []byte, upTo int) {
	chunk := win[:upTo] // s.ready is 0 here: nothing whole is waiting
	if len(chunk) == 0 {
		return
	}
	if s.quoteAt >= s.taken && s.quoteAt < s.taken+int64(len(chunk)) {
		s.quoteNL = s.nl + bytes.Count(chunk[:s.quoteAt-s.taken], []byte{'\n'})
	}
	if s.badAt >= s.taken && s.badAt < s.taken+int64(len(chunk)) {
		s.badNL = s.nl + bytes.Count(chunk[:s.badAt-s.taken], []byte{'\n'})
	}
	s.nl += bytes.Count(chunk, []byte{'\n'})
	if s.over {
		s.kept = s.kept[:0]
	} else {
		s.kept = appendCapped(s.kept, chunk, int(s.max)+2+s.br.Size())
	}
	s.taken += int64(len(chunk))
	s.last = chunk[len(chunk)-1]
	s.br.Discard(len(chunk))
	s.consumed(len(chunk))
}

// appendCapped appends b to dst, growing it as append does but to no more
// than limit bytes when they suffice.
func appendCapped(dst, b []byte, limit int) []byte {
	if n := len(dst) + len(b); n > cap(dst) {
		dst = append(make([]byte, 0, max(min(2*cap(dst), limit), n)), dst...)
	}
	return append(dst, b...)
}

// err is why the skipped record is refused, line being the line it starts on.
func (sk skippedRecord) err(line int, max int) error {
	switch {
	case sk.unclosed >= 0:
		return &StopError{Msg: fmt.Sprintf("a quote opens on line %d and never closes", line+sk.unclosed)}
	case sk.badLine > 0:
		// As encoding/csv reports it within the cap (csvSource.Next).
		return &StopError{Msg: fmt.Sprintf("a quote opens on line %d and is not closed properly before line %d, swallowing the lines between", line, line+sk.badLine)}
	}
	return &recordSizeError{Size: sk.size, Max: int64(max), First: line, Last: line + sk.lines - 1}
}

// recordSizeError refuses a record over SourceOptions.MaxLine.
type recordSizeError struct {
	Size, Max   int64
	First, Last int // the lines it spans, when known (CSV)
}

func (e *recordSizeError) Error() string {
	what := "record"
	if e.Last > e.First {
		what = fmt.Sprintf("record on lines %d-%d", e.First, e.Last)
	}
	return fmt.Sprintf("%s is %s bytes, over the %s-byte cap; it is refused and reading goes on", what, groupDigits(e.Size), groupDigits(e.Max))
}

// groupDigits writes n with a comma between thousands: 1,048,576.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	b := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		b = append(b, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return string(b)
}
