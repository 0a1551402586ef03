package storage_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/storage"
)

// redisCPU is the Redis server's CPU time so far (user + system), in
// seconds.
func redisCPU(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}

// BenchmarkSendPath is the ledger's work for one task of 50 personalised
// SMS, as the worker does it: one Claim, Stamps in groups of 16 just before
// the requests, one Record of them all accepted (which also fills the
// provider-id index). It reports the Redis server's CPU per row beside the
// client's time; run it against a real redis-server.
func BenchmarkSendPath(b *testing.B) {
	const task, group = 50, 16
	// FANOUT_BENCH_PHASES=claim or stamp stops each task after that step,
	// to tell the steps' costs apart.
	phases := os.Getenv("FANOUT_BENCH_PHASES")
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	store := storage.New(rdb)
	ctx := context.Background()
	spec := campaigns.Spec{ID: "bench", Name: "t", Channel: campaigns.ChannelSMS, ChannelID: "ch", Message: "hi", Recipients: "r.csv"}
	if _, err := store.Create(ctx, spec); err != nil {
		b.Fatal(err)
	}
	n := b.N * task
	for seq := 0; seq*1000 < n; seq++ {
		end := min(seq*1000+1000, n)
		if _, err := store.AddBatch(ctx, spec.ID, seq, end-seq*1000, end); err != nil {
			b.Fatal(err)
		}
	}
	if err := store.FinishDispatch(ctx, spec.ID, storage.DispatchCounts{Rows: n}); err != nil {
		b.Fatal(err)
	}
	rows := make([]int, task)
	outs := make([]campaigns.Outcome, task)
	cpu0 := redisCPU(b, rdb)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for j := range rows {
			rows[j] = i*task + j + 1
			outs[j] = campaigns.Outcome{Row: rows[j], State: storage.LedgerAccepted, Value: "4700" + strconv.Itoa(rows[j]*7919)}
		}
		tok := storage.NewToken()
		if _, err := store.Claim(ctx, spec.ID, tok, rows, time.Minute); err != nil {
			b.Fatal(err)
		}
		if phases == "claim" {
			continue
		}
		for s := 0; s < task; s += group {
			if _, err := store.Stamp(ctx, spec.ID, tok, rows[s:min(s+group, task)]); err != nil {
				b.Fatal(err)
			}
		}
		if phases == "stamp" {
			continue
		}
		if k, err := store.Record(ctx, spec.ID, storage.ModeSend, tok, outs); err != nil || k != task {
			b.Fatalf("recorded %d of %d: %v", k, task, err)
		}
	}
	b.StopTimer()
	b.ReportMetric((redisCPU(b, rdb)-cpu0)*1e6/float64(n), "redis-µs/row")
	if phases != "" {
		return
	}
	if sent, _ := rdb.HGet(ctx, "fanout:{bench}", "sent").Int(); sent != n {
		b.Fatalf("sent = %d, want %d", sent, n)
	}
}
