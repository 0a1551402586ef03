package sandbox

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// signatureHeader carries the webhook signature, as OneRoute sends it.
const signatureHeader = "x-oneroute-signature"

// maxPendingHooks bounds the queue; events beyond it are dropped and
// counted as failed.
const maxPendingHooks = 1 << 20

// hookAttempts is how many times a webhook is tried before it is given up.
const hookAttempts = 3

// hookQueue delivers signed webhooks in due order from one goroutine, which
// runs only while events are pending. Close stops it.
type hookQueue struct {
	url, secret string
	client      *http.Client

	mu      sync.Mutex
	pending hookHeap
	seq     uint64
	running bool
	closed  bool
	wake    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup

	ctx    context.Context // cancelled by close, aborting a delivery
	cancel context.CancelFunc

	sent, failed atomic.Int64
}

type hookEvent struct {
	due     time.Time
	seq     uint64 // keeps events due at the same time in order
	payload func() any
	body    []byte // encoded on the first attempt
	attempt int
}

type hookHeap []*hookEvent

func (h hookHeap) Len() int { return len(h) }
func (h hookHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h hookHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *hookHeap) Push(x any)   { *h = append(*h, x.(*hookEvent)) }
func (h *hookHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

func newHookQueue(url, secret string, client *http.Client) *hookQueue {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &hookQueue{url: url, secret: secret, client: client, wake: make(chan struct{}, 1), stop: make(chan struct{}), ctx: ctx, cancel: cancel}
}

// enabled reports whether webhooks are configured (and not closed).
func (q *hookQueue) enabled() bool {
	if q.url == "" {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.closed
}

// schedule queues an event whose payload is built when it is due.
func (q *hookQueue) schedule(after time.Duration, payload func() any) {
	q.push(&hookEvent{due: time.Now().Add(after), payload: payload})
}

func (q *hookQueue) push(e *hookEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.url == "" {
		return
	}
	if len(q.pending) >= maxPendingHooks {
		q.failed.Add(1)
		return
	}
	q.seq++
	e.seq = q.seq
	heap.Push(&q.pending, e)
	if !q.running {
		q.running = true
		q.wg.Add(1)
		go q.run()
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run delivers events until none is pending, then exits.
func (q *hookQueue) run() {
	defer q.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if q.closed || len(q.pending) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		next := q.pending[0]
		wait := time.Until(next.due)
		if wait <= 0 {
			heap.Pop(&q.pending)
			q.mu.Unlock()
			q.deliver(next)
			continue
		}
		q.mu.Unlock()
		timer.Reset(wait) // since Go 1.23 a reset timer delivers no stale tick
		select {
		case <-timer.C:
		case <-q.wake:
		case <-q.stop:
			return
		}
	}
}

// deliver posts one event, signed, and requeues it with backoff on failure.
func (q *hookQueue) deliver(e *hookEvent) {
	if e.body == nil {
		b, err := json.Marshal(e.payload())
		if err != nil {
			q.failed.Add(1)
			return
		}
		e.body, e.payload = b, nil
	}
	req, err := http.NewRequestWithContext(q.ctx, http.MethodPost, q.url, bytes.NewReader(e.body))
	if err != nil {
		q.failed.Add(1)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "OneRoute-Sandbox-Webhook/1")
	req.Header.Set(signatureHeader, sign(q.secret, e.body))
	resp, err := q.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			q.sent.Add(1)
			return
		}
	}
	e.attempt++
	if e.attempt >= hookAttempts {
		q.failed.Add(1)
		return
	}
	e.due = time.Now().Add(time.Duration(e.attempt) * 500 * time.Millisecond)
	q.push(e)
}

// sign is the hex HMAC-SHA512 of body.
func sign(secret string, body []byte) string {
	m := hmac.New(sha512.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// reset drops pending events and clears the counters.
func (q *hookQueue) reset() {
	q.mu.Lock()
	q.pending = nil
	q.mu.Unlock()
	q.sent.Store(0)
	q.failed.Store(0)
}

// close drops pending events, stops the goroutine and waits for it.
func (q *hookQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		q.pending = nil
		close(q.stop)
		q.cancel()
	}
	q.mu.Unlock()
	q.wg.Wait()
}
