package ratelimit

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/internal/redistest"
)

// The twin and the Redis script give the same answer to the same requests
// at the same times: seeded random walks over limits, sizes, blocks,
// reservation horizons and clock jumps, compared call by call.
func TestRedisTwinAgreement(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	srv := &redistest.Server{Addr: mr.Addr(), Mini: mr}
	clock := newFakeClock(mr.SetTime)
	red := NewRedis(srv.Client(t))
	mem := NewMemory(clock.now)
	ctx := context.Background()

	var allowed, denied, capErrs int
	check := func(step int, key string, l Limit, n int) {
		t.Helper()
		// Every fourth call is an Allow; the others reserve up to 150,
		// 300 or 450 ms ahead.
		ahead := time.Duration(step%4) * 150 * time.Millisecond
		rr, rerr := red.Reserve(ctx, key, l, n, ahead)
		mm, merr := mem.Reserve(ctx, key, l, n, ahead)
		if (rerr == nil) != (merr == nil) || rr != mm {
			t.Fatalf("step %d: Reserve(%q, %+v, %d, %s) at %s: redis %+v, %v; memory %+v, %v",
				step, key, l, n, ahead, clock.now().Format(time.StampMicro), rr, rerr, mm, merr)
		}
		switch {
		case rerr != nil:
			capErrs++
		case rr.Allowed > 0:
			allowed++
		default:
			denied++
		}
	}

	// Every level, blocks, and jumps from a microsecond to an hour.
	rng := rand.New(rand.NewPCG(5, 2026))
	limits := []Limit{
		{PerSecond: 200, Burst: 20},
		{PerSecond: 10, Burst: 3, PerMinute: 40},
		{PerSecond: 50, PerMinute: 100, PerDay: 300},
		{PerMinute: 5},
		{PerDay: 25},
		{PerSecond: 4, Burst: 1},
	}
	keys := []string{"sms:1", "whatsapp:+2348000000000", "email:7"}
	steps := []time.Duration{0, time.Microsecond, 3 * time.Millisecond, 100 * time.Millisecond,
		time.Second, 7 * time.Second, time.Minute, time.Hour}
	for i := range 4000 {
		key := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(20); {
		case op == 0:
			d := time.Duration(rng.IntN(3000)) * time.Millisecond
			if err := red.Block(ctx, key, d); err != nil {
				t.Fatal(err)
			}
			if err := mem.Block(ctx, key, d); err != nil {
				t.Fatal(err)
			}
		case op < 5:
			clock.advance(steps[rng.IntN(len(steps))] + time.Duration(rng.IntN(1000))*time.Microsecond)
		default:
			check(i, key, limits[rng.IntN(len(limits))], 1+rng.IntN(6))
		}
	}

	// Steady sending that leaves most buckets of the minute in use, so a
	// denial walks a dense window.
	before := denied
	for i := range 400 {
		clock.advance(time.Duration(250+rng.IntN(200)) * time.Millisecond)
		check(i, "dense", Limit{PerMinute: 150}, 1)
	}
	if denied-before < 10 {
		t.Errorf("dense window: %d denials, want some", denied-before)
	}

	t.Logf("agreed on %d allowed, %d denied, %d capacity errors", allowed, denied, capErrs)
	if allowed < 100 || denied < 100 || capErrs == 0 {
		t.Errorf("the walk missed a case: %d allowed, %d denied, %d capacity errors", allowed, denied, capErrs)
	}
	if n, err := red.rdb.HLen(ctx, DefaultPrefix+"{dense}:m").Result(); err != nil || n <= 66 {
		t.Errorf("dense window: %d fields (%v), want more than 66 to walk it", n, err)
	}
}

// Every key sits under fanout:rl: with the sender as one hash tag, so the
// script's keys share a Cluster slot, and every key expires.
func TestRedisKeys(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	lim := NewRedis(rdb)
	ctx := context.Background()
	const sender = "whatsapp:+2348000000000"
	mustAllow(t, lim, sender, Limit{PerSecond: 10, PerMinute: 100, PerDay: 1000}, 3)
	if err := lim.Block(ctx, sender, time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{"fanout:rl:{" + sender + "}:b", "fanout:rl:{" + sender + "}:d",
		"fanout:rl:{" + sender + "}:m", "fanout:rl:{" + sender + "}:s"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys = %q, want %q", keys, want)
	}
	for _, k := range keys {
		if tag := hashTag(k); tag != sender {
			t.Errorf("%s: hash tag %q, want %q", k, tag, sender)
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > dayWindow+2*dayBucket {
			t.Errorf("%s: PTTL %s, want it to expire within a day and two buckets", k, ttl)
		}
	}

	other := NewRedis(rdb, WithPrefix("staging:rl:"))
	mustAllow(t, other, sender, Limit{PerMinute: 1}, 1)
	if n, _ := rdb.Exists(ctx, "staging:rl:{"+sender+"}:m").Result(); n != 1 {
		t.Error("WithPrefix: no staging:rl: key")
	}
}

// hashTag is the part of a key Redis Cluster hashes.
func hashTag(k string) string {
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			return k[i+1 : i+1+j]
		}
	}
	return k
}

// Two limiters on two connections, as in two worker processes, share one
// budget and one block.
func TestRedisShared(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := NewRedis(srv.Client(t)), NewRedis(srv.Client(t))
	l := Limit{PerMinute: 4}
	mustAllow(t, a, "sms:1", l, 3)
	mustAllow(t, b, "sms:1", l, 1)
	mustDeny(t, a, "sms:1", l, 1, time.Second, minuteWindow+minuteBucket)
	mustDeny(t, b, "sms:1", l, 1, time.Second, minuteWindow+minuteBucket)

	if err := a.Block(context.Background(), "sms:2", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	mustDeny(t, b, "sms:2", Limit{PerSecond: 100}, 1, 29*time.Second, 30*time.Second)
}

// When Redis cannot answer, nothing is sent: Wait fails closed with a
// *ThrottledError of ErrorRetryIn that wraps the cause, so the task is
// rescheduled without burning a retry.
func TestRedisFailsClosed(t *testing.T) {
	t.Parallel()
	// A port that was free a moment ago and has no listener now.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	lim := NewRedis(rdb)
	ctx := context.Background()

	if _, err := lim.Allow(ctx, "sms:1", Limit{PerSecond: 10}, 1); err == nil {
		t.Fatal("Allow without Redis: no error")
	}
	err = Wait(ctx, lim, "sms:1", Limit{PerSecond: 10}, 1, time.Second)
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryIn != ErrorRetryIn || te.Err == nil || te.Key != "sms:1" {
		t.Fatalf("Wait without Redis = %v, want a *ThrottledError of %s wrapping the cause", err, ErrorRetryIn)
	}
	if err := lim.Block(ctx, "sms:1", time.Second); err == nil {
		t.Error("Block without Redis: no error")
	}

	// A cancelled ctx is reported as such, not as a throttle.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Wait(cctx, lim, "sms:1", Limit{PerSecond: 10}, 1, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled ctx = %v, want context.Canceled", err)
	}
}

// Each Lua script opens with a comment naming its KEYS, ARGV and reply.
func TestScriptHeaders(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{"allow.lua": allowLua, "block.lua": blockLua} {
		head, _, _ := strings.Cut(src, "\nredis.")
		for _, w := range []string{"-- ", "KEYS[1]", "ARGV[1]", "Returns"} {
			if !strings.Contains(head, w) {
				t.Errorf("%s: header comment lacks %q", name, w)
			}
		}
	}
}
