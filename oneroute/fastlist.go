package oneroute

import (
	"bytes"
	"strings"
	"time"

	"github.com/fanoutdev/fanout/internal/jsonstr"
)

// The delivery-report sweep reads pages of up to MaxPageSize messages, and
// through encoding/json their decoding cost about a tenth of a worker's
// CPU. fastSMSList reads the usual page without reflection; anything it
// does not expect goes to parseEnvelope and encoding/json as before.

// textLike is text, without allocating for the usual statuses and reasons
// or for a string equal to prev (the sender ID of a page's last message).
func (s *scanner) textLike(prev string) (string, bool) {
	v, ok := s.Plain()
	if !ok {
		return s.Text() // escapes, or an error
	}
	return interned(v, prev), true
}

// time reads a UTC RFC 3339 time, "2006-01-02T15:04:05Z" with an optional
// fraction of one to nine digits: the strings time.Time.UnmarshalJSON
// reads without an offset, which it gives the same value (time.UTC).
func (s *scanner) time() (time.Time, bool) {
	v, ok := s.Plain()
	if !ok || len(v) < len("2006-01-02T15:04:05Z") || v[len(v)-1] != 'Z' ||
		v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' {
		return time.Time{}, false
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(v[0:4]), num(v[5:7]), num(v[8:10])
	hour, minute, sec := num(v[11:13]), num(v[14:16]), num(v[17:19])
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := v[19 : len(v)-1]; len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return time.Time{}, false
		}
		f := num(frac[1:])
		if f < 0 {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			f *= 10
		}
		nsec = f
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// daysIn is the number of days of a month (1-12) of a year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// SMSMessage fields, as bits of a set: each key may come once.
const (
	smsID = 1 << iota
	smsExternalID
	smsStatus
	smsReason
	smsFrom
	smsTo
	smsMessage
	smsUnits
	smsDelivered
	smsCreated
	smsUpdated
)

// usualTexts are the statuses and reasons of almost every message.
var usualTexts = [...]string{DLRDelivered, DLRPending, DLRUndelivered, "Message delivered to handset", "Message queued", "Rejected by network"}

// interned returns string(v), without allocating for the usual statuses
// and reasons or for a repeat of prev. (Comparisons of string(v) do not
// allocate; a switch on it with a case that is not constant would.)
func interned(v []byte, prev string) string {
	if string(v) == prev {
		return prev
	}
	for _, u := range usualTexts {
		if string(v) == u {
			return u
		}
	}
	return string(v)
}

// The keys each object of a page is read by: a key encoding/json would
// match to one of them in another case is left to encoding/json.
var (
	smsKeys      = []string{"id", "externalId", "status", "reason", "from", "to", "message", "units", "delivered_time", "createdAt", "updatedAt"}
	metaKeys     = []string{"page", "size", "total"}
	envelopeKeys = []string{"data", "body", "message", "success", "meta"}
)

// skipUnknown skips the value of a key that is none of known in any case
// (encoding/json matches keys without regard to case; keys with non-ASCII
// letters, which it may fold to ASCII ones, never get here: Key refuses
// them), whose value is valid JSON.
func (s *scanner) skipUnknown(k []byte, known []string) bool {
	for _, name := range known {
		if strings.EqualFold(string(k), name) {
			return false
		}
	}
	return s.Skip()
}

// smsMessage reads one message object: SMSMessage's keys, each at most
// once, and other keys skipped (see skipUnknown).
func (s *scanner) smsMessage(m *SMSMessage, times *[]time.Time, prev *SMSMessage) bool {
	if !s.Byte('{') {
		return false
	}
	if s.Byte('}') {
		return true
	}
	var seen int
	for {
		k, ok := s.Key()
		if !ok {
			return false
		}
		var f int
		switch string(k) {
		case "id":
			f = smsID
			m.ID, ok = s.Text()
		case "externalId":
			f = smsExternalID
			m.ExternalID, ok = s.Text()
		case "status":
			f = smsStatus
			m.Status, ok = s.textLike(prev.Status)
		case "reason":
			f = smsReason
			m.Reason, ok = s.textLike(prev.Reason)
		case "from":
			f = smsFrom
			m.From, ok = s.textLike(prev.From)
		case "to":
			f = smsTo
			m.To, ok = s.Text()
		case "message":
			f = smsMessage
			m.Message, ok = s.textLike(prev.Message)
		case "units":
			f = smsUnits
			m.Units, ok = s.Int()
		case "delivered_time":
			f = smsDelivered
			if s.Peek() == 'n' {
				ok = s.Lit("null")
				m.DeliveredTime = nil
				break
			}
			var t time.Time
			if t, ok = s.time(); ok {
				if len(*times) == cap(*times) {
					*times = make([]time.Time, 0, 64)
				}
				*times = append(*times, t)
				m.DeliveredTime = &(*times)[len(*times)-1]
			}
		case "createdAt":
			f = smsCreated
			m.CreatedAt, ok = s.time()
		case "updatedAt":
			f = smsUpdated
			m.UpdatedAt, ok = s.time()
		default:
			if !s.skipUnknown(k, smsKeys) {
				return false
			}
			f = 0
		}
		if !ok || seen&f != 0 {
			return false
		}
		seen |= f
		if s.Byte('}') {
			return true
		}
		if !s.Byte(',') {
			return false
		}
	}
}

