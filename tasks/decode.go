package tasks

import (
	"reflect"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/jsonstr"
)

// A worker decodes each send task's batch (up to 50 recipients and their
// content) at least once; through encoding/json that cost about 4% of its
// CPU. decodeBatch reads the payloads Encode writes without reflection.
// Anything else (keys in another case or unknown to this version,
// duplicate keys, numbers with a fraction, invalid UTF-8, ...) is left to
// encoding/json, so the wire format and its reading do not change.

// batchReader reads a Batch payload; each method reports false on what it
// leaves to encoding/json.
type batchReader struct{ jsonstr.Reader }

// object reads an object whose keys field handles, each at most once (the
// bit of key i in a set of up to 64).
func (r *batchReader) object(field func(k []byte) (bit uint64, ok bool)) bool {
	if r.Lit("null") {
		return true // a null object leaves its zero value
	}
	if !r.Byte('{') {
		return false
	}
	if r.Byte('}') {
		return true
	}
	var seen uint64
	for {
		k, ok := r.Key()
		if !ok {
			return false
		}
		bit, ok := field(k)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if r.Byte('}') {
			return true
		}
		if !r.Byte(',') {
			return false
		}
	}
}

// str reads a string, or null (""; encoding/json leaves a zero string).
func (r *batchReader) str(dst *string) bool {
	if r.Peek() == 'n' {
		return r.Lit("null")
	}
	s, ok := r.Text()
	*dst = s
	return ok
}

// int reads an int, or null (0).
func (r *batchReader) int(dst *int) bool {
	if r.Peek() == 'n' {
		return r.Lit("null")
	}
	n, ok := r.Int64()
	*dst = int(n)
	return ok && int64(*dst) == n
}

// int64 reads an int64, or null (0).
func (r *batchReader) int64(dst *int64) bool {
	if r.Peek() == 'n' {
		return r.Lit("null")
	}
	n, ok := r.Int64()
	*dst = n
	return ok
}

// strs reads an array of strings (no null elements), or null (nil).
func (r *batchReader) strs(dst *[]string) bool {
	if r.Lit("null") {
		return true
	}
	if !r.Byte('[') {
		return false
	}
	out := make([]string, 0, 4)
	if !r.Byte(']') {
		for {
			s, ok := r.Text()
			if !ok {
				return false
			}
			out = append(out, s)
			if r.Byte(']') {
				break
			}
			if !r.Byte(',') {
				return false
			}
		}
	}
	*dst = out
	return true
}

// content reads a Content, or null (nil).
func (r *batchReader) content(dst **campaigns.Content) bool {
	if r.Peek() == 'n' {
		return r.Lit("null")
	}
	c := new(campaigns.Content)
	*dst = c
	return r.object(func(k []byte) (uint64, bool) {
		switch string(k) {
		case "t":
			return 1 << 0, r.str(&c.Text)
		case "u":
			return 1 << 1, r.str(&c.URL)
		case "s":
			return 1 << 2, r.str(&c.Subject)
		case "p":
			return 1 << 3, r.strs(&c.Params)
		case "h":
			return 1 << 4, r.str(&c.Header)
		case "b":
			return 1 << 5, r.strs(&c.Buttons)
		}
		return 0, false
	})
}

// items reads the recipients (no null elements), or null (nil).
func (r *batchReader) items(dst *[]campaigns.Item) bool {
	if r.Lit("null") {
		return true
	}
	if !r.Byte('[') {
		return false
	}
	out := make([]campaigns.Item, 0, 64)
	if !r.Byte(']') {
		for {
			if r.Peek() != '{' {
				return false
			}
			out = append(out, campaigns.Item{})
			it := &out[len(out)-1]
			ok := r.object(func(k []byte) (uint64, bool) {
				switch string(k) {
				case "r":
					return 1 << 0, r.int(&it.Row)
				case "to":
					return 1 << 1, r.str(&it.To)
				case "c":
					return 1 << 2, r.content(&it.Content)
				case "tz":
					return 1 << 3, r.str(&it.TZ)
				}
				return 0, false
			})
			if !ok {
				return false
			}
			if r.Byte(']') {
				break
			}
			if !r.Byte(',') {
				return false
			}
		}
	}
	*dst = out
	return true
}

