package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/fanoutdev/fanout/internal/redistest"
)

// The behaviour suite: one set of tests run against every Limiter, so the
// in-memory twin and the Redis limiter cannot drift apart.

// testBundle is one limiter under test and its clock.
type testBundle struct {
	lim Limiter
	// advance moves the limiter's clock forward by d. It is nil when the
	// clock is real; tests that need hours to pass skip then.
	advance func(d time.Duration)
}

// fake reports whether the bundle's clock can be moved.
func (b *testBundle) fake() bool { return b.advance != nil }

// atLeast is d on a fake clock; on a real clock, where any amount of time
// may pass between two calls on a busy machine, it is the smallest wait.
func (b *testBundle) atLeast(d time.Duration) time.Duration {
	if b.fake() {
		return d
	}
	return time.Microsecond
}

// fakeClock is a settable clock; onSet mirrors it elsewhere (miniredis).
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	onSet func(time.Time)
}

// clockStart is not aligned to any bucket, like a real start.
var clockStart = time.Date(2026, 3, 1, 11, 59, 58, 123456000, time.UTC)

func newFakeClock(onSet func(time.Time)) *fakeClock {
	c := &fakeClock{t: clockStart, onSet: onSet}
	if onSet != nil {
		onSet(c.t)
	}
	return c
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	if c.onSet != nil {
		c.onSet(c.t)
	}
}

// setupMemory is the in-memory twin on a fake clock.
func setupMemory(t *testing.T) *testBundle {
	t.Helper()
	c := newFakeClock(nil)
	return &testBundle{lim: NewMemory(c.now), advance: c.advance}
}

// setupMemoryRealClock is the in-memory twin on time.Now.
func setupMemoryRealClock(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{lim: NewMemory(nil)}
}

// setupRedis is the Redis limiter on the test's own Redis from redistest: a
// private redis-server (real clock) when installed, else miniredis, whose
// clock the test sets.
func setupRedis(t *testing.T) *testBundle {
	t.Helper()
	srv := redistest.Start(t)
	b := &testBundle{lim: NewRedis(srv.Client(t))}
	if !srv.Real {
		b.advance = newFakeClock(srv.Mini.SetTime).advance
	}
	return b
}

// setupRedisFakeClock is the Redis limiter's script on miniredis with a
// fake clock, so the minute and day windows run even where redis-server is
// installed.
func setupRedisFakeClock(t *testing.T) *testBundle {
	t.Helper()
	mr := miniredis.RunT(t)
	srv := &redistest.Server{Addr: mr.Addr(), Mini: mr}
	return &testBundle{lim: NewRedis(srv.Client(t)), advance: newFakeClock(mr.SetTime).advance}
}

// The twin on a fake clock keeps every promise of the suite, exactly.
func TestMemory(t *testing.T) {
	t.Parallel()
	testLimiter(t, setupMemory)
}

// The twin keeps them on the real clock too, as the Redis limiter must.
func TestMemoryRealClock(t *testing.T) {
	t.Parallel()
	testLimiter(t, setupMemoryRealClock)
}

// The Redis limiter keeps every promise of the suite on the test's own Redis.
func TestRedis(t *testing.T) {
	t.Parallel()
	testLimiter(t, setupRedis)
}

// The Redis script keeps them across minute and day windows, on a clock the
// test moves.
func TestRedisFakeClock(t *testing.T) {
	t.Parallel()
	testLimiter(t, setupRedisFakeClock)
}

// allow calls Allow and fails the test on an error.
func allow(t *testing.T, lim Limiter, key string, l Limit, n int) Result {
	t.Helper()
	res, err := lim.Allow(context.Background(), key, l, n)
	if err != nil {
		t.Fatalf("Allow(%q, %+v, %d): %v", key, l, n, err)
	}
	return res
}

// mustAllow asserts n permits are granted.
func mustAllow(t *testing.T, lim Limiter, key string, l Limit, n int) {
	t.Helper()
	if res := allow(t, lim, key, l, n); res.Allowed != n || res.RetryAfter != 0 {
		t.Fatalf("Allow(%q, %+v, %d) = %+v, want all %d allowed", key, l, n, res, n)
	}
}

// mustDeny asserts the request is denied with a RetryAfter in [lo, hi].
func mustDeny(t *testing.T, lim Limiter, key string, l Limit, n int, lo, hi time.Duration) Result {
	t.Helper()
	res := allow(t, lim, key, l, n)
	if res.Allowed != 0 || res.RetryAfter < lo || res.RetryAfter > hi {
		t.Fatalf("Allow(%q, %+v, %d) = %+v, want denied with RetryAfter in [%s, %s]", key, l, n, res, lo, hi)
	}
	return res
}

