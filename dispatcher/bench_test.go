package dispatcher

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
)

// WriteBenchCSV writes the benchmark's recipient file: n rows of Nigerian
// numbers in mixed formats (national, +234, 234, spaced), about 4%
// duplicates written another way and 2% invalid values, with a name and a
// discount column.
func writeBenchCSV(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(2026, 4))
	prefixes := []string{"803", "806", "813", "816", "703", "706", "810", "814", "903", "906", "805", "807", "815", "905", "802", "808", "812", "701", "902", "809", "817", "818", "909", "908"}
	fmt.Fprintln(w, "phone,first_name,discount")
	recent := make([]string, 0, 1024)
	for i := 0; i < n; i++ {
		var nsn string
		switch p := rng.IntN(100); {
		case p < 2:
			fmt.Fprintf(w, "%d,Bad%d,10\n", rng.IntN(100000), i)
			continue
		case p < 6 && len(recent) > 0:
			nsn = recent[rng.IntN(len(recent))]
		default:
			nsn = prefixes[rng.IntN(len(prefixes))] + fmt.Sprintf("%07d", rng.IntN(10000000))
			if len(recent) < cap(recent) {
				recent = append(recent, nsn)
			} else {
				recent[rng.IntN(len(recent))] = nsn
			}
		}
		var phone string
		switch rng.IntN(4) {
		case 0:
			phone = "0" + nsn
		case 1:
			phone = "+234" + nsn
		case 2:
			phone = "234" + nsn
		default:
			phone = "0" + nsn[:3] + " " + nsn[3:6] + " " + nsn[6:]
		}
		fmt.Fprintf(w, "%s,Name%d,%d\n", phone, i, 5+rng.IntN(20))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("FANOUT_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

func usedMemory(ctx context.Context, rdb *redis.Client) int64 {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkExpand expands a FANOUT_BENCH_ROWS-row CSV (default 1,000,000)
// into a private redis-server with batching, and, side by side, runs the
// baseline: a plain loop calling asynq's Client.Enqueue once per recipient
// (on the first FANOUT_BENCH_BASELINE recipients, default 200,000, already
// normalised: the most favourable case for the baseline). It needs
// redis-server and is skipped otherwise. Run it with `make bench`.
func BenchmarkExpand(b *testing.B) {
	srv := redistest.StartWith(b, redistest.Options{RequireReal: true})
	rdb := srv.Client(b)
	ctx := context.Background()
	n := benchRows()
	path := filepath.Join(b.TempDir(), "recipients.csv")
	if err := writeBenchCSV(path, n); err != nil {
		b.Fatal(err)
	}
	spec, err := campaigns.ParseSpec(filepath.Join(filepath.Dir(path), "bench.yaml"), []byte(`channel: sms
channel_id: ch-bench
message: "Hi {{.first_name}}, your {{.discount}}% discount is waiting"
recipients: recipients.csv
`))
	if err != nil {
		b.Fatal(err)
	}
	store := campaigns.NewStore(rdb)
	client := asynq.NewClientFromRedisClient(rdb)
	for i := 0; i < b.N; i++ {
		spec.ID = fmt.Sprintf("bench-%d", i)
		src, err := campaigns.OpenSource(path, campaigns.SourceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		mem0 := usedMemory(ctx, rdb)
		start := time.Now()
		res, err := Dispatch(ctx, store, client, spec, src, Options{BatchSize: 50})
		el := time.Since(start)
		src.Close()
		if err != nil {
			b.Fatal(err)
		}
		mem1 := usedMemory(ctx, rdb)
		rate := float64(res.Valid) / el.Seconds()
		b.ReportMetric(rate, "recipients/s")
		b.ReportMetric(float64(mem1-mem0)/float64(res.Valid), "redis-B/recipient")
		b.Logf("batched: %d rows, %d valid, %d invalid, %d duplicates, %d batches in %s: %.0f recipients/s; Redis +%.1f MB",
			res.Rows, res.Valid, res.Invalid, res.Duplicates, res.Batches, el.Round(time.Millisecond), rate, float64(mem1-mem0)/1e6)

		// Baseline: one Enqueue per recipient, in a plain loop.
		m := 200_000
		if v, err := strconv.Atoi(os.Getenv("FANOUT_BENCH_BASELINE")); err == nil && v > 0 {
			m = v
		}
		m = min(m, res.Valid)
		base := make([]string, 0, m)
		src2, _ := campaigns.OpenSource(path, campaigns.SourceOptions{})
		norm := campaigns.NewPhoneNormalizer("NG")
		for len(base) < m {
			row, err := src2.Next()
			if err != nil {
				break
			}
			if to, err := norm.Normalize(row.Fields["phone"]); err == nil {
				base = append(base, to)
			}
		}
		src2.Close()
		start = time.Now()
		for j, to := range base {
			payload := campaigns.Encode(&campaigns.Batch{Campaign: "base", Seq: j, Channel: spec.Channel, ChannelID: spec.ChannelID,
				Items: []campaigns.Item{{Row: j + 1, To: to, Content: &campaigns.Content{Text: "Hi Name, your 10% discount is waiting"}}}})
			task := asynq.NewTask(campaigns.TypeSMSSend, payload, asynq.Queue("baseline"), asynq.TaskID(fmt.Sprintf("base-%d-%d", i, j)))
			if _, err := client.EnqueueContext(ctx, task); err != nil {
				b.Fatal(err)
			}
		}
		bel := time.Since(start)
		brate := float64(len(base)) / bel.Seconds()
		b.ReportMetric(brate, "baseline-recipients/s")
		b.ReportMetric(rate/brate, "speedup")
		b.Logf("baseline: %d Enqueue calls in %s: %.0f recipients/s; batched is %.1fx faster",
			len(base), bel.Round(time.Millisecond), brate, rate/brate)
	}
}
