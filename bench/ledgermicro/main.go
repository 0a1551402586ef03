// Command ledgermicro measures what amortising the ledger's per-message
// stamp would save: storage.Store.Stamp run over R rows from C goroutines,
// g rows per call (g = 1 is today's personalised path: one script per
// message). It prints, per variant, rows/s, this process's CPU per row (the
// go-redis client side) and the Redis server's CPU per row.
//
//	go run ./bench/ledgermicro -redis 127.0.0.1:6390 -rows 100000 -concurrency 50 -groups 1,4,16,50
//
// Use a private redis-server: it writes one campaign per variant.
// (NOTES-issue9.md's pipeline figures came from an earlier version, at
// commit ad99303, that ran a copy of the script in pipelines.)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/bench/internal/measure"
	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// The stamp script and its helpers, verbatim from storage/{now,owner,stamp}.lua.
const token = "0123456789ab"

type result struct {
	Variant      string  `json:"variant"`
	Rows         int     `json:"rows"`
	RowsPerS     float64 `json:"rows_per_s"`
	ClientUsRow  float64 `json:"client_cpu_us_per_row"`
	RedisUsRow   float64 `json:"redis_cpu_us_per_row"`
	RoundTrips   int64   `json:"round_trips"`
	ScriptsPerRT float64 `json:"scripts_per_round_trip"`
	Stamped      int64   `json:"stamped"`
	Load         string  `json:"loadavg"`
}

func main() {
	addr := flag.String("redis", "127.0.0.1:6379", "private Redis `host:port`")
	rows := flag.Int("rows", 100_000, "rows stamped per variant")
	conc := flag.Int("concurrency", 50, "goroutines")
	groups := flag.String("groups", "1,4,16,50", "rows per script call, comma-separated")
	pool := flag.Int("pool", 110, "Redis pool size (fanout worker: 2*concurrency+10)")
	flag.Parse()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: *pool})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "ledgermicro:", err)
		os.Exit(1)
	}
	store := storage.New(rdb)
	enc := json.NewEncoder(os.Stdout)
	for _, g := range ints(*groups) {
		enc.Encode(run(ctx, rdb, store, fmt.Sprintf("script-%d-rows", g), *rows, *conc, g))
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// setup creates a fresh campaign for one variant and claims its rows for
// the token (outside the timing).
func setup(ctx context.Context, store *storage.Store, id string, rows int) {
	spec, err := campaigns.ParseSpec(id+".yaml", []byte("id: "+id+"\nchannel: email\nchannel_id: x\nsubject: s\nmessage: m\nrecipients: r.csv\n"))
	if err == nil {
		_, err = store.Create(ctx, spec)
	}
	for lo := 0; lo < rows && err == nil; lo += 1000 {
		batch := make([]int, 0, 1000)
		for r := lo; r < min(rows, lo+1000); r++ {
			batch = append(batch, r)
		}
		_, err = store.Claim(ctx, id, token, batch, time.Minute)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledgermicro:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rdb *redis.Client, store *storage.Store, name string, rows, conc, g int) result {
	campaign := fmt.Sprintf("ledgermicro-%s-%d", name, time.Now().UnixNano())
	setup(ctx, store, campaign, rows)
	var next, trips, stamped atomic.Int64
	var wg sync.WaitGroup
	r0, _ := measure.RedisCPU(ctx, rdb)
	c0 := measure.SelfCPU()
	t0 := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(g)) - int64(g))
				if lo >= rows {
					return
				}
				hi := min(rows, lo+g)
				batch := make([]int, 0, hi-lo)
				for r := lo; r < hi; r++ {
					batch = append(batch, r)
				}
				if res, err := store.Stamp(ctx, campaign, token, batch); err == nil {
					for _, ok := range res {
						if ok {
							stamped.Add(1)
						}
					}
				}
				trips.Add(1)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	cpu := measure.SelfCPU() - c0
	r1, _ := measure.RedisCPU(ctx, rdb)
	perRT := 1.0
	return result{Variant: name, Rows: rows, RowsPerS: float64(rows) / wall, ClientUsRow: cpu * 1e6 / float64(rows),
		RedisUsRow: (r1 - r0) * 1e6 / float64(rows), RoundTrips: trips.Load(), ScriptsPerRT: perRT, Stamped: stamped.Load(), Load: measure.LoadAvg()}
}