// smsMessages reads an array of messages, or null (nil, true).
func (s *scanner) smsMessages() ([]SMSMessage, bool) {
	if s.Peek() == 'n' {
		return nil, s.Lit("null")
	}
	if !s.Byte('[') {
		return nil, false
	}
	// Opening braces bound the number of messages: size the slice once.
	n := bytes.Count(s.B[s.I:], []byte{'{'})
	out := make([]SMSMessage, 0, min(n, MaxPageSize))
	if s.Byte(']') {
		return out, true
	}
	var times []time.Time
	var prev SMSMessage
	for {
		out = append(out, SMSMessage{})
		m := &out[len(out)-1]
		if !s.smsMessage(m, &times, &prev) {
			return nil, false
		}
		prev = *m
		if s.Byte(']') {
			return out, true
		}
		if !s.Byte(',') {
			return nil, false
		}
	}
}

// meta reads {page, size, total} with integer values, each at most once
// (other keys skipped, see skipUnknown), or null (nil, true).
func (s *scanner) meta() (*Meta, bool) {
	if s.Peek() == 'n' {
		return nil, s.Lit("null")
	}
	if !s.Byte('{') {
		return nil, false
	}
	m := &Meta{}
	if s.Byte('}') {
		return m, true
	}
	var seen int // bits of the keys read
	for {
		k, ok := s.Key()
		if !ok {
			return nil, false
		}
		var f int
		switch string(k) {
		case "page":
			f = 1
			m.Page, ok = s.Int()
		case "size":
			f = 2
			m.Size, ok = s.Int()
		case "total":
			f = 4
			m.Total, ok = s.Int()
		default:
			if !s.skipUnknown(k, metaKeys) {
				return nil, false
			}
			f = 0
		}
		if !ok || seen&f != 0 {
			return nil, false
		}
		seen |= f
		if s.Byte('}') {
			return m, true
		}
		if !s.Byte(',') {
			return nil, false
		}
	}
}

// fastSMSList reads the usual page of Fetch SMS Messages: an object with
// the keys data and body (arrays of messages, or null), message (a string
// without escapes), success (true) and meta ({page, size, total}, or null),
// each at most once, and other keys skipped (code, errors, or any that
// parseEnvelope ignores; see skipUnknown), whose data or body holds the
// messages; or a bare array of messages. ok is false for anything else:
// parseEnvelope and encoding/json then read it, and word any error.
func fastSMSList(data []byte) (out []SMSMessage, meta *Meta, ok bool) {
	s := &scanner{jsonstr.Reader{B: data}}
	if s.Peek() == '[' {
		out, ok = s.smsMessages()
		s.WS()
		return out, nil, ok && out != nil && s.I == len(s.B)
	}
	if !s.Byte('{') {
		return nil, nil, false
	}
	var dataMsgs, bodyMsgs []SMSMessage
	var seen int // bits of the keys read
	if !s.Byte('}') {
		for {
			k, ok := s.Key()
			if !ok {
				return nil, nil, false
			}
			var f int
			switch string(k) {
			case "data":
				f = 1
				dataMsgs, ok = s.smsMessages()
			case "body":
				f = 2
				bodyMsgs, ok = s.smsMessages()
			case "message":
				f = 4
				_, ok = s.Plain()
			case "success":
				f = 8
				ok = s.Lit("true")
			case "meta":
				f = 16
				meta, ok = s.meta()
			default:
				// code, errors, error or a field parseEnvelope ignores:
				// none changes a successful page.
				if !s.skipUnknown(k, envelopeKeys) {
					return nil, nil, false
				}
				f = 0
			}
			if !ok || seen&f != 0 {
				return nil, nil, false
			}
			seen |= f
			if s.Byte('}') {
				break
			}
			if !s.Byte(',') {
				return nil, nil, false
			}
		}
	}
	s.WS()
	if s.I != len(s.B) {
		return nil, nil, false
	}
	if dataMsgs != nil {
		return dataMsgs, meta, true
	}
	return bodyMsgs, meta, bodyMsgs != nil
}
