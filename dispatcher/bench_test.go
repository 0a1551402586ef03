package dispatcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/gencsv"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

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
	if err := gencsv.Write(path, n); err != nil {
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
	store := storage.New(rdb)
	client := asynq.NewClientFromRedisClient(rdb)
	for i := 0; i < b.N; i++ {
		spec.ID = fmt.Sprintf("bench-%d", i)
		src, err := recipients.OpenSource(path, recipients.SourceOptions{})
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
		src2, _ := recipients.OpenSource(path, recipients.SourceOptions{})
		norm := recipients.NewPhoneNormalizer("NG")
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
			payload := tasks.Encode(&campaigns.Batch{Campaign: "base", Seq: j, Channel: spec.Channel, ChannelID: spec.ChannelID,
				Items: []campaigns.Item{{Row: j + 1, To: to, Content: &campaigns.Content{Text: "Hi Name, your 10% discount is waiting"}}}})
			task := asynq.NewTask(tasks.TypeSMSSend, payload, asynq.Queue("baseline"), asynq.TaskID(fmt.Sprintf("base-%d-%d", i, j)))
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
