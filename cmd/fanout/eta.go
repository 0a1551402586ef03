package main

import (
	"time"

	"github.com/fanoutdev/fanout/storage"
)

// rateWindow estimates the recent rate of a counter that only grows (sends
// settled, reports read, recipients enqueued) from observations a watcher
// takes at its own pace. Time spent paused counts for nothing: neither the
// interval nor what the counter gained in it (sends already on the wire
// when the pause came) enter the rate. The rate is over the last span of
// active time, so it follows a change of pace within span instead of
// averaging since the start. Not safe for concurrent use.
type rateWindow struct {
	span     time.Duration
	samples  []rateSample
	active   time.Duration // active (unpaused) time observed so far
	excluded int64         // what the counter gained while paused
	last     time.Time     // the previous observation's wall time
	lastN    int64
}

// rateSample is the counter, less what it gained while paused, at an
// instant of active time.
type rateSample struct {
	at time.Duration
	n  int64
}

// minRateSpan is the least active time a rate is computed over: less gives
// numbers that jump with every batch.
const minRateSpan = time.Second

// observe records the counter n at now. paused says the campaign is paused:
// the interval since the previous observation is then left out.
func (w *rateWindow) observe(now time.Time, n int64, paused bool) {
	if w.last.IsZero() {
		w.last, w.lastN = now, n
		w.samples = append(w.samples, rateSample{0, n})
		return
	}
	gain := n - w.lastN
	w.lastN = n
	if paused {
		w.excluded += gain
		w.last = now
		return
	}
	if d := now.Sub(w.last); d > 0 {
		w.active += d
	}
	w.last = now
	w.samples = append(w.samples, rateSample{w.active, n - w.excluded})
	// Keep one sample at or before the window's start, drop older ones.
	cut := 0
	for cut+1 < len(w.samples) && w.samples[cut+1].at <= w.active-w.span {
		cut++
	}
	w.samples = w.samples[cut:]
}

// rate is the counter's gain per second over the window, and false while
// less than minRateSpan of active time was observed.
func (w *rateWindow) rate() (float64, bool) {
	if len(w.samples) < 2 {
		return 0, false
	}
	first, last := w.samples[0], w.samples[len(w.samples)-1]
	dt := last.at - first.at
	if dt < minRateSpan {
		return 0, false
	}
	return float64(last.n-first.n) / dt.Seconds(), true
}

// eta is the time pending recipients take at the window's rate, bounded by
// limit (recipients per second, 0: none), or at the limit before a rate is
// known; false when nothing is pending, when the counter stalled over the
// whole window, or when neither rate nor limit is known.
func (w *rateWindow) eta(pending int64, limit float64) (time.Duration, bool) {
	r, ok := w.rate()
	if pending <= 0 || (ok && r <= 0) || (!ok && limit <= 0) {
		return 0, false
	}
	s := storage.ETA(pending, r, limit)
	return time.Duration(s * float64(time.Second)), true
}
