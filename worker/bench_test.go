package worker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/worker"
)

// BenchmarkDeliver sends a campaign end to end in one process (dispatcher,
// one worker, the sandbox over loopback HTTP, a private redis-server) and
// reports messages per second until every recipient is sent, and the CPU
// the whole process spent per message (worker, dispatcher and sandbox
// together; Redis not included). FANOUT_BENCH_MESSAGES sets the size
// (default 50,000).
func BenchmarkDeliver(b *testing.B) {
	n := 50_000
	if v, err := strconv.Atoi(os.Getenv("FANOUT_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	for _, personalised := range []bool{false, true} {
		name := "shared-text"
		if personalised {
			name = "personalised"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rate, cpu := deliverOnce(b, n, personalised)
				b.ReportMetric(rate, "msgs/s")
				b.ReportMetric(cpu, "cpu-µs/msg")
			}
		})
	}
}

func deliverOnce(b *testing.B, n int, personalised bool) (rate, cpuPerMsg float64) {
	srv := redistest.StartWith(b, redistest.Options{RequireReal: true})
	rdb := srv.Client(b)
	store := storage.New(rdb)
	sb := sandbox.New(sandbox.Options{DLRDelay: time.Hour})
	api := httptest.NewServer(sb)
	defer api.Close()
	client, _ := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: "test_bench"})
	w := worker.NewServer(rdb, worker.Deps{Store: store, Provider: client, Enqueuer: asynq.NewClientFromRedisClient(rdb),
		Limiter: ratelimit.NewRedis(rdb), Logger: zerolog.Nop()},
		worker.Options{Concurrency: 50, PollInterval: 50 * time.Millisecond, DLRInterval: time.Hour})

	dir := b.TempDir()
	f, _ := os.Create(filepath.Join(dir, "r.csv"))
	fmt.Fprintln(f, "phone,name")
	for i := 0; i < n; i++ {
		fmt.Fprintf(f, "0803%07d,N%d\n", i, i)
	}
	f.Close()
	msg := "Hello from fanout"
	if personalised {
		msg = "Hello {{.name}}"
	}
	spec, err := campaigns.ParseSpec(filepath.Join(dir, "c.yaml"), []byte(fmt.Sprintf(
		"channel: sms\nchannel_id: %s\nmessage: %q\nrecipients: r.csv\n", sandbox.SMSChannelID, msg)))
	if err != nil {
		b.Fatal(err)
	}
	src, _ := recipients.OpenSource(spec.RecipientsPath(), recipients.SourceOptions{})
	defer src.Close()
	var before syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	if _, err := dispatcher.Dispatch(ctx, store, asynq.NewClientFromRedisClient(rdb), spec, src, dispatcher.Options{}); err != nil {
		b.Fatal(err)
	}
	for {
		p, err := store.Progress(ctx, spec.ID)
		if err != nil {
			b.Fatal(err)
		}
		if p.Done() == int64(n) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("not done after 10 minutes: %+v", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	if st := sb.Stats(); st.Accepted != int64(n) || st.Duplicates != 0 {
		b.Fatalf("sandbox accepted %d duplicates %d, want %d 0", st.Accepted, st.Duplicates, n)
	}
	return float64(n) / elapsed.Seconds(), float64(cpu.Microseconds()) / float64(n)
}
