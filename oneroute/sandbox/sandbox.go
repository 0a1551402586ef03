// Package sandbox is a fake OneRoute API for tests, demos and benchmarks, in
// the manner of net/http/httptest: an http.Handler that implements every
// endpoint of the OneRoute reference with seeded channels and templates,
// decides delivery by the recipient's last digit, keeps the 24-hour session
// window, issues OneOTP keys, logs campaigns, pushes signed webhooks,
// injects faults on demand, and counts every message it accepts so tests can
// prove that nothing was sent twice.
//
//	sb := sandbox.New(sandbox.Options{})
//	defer sb.Close()
//	srv := httptest.NewServer(sb)
//	defer srv.Close()
//	// point a oneroute.Client at srv.URL with any key starting "test_"
//	fmt.Println(sb.Stats().Duplicates)
//
// Delivery by the recipient's last digit, for SMS, WhatsApp and email alike
// (an email address by the last digit of its local part): 0 is undelivered
// (WhatsApp and email: failed), 9 stays pending (WhatsApp and email: sent),
// any other is delivered Options.DLRDelay after the send. A WhatsApp message
// to 2 to 7 is then read Options.ReadDelay later; 1 and 8 are never read
// (nor is any email). WhatsApp and email messages are kept in the logs (GET
// /api/public/logs) with their identifiers, and their statuses pushed as
// messageStatus webhooks.
//
// Besides the API, the sandbox serves its own routes under /sandbox/ (no key
// needed): stats, reset, faults, inbound (simulate a customer's WhatsApp
// message), otp/{key} (read an OTP) and otp/{key}/ussd (simulate a USSD
// verification). docs/oneroute.md describes them.
package sandbox

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
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
	// WidgetID is the seeded live-chat widget of the Embed push endpoint.
	WidgetID = "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0004"
)

// KeyPrefix starts every API key the sandbox accepts.
const KeyPrefix = "test_"

// DefaultWebhookSecret signs webhooks when Options.WebhookSecret is empty.
const DefaultWebhookSecret = "test_webhook_secret" //nolint:gosec // G101: the fake server's documented test secret

// Options configures a sandbox. The zero value is ready to use.
type Options struct {
	// DLRDelay is how long after the send a message reaches its final
	// status (SMS delivered or undelivered, WhatsApp delivered or failed);
	// default 2s. Negative means at once.
	DLRDelay time.Duration
	// ReadDelay is how long after its delivery a WhatsApp message to a
	// number ending in 2 to 7 is read; default 1s. Negative means at once.
	ReadDelay time.Duration
	// CampaignDelay is how long after acceptance a WhatsApp campaign's
	// messages are processed (pending until then); default 200ms. Negative
	// means at once.
	CampaignDelay time.Duration
	// SessionWindow is how long after a customer's message a session
	// message may be sent; default 24h.
	SessionWindow time.Duration
	// Faults are the initial fault settings (none by default).
	Faults Faults
	// Now is the clock for message, session, OTP and rate-limit times;
	// default time.Now. Webhooks are timed on the real clock.
	Now func() time.Time
	// WebhookURL receives the signed events (smsDeliveryReport,
	// messageStatus, campaignCompleted, newMessage, otpVerified); none when
	// empty.
	WebhookURL string
	// WebhookSecret keys the x-oneroute-signature HMAC; default
	// DefaultWebhookSecret.
	WebhookSecret string
	// WebhookClient posts the webhooks; default a client with a 10s
	// timeout.
	WebhookClient *http.Client
	// MaxMessages bounds the SMS kept for delivery reports and message
	// lists, the oldest forgotten first; default 1,000,000 (about 110 MB
	// with texts under 64 bytes).
	MaxMessages int
	// MaxLogs bounds the WhatsApp log rows kept (and the OTPs and
	// conversations), the oldest forgotten first; default 200,000.
	MaxLogs int
	// DuplicateWindow is how many recent messages duplicate detection
	// remembers at least; default 1,000,000.
	DuplicateWindow int
}