// testLimiter is the behaviour every Limiter must have. setup returns a
// fresh limiter for each case.
func testLimiter(t *testing.T, setup func(t *testing.T) *testBundle) {
	t.Helper()

	// The per-second level lets the burst through at once, then one permit
	// per 1/PerSecond: in limiter time T at most Burst + PerSecond*T go.
	t.Run("PerSecondAccuracy", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		first := Limit{PerSecond: 10, Burst: 10}
		for range 10 {
			mustAllow(t, b.lim, "first", first, 1)
		}
		mustDeny(t, b.lim, "first", first, 1, b.atLeast(100*time.Millisecond), 100*time.Millisecond)

		l := Limit{PerSecond: 100, Burst: 10}
		const span = 500 * time.Millisecond
		got, elapsed := drain(t, b, "s", l, span)
		ideal := float64(l.Burst) + float64(l.PerSecond)*elapsed.Seconds()
		if float64(got) > ideal+1 {
			t.Errorf("%d permits in %s from a full bucket, ideal %.1f: over the limit", got, elapsed, ideal)
		}
		lo := ideal - 1
		if !b.fake() {
			lo = 0.5 * ideal // a busy machine wakes late; the upper bound is what matters
		}
		if float64(got) < lo {
			t.Errorf("%d permits in %s from a full bucket, ideal %.1f: too few", got, elapsed, ideal)
		}
		t.Logf("%d permits in %s at 100/s, burst 10 (ideal %.1f)", got, elapsed, ideal)
	})

	// Burst is how many go at once; it defaults to the per-second limit.
	t.Run("Burst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := Limit{PerSecond: 2, Burst: 5}
		mustAllow(t, b.lim, "explicit", l, 5)
		mustDeny(t, b.lim, "explicit", l, 1, b.atLeast(500*time.Millisecond), 500*time.Millisecond)

		def := Limit{PerSecond: 4}
		for range 4 {
			mustAllow(t, b.lim, "default", def, 1)
		}
		mustDeny(t, b.lim, "default", def, 1, b.atLeast(250*time.Millisecond), 250*time.Millisecond)
	})

	// n permits are taken together or not at all.
	t.Run("ManyAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := Limit{PerSecond: 10, Burst: 10}
		mustAllow(t, b.lim, "k", l, 4)
		mustAllow(t, b.lim, "k", l, 4)
		// 4 more need 2 more intervals of credit: 200 ms at most.
		mustDeny(t, b.lim, "k", l, 4, b.atLeast(200*time.Millisecond), 200*time.Millisecond)
		mustAllow(t, b.lim, "k", l, 2)
		if b.fake() {
			res := mustDeny(t, b.lim, "k", l, 3, 300*time.Millisecond, 300*time.Millisecond)
			b.advance(res.RetryAfter)
			mustAllow(t, b.lim, "k", l, 3)
		}
	})

	// A reservation hands out future permits without overlap: each one's
	// Delay is when its permits conform, one interval per permit after the
	// burst, and nothing is taken beyond ahead.
	t.Run("Reserve", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		l := Limit{PerSecond: 10, Burst: 4}
		ahead := 500 * time.Millisecond
		var prev time.Duration
		for i := range 5 {
			res, err := b.lim.Reserve(ctx, "k", l, 4, ahead)
			if err != nil {
				t.Fatal(err)
			}
			if i < 2 && res.Allowed != 4 {
				t.Fatalf("reservation %d: %+v, want 4 allowed", i, res)
			}
			if res.Allowed == 0 {
				// The third 4 would conform 800 ms from now: 300 ms beyond ahead.
				if i != 2 || res.RetryAfter <= 0 || res.RetryAfter > 300*time.Millisecond {
					t.Fatalf("reservation %d denied with %+v", i, res)
				}
				break
			}
			if i > 0 && b.fake() && res.Delay != prev+400*time.Millisecond {
				t.Fatalf("reservation %d: Delay %s, want %s", i, res.Delay, prev+400*time.Millisecond)
			}
			if i > 0 && res.Delay <= prev-50*time.Millisecond {
				t.Fatalf("reservation %d: Delay %s not after %s", i, res.Delay, prev)
			}
			prev = res.Delay
		}
		// Allow sees the reserved future as taken.
		mustDeny(t, b.lim, "k", l, 1, b.atLeast(100*time.Millisecond), time.Second)
	})

	// A reservation under a block waits for the block, like Allow.
	t.Run("ReserveBlocked", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		if err := b.lim.Block(ctx, "k", 2*time.Second); err != nil {
			t.Fatal(err)
		}
		res, err := b.lim.Reserve(ctx, "k", Limit{}, 1, 500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed != 0 || res.RetryAfter < b.atLeast(time.Second) || res.RetryAfter > 2*time.Second {
			t.Fatalf("Reserve under a 2 s block: %+v", res)
		}
	})

	// A request above the burst cannot deadlock: it goes when the bucket
	// is full and leaves the others waiting for its n intervals.
	t.Run("AboveBurst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := Limit{PerSecond: 10, Burst: 5}
		mustAllow(t, b.lim, "k", l, 8)
		mustDeny(t, b.lim, "k", l, 1, b.atLeast(400*time.Millisecond), 400*time.Millisecond)
		res := mustDeny(t, b.lim, "k", l, 8, b.atLeast(800*time.Millisecond), 800*time.Millisecond)
		if b.fake() {
			b.advance(res.RetryAfter)
			mustAllow(t, b.lim, "k", l, 8)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := Wait(ctx, b.lim, "k", l, 8, 2*time.Second); err != nil {
			t.Fatalf("Wait for 8 above a burst of 5: %v", err)
		}
	})

	// The per-minute cap holds over any 60 seconds: permits come back only
	// when the ones they replace have left the window.
	t.Run("PerMinuteCap", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := Limit{PerMinute: 5}
		for range 3 {
			mustAllow(t, b.lim, "k", l, 1)
		}
		if b.fake() {
			b.advance(30 * time.Second)
		}
		mustAllow(t, b.lim, "k", l, 2)
		if !b.fake() {
			mustDeny(t, b.lim, "k", l, 1, 59*time.Second, minuteWindow+minuteBucket)
			return
		}
		// The first three leave the window 60 to 60.25 s after they went.
		res := mustDeny(t, b.lim, "k", l, 1, 29*time.Second, 30*time.Second+minuteBucket)
		b.advance(res.RetryAfter)
		mustAllow(t, b.lim, "k", l, 3)
		// The two sent at +30 s still count.
		mustDeny(t, b.lim, "k", l, 1, 29*time.Second, 30*time.Second+minuteBucket)
	})

	// The per-day cap holds over any 24 hours.
	t.Run("PerDayCap", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := Limit{PerSecond: 100, PerDay: 3}
		mustAllow(t, b.lim, "k", l, 2)
		mustAllow(t, b.lim, "k", l, 1)
		res := mustDeny(t, b.lim, "k", l, 1, dayWindow-time.Minute, dayWindow+dayBucket)
		if !b.fake() {
			return
		}
		b.advance(res.RetryAfter - time.Second)
		mustDeny(t, b.lim, "k", l, 1, time.Microsecond, time.Second)
		b.advance(time.Second)
		mustAllow(t, b.lim, "k", l, 3)
	})

	// A batch larger than a cap can never go: a *CapacityError, from Allow
	// and from Wait, not an endless throttle.
	t.Run("AboveCap", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, l := range []Limit{{PerMinute: 10}, {PerSecond: 100, PerDay: 10}} {
			_, err := b.lim.Allow(context.Background(), "k", l, 11)
			var ce *CapacityError
			if !errors.As(err, &ce) || ce.N != 11 || ce.Limit != 10 {
				t.Errorf("Allow 11 under %+v: %v, want a *CapacityError", l, err)
			}
			err = Wait(context.Background(), b.lim, "k", l, 11, time.Second)
			if !errors.As(err, &ce) {
				t.Errorf("Wait 11 under %+v: %v, want a *CapacityError", l, err)
			}
		}
	})

	// A denial at one level takes nothing from the others.
	t.Run("DenialTakesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// The minute cap denies; the per-second level keeps its credit.
		both := Limit{PerSecond: 100, Burst: 100, PerMinute: 10}
		mustAllow(t, b.lim, "a", both, 10)
		for range 50 {
			mustDeny(t, b.lim, "a", both, 1, time.Second, minuteWindow+minuteBucket)
		}
		mustAllow(t, b.lim, "a", Limit{PerSecond: 100, Burst: 100}, 90)

		// The per-second level denies; the minute cap keeps its room.
		slow := Limit{PerSecond: 1, Burst: 1, PerMinute: 3}
		mustAllow(t, b.lim, "b", slow, 1)
		for range 20 {
			mustDeny(t, b.lim, "b", slow, 1, time.Microsecond, time.Second)
		}
		mustAllow(t, b.lim, "b", Limit{PerMinute: 3}, 2)
		mustDeny(t, b.lim, "b", Limit{PerMinute: 3}, 1, time.Second, minuteWindow+minuteBucket)
	})

	// Senders are independent.
	t.Run("KeysApart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := Limit{PerMinute: 2}
		mustAllow(t, b.lim, "sms:1", l, 2)
		mustDeny(t, b.lim, "sms:1", l, 1, time.Second, minuteWindow+minuteBucket)
		mustAllow(t, b.lim, "sms:2", l, 2)
		mustAllow(t, b.lim, "whatsapp:2", l, 2)
	})

	// Block stops a sender for its whole duration, with or without limits;
	// a shorter block never shortens a longer one.
	t.Run("Block", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		l := Limit{PerSecond: 100}
		if err := b.lim.Block(ctx, "k", time.Hour); err != nil {
			t.Fatal(err)
		}
		mustDeny(t, b.lim, "k", l, 1, 59*time.Minute, time.Hour)
		mustDeny(t, b.lim, "k", Limit{}, 1, 59*time.Minute, time.Hour)
		if err := b.lim.Block(ctx, "k", time.Millisecond); err != nil {
			t.Fatal(err)
		}
		mustDeny(t, b.lim, "k", l, 1, 59*time.Minute, time.Hour)
		mustAllow(t, b.lim, "other", l, 1)

		if err := b.lim.Block(ctx, "short", 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		mustDeny(t, b.lim, "short", l, 1, b.atLeast(300*time.Millisecond), 300*time.Millisecond)
		if b.fake() {
			b.advance(300 * time.Millisecond)
			mustAllow(t, b.lim, "short", l, 1)
			b.advance(time.Hour)
			mustAllow(t, b.lim, "k", l, 1)
			return
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := Wait(wctx, b.lim, "short", Limit{}, 1, time.Second); err != nil {
			t.Fatalf("Wait after a 300 ms block: %v", err)
		}
		if waited := time.Since(start); waited > 5*time.Second {
			t.Errorf("Wait after a 300 ms block took %s", waited)
		}
	})

	// Wait returns when ctx ends, not when the limiter would allow.
	t.Run("WaitHonoursContext", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := Limit{PerMinute: 1}
		mustAllow(t, b.lim, "k", l, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Wait(ctx, b.lim, "k", l, 1, time.Hour) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return within 10 s of cancel")
		}
	})

	// A wait longer than maxWait, or than ctx's deadline, is a
	// *ThrottledError carrying the wait, returned at once.
	t.Run("ThrottledForLongWaits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := Limit{PerMinute: 2}
		mustAllow(t, b.lim, "sms:9", l, 2)
		var te *ThrottledError
		err := Wait(context.Background(), b.lim, "sms:9", l, 1, 2*time.Second)
		if !errors.As(err, &te) || te.Key != "sms:9" || te.Err != nil ||
			te.RetryIn < 59*time.Second || te.RetryIn > minuteWindow+minuteBucket {
			t.Fatalf("Wait = %v (%+v), want a *ThrottledError for sms:9 of about a minute", err, te)
		}

		// Within maxWait but past the deadline: give the task back.
		mustAllow(t, b.lim, "sms:8", Limit{PerSecond: 1, Burst: 1}, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err = Wait(ctx, b.lim, "sms:8", Limit{PerSecond: 1, Burst: 1}, 1, time.Hour)
		if !errors.As(err, &te) || te.RetryIn <= 0 {
			t.Fatalf("Wait past the deadline = %v, want a *ThrottledError", err)
		}
	})
}

// drain takes single permits for key for span of limiter time and returns
// how many it got and the limiter time that passed. A fake clock jumps by
// each RetryAfter; a real one waits through Wait.
func drain(t *testing.T, b *testBundle, key string, l Limit, span time.Duration) (int, time.Duration) {
	t.Helper()
	got := 0
	if b.fake() {
		var elapsed time.Duration
		for {
			res := allow(t, b.lim, key, l, 1)
			if res.Allowed == 1 {
				got++
				continue
			}
			if elapsed+res.RetryAfter > span {
				return got, elapsed
			}
			b.advance(res.RetryAfter)
			elapsed += res.RetryAfter
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), span+10*time.Second)
	defer cancel()
	start := time.Now()
	for time.Since(start) < span {
		if err := Wait(ctx, b.lim, key, l, 1, time.Second); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		got++
	}
	return got, time.Since(start)
}
