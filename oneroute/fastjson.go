package oneroute

import (
	"unicode/utf8"

	"github.com/fanoutdev/fanout/internal/jsonstr"
)

// The hot sends (a personalised SMS is one request per message) encode
// their bodies and read their usual answers without reflection: through
// encoding/json they cost about a third of the client's CPU. Only the usual
// shapes take the fast path; anything else falls back to encoding/json, so
// that odd answers are read (and refused) exactly as before.

// encodeSMS is json.Marshal(r) for a Send SMS body, without reflection.
func encodeSMS(r SMSRequest) []byte {
	n := 32 + len(r.Message) + len(r.Sender) + len(r.CallbackURL)
	for _, p := range r.Recipients {
		n += len(p) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, `{"message":`...)
	b = jsonstr.Append(b, r.Message)
	b = append(b, `,"recipients":`...)
	if r.Recipients == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range r.Recipients {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(b, p)
		}
		b = append(b, ']')
	}
	if r.Sender != "" {
		b = append(b, `,"sender":`...)
		b = jsonstr.Append(b, r.Sender)
	}
	if r.CallbackURL != "" {
		b = append(b, `,"callbackUrl":`...)
		b = jsonstr.Append(b, r.CallbackURL)
	}
	return append(b, '}')
}

// scanner reads the usual answer shapes; every method reports false on
// anything it does not expect, and the caller then uses encoding/json.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c (after white space).
func (s *scanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek is the next byte after white space (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string without escapes or control characters, in valid
// UTF-8: the only strings encoding/json would read as they are.
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	ascii := true
	for j := s.i; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			v := s.b[s.i:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// lit consumes the literal w (true, false, null).
func (s *scanner) lit(w string) bool {
	s.ws()
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

// results reads an array of {"status","response"} objects, or null (nil,
// true).
func (s *scanner) results() ([]Result, bool) {
	if s.peek() == 'n' {
		return nil, s.lit("null")
	}
	if !s.byte('[') {
		return nil, false
	}
	out := make([]Result, 0, 1)
	if s.byte(']') {
		return out, true
	}
	for {
		if !s.byte('{') {
			return nil, false
		}
		var r Result
		var seen [2]bool
		for {
			k, ok := s.str()
			if !ok || !s.byte(':') {
				return nil, false
			}
			v, ok := s.str()
			if !ok {
				return nil, false
			}
			switch string(k) {
			case "status":
				if seen[0] {
					return nil, false
				}
				seen[0], r.Status = true, string(v)
			case "response":
				if seen[1] {
					return nil, false
				}
				seen[1], r.Response = true, string(v)
			default:
				return nil, false
			}
			if s.byte('}') {
				break
			}
			if !s.byte(',') {
				return nil, false
			}
		}
		out = append(out, r)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// fastResults reads the usual answer of a send: an object with only the
// keys data, body (an array of results, or null), message (a string) and
// success (true), each at most once, whose data or body holds the results;
// or a bare array of results. ok is false for anything else, including
// success false or no results at all: parseEnvelope and encoding/json then
// read it, and word the error.
func fastResults(data []byte) (out []Result, ok bool) {
	s := &scanner{b: data}
	if s.peek() == '[' {
		out, ok = s.results()
		s.ws()
		return out, ok && out != nil && s.i == len(s.b)
	}
	if !s.byte('{') {
		return nil, false
	}
	var dataRes, bodyRes []Result
	var seen [4]bool
	if !s.byte('}') {
		for {
			k, ok := s.str()
			if !ok || !s.byte(':') {
				return nil, false
			}
			var f int
			switch string(k) {
			case "data":
				f = 0
				dataRes, ok = s.results()
			case "body":
				f = 1
				bodyRes, ok = s.results()
			case "message":
				f = 2
				_, ok = s.str()
			case "success":
				f = 3
				ok = s.lit("true")
			default:
				return nil, false
			}
			if !ok || seen[f] {
				return nil, false
			}
			seen[f] = true
			if s.byte('}') {
				break
			}
			if !s.byte(',') {
				return nil, false
			}
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, false
	}
	if dataRes != nil {
		return dataRes, true
	}
	return bodyRes, bodyRes != nil
}