// Faults are injected failures. Rates are shares of API requests, 0 to 1.
type Faults struct {
	// LatencyMS is added to every API request.
	LatencyMS int `json:"latency_ms"`
	// ErrorRate is the share of requests answered 500 (nothing accepted).
	ErrorRate float64 `json:"error_rate"`
	// ThrottleRate is the share answered 429 with Retry-After (nothing
	// accepted).
	ThrottleRate float64 `json:"throttle_rate"`
	// RetryAfterS is the Retry-After of injected and rate-limit 429s;
	// default 1.
	RetryAfterS int `json:"retry_after_s"`
	// HangRate is the share of sends that are accepted and then hang: no
	// answer until the client gives up (or HangMS passes, or the sandbox
	// closes).
	HangRate float64 `json:"hang_rate"`
	// HangMS bounds a hang; default 0: until the client goes away, at most
	// 10 minutes.
	HangMS int `json:"hang_ms"`
	// ResetRate is the share of sends that are accepted and then have their
	// connection reset instead of an answer.
	ResetRate float64 `json:"reset_rate"`
	// GatewayRate is the share of sends that are accepted and then answered
	// 502 or 504 (half each), as a gateway in front of the API does when it
	// gives up waiting for an answer the API was about to give.
	GatewayRate float64 `json:"gateway_rate"`
	// RateLimitPerSec makes the server answer 429 above this many API
	// requests per second (0: no limit).
	RateLimitPerSec int `json:"rate_limit_per_sec"`
}

// none reports settings that inject nothing.
func (f *Faults) none() bool {
	return f.LatencyMS == 0 && f.ErrorRate == 0 && f.ThrottleRate == 0 && f.HangRate == 0 && f.ResetRate == 0 && f.GatewayRate == 0 && f.RateLimitPerSec == 0
}

// Stats counts what the sandbox saw. JSON names are a contract with tests
// and scripts.
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
	// Faults counts injected faults (5xx, hangs, resets, gateway errors).
	Faults int64 `json:"faults"`
	// Unauthorized counts requests refused for a bad key.
	Unauthorized int64 `json:"unauthorized"`
	// ByMedium counts accepted messages per medium: sms, whatsapp, email,
	// push.
	ByMedium map[string]int64 `json:"by_medium"`
	// WebhooksSent counts webhooks the receiver answered 2xx.
	WebhooksSent int64 `json:"webhooks_sent"`
	// WebhooksFailed counts webhooks given up after three attempts (or
	// dropped when the queue was full).
	WebhooksFailed int64 `json:"webhooks_failed"`
	// DLRRequests counts calls to Get SMS DLR Message (GET
	// /api/public/dlr/{id}/sms), answered or not.
	DLRRequests int64 `json:"dlr_requests"`
	// SMSListRequests counts calls to Fetch SMS Messages (GET
	// /api/public/channel/{id}/sms), answered or not.
	SMSListRequests int64 `json:"sms_list_requests"`
	// SMSStatus counts the kept SMS by their delivery status now: pending,
	// delivered, undelivered. These are the sandbox's own outcomes, which a
	// sender's delivery reports must match.
	SMSStatus map[string]int64 `json:"sms_status"`
	// LogRequests counts calls to Fetch Logs (GET /api/public/logs),
	// answered or not.
	LogRequests int64 `json:"log_requests"`
}

// Medium indexes for the by_medium counters.
const (
	mediumSMS = iota
	mediumWhatsApp
	mediumEmail
	mediumPush
	numMedia
)

var mediumNames = [numMedia]string{"sms", "whatsapp", "email", "push"}

// Server is the fake OneRoute API. Create it with New; Close it to stop
// webhook delivery and release hung requests.
type Server struct {
	opts Options
	mux  *http.ServeMux
	seed maphash.Seed

	faults atomic.Pointer[Faults]

	requests, sendRequests, accepted, duplicates, throttled, faultCount, unauthorized atomic.Int64
	dlrRequests, listRequests, logRequests                                            atomic.Int64
	byMedium                                                                          [numMedia]atomic.Int64

	st    atomic.Pointer[state] // replaced whole by Reset
	hooks *hookQueue

	rlMu     sync.Mutex
	rlSecond int64
	rlCount  int

	closeOnce sync.Once
	closing   chan struct{}
}

