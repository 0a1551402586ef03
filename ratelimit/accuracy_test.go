package ratelimit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/internal/redistest"
)

// The accuracy proof: worker processes sharing one Redis keep one sender
// under its limit together. The parent test starts the Redis and re-runs
// this test binary as each worker (TestAccuracyWorker, configured through
// the environment); each worker records the time of every permit it got,
// and the parent checks the merged record.

// Environment of a worker process.
const (
	envWorkerAddr  = "FANOUT_RL_WORKER_ADDR"  // Redis host:port; set only in workers
	envWorkerSpec  = "FANOUT_RL_WORKER_SPEC"  // rate,burst,maxN,goroutines
	envWorkerStart = "FANOUT_RL_WORKER_START" // start, Unix ns
	envWorkerEnd   = "FANOUT_RL_WORKER_END"   // end, Unix ns
	envWorkerOut   = "FANOUT_RL_WORKER_OUT"   // file for the "unix-ns n" lines
)

// accuracyRun is one measurement.
type accuracyRun struct {
	rate, burst int
	span        time.Duration
	procs       int
	goroutines  int // per process
	maxN        int // each request takes 1..maxN permits
	// slack is how far above rate+burst a sliding one-second window, and
	// above the GCRA bound the total, may go
	// (scheduling jitter between the permit and the timestamp).
	slack int
	// minShare is the least fraction of rate*span that must go.
	minShare float64
}

// grant is one permit grant seen by a worker.
type grant struct {
	at   int64 // Unix ns, when Wait returned
	n    int
	proc int
}

// Two processes hold a 200/s limit with burst 20 for 5 s: wide bounds, so
// it can run in `make test` on a busy machine, with miniredis or redis-server.
func TestTwoProcessAccuracy(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("5 s two-process run; skipped with -short")
	}
	srv := redistest.Start(t)
	runAccuracy(t, srv.Addr, accuracyRun{rate: 200, burst: 20, span: 5 * time.Second, procs: 2,
		goroutines: 6, maxN: 5, slack: 20, minShare: 0.80})
}

// Done-when of issue 5: two worker processes sharing one private
// redis-server hold 200/s (burst 20) on one sender in every one-second
// window, never above limit + burst, and sustain at least 97% of the limit
// over 60 seconds. Runs under `make chaos` (FANOUT_LONG=1).
func TestTwoProcessAccuracyLong(t *testing.T) {
	t.Parallel()
	if os.Getenv("FANOUT_LONG") != "1" {
		t.Skip("60 s two-process proof; set FANOUT_LONG=1 (make chaos)")
	}
	srv := redistest.StartWith(t, redistest.Options{RequireReal: true})
	runAccuracy(t, srv.Addr, accuracyRun{rate: 200, burst: 20, span: 60 * time.Second, procs: 2,
		goroutines: 8, maxN: 5, slack: 0, minShare: 0.97})
}

