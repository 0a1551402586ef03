package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fetchSMSReference is the message list as fetchSMS wrote it through
// encoding/json before it encoded pages by hand: the reference its bytes
// must equal.
func (s *Server) fetchSMSReference(num, size int, status string) []byte {
	now := s.opts.Now()
	skip := (num - 1) * size
	total := 0
	page := make([]smsView, 0, min(size, 100))
	s.state().sms.each(func(m *smsRec, read func(uint32, int) string) bool {
		if m.route != routeChannel {
			return true
		}
		if status != "" {
			if st, _, _ := s.smsStatus(m, now); st != status {
				return true
			}
		}
		if total >= skip && len(page) < size {
			msg := smsMsg{smsRec: *m, text: read(m.textOff, int(m.textLen)), from: read(m.fromOff, int(m.fromLen))}
			page = append(page, s.smsView(&msg, now, true))
		}
		total++
		return true
	})
	b, err := json.Marshal(map[string]any{"data": page, "message": "Messages fetched successfully", "success": true,
		"meta": map[string]int{"page": num, "size": size, "total": total}})
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// The message list's hand-written encoding is json.Marshal's, byte for
// byte: HTML characters, non-ASCII, U+2028, quotes, empty pages, every
// status, with and without sender IDs.
func TestFetchSMSMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 3, 13, 0, 0, 123456789, time.UTC).UnixNano())
	s := New(Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	t.Cleanup(s.Close)
	texts := []string{"Hello Ada, your order 1234 ships today.", "T&C <b>apply</b> \"now\"", "é 😀 \u2028 \u2029 tab\tnl\n", "x"}
	for i := range 30 {
		sender := ""
		if i%3 == 0 {
			sender = `,"sender":"Shop & Co"`
		}
		body := `{"message":` + strconv.Quote(texts[i%len(texts)]) + `,"recipients":["+23480300000` + strconv.Itoa(10+i) + `"]` + sender + `}`
		req := httptest.NewRequest("POST", "/api/public/channel/"+SMSChannelID+"/sms", strings.NewReader(body))
		req.Header.Set("apiKey", "test_x")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("send: %d %s", w.Code, w.Body)
		}
		clock.Add(int64(150 * time.Millisecond))
	}
	for _, q := range []struct {
		num, size int
		status    string
	}{{1, 1000, ""}, {1, 7, ""}, {2, 7, ""}, {9, 7, ""}, {1, 1000, "pending"}, {1, 1000, "delivered"}, {1, 3, "undelivered"}} {
		url := "/api/public/channel/" + SMSChannelID + "/sms?page[size]=" + strconv.Itoa(q.size) + "&page[number]=" + strconv.Itoa(q.num)
		if q.status != "" {
			url += "&status=" + q.status
		}
		req := httptest.NewRequest("GET", url, nil)
		req.Header.Set("apiKey", "test_x")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", url, w.Code, w.Body)
		}
		if diff := cmp.Diff(string(s.fetchSMSReference(q.num, q.size, q.status)), w.Body.String()); diff != "" {
			t.Errorf("%s (-encoding/json +fetchSMS):\n%s", url, diff)
		}
	}
}

// discard is a ResponseWriter that drops the answer.
type discard struct{ h http.Header }

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) Write(b []byte) (int, error) { return len(b), nil }
func (w *discard) WriteHeader(int)             {}

// BenchmarkFetchSMSPage compares a 1,000-message page of the message list
// through the handler (hand-written encoding) with the old encoding alone
// (smsView and json.Marshal, without routing or query parsing).
func BenchmarkFetchSMSPage(b *testing.B) {
	now := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }})
	b.Cleanup(s.Close)
	for i := range 1000 {
		body := `{"message":"Hello Ada, your order 1234 ships today.","recipients":["+2348030` + strconv.Itoa(100000+i) + `"]}`
		req := httptest.NewRequest("POST", "/api/public/channel/"+SMSChannelID+"/sms", strings.NewReader(body))
		req.Header.Set("apiKey", "test_x")
		s.ServeHTTP(httptest.NewRecorder(), req)
	}
	now = now.Add(10 * time.Second)
	b.Run("hand", func(b *testing.B) {
		req := httptest.NewRequest("GET", "/api/public/channel/"+SMSChannelID+"/sms?page[size]=1000&page[number]=1", nil)
		req.Header.Set("apiKey", "test_x")
		w := &discard{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			s.ServeHTTP(w, req)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.fetchSMSReference(1, 1000, "")
		}
	})
}
