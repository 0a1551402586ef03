// Command webhooks measures the webhook receiver and applier of package
// webhooks on this machine: a private redis-server (AOF everysec by
// default), an SMS campaign of -n accepted messages in the provider-id
// index, the Receiver behind a real HTTP server on loopback, and the
// Applier. Clients post one signed smsDeliveryReport per message, open loop
// at -rate events/s (latency counted from each event's scheduled time, so
// queueing is included) or closed loop with -rate 0, from -c connections.
//
// It prints events/s received, latency percentiles, how long the applier
// took to settle every report after the last one was received, and the
// machine's load average; with -out, one JSON line. The clients run in the
// same process, on the same cores, as the receiver.
//
//	go run ./bench/webhooks -n 100000 -rate 5000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/webhooks"
)

type options struct {
	n, rate, conns int
	aof, apply     bool
	out, profile   string
}

type result struct {
	N            int     `json:"n"`
	Rate         int     `json:"target_rate"`
	Conns        int     `json:"conns"`
	AOF          bool    `json:"aof"`
	Received     float64 `json:"received_per_s"`
	P50MS        float64 `json:"p50_ms"`
	P90MS        float64 `json:"p90_ms"`
	P99MS        float64 `json:"p99_ms"`
	MaxMS        float64 `json:"max_ms"`
	Errors       int64   `json:"errors"`
	Applied      float64 `json:"applied_per_s"`
	ApplyLagS    float64 `json:"apply_lag_s"`
	ProcCPUUS    float64 `json:"process_cpu_us_per_event"`
	RedisCPUUS   float64 `json:"redis_cpu_us_per_event"`
	CoresAt5000  float64 `json:"cores_at_5000_per_s"`
	LoadBefore   string  `json:"loadavg_before"`
	LoadAfter    string  `json:"loadavg_after"`
	CPUs         int     `json:"cpus"`
	GoMaxProcs   int     `json:"gomaxprocs"`
	StartedAtUTC string  `json:"started_at"`
}

const secret = "bench_webhook_secret"

func main() {
	var o options
	flag.IntVar(&o.n, "n", 100_000, "events (one delivery report per message)")
	flag.IntVar(&o.rate, "rate", 5000, "events per second, open loop (0: closed loop, as fast as -c connections go)")
	flag.IntVar(&o.conns, "c", 64, "concurrent client connections")
	flag.BoolVar(&o.aof, "aof", true, "run redis-server with appendonly yes, appendfsync everysec")
	flag.BoolVar(&o.apply, "apply", true, "run the applier beside the receiver")
	flag.StringVar(&o.out, "out", "", "append one JSON line to this `file`")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the posting phase to this `file`")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/webhooks:", err)
		os.Exit(1)
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// procCPU is this process's CPU time so far (user + system).
func procCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru) //nolint:errcheck // cannot fail for RUSAGE_SELF
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is redis-server's CPU time so far (used_cpu_user + used_cpu_sys).
func redisCPU(ctx context.Context, rdb *redis.Client) time.Duration {
	info, _ := rdb.Info(ctx, "cpu").Result()
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRedis starts a private redis-server in dir; stop it with the func.
func startRedis(dir string, aof bool) (*redis.Client, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"), "--maxmemory-policy", "noeviction"}
	if aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), PoolSize: 32})
	stop := func() { rdb.Close(); cmd.Process.Kill(); cmd.Wait() }
	for i := 0; i < 200; i++ {
		if rdb.Ping(context.Background()).Err() == nil {
			return rdb, stop, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	stop()
	return nil, nil, errors.New("redis-server did not start")
}

// seed creates an SMS campaign of n messages, each accepted with provider
// id pid(row), as workers would have recorded them.
func seed(ctx context.Context, store *storage.Store, id string, n int, pid func(int) string) error {
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelSMS, ChannelID: "c1", Message: "hi", Recipients: "r.csv"}
	if _, err := store.Create(ctx, s); err != nil {
		return err
	}
	const chunk = 1000
	for seq := 0; seq*chunk < n; seq++ {
		first, last := seq*chunk+1, min(seq*chunk+chunk, n)
		if _, err := store.AddBatch(ctx, id, seq, last-first+1, last); err != nil {
			return err
		}
	}
	if err := store.FinishDispatch(ctx, id, storage.DispatchCounts{Rows: n}); err != nil {
		return err
	}
	for first := 1; first <= n; first += chunk {
		var rows []int
		for r := first; r <= min(first+chunk-1, n); r++ {
			rows = append(rows, r)
		}
		if _, err := store.Claim(ctx, id, "bench", rows, time.Hour); err != nil {
			return err
		}
		if _, err := store.Stamp(ctx, id, "bench", rows); err != nil {
			return err
		}
		outs := make([]campaigns.Outcome, len(rows))
		for i, r := range rows {
			outs[i] = campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: pid(r)}
		}
		if _, err := store.Record(ctx, id, storage.ModeSend, "bench", outs); err != nil {
			return err
		}
	}
	return nil
}