// TestAccuracyWorker is one worker process of runAccuracy; run directly it
// skips.
func TestAccuracyWorker(t *testing.T) {
	addr := os.Getenv(envWorkerAddr)
	if addr == "" {
		t.Skip("a worker process of TestTwoProcessAccuracy; not run on its own")
	}
	var rate, burst, maxN, goroutines int
	if _, err := fmt.Sscanf(os.Getenv(envWorkerSpec), "%d,%d,%d,%d", &rate, &burst, &maxN, &goroutines); err != nil {
		t.Fatalf("%s: %v", envWorkerSpec, err)
	}
	startNs, err1 := strconv.ParseInt(os.Getenv(envWorkerStart), 10, 64)
	endNs, err2 := strconv.ParseInt(os.Getenv(envWorkerEnd), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: goroutines + 2})
	defer rdb.Close()
	lim := NewRedis(rdb)
	l := Limit{PerSecond: rate, Burst: burst}

	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, endNs))
	defer cancel()
	// Open every connection before the start, so the first permits are not
	// timestamped late by a dial.
	var warm sync.WaitGroup
	for range goroutines {
		warm.Go(func() { rdb.Ping(ctx) })
	}
	warm.Wait()
	if !sleepUntil(ctx, time.Unix(0, startNs)) {
		t.Fatal("ended before the start")
	}

	var (
		mu     sync.Mutex
		grants []grant
		errs   []error
		wg     sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(g)))
			var mine []grant
			for ctx.Err() == nil {
				n := 1 + rng.IntN(maxN)
				err := Wait(ctx, lim, "sms:accuracy", l, n, 2*time.Second)
				var te *ThrottledError
				switch {
				case err == nil:
					mine = append(mine, grant{at: time.Now().UnixNano(), n: n})
				case errors.As(err, &te) && te.Err == nil:
					sleepUntil(ctx, time.Now().Add(te.RetryIn))
				case ctx.Err() != nil:
				default:
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			grants = append(grants, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, g := range grants {
		fmt.Fprintf(&buf, "%d %d\n", g.at, g.n)
	}
	if err := os.WriteFile(os.Getenv(envWorkerOut), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sleepUntil waits until at or ctx's end; it reports whether at came first.
func sleepUntil(ctx context.Context, at time.Time) bool {
	tm := time.NewTimer(time.Until(at))
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// runAccuracy runs r.procs worker processes against the Redis at addr and
// checks and prints what they were granted.
func runAccuracy(t *testing.T, addr string, r accuracyRun) {
	t.Helper()
	dir := t.TempDir()
	start := time.Now().Add(2 * time.Second) // time to start the processes and dial
	end := start.Add(r.span)
	ctx, cancel := context.WithDeadline(context.Background(), end.Add(30*time.Second))
	defer cancel()

	type proc struct {
		cmd *exec.Cmd
		out string
		log bytes.Buffer
	}
	procs := make([]*proc, r.procs)
	for i := range procs {
		p := &proc{out: filepath.Join(dir, fmt.Sprintf("grants-%d.txt", i))}
		p.cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAccuracyWorker$", "-test.count=1", "-test.v")
		p.cmd.Env = append(os.Environ(),
			envWorkerAddr+"="+addr,
			fmt.Sprintf("%s=%d,%d,%d,%d", envWorkerSpec, r.rate, r.burst, r.maxN, r.goroutines),
			fmt.Sprintf("%s=%d", envWorkerStart, start.UnixNano()),
			fmt.Sprintf("%s=%d", envWorkerEnd, end.UnixNano()),
			envWorkerOut+"="+p.out)
		p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start worker %d: %v", i, err)
		}
		procs[i] = p
	}
	var events []grant
	perProc := make([]int, r.procs)
	for i, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("worker %d (pid %d): %v\n%s", i, p.cmd.Process.Pid, err, p.log.String())
		}
		got, err := readGrants(p.out, i)
		if err != nil {
			t.Fatalf("worker %d: %v\n%s", i, err, p.log.String())
		}
		for _, g := range got {
			perProc[i] += g.n
		}
		events = append(events, got...)
	}
	slices.SortFunc(events, func(a, b grant) int { return int(a.at - b.at) })

	f := measure(events, start, r.span)
	limitTotal := float64(r.rate) * r.span.Seconds()
	ideal := float64(r.burst) + limitTotal
	t.Logf("%d processes x %d goroutines, one sender, limit %d/s, burst %d, %d..%d per request, %s",
		r.procs, r.goroutines, r.rate, r.burst, 1, r.maxN, r.span)
	t.Logf("total %d permits: %.1f%% of limit x time (%.0f), %.1f%% of the GCRA ideal burst + limit x time (%.0f); per process %v",
		f.total, 100*float64(f.total)/limitTotal, limitTotal, 100*float64(f.total)/ideal, ideal, perProc)
	t.Logf("one-second windows from the start: max %d, min %d, mean %.1f; sliding one-second max %d (limit + burst = %d)",
		f.winMax, f.winMin, f.winMean, f.slidingMax, r.rate+r.burst)
	t.Logf("per-window counts: %v", f.windows)

	if f.slidingMax > r.rate+r.burst+r.slack {
		t.Errorf("a one-second window held %d permits, above limit + burst %d (+%d slack)", f.slidingMax, r.rate+r.burst, r.slack)
	}
	// A grant is timed when Wait returns: on a loaded machine a permit
	// granted just before the start can return after it and count, so the
	// total gets the same slack as the windows (none in the long run).
	if bound := ideal + 1 + float64(r.slack); float64(f.total) > bound {
		t.Errorf("%d permits in %s, above the GCRA bound %.0f (+%d slack)", f.total, r.span, ideal+1, r.slack)
	}
	if float64(f.total) < r.minShare*limitTotal {
		t.Errorf("%d permits in %s, below %.0f%% of %.0f", f.total, r.span, 100*r.minShare, limitTotal)
	}
	for i, n := range perProc {
		if n < f.total/10 {
			t.Errorf("worker %d got %d of %d permits: the processes did not both send", i, n, f.total)
		}
	}
}

// figures are what a run saw.
type figures struct {
	total          int
	windows        []int // permits in each one-second window from the start
	winMax, winMin int
	winMean        float64
	slidingMax     int // most permits in any one-second window [t, t+1s)
}

func measure(events []grant, start time.Time, span time.Duration) figures {
	var f figures
	f.windows = make([]int, int(span/time.Second))
	s0 := start.UnixNano()
	for _, e := range events {
		f.total += e.n
		if i := int((e.at - s0) / int64(time.Second)); i >= 0 && i < len(f.windows) {
			f.windows[i] += e.n
		}
	}
	f.winMin = f.total
	for _, c := range f.windows {
		f.winMax, f.winMin = max(f.winMax, c), min(f.winMin, c)
	}
	f.winMean = float64(f.total) / span.Seconds()
	sum, j := 0, 0
	for i := range events {
		for j < len(events) && events[j].at < events[i].at+int64(time.Second) {
			sum += events[j].n
			j++
		}
		f.slidingMax = max(f.slidingMax, sum)
		sum -= events[i].n
	}
	return f
}

func readGrants(path string, proc int) ([]grant, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []grant
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		at, n, ok := strings.Cut(sc.Text(), " ")
		g := grant{proc: proc}
		var err1, err2 error
		g.at, err1 = strconv.ParseInt(at, 10, 64)
		g.n, err2 = strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		out = append(out, g)
	}
	return out, sc.Err()
}
