// Package baseline is the shared body of the two delivery baselines of
// issue 9: bench/plain (one asynq task and one OneRoute HTTP call per
// message) and bench/noop (the same tasks, a handler that does nothing).
// Both read N recipients, enqueue one task per message into a private
// queue, then run one asynq server until every task has been handled, and
// print one JSON object: the enqueue phase and the processing phase apart,
// each with its wall time, its own CPU (getrusage), the Redis server's CPU
// (INFO cpu) and, given -sandbox-pid, the sandbox process's CPU.
//
//	go run ./bench/plain -redis 127.0.0.1:6390 -sandbox http://127.0.0.1:8765 -n 100000 -concurrency 50 -recipients /tmp/r.csv
package baseline

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/bench/internal/measure"
)

// Message is one task's payload: a personalised text to one number.
type Message struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// Config is what both programs take on the command line.
type Config struct {
	Program     string
	RedisAddr   string
	SandboxURL  string
	APIKey      string
	ChannelID   string
	N           int
	Concurrency int
	Enqueuers   int
	PoolSize    int
	Recipients  string
	SandboxPID  int
	Timeout     time.Duration
}

// Flags registers the common flags on fs.
func Flags(fs *flag.FlagSet, program string) *Config {
	c := &Config{Program: program}
	fs.StringVar(&c.RedisAddr, "redis", "127.0.0.1:6379", "Redis `host:port` (use a private redis-server)")
	fs.StringVar(&c.SandboxURL, "sandbox", "http://127.0.0.1:8765", "OneRoute sandbox base `URL` (fanout sandbox --addr)")
	fs.StringVar(&c.APIKey, "api-key", "test_bench", "API key (the sandbox accepts any key starting with test_)")
	fs.StringVar(&c.ChannelID, "channel", "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002", "SMS channel `id` (default: the sandbox's)")
	fs.IntVar(&c.N, "n", 100_000, "messages to send")
	fs.IntVar(&c.Concurrency, "concurrency", 50, "asynq server concurrency (handlers at once)")
	fs.IntVar(&c.Enqueuers, "enqueuers", 16, "goroutines enqueuing tasks")
	fs.IntVar(&c.PoolSize, "pool", 0, "Redis pool size (default 2*concurrency+10, what fanout worker uses)")
	fs.StringVar(&c.Recipients, "recipients", "", "CSV `file` phone,first_name,discount (bench/gencsv); empty: generate numbers")
	fs.IntVar(&c.SandboxPID, "sandbox-pid", 0, "`pid` of the sandbox process, to report its CPU")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Minute, "give up after this long")
	return c
}

// Phase is the figures of one phase.
type Phase struct {
	Seconds      float64 `json:"s"`
	PerSecond    float64 `json:"per_s"`
	CPUSeconds   float64 `json:"cpu_s"`
	CPUUsPerMsg  float64 `json:"cpu_us_per_msg"`
	RedisCPU     float64 `json:"redis_cpu_s"`
	RedisUsPer   float64 `json:"redis_cpu_us_per_msg"`
	SandboxCPU   float64 `json:"sandbox_cpu_s,omitempty"`
	SandboxUsPer float64 `json:"sandbox_cpu_us_per_msg,omitempty"`
}

// Report is the program's output.
type Report struct {
	Program     string                      `json:"program"`
	N           int                         `json:"n"`
	Concurrency int                         `json:"concurrency"`
	PoolSize    int                         `json:"pool"`
	Enqueue     Phase                       `json:"enqueue"`
	Process     Phase                       `json:"process"`
	Accepted    int64                       `json:"accepted"`
	Refused     int64                       `json:"refused"`
	Errors      int64                       `json:"errors"`
	MaxRSSKB    int64                       `json:"max_rss_kb"`
	Load        string                      `json:"loadavg"`
	Commands    map[string]measure.CmdDelta `json:"redis_commands_per_msg,omitempty"`
}

// Counters are what a handler reports.
type Counters struct {
	Accepted, Refused, Errors atomic.Int64
}

// HandlerFunc handles one message; it returns an error to have asynq retry.
type HandlerFunc func(ctx context.Context, m *Message, c *Counters) error

