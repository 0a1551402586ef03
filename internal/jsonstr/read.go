package jsonstr

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Reader reads the usual shapes of a JSON document without reflection, for
// hand-written fast paths beside encoding/json. Every method reports false
// on anything it does not read exactly as encoding/json would, and the
// caller then falls back to encoding/json, which reads (or refuses) it.
type Reader struct {
	// B is the document and I the offset of the next byte to read.
	B []byte
	I int
}

// WS skips white space.
func (r *Reader) WS() {
	for r.I < len(r.B) {
		switch r.B[r.I] {
		case ' ', '\t', '\n', '\r':
			r.I++
		default:
			return
		}
	}
}

// Byte consumes c after white space.
func (r *Reader) Byte(c byte) bool {
	r.WS()
	if r.I < len(r.B) && r.B[r.I] == c {
		r.I++
		return true
	}
	return false
}

// Peek is the next byte after white space (0 at the end).
func (r *Reader) Peek() byte {
	r.WS()
	if r.I < len(r.B) {
		return r.B[r.I]
	}
	return 0
}

// End reports whether only white space is left.
func (r *Reader) End() bool {
	r.WS()
	return r.I == len(r.B)
}

// Lit consumes the literal w (true, false, null) after white space.
func (r *Reader) Lit(w string) bool {
	r.WS()
	if len(r.B)-r.I >= len(w) && string(r.B[r.I:r.I+len(w)]) == w {
		r.I += len(w)
		return true
	}
	return false
}

// Key reads an object key without escapes (the only keys a fast path
// matches) and the colon after it.
func (r *Reader) Key() ([]byte, bool) {
	if !r.Byte('"') {
		return nil, false
	}
	for j := r.I; j < len(r.B); j++ {
		switch c := r.B[j]; {
		case c == '"':
			k := r.B[r.I:j]
			r.I = j + 1
			return k, r.Byte(':')
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// Plain reads a string without escapes, in valid UTF-8 and without
// control characters: v is a slice of B. It reports false on anything
// else, and leaves I as it was when the string has an escape, so that the
// caller can read it with Text.
func (r *Reader) Plain() (v []byte, ok bool) {
	if !r.Byte('"') {
		return nil, false
	}
	ascii := true
	for j := r.I; j < len(r.B); j++ {
		c := r.B[j]
		switch {
		case c == '"':
			v := r.B[r.I:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			r.I = j + 1
			return v, true
		case c == '\\':
			r.I--
			return nil, false
		case c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// Text reads a string as encoding/json decodes it, escapes included. It
// reports false on what it leaves to encoding/json: control characters,
// invalid UTF-8 (which encoding/json would replace), lone surrogates and
// bad escapes.
func (r *Reader) Text() (string, bool) {
	if v, ok := r.Plain(); ok {
		return string(v), true
	}
	// Plain stops at its opening quote only for an escape.
	if r.I < len(r.B) && r.B[r.I] == '"' {
		return r.unescape()
	}
	return "", false
}

// unescape reads a string with escapes; I is at its opening quote.
func (r *Reader) unescape() (string, bool) {
	// The decoded string is shorter than its JSON: find the end, then
	// decode into one allocation.
	end := r.I + 1
	for ; end < len(r.B) && r.B[end] != '"'; end++ {
		if r.B[end] == '\\' {
			end++
		}
	}
	if end >= len(r.B) {
		return "", false
	}
	var sb strings.Builder
	sb.Grow(end - r.I)
	j := r.I + 1
	for j < end {
		c := r.B[j]
		switch {
		case c < 0x20:
			return "", false
		case c != '\\':
			k := j + 1
			for k < end && r.B[k] != '\\' && r.B[k] >= 0x20 {
				k++
			}
			sb.Write(r.B[j:k])
			j = k
			continue
		}
		switch e := r.B[j+1]; e {
		case '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			c, ok := hex4(r.B[:end], j+2)
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(c) {
				// Only a well-formed pair; encoding/json makes anything
				// else U+FFFD.
				if j+7 >= end || r.B[j+6] != '\\' || r.B[j+7] != 'u' {
					return "", false
				}
				c2, ok := hex4(r.B[:end], j+8)
				if !ok {
					return "", false
				}
				if c = utf16.DecodeRune(c, c2); c == utf8.RuneError {
					return "", false
				}
				j += 6
			}
			sb.WriteRune(c)
			j += 4
		default:
			return "", false
		}
		j += 2
	}
	out := sb.String()
	if !utf8.ValidString(out) {
		return "", false
	}
	r.I = end + 1
	return out, true
}

// hex4 reads the four hex digits of a \u escape at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Int64 reads an integer as encoding/json reads it into an int64: no
// fraction, no exponent, no leading zero, at most 18 digits (so it cannot
// overflow).
func (r *Reader) Int64() (int64, bool) {
	r.WS()
	neg := r.I < len(r.B) && r.B[r.I] == '-'
	if neg {
		r.I++
	}
	start := r.I
	var n int64
	for r.I < len(r.B) && r.B[r.I] >= '0' && r.B[r.I] <= '9' {
		n = n*10 + int64(r.B[r.I]-'0')
		r.I++
	}
	d := r.I - start
	if d == 0 || d > 18 || (d > 1 && r.B[start] == '0') {
		return 0, false
	}
	if r.I < len(r.B) {
		if c := r.B[r.I]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// Int is Int64 into an int, false when it does not fit.
func (r *Reader) Int() (int, bool) {
	n, ok := r.Int64()
	return int(n), ok && int64(int(n)) == n
}

// maxSkipDepth bounds the nesting Skip follows; deeper values are left to
// encoding/json.
const maxSkipDepth = 32

// Skip consumes one value of any kind after checking that it is JSON as
// encoding/json checks it (strings may hold invalid UTF-8, which
// encoding/json replaces; control characters and unknown escapes are
// errors). It reports false on anything else and on nesting deeper than
// maxSkipDepth.
func (r *Reader) Skip() bool { return r.skip(0) }

func (r *Reader) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	switch r.Peek() {
	case '"':
		return r.skipString()
	case '{':
		r.I++
		if r.Byte('}') {
			return true
		}
		for {
			if r.Peek() != '"' || !r.skipString() || !r.Byte(':') || !r.skip(depth+1) {
				return false
			}
			if r.Byte('}') {
				return true
			}
			if !r.Byte(',') {
				return false
			}
		}
	case '[':
		r.I++
		if r.Byte(']') {
			return true
		}
		for {
			if !r.skip(depth + 1) {
				return false
			}
			if r.Byte(']') {
				return true
			}
			if !r.Byte(',') {
				return false
			}
		}
	case 't':
		return r.Lit("true")
	case 'f':
		return r.Lit("false")
	case 'n':
		return r.Lit("null")
	}
	return r.skipNumber()
}

// skipString consumes a string (the next byte is its quote).
func (r *Reader) skipString() bool {
	for j := r.I + 1; j < len(r.B); j++ {
		switch c := r.B[j]; {
		case c == '"':
			r.I = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if j+1 >= len(r.B) {
				return false
			}
			switch r.B[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if _, ok := hex4(r.B, j+2); !ok {
					return false
				}
				j += 5
			default:
				return false
			}
		}
	}
	return false
}

// skipNumber consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *Reader) skipNumber() bool {
	b, i := r.B, r.I
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	r.I = i
	return true
}
