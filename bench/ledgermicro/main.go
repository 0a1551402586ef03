// Command ledgermicro measures what amortising the ledger's per-message
// stamp would save: the stamp script of storage/stamp.lua (copied here as of
// df522c7, so this program does not depend on the storage package while it
// moves) run over R rows from C goroutines, g rows per script call (g = 1
// is today's personalised path: one script per message), or g one-row
// scripts per pipeline. It prints, per variant, rows/s, this process's CPU
// per row (the go-redis client side) and the Redis server's CPU per row.
//
//	go run ./bench/ledgermicro -redis 127.0.0.1:6390 -rows 100000 -concurrency 50 -groups 1,4,16,50 -pipelines 16
//
// Use a private redis-server: it writes keys under bench:{ledgermicro}.
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
)

// The stamp script and its helpers, verbatim from storage/{now,owner,stamp}.lua.
const stampLua = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function owner(v)
  local st = string.sub(v, 1, 1)
  local a, b, c = string.match(string.sub(v, 2), '^(%d+):([^:]*):?(%d*)$')
  return st, tonumber(a) or 0, b or '', tonumber(c)
end
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'running' and st ~= 'dispatching' then return {-1} end
local now = now_ms()
local out = {}
for i = 2, #ARGV, 2 do
  local key = KEYS[tonumber(ARGV[i])]
  local row = ARGV[i + 1]
  local v = redis.call('HGET', key, row)
  out[#out + 1] = 0
  if v then
    local s, t, tok, since = owner(v)
    if s == 'c' and tok == ARGV[1] then
      redis.call('HSET', key, row, 's' .. now .. ':' .. tok .. ':' .. (since or now))
      out[#out] = 1
    end
  end
end
return out
`

const (
	campaign = "bench:{ledgermicro}"
	token    = "0123456789ab"
)

var stamp = redis.NewScript(stampLua)

func bucketKey(row int) string { return campaign + ":l:" + strconv.Itoa(row/100) }

// args builds KEYS and ARGV as storage's ledgerArgs does.
func args(rows []int) ([]string, []any) {
	keys := []string{campaign, campaign + ":why"}
	index := map[int]int{}
	a := []any{token}
	for _, row := range rows {
		b := row / 100
		k, ok := index[b]
		if !ok {
			keys = append(keys, bucketKey(row))
			k = len(keys)
			index[b] = k
		}
		a = append(a, k, row)
	}
	return keys, a
}

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
	pipes := flag.String("pipelines", "16", "one-row scripts per pipeline, comma-separated")
	pool := flag.Int("pool", 110, "Redis pool size (fanout worker: 2*concurrency+10)")
	flag.Parse()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: *pool})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "ledgermicro:", err)
		os.Exit(1)
	}
	if err := stamp.Load(ctx, rdb).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "ledgermicro:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, g := range ints(*groups) {
		enc.Encode(run(ctx, rdb, fmt.Sprintf("script-%d-rows", g), *rows, *conc, g, false))
	}
	for _, p := range ints(*pipes) {
		enc.Encode(run(ctx, rdb, fmt.Sprintf("pipeline-%d-scripts", p), *rows, *conc, p, true))
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

// reset writes the campaign hash and claims every row for the token.
func reset(ctx context.Context, rdb *redis.Client, rows int) {
	rdb.HSet(ctx, campaign, "state", "running")
	claimed := "c" + strconv.FormatInt(time.Now().UnixMilli(), 10) + ":" + token
	for lo := 0; lo < rows; lo += 1000 {
		pipe := rdb.Pipeline()
		for r := lo; r < min(rows, lo+1000); r++ {
			pipe.HSet(ctx, bucketKey(r), strconv.Itoa(r), claimed)
		}
		pipe.Exec(ctx)
	}
}

func run(ctx context.Context, rdb *redis.Client, name string, rows, conc, g int, pipelined bool) result {
	reset(ctx, rdb, rows)
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
				if !pipelined {
					batch := make([]int, 0, hi-lo)
					for r := lo; r < hi; r++ {
						batch = append(batch, r)
					}
					keys, a := args(batch)
					res, err := stamp.Run(ctx, rdb, keys, a...).Int64Slice()
					if err == nil {
						for _, v := range res {
							stamped.Add(v)
						}
					}
				} else {
					pipe := rdb.Pipeline()
					cmds := make([]*redis.Cmd, 0, hi-lo)
					for r := lo; r < hi; r++ {
						keys, a := args([]int{r})
						cmds = append(cmds, stamp.EvalSha(ctx, pipe, keys, a...))
					}
					pipe.Exec(ctx)
					for _, c := range cmds {
						if res, err := c.Int64Slice(); err == nil {
							stamped.Add(res[0])
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
	perRT := float64(g)
	if !pipelined {
		perRT = 1
	}
	return result{Variant: name, Rows: rows, RowsPerS: float64(rows) / wall, ClientUsRow: cpu * 1e6 / float64(rows),
		RedisUsRow: (r1 - r0) * 1e6 / float64(rows), RoundTrips: trips.Load(), ScriptsPerRT: perRT, Stamped: stamped.Load(), Load: measure.LoadAvg()}
}
