package sandbox

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parsed is what either parser made of a Send SMS body.
type parsed struct {
	Error      string
	Message    string
	Recipients []string
	Sender     string
}

func viaFast(body []byte) (parsed, bool) {
	var f fastSMS
	if !f.parse(body) {
		return parsed{}, false
	}
	p := parsed{Error: f.validate(), Message: string(f.message), Sender: string(f.sender)}
	for _, r := range f.recipients {
		p.Recipients = append(p.Recipients, string(r))
	}
	if p.Error != "" {
		return parsed{Error: p.Error}, true
	}
	return p, true
}

func viaJSON(body []byte) parsed {
	var q smsRequest
	w := httptest.NewRecorder()
	if !decodeBytes(w, body, &q) {
		return parsed{Error: "decode: " + w.Body.String()}
	}
	if msg := q.validate(); msg != "" {
		return parsed{Error: msg}
	}
	return parsed{Message: *q.Message, Recipients: q.Recipients, Sender: q.Sender}
}

// smsBodies are Send SMS bodies of every shape: usual, unusual, invalid.
var smsBodies = []string{
	`{"message":"Hello","recipients":["2348031234567"]}`,
	` { "recipients" : [ "2348031234567" , "+234 803 123 4568" ] , "message" : "Hi ✓" , "sender" : "Shop" } `,
	`{"message":"Hello","recipients":[],"callbackUrl":"https://example.com/dlr"}`,
	`{"message":"","recipients":["1"]}`,
	`{"recipients":["1"]}`,
	`{"message":"Hi"}`,
	`{}`,
	`{"message":"Hello \"you\"","recipients":["2348031234567"]}`,
	`{"message":"Hello","recipients":null}`,
	`{"message":"Hello","recipients":["1"],"extra":true}`,
	`{"message":"a","message":"b","recipients":["1"]}`,
	`{"message":5,"recipients":["1"]}`,
	`{"message":"Hello","recipients":[1]}`,
	`{"message":"Hello","recipients":["1",]}`,
	`{"message":"Hello","recipients":["1"],}`,
	`{"message":"Hello","recipients":["1"]} trailing`,
	`{"message":"Hello`,
	`[]`,
	``,
	"{\"message\":\"bad \xff utf8\",\"recipients\":[\"1\"]}",
	`{"message":"` + strings.Repeat("x", 1601) + `","recipients":["1"]}`,
	`{"message":"` + strings.Repeat("é", 1600) + `","recipients":["1"]}`,
}

// TestFastSMSAgreesWithJSON: whenever the fast parser accepts a body, it
// reads the same fields and words the same validation error as the
// encoding/json path it stands in for.
func TestFastSMSAgreesWithJSON(t *testing.T) {
	t.Parallel()
	fastCount := 0
	for _, body := range smsBodies {
		fast, ok := viaFast([]byte(body))
		if !ok {
			continue
		}
		fastCount++
		if d := cmp.Diff(viaJSON([]byte(body)), fast); d != "" {
			t.Errorf("%q: mismatch (-json +fast):\n%s", body, d)
		}
	}
	if fastCount < 8 {
		t.Errorf("the fast parser took only %d of the bodies; the usual shapes should take it", fastCount)
	}
}

// FuzzSMSBody: the fast parser never panics and never disagrees with
// encoding/json on a body it accepts.
func FuzzSMSBody(f *testing.F) {
	for _, b := range smsBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := viaFast(body)
		if !ok {
			return
		}
		if d := cmp.Diff(viaJSON(body), fast); d != "" {
			t.Fatalf("%q: mismatch (-json +fast):\n%s", body, d)
		}
	})
}

// TestParsePhoneAgreesWithNormalPhone: the byte parser of the hot path and
// the string one used elsewhere accept the same numbers.
func TestParsePhoneAgreesWithNormalPhone(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"2348031234567", "+2348031234567", "+234 (803) 123-4567", "08031234567", "1234567", "12345678",
		"123456789012345", "1234567890123456", "234803123456a", "", "+", "++2348031234567", "0000000000"} {
		p, ok1 := parsePhone([]byte(in))
		s, ok2 := normalPhone(in)
		if ok1 != ok2 || (ok1 && string(appendDigits(nil, p.n, p.len)) != s) {
			t.Errorf("%q: parsePhone = %v %v, normalPhone = %q %v", in, p, ok1, s, ok2)
		}
	}
}

// TestSMSStoreRing: ids map to their messages while kept; old ones are
// forgotten a chunk at a time, and memory stays bounded.
func TestSMSStoreRing(t *testing.T) {
	t.Parallel()
	st := newSMSStore(64)
	var last uint64
	for i := range 300 {
		last = st.add(routeChannel, []byte("Shop"), []byte("text "+strings.Repeat("x", i%7)), int64(i), 1, []phoneNum{{n: 2348030000000 + uint64(i), len: 13}})
	}
	if m, ok := st.get(last); !ok || m.text != "text "+strings.Repeat("x", 299%7) || m.from != "Shop" || m.toString() != "2348030000299" {
		t.Errorf("newest: %+v, %v", m, ok)
	}
	if _, ok := st.get(1); ok {
		t.Error("the first message is still kept after 300 in a store of 64")
	}
	kept := 0
	prev := last + 1
	st.each(func(m *smsRec, read func(uint32, int) string) bool {
		if m.seq != prev-1 {
			t.Fatalf("each: seq %d after %d; want newest first, consecutive", m.seq, prev)
		}
		prev = m.seq
		kept++
		return true
	})
	if kept < 48 || kept > 80 {
		t.Errorf("kept %d messages; want about 64", kept)
	}
	total := 0
	for _, c := range st.chunks {
		if c != nil {
			total += cap(c.recs)
		}
	}
	if total > 128 {
		t.Errorf("%d record slots allocated for a limit of 64", total)
	}
}

// TestSeenSetBounded: duplicates are found within the window, and memory
// is bounded by twice the window.
func TestSeenSetBounded(t *testing.T) {
	t.Parallel()
	s := newSeenSet(64 * 1024)
	for i := range uint64(200_000) {
		if !s.add(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("hash %d reported as a duplicate", i)
		}
	}
	if last := uint64(199_999); s.add(last * 0x9e3779b97f4a7c15) {
		t.Error("the latest hash is not remembered")
	}
	n := 0
	for i := range s.shards {
		n += len(s.shards[i].cur) + len(s.shards[i].prev)
	}
	if n > 2*64*1024+seenShards {
		t.Errorf("%d hashes kept for a window of 65536", n)
	}
}
