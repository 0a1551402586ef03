// Package sandbox is a fake OneRoute API for tests, demos and benchmarks, in
// the manner of net/http/httptest: an http.Handler that implements the
// endpoints of the OneRoute reference with seeded channels and templates,
// decides SMS delivery by the recipient's last digit, injects faults on
// demand, and counts every message it accepts so tests can prove that
// nothing was sent twice.
//
//	sb := sandbox.New(sandbox.Options{})
//	srv := httptest.NewServer(sb)
//	// point a oneroute.Client at srv.URL with any key starting "test_"
//	fmt.Println(sb.Stats().Duplicates)
//
// Delivery reports: a number ending in 0 is undelivered, one ending in 9 stays
// pending forever, any other is delivered Options.DLRDelay after the send.
package sandbox

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Seeded channel ids and numbers; examples and docs refer to them.
const (
	WhatsAppChannelID = "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0001"
	WhatsAppNumber    = "2348000000001"
	SMSChannelID      = "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002"
	SMSSenderID       = "OneRoute"
	EmailChannelID    = "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0003"
	EmailAddress      = "support@mail.oneroute.io"
)

// KeyPrefix starts every API key the sandbox accepts.
const KeyPrefix = "test_"

// Options configures a sandbox.
type Options struct {
	// DLRDelay is how long after the send an SMS becomes delivered or
	// undelivered; default 2s. Negative means at once.
	DLRDelay time.Duration
	// Faults are the initial fault settings (none by default).
	Faults Faults
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Faults are injected failures. Rates are shares of API requests, 0 to 1.
type Faults struct {
	// LatencyMS is added to every API request.
	LatencyMS int `json:"latency_ms"`
	// ErrorRate is the share of requests answered 500 (nothing accepted).
	ErrorRate float64 `json:"error_rate"`
	// ThrottleRate is the share answered 429 with Retry-After (nothing accepted).
	ThrottleRate float64 `json:"throttle_rate"`
	// RetryAfterS is the Retry-After of injected and rate-limit 429s; default 1.
	RetryAfterS int `json:"retry_after_s"`
	// HangRate is the share of sends that are accepted and then hang for
	// HangMS (past any sane client timeout) before answering.
	HangRate float64 `json:"hang_rate"`
	// HangMS is how long a hung request hangs; default 30000.
	HangMS int `json:"hang_ms"`
	// ResetRate is the share of sends that are accepted and then have their
	// connection reset instead of an answer.
	ResetRate float64 `json:"reset_rate"`
	// RateLimitPerSec makes the server answer 429 above this many API
	// requests per second (0: no limit).
	RateLimitPerSec int `json:"rate_limit_per_sec"`
}

// Stats counts what the sandbox saw. JSON names are a contract with tests.
type Stats struct {
	// Requests counts every API call (not /sandbox routes).
	Requests int64 `json:"requests"`
	// SendRequests counts calls to endpoints that send messages.
	SendRequests int64 `json:"send_requests"`
	// Accepted counts messages accepted.
	Accepted int64 `json:"accepted"`
	// Duplicates counts messages accepted again for a recipient and content
	// already accepted.
	Duplicates int64 `json:"duplicates"`
	// Throttled counts 429 answers.
	Throttled int64 `json:"throttled"`
	// Faults counts injected faults (5xx, hangs, resets).
	Faults int64 `json:"faults"`
	// Unauthorized counts requests refused for a bad key.
	Unauthorized int64 `json:"unauthorized"`
	// ByMedium counts accepted messages per medium (sms, whatsapp, email).
	ByMedium map[string]int64 `json:"by_medium"`
}

// Server is the fake OneRoute API. Create it with New.
type Server struct {
	opts Options
	mux  *http.ServeMux
	seed maphash.Seed

	faultsMu sync.RWMutex
	faults   Faults

	requests, sendRequests, accepted, duplicates, throttled, faultCount, unauthorized atomic.Int64
	sms, whatsapp, email                                                              atomic.Int64

	seenMu sync.Mutex
	seen   map[uint64]struct{}

	msgMu  sync.RWMutex
	msgs   map[string]*smsRecord
	byChan map[string][]*smsRecord

	idSeq atomic.Uint64

	rlMu     sync.Mutex
	rlSecond int64
	rlCount  int
}

type smsRecord struct {
	ID, To, From, Message, Channel string
	Created                        time.Time
	Units                          int
}

// New returns a sandbox.
func New(o Options) *Server {
	if o.DLRDelay == 0 {
		o.DLRDelay = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{opts: o, seed: maphash.MakeSeed(), faults: o.Faults}
	s.resetState()
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

func (s *Server) resetState() {
	s.seenMu.Lock()
	s.seen = map[uint64]struct{}{}
	s.seenMu.Unlock()
	s.msgMu.Lock()
	s.msgs = map[string]*smsRecord{}
	s.byChan = map[string][]*smsRecord{}
	s.msgMu.Unlock()
	for _, c := range []*atomic.Int64{&s.requests, &s.sendRequests, &s.accepted, &s.duplicates, &s.throttled, &s.faultCount, &s.unauthorized, &s.sms, &s.whatsapp, &s.email} {
		c.Store(0)
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests: s.requests.Load(), SendRequests: s.sendRequests.Load(), Accepted: s.accepted.Load(),
		Duplicates: s.duplicates.Load(), Throttled: s.throttled.Load(), Faults: s.faultCount.Load(),
		Unauthorized: s.unauthorized.Load(),
		ByMedium:     map[string]int64{"sms": s.sms.Load(), "whatsapp": s.whatsapp.Load(), "email": s.email.Load()},
	}
}

// Reset clears counters and stored messages; faults stay.
func (s *Server) Reset() { s.resetState() }

// SetFaults replaces the fault settings.
func (s *Server) SetFaults(f Faults) {
	s.faultsMu.Lock()
	s.faults = f
	s.faultsMu.Unlock()
}

// Faults returns the fault settings.
func (s *Server) Faults() Faults {
	s.faultsMu.RLock()
	defer s.faultsMu.RUnlock()
	return s.faults
}

func (s *Server) routes() {
	api := func(pattern string, send bool, h http.HandlerFunc) {
		s.mux.Handle(pattern, s.apiMiddleware(send, h))
	}
	api("GET /api/public/channels/{medium}", false, s.fetchChannels)
	api("GET /api/public/channel/{id}", false, s.fetchChannel)
	api("POST /api/public/channel/{id}/sms", true, s.sendSMS)
	api("GET /api/public/channel/{id}/sms", false, s.fetchSMS)
	api("POST /api/public/channel/{id}/email", true, s.sendEmail)
	api("POST /api/public/conversation/template", true, s.sendTemplate)
	api("GET /api/public/dlr/{id}/sms", false, s.getDLR)

	s.mux.HandleFunc("GET /sandbox/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Stats()) })
	s.mux.HandleFunc("POST /sandbox/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		writeJSON(w, 200, map[string]any{"success": true, "message": "Sandbox reset"})
	})
	s.mux.HandleFunc("GET /sandbox/faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Faults()) })
	s.mux.HandleFunc("POST /sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			fail(w, 400, "invalid faults: "+err.Error())
			return
		}
		if err := f.validate(); err != nil {
			fail(w, 400, err.Error())
			return
		}
		s.SetFaults(f)
		writeJSON(w, 200, f)
	})
}

func (f Faults) validate() error {
	for name, v := range map[string]float64{"error_rate": f.ErrorRate, "throttle_rate": f.ThrottleRate, "hang_rate": f.HangRate, "reset_rate": f.ResetRate} {
		if v < 0 || v > 1 || math.IsNaN(v) {
			return fmt.Errorf("%q must be between 0 and 1", name)
		}
	}
	if f.LatencyMS < 0 || f.RetryAfterS < 0 || f.HangMS < 0 || f.RateLimitPerSec < 0 {
		return fmt.Errorf("latency_ms, retry_after_s, hang_ms and rate_limit_per_sec cannot be negative")
	}
	return nil
}

type ctxKey struct{}

// acceptFault is what a send handler does after accepting: hang or reset.
type acceptFault int

const (
	noFault acceptFault = iota
	hangAfterAccept
	resetAfterAccept
)

// apiMiddleware counts, authenticates and injects faults.
func (s *Server) apiMiddleware(send bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if send {
			s.sendRequests.Add(1)
		}
		key := r.Header.Get("apiKey") // header names are case-insensitive: apikey works too
		if !strings.HasPrefix(key, KeyPrefix) {
			s.unauthorized.Add(1)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"data": nil, "message": "Invalid API Key", "success": false})
			return
		}
		f := s.Faults()
		if f.LatencyMS > 0 {
			select {
			case <-time.After(time.Duration(f.LatencyMS) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		retryAfter := f.RetryAfterS
		if retryAfter <= 0 {
			retryAfter = 1
		}
		if f.RateLimitPerSec > 0 && !s.allow(f.RateLimitPerSec) {
			s.throttle(w, retryAfter)
			return
		}
		if f.ThrottleRate > 0 && mrand.Float64() < f.ThrottleRate {
			s.throttle(w, retryAfter)
			return
		}
		if f.ErrorRate > 0 && mrand.Float64() < f.ErrorRate {
			s.faultCount.Add(1)
			fail(w, http.StatusInternalServerError, "Internal server error")
			return
		}
		if send {
			af := noFault
			if f.HangRate > 0 && mrand.Float64() < f.HangRate {
				af = hangAfterAccept
			} else if f.ResetRate > 0 && mrand.Float64() < f.ResetRate {
				af = resetAfterAccept
			}
			if af != noFault {
				s.faultCount.Add(1)
				rec := &recorder{header: http.Header{}}
				h(rec, r) // accepted: the messages are recorded
				if af == hangAfterAccept {
					hang := f.HangMS
					if hang <= 0 {
						hang = 30000
					}
					select {
					case <-time.After(time.Duration(hang) * time.Millisecond):
						w.WriteHeader(rec.status)
						io.WriteString(w, rec.body.String())
					case <-r.Context().Done():
					}
					return
				}
				resetConn(w)
				return
			}
		}
		h(w, r)
	})
}

func (s *Server) throttle(w http.ResponseWriter, retryAfter int) {
	s.throttled.Add(1)
	w.Header().Set("Retry-After", fmt.Sprint(retryAfter))
	fail(w, http.StatusTooManyRequests, "Too many requests")
}

// allow is a fixed one-second window limiter for the server-side rate limit.
func (s *Server) allow(limit int) bool {
	now := s.opts.Now().Unix()
	s.rlMu.Lock()
	defer s.rlMu.Unlock()
	if now != s.rlSecond {
		s.rlSecond, s.rlCount = now, 0
	}
	if s.rlCount >= limit {
		return false
	}
	s.rlCount++
	return true
}

// resetConn closes the client connection abruptly (RST where possible).
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// recordMessage counts an accepted message and whether it repeats one.
func (s *Server) recordMessage(medium, to, content string) {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(medium)
	h.WriteByte(0)
	h.WriteString(to)
	h.WriteByte(0)
	h.WriteString(content)
	sum := h.Sum64()
	s.seenMu.Lock()
	_, dup := s.seen[sum]
	if !dup {
		s.seen[sum] = struct{}{}
	}
	s.seenMu.Unlock()
	if dup {
		s.duplicates.Add(1)
	}
	s.accepted.Add(1)
	switch medium {
	case "sms":
		s.sms.Add(1)
	case "whatsapp":
		s.whatsapp.Add(1)
	case "email":
		s.email.Add(1)
	}
}

func (s *Server) smsID() string {
	// 22 digits: a fixed prefix and a counter, like OneRoute's numeric ids.
	return fmt.Sprintf("47%020d", s.idSeq.Add(1))
}

const urlSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func waID() string {
	var b [21]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = urlSafe[int(b[i])%len(urlSafe)]
	}
	return "gBGHI0k" + string(b[:])
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.WriteString(string(b))
}
func (r *recorder) WriteHeader(code int) { r.status = code }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"data": nil, "message": msg, "success": false})
}

func ok(w http.ResponseWriter, msg string, data any) {
	writeJSON(w, 200, map[string]any{"data": data, "message": msg, "success": true})
}
