package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Memory is the in-memory twin of Redis for tests and single-process runs:
// the same levels, the same arithmetic and the same answers, kept in one
// process. It is safe for concurrent use.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	senders map[string]*memSender
}

var _ Limiter = (*Memory)(nil)

// memSender is one sender's state, the fields of the Redis keys.
type memSender struct {
	tat     time.Time // per-second GCRA theoretical arrival time
	minute  memWindow
	day     memWindow
	blocked time.Time
}

// memWindow is a moving-window cap: counts per bucket index, their total and
// the oldest bucket still counted.
type memWindow struct {
	buckets map[int64]int
	total   int
	oldest  int64
}

// NewMemory returns an in-memory limiter reading the time from now
// (time.Now when nil); tests pass a fake clock.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, senders: map[string]*memSender{}}
}

func (m *Memory) sender(key string) *memSender {
	s := m.senders[key]
	if s == nil {
		s = &memSender{}
		m.senders[key] = s
	}
	return s
}

// Allow takes n permits for key at every level of l, or none and says how
// long until they could be taken. It returns a *CapacityError when n exceeds
// a per-minute or per-day cap.
func (m *Memory) Allow(ctx context.Context, key string, l Limit, n int) (Result, error) {
	return m.Reserve(ctx, key, l, n, 0)
}

// Reserve takes n permits for key that conform within ahead from now, or
// none and says how long until they could be taken. It returns a
// *CapacityError when n exceeds a per-minute or per-day cap.
func (m *Memory) Reserve(ctx context.Context, key string, l Limit, n int, ahead time.Duration) (Result, error) {
	if n <= 0 {
		return Result{}, nil
	}
	if err := checkCapacity(key, l, n); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	s := m.sender(key)

	ok := true
	var retry time.Duration
	deny := func(d time.Duration) {
		ok = false
		retry = max(retry, d)
	}

	if s.blocked.After(now) {
		deny(s.blocked.Sub(now))
	}

	ahead = max(ahead, 0)
	at := now // when the permits conform; the caps count them then
	var newTAT time.Time
	if l.PerSecond > 0 {
		interval := time.Second / time.Duration(l.PerSecond)
		burst := max(l.burst(), n)
		tat := s.tat
		if tat.Before(now) {
			tat = now
		}
		newTAT = tat.Add(time.Duration(n) * interval)
		switch allowAt := newTAT.Add(-time.Duration(burst) * interval); {
		case allowAt.After(now.Add(ahead)):
			deny(allowAt.Sub(now) - ahead)
		case allowAt.After(now):
			at = allowAt
		}
	}

	var mIdx, dIdx int64
	if l.PerMinute > 0 {
		var d time.Duration
		if mIdx, d = s.minute.check(at, l.PerMinute, n, minuteBucket, minuteWindow); d > 0 {
			deny(at.Sub(now) + d - ahead)
		}
	}
	if l.PerDay > 0 {
		var d time.Duration
		if dIdx, d = s.day.check(at, l.PerDay, n, dayBucket, dayWindow); d > 0 {
			deny(at.Sub(now) + d - ahead)
		}
	}

	if !ok {
		return Result{RetryAfter: ceilMicro(retry)}, nil
	}
	if l.PerSecond > 0 {
		s.tat = newTAT
	}
	if l.PerMinute > 0 {
		s.minute.take(mIdx, n)
	}
	if l.PerDay > 0 {
		s.day.take(dIdx, n)
	}
	return Result{Allowed: n, Delay: at.Sub(now).Truncate(time.Microsecond)}, nil
}

// check drops the buckets that left the window and returns the bucket to
// count n in, with 0 when n more fit under limit or how long until they would.
func (w *memWindow) check(now time.Time, limit, n int, width, window time.Duration) (int64, time.Duration) {
	k := int64(window / width)
	idx := now.UnixMicro() / width.Microseconds()
	first := idx - k
	if w.total > 0 && w.oldest < first {
		if first-w.oldest > k {
			*w = memWindow{}
		} else {
			for i := w.oldest; i < first; i++ {
				w.total -= w.buckets[i]
				delete(w.buckets, i)
			}
		}
	}
	if w.oldest < first {
		w.oldest = first
	}
	idx = max(idx, w.oldest) // clock went back: count it longer
	if w.total+n <= limit {
		return idx, 0
	}
	need, freed := w.total+n-limit, 0
	// Reservations may have counted permits in buckets after idx (their
	// time lies ahead): walk up to a window past it.
	for i := w.oldest; i <= idx+k; i++ {
		if freed += w.buckets[i]; freed >= need {
			freeAt := time.UnixMicro((i + k + 1) * width.Microseconds())
			return idx, freeAt.Sub(now)
		}
	}
	return idx, window // unreachable while n <= limit
}

func (w *memWindow) take(idx int64, n int) {
	if w.buckets == nil {
		w.buckets = map[int64]int{}
	}
	w.buckets[idx] += n
	w.total += n
}

// Block stops key for d for every caller; a longer block already in place is
// kept. Allow answers with the remaining block as RetryAfter.
func (m *Memory) Block(ctx context.Context, key string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	until := m.now().Add(d)
	if s := m.sender(key); until.After(s.blocked) {
		s.blocked = until
	}
	return nil
}

// ceilMicro rounds d up to a whole microsecond, at least one, as the Redis
// script does.
func ceilMicro(d time.Duration) time.Duration {
	if r := d % time.Microsecond; r != 0 {
		d += time.Microsecond - r
	}
	return max(d, time.Microsecond)
}
