package oneroute

import (
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

// scanner reads the usual answer shapes (jsonstr.Reader's methods and the
// answer-specific ones below); every method reports false on anything it
// does not expect, and the caller then uses encoding/json.
type scanner struct{ jsonstr.Reader }

// results reads an array of {"status","response"} objects, or null (nil,
// true).
func (s *scanner) results() ([]Result, bool) {
	if s.Peek() == 'n' {
		return nil, s.Lit("null")
	}
	if !s.Byte('[') {
		return nil, false
	}
	out := make([]Result, 0, 1)
	if s.Byte(']') {
		return out, true
	}
	for {
		if !s.Byte('{') {
			return nil, false
		}
		var r Result
		var seen [2]bool
		for {
			k, ok := s.Key()
			if !ok {
				return nil, false
			}
			v, ok := s.Plain()
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
			if s.Byte('}') {
				break
			}
			if !s.Byte(',') {
				return nil, false
			}
		}
		out = append(out, r)
		if s.Byte(']') {
			return out, true
		}
		if !s.Byte(',') {
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
	s := &scanner{jsonstr.Reader{B: data}}
	if s.Peek() == '[' {
		out, ok = s.results()
		s.WS()
		return out, ok && out != nil && s.I == len(s.B)
	}
	if !s.Byte('{') {
		return nil, false
	}
	var dataRes, bodyRes []Result
	var seen [4]bool
	if !s.Byte('}') {
		for {
			k, ok := s.Key()
			if !ok {
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
				_, ok = s.Plain()
			case "success":
				f = 3
				ok = s.Lit("true")
			default:
				return nil, false
			}
			if !ok || seen[f] {
				return nil, false
			}
			seen[f] = true
			if s.Byte('}') {
				break
			}
			if !s.Byte(',') {
				return nil, false
			}
		}
	}
	s.WS()
	if s.I != len(s.B) {
		return nil, false
	}
	if dataRes != nil {
		return dataRes, true
	}
	return bodyRes, bodyRes != nil
}
