// Command pacer is a prototype of issue 9's "pacing at arrival", to measure
// the design before it is built: a shared GCRA in Redis that hands out
// reservations (time slots) instead of yes/no answers, and a process that
// puts each request on the wire at its slot. Run several copies against one
// Redis, sending through bench/arrivals to the sandbox, and analyse the
// arrival log.
//
// Each process sends its share of -n messages. A reservation takes -group
// cells (messages) at once with one script call; the reply is the sender's
// theoretical arrival time before the call, from which the process computes
// the conforming time of each cell (GCRA: cell j of the reservation
// conforms at tat + (j+1-burst)/rate) and releases:
//
//   - per-message mode (personalised SMS): each message at its own cell's
//     time, so messages leave evenly spaced, never in lumps above the burst;
//   - batched mode (-batched: one request carries -group recipients, -group
//     at most the burst): the request at the time of its last cell.
//
// -margin lowers the burst the script is told, to leave room for the jitter
// between a slot and the request's arrival at the provider.
//
//	go run ./bench/pacer -redis 127.0.0.1:6390 -target http://127.0.0.1:8766 -n 1000 -rate 200 -burst 20 -group 10 &
//	(two more copies), then: go run ./bench/arrivals -analyze arrivals.tsv -limit 200 -burst 20
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/bench/internal/measure"
	"github.com/fanoutdev/fanout/oneroute"
)

// reserveLua is GCRA with reservations.
const reserveLua = `
-- reserve: take n cells for one sender, now or in the near future.
-- KEYS[1] theoretical arrival time (tat) in µs (string)
-- KEYS[2] blocked-until in µs (string), set after a provider 429
-- ARGV[1] n (1 <= n <= burst), ARGV[2] rate per second, ARGV[3] burst,
-- ARGV[4] the furthest ahead a reservation may start, µs
-- Returns {1, tat_before - now, now} when the n cells were reserved:
-- cell j (0-based) conforms at tat_before + (j + 1 - burst) / rate, never
-- before now; {0, retry_us, now} when nothing was taken.
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return {0, math.ceil(blocked - now), now} end
local n, rate, burst, ahead = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local interval = 1000000 / rate
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local first = tat + (1 - burst) * interval -- when the first cell conforms
if first - now > ahead then return {0, math.ceil(first - now - ahead), now} end
local new_tat = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, math.floor(tat - now), now}
`

var reserve = redis.NewScript(reserveLua)

type job struct {
	at   time.Time
	to   []string
	text string
}

func main() {
	addr := flag.String("redis", "127.0.0.1:6379", "private Redis `host:port`")
	target := flag.String("target", "http://127.0.0.1:8766", "OneRoute (sandbox or arrivals proxy) base `URL`")
	key := flag.String("key", "bench:pacer:{sms}", "limiter key prefix (the sender)")
	n := flag.Int("n", 1000, "messages this process sends")
	offset := flag.Int("offset", 0, "first recipient number (keep processes apart)")
	rate := flag.Int("rate", 200, "per-second limit")
	burst := flag.Int("burst", 20, "burst")
	margin := flag.Int("margin", 0, "cells kept back from the burst for arrival jitter")
	group := flag.Int("group", 10, "cells per reservation (batched: recipients per request); at most burst-margin")
	batched := flag.Bool("batched", false, "one request per reservation carrying -group recipients")
	senders := flag.Int("senders", 32, "sender goroutines (requests in flight)")
	ahead := flag.Duration("ahead", 200*time.Millisecond, "furthest ahead a reservation may start")
	flag.Parse()
	b := *burst - *margin
	if *group > b || *group < 1 {
		fmt.Fprintf(os.Stderr, "pacer: -group %d must be 1..burst-margin (%d)\n", *group, b)
		os.Exit(2)
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: 8})
	defer rdb.Close()
	client, err := oneroute.New(oneroute.Options{BaseURL: *target, APIKey: "test_pacer"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pacer:", err)
		os.Exit(2)
	}
	jobs := make(chan job, 4096)
	var sent, errs atomic.Int64
	var lateSum, lateMax atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < *senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if d := time.Until(j.at); d > 0 {
					t := time.NewTimer(d)
					<-t.C
				}
				late := time.Since(j.at).Microseconds()
				lateSum.Add(late)
				for {
					m := lateMax.Load()
					if late <= m || lateMax.CompareAndSwap(m, late) {
						break
					}
				}
				if _, err := client.SendSMS(ctx, "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002", oneroute.SMSRequest{Message: j.text, Recipients: j.to}); err != nil {
					errs.Add(1)
				}
				sent.Add(int64(len(j.to)))
			}
		}()
	}
	interval := time.Second / time.Duration(*rate)
	keys := []string{*key + ":tat", *key + ":blocked"}
	t0, cpu0 := time.Now(), measure.SelfCPU()
	scripts := 0
	for i := 0; i < *n; {
		k := min(*group, *n-i)
		res, err := reserve.Run(ctx, rdb, keys, k, *rate, b, ahead.Microseconds()).Int64Slice()
		scripts++
		got := time.Now() // local time of the reply; Redis' now is res[2]
		if err != nil {
			fmt.Fprintln(os.Stderr, "pacer: reserve:", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if res[0] == 0 {
			time.Sleep(time.Duration(res[1]) * time.Microsecond)
			continue
		}
		tatBefore := got.Add(time.Duration(res[1]) * time.Microsecond)
		at := func(cell int) time.Time {
			t := tatBefore.Add(time.Duration(cell+1-b) * interval)
			if t.Before(got) {
				return got
			}
			return t
		}
		if *batched {
			to := make([]string, k)
			for c := range to {
				to[c] = number(*offset + i + c)
			}
			jobs <- job{at: at(k - 1), to: to, text: "Hello from the pacer prototype"}
		} else {
			for c := 0; c < k; c++ {
				jobs <- job{at: at(c), to: []string{number(*offset + i + c)}, text: "Hi N" + strconv.Itoa(*offset+i+c) + ", paced"}
			}
		}
		i += k
	}
	close(jobs)
	wg.Wait()
	wall := time.Since(t0).Seconds()
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"program": "pacer", "n": *n, "sent": sent.Load(), "errors": errs.Load(), "s": wall,
		"rate": *rate, "burst": *burst, "margin": *margin, "group": *group, "batched": *batched,
		"reserve_scripts": scripts, "release_late_avg_us": lateSum.Load() / max(1, int64(*n)),
		"release_late_max_us": lateMax.Load(), "cpu_us_per_msg": (measure.SelfCPU() - cpu0) * 1e6 / float64(*n),
	})
}

func number(i int) string {
	s := strconv.Itoa(i % 10_000_000)
	for len(s) < 7 {
		s = "0" + s
	}
	return "234805" + s
}
