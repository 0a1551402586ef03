package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/internal/redistest"
)

// BenchmarkRedisAllow measures one Allow against a private redis-server,
// allowed and denied, including a denial by a cap whose window has every
// bucket in use (the most work the script does). `make bench` runs it once
// (-benchtime 1x), so each iteration times a loop of calls and reports µs
// per call.
func BenchmarkRedisAllow(b *testing.B) {
	srv := redistest.StartWith(b, redistest.Options{RequireReal: true})
	rdb := srv.Client(b)
	lim := NewRedis(rdb)
	ctx := context.Background()
	const calls = 2000

	take := func(l Limit, n int) func(b *testing.B, key string) {
		return func(b *testing.B, key string) {
			if res, err := lim.Allow(ctx, key, l, n); err != nil || res.Allowed != n {
				b.Fatalf("prime: %+v, %v", res, err)
			}
		}
	}
	// fill writes a count of 1 into every bucket of a window, as after a
	// window's worth of steady sending; the caps below are 11 under the
	// total, so the calls stay denied while buckets leave.
	fill := func(suffix string, width, window time.Duration) func(b *testing.B, key string) {
		return func(b *testing.B, key string) {
			now, err := rdb.Time(ctx).Result()
			if err != nil {
				b.Fatal(err)
			}
			k := int64(window / width)
			idx := now.UnixMicro() / width.Microseconds()
			vals := []any{"t", k + 1, "o", idx - k}
			for i := idx - k; i <= idx; i++ {
				vals = append(vals, strconv.FormatInt(i, 10), 1)
			}
			hk := DefaultPrefix + "{" + key + "}:" + suffix
			if err := rdb.HSet(ctx, hk, vals...).Err(); err != nil {
				b.Fatal(err)
			}
			rdb.Expire(ctx, hk, time.Hour)
		}
	}
	cases := []struct {
		name  string
		l     Limit
		prime func(b *testing.B, key string)
		allow bool
	}{
		{"PerSecondAllowed", Limit{PerSecond: 1e9}, nil, true},
		{"AllLevelsAllowed", Limit{PerSecond: 1e9, PerMinute: 1e9, PerDay: 1e9}, nil, true},
		{"PerSecondDenied", Limit{PerSecond: 1, Burst: 1}, take(Limit{PerSecond: 1, Burst: 1}, 1), false},
		{"PerMinuteDenied", Limit{PerMinute: 1000}, take(Limit{PerMinute: 1000}, 1000), false},
		{"PerMinuteDeniedFullWindow", Limit{PerMinute: 230}, fill("m", minuteBucket, minuteWindow), false},
		{"PerDayDeniedFullWindow", Limit{PerDay: 278}, fill("d", dayBucket, dayWindow), false},
		{"BlockedUnlimited", Limit{}, func(b *testing.B, key string) {
			if err := lim.Block(ctx, key, time.Hour); err != nil {
				b.Fatal(err)
			}
		}, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			key := fmt.Sprintf("bench:%s:%d", c.name, b.N) // a fresh key each time the framework reruns the body
			if c.prime != nil {
				c.prime(b, key)
			}
			start := time.Now()
			for range b.N {
				for range calls {
					res, err := lim.Allow(ctx, key, c.l, 1)
					if err != nil || (res.Allowed == 1) != c.allow {
						b.Fatalf("Allow: %+v, %v", res, err)
					}
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N*calls), "µs/call")
		})
	}
}