func run(o options) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-webhooks-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // best effort: a temporary directory
	rdb, stopRedis, err := startRedis(dir, o.aof)
	if err != nil {
		return err
	}
	defer stopRedis()
	store := storage.New(rdb)
	pid := func(r int) string { return fmt.Sprintf("3333%016d", r) }
	fmt.Fprintf(os.Stderr, "seeding %d accepted messages...\n", o.n)
	if err := seed(ctx, store, "bench", o.n, pid); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	bodies := make([][]byte, o.n)
	sigs := make([]string, o.n)
	for i := range bodies {
		status := "delivered"
		if i%10 == 9 {
			status = "undelivered"
		}
		bodies[i] = []byte(fmt.Sprintf(`{"event":"smsDeliveryReport","message":null,"conversation":{"id":%q,"externalId":"ext-%d","status":%q,"reason":"Message delivered to handset","from":"OneRoute","to":"234803%07d","units":1,"delivered_time":"2026-12-03T06:00:02.000Z","createdAt":"2026-12-03T06:00:00.000Z"}}`, pid(i+1), i+1, status, i+1))
		sigs[i] = oneroute.WebhookSignature(secret, bodies[i])
	}

	recv := webhooks.NewReceiver(store, webhooks.ReceiverOptions{Secret: secret})
	recv.Start()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+webhooks.Path, recv)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // http.ErrServerClosed when closed below
	defer func() { srv.Close(); recv.Stop() }()
	actx, cancel := context.WithCancel(ctx)
	var applying sync.WaitGroup
	if o.apply {
		app := webhooks.NewApplier(store, webhooks.ApplierOptions{})
		applying.Add(1)
		go func() { defer applying.Done(); app.Run(actx) }() //nolint:errcheck // returns nil when actx ends
	}
	defer func() { cancel(); applying.Wait() }()

	url := "http://" + ln.Addr().String() + webhooks.Path
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.conns, MaxConnsPerHost: o.conns}, Timeout: 30 * time.Second}
	res := result{N: o.n, Rate: o.rate, Conns: o.conns, AOF: o.aof, LoadBefore: loadavg(), CPUs: runtime.NumCPU(), GoMaxProcs: runtime.GOMAXPROCS(0),
		StartedAtUTC: time.Now().UTC().Format(time.RFC3339)}
	lat := make([]time.Duration, o.n)
	var errs atomic.Int64
	jobs := make(chan int, o.n)
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
	}
	cpu0, rcpu0 := procCPU(), redisCPU(ctx, rdb)
	start := time.Now()
	interval := time.Duration(0)
	if o.rate > 0 {
		interval = time.Second / time.Duration(o.rate)
	}
	var wg sync.WaitGroup
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				due := start.Add(time.Duration(i) * interval)
				if interval == 0 {
					due = time.Now()
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
				req.Header.Set(oneroute.SignatureHeader, sigs[i])
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
				} else {
					if resp.StatusCode != http.StatusOK {
						errs.Add(1)
					}
					io.Copy(io.Discard, resp.Body) // to EOF, so the connection is reused
					resp.Body.Close()
				}
				lat[i] = time.Since(due)
			}
		}()
	}
	// The pacer releases event i at start + i*interval (open loop), waking
	// at most every millisecond and releasing every event due by then.
	for i := range o.n {
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > time.Millisecond {
				time.Sleep(d)
			}
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	received := time.Since(start)
	if o.profile != "" {
		pprof.StopCPUProfile()
	}
	res.Received = float64(o.n) / received.Seconds()
	res.Errors = errs.Load()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.P50MS, res.P90MS, res.P99MS, res.MaxMS = ms(lat[o.n/2]), ms(lat[o.n*9/10]), ms(lat[o.n*99/100]), ms(lat[o.n-1])
	if o.apply {
		for {
			p, err := store.Progress(ctx, "bench")
			if err != nil {
				return err
			}
			if int(p.Delivered+p.Undelivered) >= o.n {
				break
			}
			if time.Since(start) > 10*time.Minute {
				return fmt.Errorf("applier: %d of %d reports settled after 10 minutes", p.Delivered+p.Undelivered, o.n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		total := time.Since(start)
		res.Applied = float64(o.n) / total.Seconds()
		res.ApplyLagS = (total - received).Seconds()
	}
	cpu, rcpu := procCPU()-cpu0, redisCPU(ctx, rdb)-rcpu0
	res.ProcCPUUS = float64(cpu.Microseconds()) / float64(o.n)
	res.RedisCPUUS = float64(rcpu.Microseconds()) / float64(o.n)
	res.CoresAt5000 = (res.ProcCPUUS + res.RedisCPUUS) * 5000 / 1e6
	res.LoadAfter = loadavg()
	fmt.Printf("webhooks: %d events, target %d/s, %d connections, AOF %v\n", o.n, o.rate, o.conns, o.aof)
	fmt.Printf("  received  %.0f events/s, %d errors\n", res.Received, res.Errors)
	fmt.Printf("  latency   p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", res.P50MS, res.P90MS, res.P99MS, res.MaxMS)
	if o.apply {
		fmt.Printf("  applied   %.0f events/s end to end; last report settled %.2f s after the last was received\n", res.Applied, res.ApplyLagS)
	}
	fmt.Printf("  CPU       %.0f µs per event in this process (clients included), %.0f µs in redis-server: %.2f cores at 5,000 events/s\n", res.ProcCPUUS, res.RedisCPUUS, res.CoresAt5000)
	fmt.Printf("  machine   %d CPUs, load average %s before, %s after\n", res.CPUs, res.LoadBefore, res.LoadAfter)
	if o.out != "" {
		f, err := os.OpenFile(o.out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		return json.NewEncoder(f).Encode(res)
	}
	return nil
}
