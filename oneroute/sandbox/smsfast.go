package sandbox

import (
	"sync"
	"unicode/utf8"
)

// phoneNum is a recipient's digits as a number, with their count (for
// leading zeros).
type phoneNum struct {
	n   uint64
	len uint8
}

// parsePhone reads a recipient as normalPhone does, without allocating:
// an optional leading '+', formatting characters skipped, 8 to 15 digits.
func parsePhone(p []byte) (phoneNum, bool) {
	if len(p) > 0 && p[0] == '+' {
		p = p[1:]
	}
	var out phoneNum
	for _, c := range p {
		switch {
		case c >= '0' && c <= '9':
			if out.len == 15 {
				return out, false
			}
			out.n = out.n*10 + uint64(c-'0')
			out.len++
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return out, false
		}
	}
	return out, out.len >= 8
}

// fastSMS parses the usual Send SMS body without reflection or copies: an
// object with only the keys message, recipients, sender and callbackUrl,
// whose strings have no escapes and are valid UTF-8. Anything else makes
// parse return false, and the body takes the encoding/json path, which
// also words the validation errors. The slices point into the body.
type fastSMS struct {
	message, sender          []byte
	hasMessage, hasRecipient bool
	recipients               [][]byte
}

var fastPool = sync.Pool{New: func() any { return &fastSMS{recipients: make([][]byte, 0, 16)} }}

func (f *fastSMS) reset() {
	f.message, f.sender, f.hasMessage, f.hasRecipient = nil, nil, false, false
	clear(f.recipients)
	f.recipients = f.recipients[:0]
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// str reads a string without escapes at b[i] and returns it and the index
// after it.
func str(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

func (f *fastSMS) parse(b []byte) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	var seen [4]bool
	for {
		key, j, ok := str(b, i)
		if !ok {
			return false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		var v []byte
		switch string(key) {
		case "message":
			if seen[0] {
				return false
			}
			seen[0] = true
			if v, i, ok = str(b, i); !ok || !utf8.Valid(v) {
				return false
			}
			f.message, f.hasMessage = v, true
		case "recipients":
			if seen[1] {
				return false
			}
			seen[1] = true
			if i >= len(b) || b[i] != '[' {
				return false
			}
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
			} else {
				for {
					if v, i, ok = str(b, i); !ok || !utf8.Valid(v) {
						return false
					}
					f.recipients = append(f.recipients, v)
					i = skipWS(b, i)
					if i < len(b) && b[i] == ',' {
						i = skipWS(b, i+1)
						continue
					}
					if i < len(b) && b[i] == ']' {
						i++
						break
					}
					return false
				}
			}
			f.hasRecipient = true
		case "sender", "callbackUrl":
			k := 2
			if key[0] == 'c' {
				k = 3
			}
			if seen[k] {
				return false
			}
			seen[k] = true
			if v, i, ok = str(b, i); !ok || !utf8.Valid(v) {
				return false
			}
			if k == 2 {
				f.sender = v
			}
		default:
			return false
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return skipWS(b, i+1) == len(b)
		}
		return false
	}
}

// validate returns the Joi-style error of a parsed body, or "", exactly as
// smsRequest.validate words it.
func (f *fastSMS) validate() string {
	switch {
	case !f.hasMessage:
		return required("message")
	case len(f.message) == 0:
		return notEmpty("message")
	case !f.hasRecipient:
		return required("recipients")
	case len(f.recipients) == 0:
		return `"recipients" must contain at least 1 items`
	case len(f.recipients) > 1000:
		return `"recipients" must contain less than or equal to 1000 items`
	case len(f.message) > 1600 && utf8.RuneCount(f.message) > 1600:
		return `"message" length must be less than or equal to 1600 characters long`
	}
	return ""
}
