package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/ratelimit"
)

// A worker takes permits before each provider call: short waits happen in
// the handler, long ones come back as a *ThrottledError to reschedule the
// task without counting a failure.
func ExampleWait() {
	lim := ratelimit.NewMemory(nil) // ratelimit.NewRedis(rdb) in production
	ctx := context.Background()
	l := ratelimit.Limit{PerSecond: 100, Burst: 10, PerMinute: 20}

	fmt.Println(ratelimit.Wait(ctx, lim, "sms:42", l, 10, 2*time.Second)) // the burst, at once
	fmt.Println(ratelimit.Wait(ctx, lim, "sms:42", l, 10, 2*time.Second)) // about 100 ms later

	err := ratelimit.Wait(ctx, lim, "sms:42", l, 1, 2*time.Second) // the minute's 20 are gone
	var te *ratelimit.ThrottledError
	fmt.Println(errors.As(err, &te), te.RetryIn > 59*time.Second)
	// Output:
	// <nil>
	// <nil>
	// true true
}

// After a provider 429 with Retry-After, one worker blocks the sender for
// every worker sharing the Redis.
func ExampleRedis_Block() {
	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
	lim := ratelimit.NewRedis(rdb)
	ctx := context.Background()
	if err := lim.Block(ctx, "whatsapp:+2348000000000", 30*time.Second); err != nil {
		fmt.Println(err)
	}
}
