package recipients

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// elementReader reads the elements of a JSON array one at a time, keeping
// at most max bytes of one. It finds an element's end by its structure
// alone (nesting depth, strings and their escapes), so an element over the
// cap is read to its end without being kept and reading goes on with the
// next one; jsonSource checks the elements within the cap with
// encoding/json.
type elementReader struct {
	br   *bufio.Reader
	max  int64
	want elemWant
	kept []byte // an element that spans windows, while within the cap
}

type elemWant uint8

const (
	wantFirst   elemWant = iota // after '[': an element or ']'
	wantComma                   // after an element: ',' or ']'
	wantValue                   // after ',': an element
	wantNothing                 // after ']'
)

// jsonSyntaxError is JSON broken between or around elements: the reader
// cannot tell where the next element starts.
type jsonSyntaxError string

func (e jsonSyntaxError) Error() string { return string(e) }

// open reads up to the array's '['.
func (e *elementReader) open() error {
	c, err := e.peekNonSpace()
	switch {
	case err == io.EOF:
		return fmt.Errorf("%w: not JSON: the file is empty", ErrSourceFormat)
	case err != nil:
		return fmt.Errorf("%w: not JSON: %v", ErrSourceFormat, err)
	case c == '[':
		e.br.Discard(1)
		return nil
	case bytes.IndexByte([]byte(`{"-0123456789tfn`), c) < 0:
		return fmt.Errorf("%w: not JSON: invalid character %q looking for beginning of value", ErrSourceFormat, c)
	}
	return fmt.Errorf("%w: a JSON recipient file must be an array of objects, [{\"phone\": ...}, ...]", ErrSourceFormat)
}

// next returns the next element's bytes, valid until the next call (nil
// when it is over the cap), and its size; io.EOF after the array's ']'; a
// jsonSyntaxError when the JSON around it is broken.
func (e *elementReader) next() ([]byte, int64, error) {
	for e.want != wantNothing {
		c, err := e.peekNonSpace()
		if err == io.EOF {
			return nil, 0, jsonSyntaxError("the file ends before the array's closing ]")
		}
		if err != nil {
			return nil, 0, err
		}
		switch {
		case c == ']' && e.want != wantValue:
			e.br.Discard(1)
			e.want = wantNothing
		case e.want == wantComma && c == ',':
			e.br.Discard(1)
			e.want = wantValue
		case e.want == wantComma:
			return nil, 0, jsonSyntaxError(fmt.Sprintf("invalid character %q after array element", c))
		default:
			e.want = wantComma
			return e.element()
		}
	}
	return nil, 0, io.EOF
}

// peekNonSpace discards white space and returns the next byte, unread.
func (e *elementReader) peekNonSpace() (byte, error) {
	for {
		win, err := e.br.Peek(max(e.br.Buffered(), 1))
		for i, c := range win {
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				e.br.Discard(i)
				return c, nil
			}
		}
		e.br.Discard(len(win))
		if err != nil {
			return 0, err
		}
	}
}

// element reads one element from its first byte to its end.
func (e *elementReader) element() ([]byte, int64, error) {
	var sc jsonScan
	e.kept = e.kept[:0]
	size, over := int64(0), false
	for {
		win, err := e.br.Peek(max(e.br.Buffered(), 1))
		if len(win) == 0 {
			switch {
			case err != io.EOF:
				return nil, 0, err
			case over && !sc.scalar:
				return nil, 0, jsonSyntaxError(fmt.Sprintf("the file ends inside it, after %s bytes", groupDigits(size)))
			case over:
				return nil, size, nil
			}
			// Within the cap: encoding/json says what is wrong, if anything
			// (a number may end with the file).
			return e.kept, size, nil
		}
		if end := sc.step(win); end >= 0 {
			size += int64(end)
			e.br.Discard(end) // the bytes stay in the buffer until the next read
			switch {
			case over || size > e.max:
				return nil, size, nil
			case len(e.kept) == 0:
				return win[:end], size, nil
			}
			e.kept = appendCapped(e.kept, win[:end], int(e.max)+e.br.Size())
			return e.kept, size, nil
		}
		size += int64(len(win))
		if !over && size > e.max {
			over, e.kept = true, e.kept[:0]
		}
		if !over {
			e.kept = appendCapped(e.kept, win, int(e.max)+e.br.Size())
		}
		e.br.Discard(len(win))
	}
}

// jsonScan follows a JSON value's structure to find its end. It checks
// nothing else: encoding/json does, on the values within the cap.
type jsonScan struct {
	started bool
	depth   int  // objects and arrays open
	inStr   bool // in a string
	esc     bool // in a string, and the last byte seen is a backslash
	scalar  bool // a number, true, false or null (or junk): it ends at a delimiter
}

// step scans b, the bytes after those seen so far, and returns where in b
// the value ends, or -1 when it goes on after b.
func (j *jsonScan) step(b []byte) int {
	i := 0
	if !j.started {
		j.started, i = true, 1
		switch b[0] {
		case '"':
			j.inStr = true
		case '{', '[':
			j.depth = 1
		default:
			j.scalar = true
		}
	} else if j.esc {
		j.esc, i = false, 1
	}
	for i < len(b) {
		switch {
		case j.inStr:
			k := bytes.IndexAny(b[i:], `"\`)
			if k < 0 {
				return -1
			}
			i += k
			if b[i] == '\\' {
				if i+1 == len(b) {
					j.esc = true
					return -1
				}
				i += 2
				continue
			}
			j.inStr = false
			i++
			if j.depth == 0 {
				return i
			}
		case j.scalar:
			if k := bytes.IndexAny(b[i:], ", \t\r\n]"); k >= 0 {
				return i + k
			}
			return -1
		default:
			k := bytes.IndexAny(b[i:], `"{}[]`)
			if k < 0 {
				return -1
			}
			i += k
			switch b[i] {
			case '"':
				j.inStr = true
			case '{', '[':
				j.depth++
			default:
				j.depth--
			}
			i++
			if j.depth == 0 {
				return i
			}
		}
	}
	return -1
}
