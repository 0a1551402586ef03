package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
)

// Path is the route OneRoute posts its events to.
const Path = "/webhooks/oneroute"

// DefaultMaxBody caps a webhook's body. A delivery report or a status is
// under 1 KiB; a campaignCompleted event lists its campaign's messages
// (about 120 bytes each), and fanout's WhatsApp campaigns are batches of at
// most a few hundred.
const DefaultMaxBody = 256 << 10

// Recorder durably records received events, many in one call;
// *storage.Store implements it.
type Recorder interface {
	RecordHooks(ctx context.Context, evs []storage.HookEvent) ([]bool, error)
}

var _ Recorder = (*storage.Store)(nil)

// ReceiverOptions configures a Receiver.
type ReceiverOptions struct {
	// Secret is the account's OneRoute secret key (ONEROUTE_WEBHOOK_SECRET).
	// Required: with none, every event is refused 401.
	Secret string
	// MaxBody caps a body; larger ones are refused 413. Default
	// DefaultMaxBody.
	MaxBody int64
	// Committers is how many goroutines write events to Redis; each writes
	// the events waiting at that moment in one script. Default 4.
	Committers int
	// MaxGroup caps the events one script writes. Default 256.
	MaxGroup int
	// Timeout bounds the wait for Redis; past it the answer is 503 and
	// OneRoute retries. Default 5s.
	Timeout time.Duration
	// Logger logs refusals and Redis errors; default none.
	Logger zerolog.Logger
}

// Receiver is the http.Handler of POST /webhooks/oneroute. For each event it
// checks, in order, that the body is at most MaxBody bytes (413), that its
// x-oneroute-signature is the HMAC-SHA512 of the raw body with the secret,
// compared in constant time (401), and that it parses as a OneRoute event
// (400). It then records the event in Redis with its dedupe key in one
// script, and answers 200 only once that script returned: a new event is
// in the stream the Applier reads, a replay (the same body within
// storage.HookDedupeTTL) is acknowledged without any write. A Redis failure
// is 503, so OneRoute retries. Nothing is written for a refused event.
//
// The handler makes no Redis round trip of its own: concurrent requests
// wait for one of Committers goroutines, which writes all the events
// waiting at that moment in one script (group commit). Start the
// committers with Start, stop them with Stop.
type Receiver struct {
	rec  Recorder
	opts ReceiverOptions

	queue chan *pending

	mu      sync.Mutex
	started bool
	stopped bool
	stop    chan struct{}
	closed  chan struct{} // closed once the committers are gone
	wg      sync.WaitGroup
}

// pending is a request waiting for its event to be recorded.
type pending struct {
	ev   storage.HookEvent
	done chan result
}

type result struct {
	fresh bool
	err   error
}

// NewReceiver returns a Receiver recording into rec.
func NewReceiver(rec Recorder, o ReceiverOptions) *Receiver {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Committers <= 0 {
		o.Committers = 4
	}
	if o.MaxGroup <= 0 {
		o.MaxGroup = 256
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	return &Receiver{rec: rec, opts: o, queue: make(chan *pending, 4*o.MaxGroup), stop: make(chan struct{}), closed: make(chan struct{})}
}

// Start starts the committers. Safe to call more than once.
func (r *Receiver) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return
	}
	r.started = true
	for range r.opts.Committers {
		r.wg.Add(1)
		go r.commit()
	}
}

// Stop stops the committers once the events they hold are written; later
// requests are answered 503. Safe twice and before Start. Stop the HTTP
// server first, so no request is left waiting.
func (r *Receiver) Stop() {
	r.mu.Lock()
	first := !r.stopped
	if first {
		r.stopped = true
		close(r.stop)
	}
	r.mu.Unlock()
	r.wg.Wait()
	if first {
		close(r.closed) // requests still queued are answered 503
	}
}

// commit writes the waiting events, a group at a time, until Stop.
func (r *Receiver) commit() {
	defer r.wg.Done()
	group := make([]*pending, 0, r.opts.MaxGroup)
	evs := make([]storage.HookEvent, 0, r.opts.MaxGroup)
	for {
		group, evs = group[:0], evs[:0]
		select {
		case p := <-r.queue:
			group = append(group, p)
		case <-r.stop:
			// Write what was queued before the stop, then go.
			select {
			case p := <-r.queue:
				group = append(group, p)
			default:
				return
			}
		}
	fill:
		for len(group) < r.opts.MaxGroup {
			select {
			case p := <-r.queue:
				group = append(group, p)
			default:
				break fill
			}
		}
		for _, p := range group {
			evs = append(evs, p.ev)
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		fresh, err := r.rec.RecordHooks(ctx, evs)
		cancel()
		if err != nil {
			r.opts.Logger.Error().Err(err).Int("events", len(group)).Msg("webhook events not recorded")
		}
		for i, p := range group {
			res := result{err: err}
			if err == nil {
				res.fresh = fresh[i]
			}
			p.done <- res // buffered: never blocks
		}
	}
}

// ServeHTTP implements http.Handler.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if req.ContentLength > r.opts.MaxBody {
		reply(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.opts.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			reply(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		reply(w, http.StatusBadRequest, "cannot read body")
		return
	}
	if err := oneroute.VerifySignature(r.opts.Secret, body, req.Header.Get(oneroute.SignatureHeader)); err != nil {
		r.opts.Logger.Warn().Err(err).Str("remote", req.RemoteAddr).Msg("webhook refused: signature")
		reply(w, http.StatusUnauthorized, "invalid signature")
		return
	}
	if _, err := oneroute.ParseEvent(body); err != nil {
		r.opts.Logger.Warn().Err(err).Msg("webhook refused: not an event")
		reply(w, http.StatusBadRequest, "malformed event")
		return
	}
	p := &pending{ev: storage.HookEvent{Digest: oneroute.ReplayKey(body), Body: body}, done: make(chan result, 1)}
	timer := time.NewTimer(r.opts.Timeout)
	defer timer.Stop()
	select {
	case r.queue <- p:
	case <-r.stop:
		reply(w, http.StatusServiceUnavailable, "shutting down")
		return
	case <-timer.C:
		reply(w, http.StatusServiceUnavailable, "busy, try again")
		return
	case <-req.Context().Done():
		return
	}
	// Once queued, the event may be written: wait for the answer even if
	// the client goes away, so that its status is known.
	var res result
	select {
	case res = <-p.done:
	case <-r.closed:
		select {
		case res = <-p.done:
		default:
			res.err = errors.New("receiver stopped")
		}
	}
	switch {
	case res.err != nil:
		reply(w, http.StatusServiceUnavailable, "not recorded, try again")
	case !res.fresh:
		reply(w, http.StatusOK, "duplicate ignored")
	default:
		reply(w, http.StatusOK, "ok")
	}
}

func reply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
	}{status == http.StatusOK, msg})
	w.Write(b)
}