// New returns a sandbox.
func New(o Options) *Server {
	if o.DLRDelay == 0 {
		o.DLRDelay = 2 * time.Second
	}
	if o.ReadDelay == 0 {
		o.ReadDelay = time.Second
	}
	if o.CampaignDelay == 0 {
		o.CampaignDelay = 200 * time.Millisecond
	}
	if o.SessionWindow <= 0 {
		o.SessionWindow = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WebhookSecret == "" {
		o.WebhookSecret = DefaultWebhookSecret
	}
	if o.MaxMessages <= 0 {
		o.MaxMessages = 1_000_000
	}
	if o.MaxLogs <= 0 {
		o.MaxLogs = 200_000
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 1_000_000
	}
	s := &Server{opts: o, seed: maphash.MakeSeed(), closing: make(chan struct{})}
	f := o.Faults
	s.faults.Store(&f)
	s.hooks = newHookQueue(o.WebhookURL, o.WebhookSecret, o.WebhookClient)
	s.resetState()
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

// state is what the sandbox stores; Reset swaps in a fresh one, so a
// request in flight finishes against the state it started with.
type state struct {
	seen *seenSet
	sms  *smsStore
	wa   *waStore
	otp  *otpStore
}

func (s *Server) state() *state { return s.st.Load() }

func (s *Server) resetState() {
	s.st.Store(&state{
		seen: newSeenSet(s.opts.DuplicateWindow),
		sms:  newSMSStore(s.opts.MaxMessages),
		wa:   newWAStore(s.opts.MaxLogs),
		otp:  newOTPStore(s.opts.MaxLogs),
	})
	for _, c := range []*atomic.Int64{&s.requests, &s.sendRequests, &s.accepted, &s.duplicates, &s.throttled, &s.faultCount, &s.unauthorized,
		&s.dlrRequests, &s.listRequests, &s.logRequests} {
		c.Store(0)
	}
	for i := range s.byMedium {
		s.byMedium[i].Store(0)
	}
	s.hooks.reset()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close stops webhook delivery (pending events are dropped) and releases
// hung requests. It is safe to call more than once; the handler keeps
// answering afterwards, without webhooks.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.hooks.close()
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests: s.requests.Load(), SendRequests: s.sendRequests.Load(), Accepted: s.accepted.Load(),
		Duplicates: s.duplicates.Load(), Throttled: s.throttled.Load(), Faults: s.faultCount.Load(),
		Unauthorized: s.unauthorized.Load(), ByMedium: make(map[string]int64, numMedia),
		WebhooksSent: s.hooks.sent.Load(), WebhooksFailed: s.hooks.failed.Load(),
		DLRRequests: s.dlrRequests.Load(), SMSListRequests: s.listRequests.Load(), SMSStatus: s.smsStatusCounts(),
		LogRequests: s.logRequests.Load(),
	}
	for i, name := range mediumNames {
		st.ByMedium[name] = s.byMedium[i].Load()
	}
	return st
}

// Reset clears counters, stored messages, logs, conversations, OTPs and
// pending webhooks; faults stay.
func (s *Server) Reset() { s.resetState() }

// SetFaults replaces the fault settings.
func (s *Server) SetFaults(f Faults) { s.faults.Store(&f) }

// Faults returns the fault settings.
func (s *Server) Faults() Faults { return *s.faults.Load() }

// WebhookSecret returns the secret webhooks are signed with.
func (s *Server) WebhookSecret() string { return s.opts.WebhookSecret }

func (s *Server) routes() {
	api := func(pattern string, send bool, h http.HandlerFunc) {
		s.mux.Handle(pattern, s.apiMiddleware(send, h))
	}
	// counted also counts the route's calls in c, throttled ones included.
	counted := func(c *atomic.Int64, pattern string, h http.HandlerFunc) {
		next := s.apiMiddleware(false, h)
		s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Add(1)
			next.ServeHTTP(w, r)
		}))
	}
	api("GET /api/public/channels/{medium}", false, s.fetchChannels)
	api("GET /api/public/channel/{id}", false, s.fetchChannel)
	api("GET /api/public/channel/{id}/templates", false, s.fetchTemplates)
	api("POST /api/public/channel/{id}/sms", true, s.sendSMS)
	counted(&s.listRequests, "GET /api/public/channel/{id}/sms", s.fetchSMS)
	api("POST /api/public/channel/{id}/email", true, s.sendEmail)
	api("POST /api/public/sms", true, s.sendOTPSMS)
	counted(&s.dlrRequests, "GET /api/public/dlr/{id}/sms", s.getDLR)
	api("POST /api/public/conversation/template", true, s.sendTemplate)
	api("POST /api/public/conversation/text", true, s.sendSession)
	api("POST /api/public/whatsapp/campaign", true, s.sendCampaign)
	counted(&s.logRequests, "GET /api/public/logs", s.fetchLogs)
	api("POST /api/public/embed/push", true, s.sendPush)
	api("GET /api/oneotp/templates", false, s.fetchOTPTemplates)
	api("POST /api/oneotp/send", true, s.sendOTP)
	api("POST /api/oneotp/verify", false, s.verifyOTP)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		fail(w, http.StatusNotFound, "Route not found")
	})

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
	s.mux.HandleFunc("POST /sandbox/inbound", s.inbound)
	s.mux.HandleFunc("GET /sandbox/otp/{key}", s.peekOTP)
	s.mux.HandleFunc("POST /sandbox/otp/{key}/ussd", s.ussdVerify)
}