// Run runs the benchmark and prints the report as JSON on stdout.
func Run(c *Config, h HandlerFunc) error {
	if c.PoolSize <= 0 {
		c.PoolSize = 2*c.Concurrency + 10
	}
	msgs, err := load(c.Recipients, c.N)
	if err != nil {
		return err
	}
	if len(msgs) < c.N {
		return fmt.Errorf("only %d valid recipients in %s, want %d", len(msgs), c.Recipients, c.N)
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: c.RedisAddr, PoolSize: c.PoolSize})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", c.RedisAddr, err)
	}
	queue := fmt.Sprintf("bench-%s-%d", c.Program, time.Now().UnixNano())
	rep := Report{Program: c.Program, N: c.N, Concurrency: c.Concurrency, PoolSize: c.PoolSize, Load: measure.LoadAvg()}

	// Enqueue: one task per message, from c.Enqueuers goroutines.
	client := asynq.NewClientFromRedisClient(rdb)
	snap := func() (time.Time, float64, float64, float64) {
		rc, _ := measure.RedisCPU(ctx, rdb)
		return time.Now(), measure.SelfCPU(), rc, measure.ProcCPU(c.SandboxPID)
	}
	phase := func(n int, t0 time.Time, cpu0, r0, s0 float64) Phase {
		t1, cpu1, r1, s1 := snap()
		p := Phase{Seconds: t1.Sub(t0).Seconds(), CPUSeconds: cpu1 - cpu0, RedisCPU: r1 - r0}
		p.PerSecond = float64(n) / p.Seconds
		p.CPUUsPerMsg = p.CPUSeconds * 1e6 / float64(n)
		p.RedisUsPer = p.RedisCPU * 1e6 / float64(n)
		if c.SandboxPID > 0 {
			p.SandboxCPU = s1 - s0
			p.SandboxUsPer = p.SandboxCPU * 1e6 / float64(n)
		}
		return p
	}
	t0, cpu0, r0, s0 := snap()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, c.Enqueuers)
	for g := 0; g < c.Enqueuers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= c.N {
					return
				}
				b, _ := json.Marshal(msgs[i])
				if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:sms", b), asynq.Queue(queue)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	rep.Enqueue = phase(c.N, t0, cpu0, r0, s0)

	// Process: one asynq server until every task returned nil.
	var cnt Counters
	var handled atomic.Int64
	done := make(chan struct{})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: c.Concurrency,
		Queues:      map[string]int{queue: 1},
		LogLevel:    asynq.WarnLevel,
	})
	handler := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var m Message
		if err := json.Unmarshal(t.Payload(), &m); err != nil {
			return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
		}
		if err := h(ctx, &m, &cnt); err != nil {
			cnt.Errors.Add(1)
			return err
		}
		if handled.Add(1) == int64(c.N) {
			close(done)
		}
		return nil
	})
	cmd0, _ := measure.CommandStats(ctx, rdb)
	t0, cpu0, r0, s0 = snap()
	if err := srv.Start(handler); err != nil {
		return err
	}
	select {
	case <-done:
	case <-time.After(c.Timeout):
		srv.Shutdown()
		return fmt.Errorf("not done after %s: %d of %d handled, %d errors", c.Timeout, handled.Load(), c.N, cnt.Errors.Load())
	}
	rep.Process = phase(c.N, t0, cpu0, r0, s0)
	cmd1, _ := measure.CommandStats(ctx, rdb)
	rep.Commands = measure.PerMessage(cmd0, cmd1, c.N)
	srv.Shutdown()
	rep.Accepted, rep.Refused, rep.Errors = cnt.Accepted.Load(), cnt.Refused.Load(), cnt.Errors.Load()
	rep.MaxRSSKB = measure.SelfMaxRSSKB()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	_ = insp.DeleteQueue(queue, true)
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(rep)
}

// load reads up to n distinct valid recipients from a gencsv-style CSV
// (phone,first_name,discount) and renders each one's text; with no file it
// generates n numbers. Numbers are normalised the naive way: digits only,
// 0XXXXXXXXXX and 234XXXXXXXXXX (Nigeria) accepted, anything else skipped.
func load(path string, n int) ([]Message, error) {
	render := func(name, discount string) string {
		return "Hi " + name + ", your " + discount + "% welcome discount is waiting. Reply STOP to opt out."
	}
	out := make([]Message, 0, n)
	if path == "" {
		for i := 0; i < n; i++ {
			out = append(out, Message{To: fmt.Sprintf("234803%07d", i), Text: render("Name"+strconv.Itoa(i), "10")})
		}
		return out, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	seen := make(map[string]struct{}, n)
	for len(out) < n {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rec) < 3 {
			continue
		}
		to, ok := normalise(rec[0])
		if !ok {
			continue
		}
		if _, dup := seen[to]; dup {
			continue
		}
		seen[to] = struct{}{}
		out = append(out, Message{To: to, Text: render(rec[1], rec[2])})
	}
	return out, nil
}

func normalise(s string) (string, bool) {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	d := b.String()
	switch {
	case len(d) == 11 && d[0] == '0':
		return "234" + d[1:], true
	case len(d) == 13 && strings.HasPrefix(d, "234"):
		return d, true
	}
	return "", false
}
