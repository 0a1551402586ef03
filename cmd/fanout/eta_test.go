package main

import (
	"math"
	"testing"
	"time"
)

// After a pause, the watch's ETA follows the recent send rate: a campaign
// that ran slowly, was paused 10 s, then ran five times faster, gets an ETA
// within 25% of the true remaining time, where the average since the start
// (pause left out or not) would be far off. Samples and clock are fed in,
// nothing sleeps.
func TestETAAfterPauseFollowsRecentRate(t *testing.T) {
	t.Parallel()
	const total = 2000
	w := rateWindow{span: rateSpan}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now, done := start, int64(0)
	step := func(secs int, perS int64, paused bool) {
		for i := 0; i < secs*4; i++ { // observed every 250 ms
			now = now.Add(250 * time.Millisecond)
			done += perS / 4
			w.observe(now, done, paused)
		}
	}
	w.observe(now, 0, false)
	step(10, 20, false) // 200 sent at 20/s
	// Paused 10 s: a batch on the wire when the pause came still lands.
	now = now.Add(250 * time.Millisecond)
	done += 40
	w.observe(now, done, true)
	step(10, 0, true)
	step(8, 100, false) // resumed at 100/s: 1040 done
	remaining := time.Duration(float64(total-done) / 100 * float64(time.Second))
	got, ok := w.eta(total-done, 0)
	if !ok {
		t.Fatal("no ETA after 8 s of sending")
	}
	if off := math.Abs(float64(got-remaining)) / float64(remaining); off > 0.25 {
		t.Fatalf("ETA %s, true remaining %s: %.0f%% off, want within 25%%", got, remaining, off*100)
	}
	// The old estimate, the average since the start, misses by far: the
	// test could fail.
	avg := float64(done) / now.Sub(start).Seconds()
	old := time.Duration(float64(total-done) / avg * float64(time.Second))
	if off := math.Abs(float64(old-remaining)) / float64(remaining); off <= 0.25 {
		t.Fatalf("the average since the start (%s) is within 25%% too: the test proves nothing", old)
	}
	// Bounded by the rate limit: never faster than 50/s.
	if got, _ := w.eta(total-done, 50); got < time.Duration(float64(total-done)/50*float64(time.Second)) {
		t.Fatalf("ETA %s beats the 50/s limit", got)
	}
}

// While paused or stalled for a whole window the ETA is unknown, not
// a guess; before any rate is known it comes from the limit alone.
func TestETAUnknownWhenStalled(t *testing.T) {
	t.Parallel()
	w := rateWindow{span: rateSpan}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.observe(now, 0, false)
	if got, ok := w.eta(100, 10); !ok || got != 10*time.Second {
		t.Fatalf("before a rate: %s %v, want 10s from the limit", got, ok)
	}
	for i := 0; i < 40; i++ {
		now = now.Add(500 * time.Millisecond)
		w.observe(now, 0, false)
	}
	if got, ok := w.eta(100, 10); ok {
		t.Fatalf("stalled for 20 s: ETA %s, want none", got)
	}
}