// rate reads a Rate, or null (nil).
func (r *batchReader) rate(dst **campaigns.Rate) bool {
	if r.Peek() == 'n' {
		return r.Lit("null")
	}
	v := new(campaigns.Rate)
	*dst = v
	return r.object(func(k []byte) (uint64, bool) {
		switch string(k) {
		case "per_second":
			return 1 << 0, r.int(&v.PerSecond)
		case "per_minute":
			return 1 << 1, r.int(&v.PerMinute)
		case "per_day":
			return 1 << 2, r.int(&v.PerDay)
		case "burst":
			return 1 << 3, r.int(&v.Burst)
		}
		return 0, false
	})
}

// window reads a Window, or null (nil).
func (r *batchReader) window(dst **campaigns.Window) bool {
	if r.Peek() == 'n' {
		return r.Lit("null")
	}
	w := new(campaigns.Window)
	*dst = w
	return r.object(func(k []byte) (uint64, bool) {
		switch string(k) {
		case "start":
			return 1 << 0, r.str(&w.Start)
		case "end":
			return 1 << 1, r.str(&w.End)
		case "timezone":
			return 1 << 2, r.str(&w.Timezone)
		case "days":
			return 1 << 3, r.strs(&w.Days)
		}
		return 0, false
	})
}

// bool reads true or false, or null (false).
func (r *batchReader) bool(dst *bool) bool {
	switch {
	case r.Lit("true"):
		*dst = true
		return true
	case r.Lit("false"), r.Lit("null"):
		return true
	}
	return false
}

// decodeBatch reads a Batch payload into the zero Batch b, as
// json.Unmarshal would; it reports false (b then holds garbage) for
// anything it leaves to encoding/json.
func decodeBatch(data []byte, b *campaigns.Batch) bool {
	r := &batchReader{jsonstr.Reader{B: data}}
	if r.Peek() != '{' {
		return false
	}
	var ch string
	ok := r.object(func(k []byte) (uint64, bool) {
		switch string(k) {
		case "cid":
			return 1 << 0, r.str(&b.Campaign)
		case "seq":
			return 1 << 1, r.int(&b.Seq)
		case "att":
			return 1 << 2, r.int(&b.Attempt)
		case "rty":
			return 1 << 3, r.int(&b.Retry)
		case "fail":
			return 1 << 4, r.int(&b.Failures)
		case "ch":
			return 1 << 5, r.str(&ch)
		case "chid":
			return 1 << 6, r.str(&b.ChannelID)
		case "wid":
			return 1 << 7, r.str(&b.WidgetID)
		case "from":
			return 1 << 8, r.str(&b.From)
		case "tpl":
			return 1 << 9, r.str(&b.Template)
		case "lang":
			return 1 << 10, r.str(&b.Language)
		case "sh":
			return 1 << 11, r.content(&b.Shared)
		case "items":
			return 1 << 12, r.items(&b.Items)
		case "rate":
			return 1 << 13, r.rate(&b.Rate)
		case "alo":
			return 1 << 14, r.bool(&b.AtLeastOnce)
		case "exp":
			return 1 << 15, r.int64(&b.ExpiresAt)
		case "start":
			return 1 << 16, r.int64(&b.StartAt)
		case "win":
			return 1 << 17, r.window(&b.Window)
		case "media":
			return 1 << 18, r.str(&b.MediaURL)
		case "hdt":
			return 1 << 19, r.str(&b.HeaderType)
		case "rq":
			return 1 << 20, r.int(&b.Request)
		}
		return 0, false
	})
	b.Channel = campaigns.Channel(ch)
	return ok && r.End()
}

// decodeFast decodes the payloads it knows into a zero value of their
// type (json.Unmarshal into a value that is not zero merges, which it
// leaves to encoding/json); it reports whether it did.
func decodeFast(data []byte, v any) bool {
	b, ok := v.(*campaigns.Batch)
	if !ok || b == nil || !reflect.ValueOf(b).Elem().IsZero() {
		return false
	}
	var out campaigns.Batch
	if !decodeBatch(data, &out) {
		return false
	}
	*b = out
	return true
}