func (f Faults) validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_rate", f.ErrorRate}, {"throttle_rate", f.ThrottleRate}, {"hang_rate", f.HangRate}, {"reset_rate", f.ResetRate}, {"gateway_rate", f.GatewayRate}} {
		if r.v < 0 || r.v > 1 || math.IsNaN(r.v) {
			return fmt.Errorf("%q must be between 0 and 1", r.name)
		}
	}
	if f.LatencyMS < 0 || f.RetryAfterS < 0 || f.HangMS < 0 || f.RateLimitPerSec < 0 {
		return fmt.Errorf("latency_ms, retry_after_s, hang_ms and rate_limit_per_sec cannot be negative")
	}
	return nil
}

// acceptFault is what a send handler does after accepting: hang or reset.
type acceptFault int

const (
	noFault acceptFault = iota
	hangAfterAccept
	resetAfterAccept
	gatewayAfterAccept
)

// apiMiddleware counts, authenticates and injects faults.
func (s *Server) apiMiddleware(send bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if send {
			s.sendRequests.Add(1)
		}
		// Header names are case-insensitive: apikey and APIKEY arrive as
		// Apikey. Index the map directly; Get would canonicalise (allocate)
		// on every request.
		if v := r.Header["Apikey"]; len(v) == 0 || len(v[0]) < len(KeyPrefix) || v[0][:len(KeyPrefix)] != KeyPrefix {
			s.unauthorized.Add(1)
			writeRaw(w, http.StatusUnauthorized, invalidKeyBody)
			return
		}
		f := s.faults.Load()
		if f.none() {
			h(w, r)
			return
		}
		if f.LatencyMS > 0 {
			t := time.NewTimer(time.Duration(f.LatencyMS) * time.Millisecond)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
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
		af := noFault
		if send {
			if f.HangRate > 0 && mrand.Float64() < f.HangRate {
				af = hangAfterAccept
			} else if f.ResetRate > 0 && mrand.Float64() < f.ResetRate {
				af = resetAfterAccept
			} else if f.GatewayRate > 0 && mrand.Float64() < f.GatewayRate {
				af = gatewayAfterAccept
			}
		}
		if af == noFault {
			h(w, r)
			return
		}
		s.faultCount.Add(1)
		rec := &recorder{header: http.Header{}}
		h(rec, r) // accepted: the messages are recorded
		switch af {
		case resetAfterAccept:
			resetConn(w)
			return
		case gatewayAfterAccept:
			gatewayError(w)
			return
		}
		hang := 10 * time.Minute
		if f.HangMS > 0 {
			hang = time.Duration(f.HangMS) * time.Millisecond
		}
		t := time.NewTimer(hang)
		defer t.Stop()
		select {
		case <-t.C:
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			w.Write(rec.body)
		case <-r.Context().Done():
		case <-s.closing:
			// Give up the connection without an answer, as a hang would.
			resetConn(w)
		}
	})
}

func (s *Server) throttle(w http.ResponseWriter, retryAfter int) {
	s.throttled.Add(1)
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
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

// resetConn closes the client connection abruptly (RST where possible). On
// HTTP/2, where a connection cannot be hijacked, it resets the stream.
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
		tc.SetLinger(0) //nolint:errcheck // injected fault: the reset is best effort
	}
	conn.Close()
}

// recordMessage counts an accepted message and whether it repeats one
// already accepted (same medium, recipient and content).
func (s *Server) recordMessage(st *state, medium int, to, content string) {
	var b [24]byte
	b[0] = byte(medium)
	binary.LittleEndian.PutUint64(b[1:], maphash.String(s.seed, to))
	binary.LittleEndian.PutUint64(b[9:], maphash.String(s.seed, content))
	s.count(st, medium, maphash.Bytes(s.seed, b[:17]))
}

// recordSMS is recordMessage for an SMS, keyed by the number's digits and
// the text's hash.
func (s *Server) recordSMS(st *state, p phoneNum, textHash uint64) {
	var b [24]byte
	b[0] = byte(mediumSMS)
	binary.LittleEndian.PutUint64(b[1:], p.n)
	b[9] = p.len
	binary.LittleEndian.PutUint64(b[10:], textHash)
	s.count(st, mediumSMS, maphash.Bytes(s.seed, b[:18]))
}

func (s *Server) count(st *state, medium int, key uint64) {
	if !st.seen.add(key) {
		s.duplicates.Add(1)
	}
	s.accepted.Add(1)
	s.byMedium[medium].Add(1)
}

// recorder captures an answer that a fault keeps from the client.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	r.body = append(r.body, b...)
	return len(b), nil
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
