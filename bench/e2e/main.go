// Command e2e runs issue 9's end-to-end delivery measurements the way a user
// meets fanout: a private redis-server on a free port and the OneRoute
// sandbox in its own process (both fresh for every run), `fanout dispatch`,
// then `fanout worker` processes, watched from outside until the campaign's
// last send and until it is completed. Beside them, in the same session, it
// runs the baselines bench/plain and bench/noop. It prints one JSON object
// per run (and appends it to -out) and a table of medians at the end.
//
// Scenarios (-scenarios, comma-separated, run in this order in every round):
//
//	fanout-sms  personalised SMS (one provider call per message), one worker
//	fanout-wa   WhatsApp templates, batch 50 (one call per 50), one worker
//	plain       bench/plain: one asynq task and one HTTP call per message
//	noop        bench/noop: the same tasks, a no-op handler
//	latency     one-recipient SMS campaigns enqueued one after the other
//	            with fanout dispatch (-latency-n): enqueue to accept, p50 and p99
//	pacing      a 3,000-message personalised SMS campaign and a 3,000-message
//	            WhatsApp template campaign (batch 50), both at -rate/-burst,
//	            on -workers worker processes, through bench/arrivals; reports
//	            arrivals per sender
//
// Example (binaries built first, see bench/NOTES-issue9.md):
//
//	go run ./bench/e2e -fanout /tmp/fanout -plain /tmp/plain -noop /tmp/noop \
//	    -scenarios fanout-sms,plain,noop,fanout-wa -runs 3 -n 100000 -out /tmp/e2e.jsonl
//
// Every process it starts is its own child, stopped by its pid; it never
// touches a Redis it did not start.
package main

import (
	"bufio"
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
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/bench/internal/measure"
	"github.com/fanoutdev/fanout/internal/gencsv"
)

const (
	smsChannel  = "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002" // the sandbox's SMS channel
	waNumber    = "2348000000001"                        // the sandbox's WhatsApp number
	apiKey      = "test_bench"                           // sandbox.KeyPrefix + anything
	smsTemplate = "Hi {{.first_name}}, your {{.discount}}% welcome discount is waiting. Reply STOP to opt out."
)

type options struct {
	fanout, workerBin, plain, noop, arrivals string
	scenarios                                []string
	runs, n, concurrency, workers            int
	pacingN, rate, burst, pacingBatch        int
	latencyN                                 int
	dlrMaxAge, dlrDelay, timeout             time.Duration
	untilComplete, aof                       bool
	redisArgs                                string
	profileDir, out, dir                     string
	workerEnv                                []string
}

func main() {
	var o options
	var scen, wenv string
	flag.StringVar(&o.fanout, "fanout", "/tmp/fanout", "fanout `binary` (go build -o /tmp/fanout ./cmd/fanout)")
	flag.StringVar(&o.workerBin, "worker-bin", "", "`binary` run as '<binary> worker' (default -fanout)")
	flag.StringVar(&o.plain, "plain", "/tmp/plain", "bench/plain `binary`")
	flag.StringVar(&o.noop, "noop", "/tmp/noop", "bench/noop `binary`")
	flag.StringVar(&o.arrivals, "arrivals", "/tmp/arrivals", "bench/arrivals `binary`")
	flag.StringVar(&scen, "scenarios", "fanout-sms,plain,noop,fanout-wa", "comma-separated scenarios")
	flag.IntVar(&o.runs, "runs", 3, "rounds of every scenario")
	flag.IntVar(&o.n, "n", 100_000, "messages per end-to-end run")
	flag.IntVar(&o.concurrency, "concurrency", 50, "asynq concurrency of plain and noop")
	flag.IntVar(&o.workers, "workers", 3, "worker processes in the pacing scenario")
	flag.IntVar(&o.latencyN, "latency-n", 100, "one-recipient campaigns in the latency scenario")
	flag.IntVar(&o.pacingN, "pacing-n", 3000, "messages per campaign in the pacing scenario")
	flag.IntVar(&o.rate, "rate", 200, "per_second of the pacing campaigns")
	flag.IntVar(&o.burst, "burst", 20, "burst of the pacing campaigns")
	flag.IntVar(&o.pacingBatch, "pacing-batch", 50, "batch_size of the pacing campaigns")
	flag.DurationVar(&o.dlrMaxAge, "dlr-max-age", 30*time.Second, "FANOUT_DLR_MAX_AGE of the workers (numbers ending in 9 never get a final report in the sandbox)")
	flag.DurationVar(&o.dlrDelay, "dlr-delay", 2*time.Second, "the sandbox's --dlr-delay")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a run after this long")
	flag.BoolVar(&o.untilComplete, "until-complete", true, "after the last send, wait until the SMS campaign is completed (delivery reports final)")
	flag.BoolVar(&o.aof, "aof", false, "run redis-server with appendonly yes, appendfsync everysec")
	flag.StringVar(&o.redisArgs, "redis-args", "", "extra redis-server arguments, space-separated (e.g. \"--hash-max-listpack-entries 0\")")
	flag.StringVar(&o.profileDir, "profile-dir", "", "ask the worker and the sandbox (FANOUT_CPU_PROFILE) for CPU profiles here, stopped at the last send")
	flag.StringVar(&o.out, "out", "", "append one JSON line per run to this `file`")
	flag.StringVar(&o.dir, "dir", "", "work `directory` (default a new temp dir)")
	flag.StringVar(&wenv, "worker-env", "", "extra worker environment, comma-separated KEY=VALUE")
	flag.Parse()
	o.scenarios = strings.Split(scen, ",")
	if wenv != "" {
		o.workerEnv = strings.Split(wenv, ",")
	}
	if o.workerBin == "" {
		o.workerBin = o.fanout
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

// Window is what happened from a worker's start (or a program's processing
// phase) to a point: the last send, or the campaign completed.
type Window struct {
	Seconds        float64 `json:"s"`
	MsgsPerS       float64 `json:"msgs_per_s"`
	WorkerCPU      float64 `json:"worker_cpu_s"`
	WorkerUs       float64 `json:"worker_cpu_us_per_msg"`
	RedisCPU       float64 `json:"redis_cpu_s"`
	RedisUs        float64 `json:"redis_cpu_us_per_msg"`
	SandboxCPU     float64 `json:"sandbox_cpu_s"`
	SandboxUs      float64 `json:"sandbox_cpu_us_per_msg"`
	Requests       int64   `json:"sandbox_requests"`
	SendRequests   int64   `json:"sandbox_send_requests"`
	OtherPerMsg    float64 `json:"sandbox_other_requests_per_msg"`
	StatusRate     float64 `json:"status_rate_per_s,omitempty"`
	WorkerHWMKB    int64   `json:"worker_peak_rss_kb,omitempty"`
	Delivered      int64   `json:"delivered,omitempty"`
	Undelivered    int64   `json:"undelivered,omitempty"`
	DLRExpired     int64   `json:"dlr_expired,omitempty"`
	SandboxAccepts int64   `json:"sandbox_accepted"`
	// Delivery-report requests by endpoint, from a sandbox that counts them
	// (dlr_requests and sms_list_requests in /sandbox/stats; absent from
	// sandboxes older than the dlr:sweep, whose other requests are the
	// per-message DLR reads).
	DLRRequests  int64 `json:"sandbox_dlr_requests"`
	ListRequests int64 `json:"sandbox_sms_list_requests"`
	// DLRPerMsg is (dlr + list requests) / messages when the sandbox counts
	// them, else OtherPerMsg.
	DLRPerMsg float64 `json:"dlr_requests_per_msg"`
	// SandboxStatus is the sandbox's own SMS outcomes at that point
	// (pending, delivered, undelivered), when it reports them, and
	// OutcomesMatch whether delivered, undelivered and dlr_expired equal
	// its delivered, undelivered and pending.
	SandboxStatus map[string]int64 `json:"sandbox_sms_status,omitempty"`
	OutcomesMatch *bool            `json:"outcomes_match,omitempty"`
}

// Memory is Redis' used_memory (INFO memory) before the dispatch, after it
// (every recipient a pending task) and at the last send (tasks gone, the
// ledger holding every recipient).
type Memory struct {
	Before         int64   `json:"before_bytes"`
	Dispatched     int64   `json:"dispatched_bytes"`
	Sent           int64   `json:"sent_bytes"`
	PerPendingTask float64 `json:"bytes_per_pending_recipient"`
	PerLedgerEntry float64 `json:"bytes_per_sent_recipient"`
}

// usedMemory reads Redis' used_memory.
func usedMemory(ctx context.Context, rdb *redis.Client) int64 {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// Result is one run.
type Result struct {
	Scenario string                      `json:"scenario"`
	Run      int                         `json:"run"`
	At       string                      `json:"at"`
	Load     string                      `json:"loadavg_before"`
	LoadEnd  string                      `json:"loadavg_after"`
	N        int                         `json:"n"`
	Dispatch *Window                     `json:"dispatch,omitempty"`
	Send     *Window                     `json:"to_last_send,omitempty"`
	Complete *Window                     `json:"to_completed,omitempty"`
	Baseline json.RawMessage             `json:"baseline,omitempty"`
	Commands map[string]measure.CmdDelta `json:"redis_commands_per_msg,omitempty"`
	Pacing   json.RawMessage             `json:"pacing,omitempty"`
	// Memory is Redis' used_memory around the run: bytes per pending
	// task after the dispatch, and per recipient once sent.
	Memory *Memory `json:"redis_memory,omitempty"`
	// Latency is the latency scenario's figures.
	Latency json.RawMessage `json:"latency,omitempty"`
	Profile string          `json:"profile,omitempty"`
	Error   string          `json:"error,omitempty"`
}

func run(o options) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "fanout-e2e-")
		if err != nil {
			return err
		}
		o.dir = d
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "e2e: work dir %s\n", o.dir)
	csvPath := filepath.Join(o.dir, "recipients.csv")
	if err := recipients(csvPath, max(o.n, o.pacingN), o.dir); err != nil {
		return err
	}
	var outF *os.File
	if o.out != "" {
		f, err := os.OpenFile(o.out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		outF = f
	}
	var all []Result
	for r := 1; r <= o.runs; r++ {
		for _, sc := range o.scenarios {
			res := Result{Scenario: sc, Run: r, At: time.Now().Format(time.RFC3339), Load: measure.LoadAvg(), N: o.n}
			var err error
			switch sc {
			case "fanout-sms", "fanout-wa":
				err = fanoutRun(o, &res, csvPath)
			case "plain", "noop":
				err = baselineRun(o, &res, csvPath)
			case "pacing":
				res.N = 2 * o.pacingN
				err = pacingRun(o, &res, csvPath)
			case "latency":
				err = latencyRun(o, &res, csvPath)
			default:
				err = fmt.Errorf("unknown scenario %q", sc)
			}
			res.LoadEnd = measure.LoadAvg()
			if err != nil {
				res.Error = err.Error()
				fmt.Fprintf(os.Stderr, "e2e: %s run %d: %v\n", sc, r, err)
			}
			b, _ := json.Marshal(res)
			fmt.Println(string(b))
			if outF != nil {
				if _, err := outF.Write(append(b, '\n')); err != nil {
					return err
				}
			}
			all = append(all, res)
		}
	}
	summary(os.Stderr, all)
	return nil
}

// recipients writes exactly n distinct valid recipients (phone,first_name,
// discount), the first n such rows of the dispatcher benchmark's generator
// (mixed formats 0803…, +234…, 234…, spaced; its invalid and duplicate
// rows dropped), so that every program sends the same n messages.
func recipients(path string, n int, dir string) error {
	raw := filepath.Join(dir, "gencsv.csv")
	if err := gencsv.Write(raw, n+n/10+1000); err != nil {
		return err
	}
	in, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	sc := bufio.NewScanner(in)
	sc.Scan()
	fmt.Fprintln(w, sc.Text())
	seen := map[string]bool{}
	k := 0
	for sc.Scan() && k < n {
		line := sc.Text()
		phone, _, _ := strings.Cut(line, ",")
		d := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, phone)
		switch {
		case len(d) == 11 && d[0] == '0':
			d = "234" + d[1:]
		case len(d) == 13 && strings.HasPrefix(d, "234"):
		default:
			continue
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		fmt.Fprintln(w, line)
		k++
	}
	if k < n {
		return fmt.Errorf("only %d recipients generated, want %d", k, n)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return out.Close()
}

// rig is one fresh private redis-server and sandbox process.
type rig struct {
	dir     string
	redis   *exec.Cmd
	rport   int
	rdb     *redis.Client
	sandbox *exec.Cmd
	sport   int
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func newRig(o options, name string) (*rig, error) {
	dir := filepath.Join(o.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &rig{dir: dir}
	var err error
	if r.rport, err = freePort(); err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(r.rport), "--bind", "127.0.0.1", "--save", "", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"), "--maxmemory-policy", "noeviction"}
	if o.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, strings.Fields(o.redisArgs)...)
	r.redis = exec.Command("redis-server", args...)
	if err := r.redis.Start(); err != nil {
		return nil, err
	}
	r.rdb = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.rport), PoolSize: 4})
	ok := false
	for i := 0; i < 200; i++ {
		if r.rdb.Ping(context.Background()).Err() == nil {
			ok = true
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if !ok {
		r.close()
		return nil, errors.New("redis-server did not start")
	}
	if r.sport, err = freePort(); err != nil {
		r.close()
		return nil, err
	}
	r.sandbox = exec.Command(o.fanout, "sandbox", "--addr", fmt.Sprintf("127.0.0.1:%d", r.sport), "--dlr-delay", o.dlrDelay.String())
	r.sandbox.Stderr, _ = os.Create(filepath.Join(dir, "sandbox.log"))
	if o.profileDir != "" {
		r.sandbox.Env = append(os.Environ(), "FANOUT_CPU_PROFILE="+filepath.Join(o.profileDir, "sandbox-"+name+".pprof"))
	}
	if err := r.sandbox.Start(); err != nil {
		r.close()
		return nil, err
	}
	for i := 0; i < 200; i++ {
		if _, err := r.stats(); err == nil {
			return r, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	r.close()
	return nil, errors.New("sandbox did not start")
}

func (r *rig) sandboxURL() string { return fmt.Sprintf("http://127.0.0.1:%d", r.sport) }
func (r *rig) redisURL() string   { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.rport) }

type sbStats struct {
	Requests     int64            `json:"requests"`
	SendRequests int64            `json:"send_requests"`
	Accepted     int64            `json:"accepted"`
	Duplicates   int64            `json:"duplicates"`
	DLRRequests  int64            `json:"dlr_requests"`
	ListRequests int64            `json:"sms_list_requests"`
	SMSStatus    map[string]int64 `json:"sms_status"`
}

func (r *rig) stats() (sbStats, error) {
	var s sbStats
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(r.sandboxURL() + "/sandbox/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func stop(c *exec.Cmd, grace time.Duration) {
	if c == nil || c.Process == nil || c.ProcessState != nil {
		return
	}
	c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		c.Process.Kill()
		<-done
	}
}

func (r *rig) close() {
	if r.rdb != nil {
		r.rdb.Close()
	}
	stop(r.sandbox, 5*time.Second)
	stop(r.redis, 5*time.Second)
}

// snap is a reading of every process's CPU and the sandbox's counters.
type snap struct {
	t                   time.Time
	worker, redis, sbox float64
	st                  sbStats
}

func (r *rig) snap(workers []*exec.Cmd) snap {
	s := snap{t: time.Now(), sbox: measure.ProcCPU(r.sandbox.Process.Pid)}
	for _, w := range workers {
		if c := measure.ProcCPU(w.Process.Pid); c > 0 {
			s.worker += c
		}
	}
	s.redis, _ = measure.RedisCPU(context.Background(), r.rdb)
	s.st, _ = r.stats()
	return s
}

func window(a, b snap, n int) *Window {
	w := &Window{
		Seconds: b.t.Sub(a.t).Seconds(), WorkerCPU: b.worker - a.worker, RedisCPU: b.redis - a.redis, SandboxCPU: b.sbox - a.sbox,
		Requests: b.st.Requests - a.st.Requests, SendRequests: b.st.SendRequests - a.st.SendRequests, SandboxAccepts: b.st.Accepted - a.st.Accepted,
	}
	f := float64(n)
	w.MsgsPerS = f / w.Seconds
	w.WorkerUs, w.RedisUs, w.SandboxUs = w.WorkerCPU*1e6/f, w.RedisCPU*1e6/f, w.SandboxCPU*1e6/f
	w.OtherPerMsg = float64(w.Requests-w.SendRequests) / f
	w.DLRRequests, w.ListRequests = b.st.DLRRequests-a.st.DLRRequests, b.st.ListRequests-a.st.ListRequests
	w.DLRPerMsg = w.OtherPerMsg
	if b.st.SMSStatus != nil { // a sandbox that counts requests by endpoint
		w.DLRPerMsg = float64(w.DLRRequests+w.ListRequests) / f
	}
	return w
}

func (o options) env(r *rig, baseURL string, extra ...string) []string {
	env := append(os.Environ(),
		"REDIS_URL="+r.redisURL(), "ONEROUTE_BASE_URL="+baseURL, "ONEROUTE_API_KEY="+apiKey,
		"LOG_FORMAT=json", "FANOUT_DLR_MAX_AGE="+o.dlrMaxAge.String())
	env = append(env, o.workerEnv...)
	return append(env, extra...)
}

func writeSpec(path, id, channel, csvPath, rate string, batch int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\nname: %s\nrecipients: %s\ndefault_region: NG\n", id, id, csvPath)
	switch channel {
	case "sms":
		fmt.Fprintf(&b, "channel: sms\nchannel_id: %s\nmessage: %q\n", smsChannel, smsTemplate)
	case "whatsapp":
		fmt.Fprintf(&b, "channel: whatsapp_template\nfrom: %q\ntemplate:\n  name: first_welcome_messsage\n  language: en\n  parameters:\n    - \"{{.first_name}}\"\n", waNumber)
	}
	if rate != "" {
		fmt.Fprintf(&b, "rate: %s\n", rate)
	}
	if batch > 0 {
		fmt.Fprintf(&b, "batch_size: %d\n", batch)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// dispatch runs `fanout dispatch --json` and returns its window (the
// dispatcher's own CPU in WorkerCPU).
func dispatch(o options, r *rig, spec string, n int, csvPath string) (*Window, error) {
	cmd := exec.Command(o.fanout, "dispatch", "--json", "--recipients", csvPath, spec)
	cmd.Env = o.env(r, r.sandboxURL())
	cmd.Stderr = io.Discard
	r0, _ := measure.RedisCPU(context.Background(), r.rdb)
	t0 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("dispatch: %v: %s", err, out)
	}
	wall := time.Since(t0).Seconds()
	r1, _ := measure.RedisCPU(context.Background(), r.rdb)
	var res struct {
		Valid int `json:"valid"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("dispatch output %q: %w", out, err)
	}
	if res.Total != n {
		return nil, fmt.Errorf("dispatch enqueued %d recipients, want %d: %s", res.Total, n, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	f := float64(n)
	return &Window{Seconds: wall, MsgsPerS: f / wall, WorkerCPU: cpu, WorkerUs: cpu * 1e6 / f, RedisCPU: r1 - r0, RedisUs: (r1 - r0) * 1e6 / f, WorkerHWMKB: ru.Maxrss}, nil
}

func startWorker(o options, r *rig, baseURL string, name string, extra ...string) (*exec.Cmd, error) {
	w := exec.Command(o.workerBin, "worker")
	w.Env = o.env(r, baseURL, extra...)
	lf, err := os.Create(filepath.Join(r.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	w.Stderr, w.Stdout = lf, lf
	return w, w.Start()
}

type counters map[string]int64

func progress(r *rig, id string) (counters, string, error) {
	fields := []string{"total", "dispatched", "sent", "failed", "unknown", "skipped", "delivered", "undelivered", "dlr_expired", "started_at", "settled_at"}
	v, err := r.rdb.HMGet(context.Background(), "fanout:{"+id+"}", append(fields, "state")...).Result()
	if err != nil {
		return nil, "", err
	}
	c := counters{}
	for i, f := range fields {
		if s, ok := v[i].(string); ok {
			c[f], _ = strconv.ParseInt(s, 10, 64)
		}
	}
	st, _ := v[len(fields)].(string)
	return c, st, nil
}

func (c counters) allSent() bool {
	return c["dispatched"] == 1 && c["total"] > 0 && c["sent"]+c["failed"]+c["unknown"]+c["skipped"] == c["total"]
}

func fanoutRun(o options, res *Result, csvPath string) error {
	channel := "sms"
	if res.Scenario == "fanout-wa" {
		channel = "whatsapp"
	}
	r, err := newRig(o, fmt.Sprintf("%s-%d", res.Scenario, res.Run))
	if err != nil {
		return err
	}
	defer r.close()
	id := fmt.Sprintf("bench-%s-%d", channel, res.Run)
	spec := filepath.Join(r.dir, "spec.yaml")
	if err := writeSpec(spec, id, channel, csvPath, "", 0); err != nil {
		return err
	}
	ctx := context.Background()
	mem := &Memory{Before: usedMemory(ctx, r.rdb)}
	res.Dispatch, err = dispatch(o, r, spec, o.n, csvPath)
	if err != nil {
		return err
	}
	mem.Dispatched = usedMemory(ctx, r.rdb)
	mem.PerPendingTask = float64(mem.Dispatched-mem.Before) / float64(o.n)
	res.Memory = mem
	cmd0, _ := measure.CommandStats(ctx, r.rdb)
	var extra []string
	if o.profileDir != "" {
		res.Profile = filepath.Join(o.profileDir, fmt.Sprintf("worker-%s-%d.pprof", res.Scenario, res.Run))
		extra = append(extra, "FANOUT_CPU_PROFILE="+res.Profile)
	}
	s0 := r.snap(nil)
	w, err := startWorker(o, r, r.sandboxURL(), "worker", extra...)
	if err != nil {
		return err
	}
	defer stop(w, 40*time.Second)
	workers := []*exec.Cmd{w}
	deadline := time.Now().Add(o.timeout)
	var c counters
	var st string
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("no last send after %s: %v", o.timeout, c)
		}
		if c, st, err = progress(r, id); err != nil {
			return err
		}
		if c.allSent() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s1 := r.snap(workers)
	if o.profileDir != "" {
		w.Process.Signal(syscall.SIGUSR1)
		r.sandbox.Process.Signal(syscall.SIGUSR1)
	}
	cmd1, _ := measure.CommandStats(ctx, r.rdb)
	res.Commands = measure.PerMessage(cmd0, cmd1, o.n)
	res.Send = window(s0, s1, o.n)
	// The last send by Redis' clock (settled_at), not by our polling.
	if c["settled_at"] > 0 {
		res.Send.Seconds = time.UnixMilli(c["settled_at"]).Sub(s0.t).Seconds()
		res.Send.MsgsPerS = float64(o.n) / res.Send.Seconds
	}
	if c["started_at"] > 0 && c["settled_at"] > c["started_at"] {
		res.Send.StatusRate = float64(o.n) / (float64(c["settled_at"]-c["started_at"]) / 1000)
	}
	res.Send.WorkerHWMKB = measure.ProcHWMKB(w.Process.Pid)
	mem.Sent = usedMemory(ctx, r.rdb)
	mem.PerLedgerEntry = float64(mem.Sent-mem.Before) / float64(o.n)
	if channel == "sms" && o.untilComplete {
		for st != "completed" {
			if time.Now().After(deadline) {
				return fmt.Errorf("not completed after %s: %v %s", o.timeout, c, st)
			}
			time.Sleep(100 * time.Millisecond)
			if c, st, err = progress(r, id); err != nil {
				return err
			}
		}
		s2 := r.snap(workers)
		res.Complete = window(s0, s2, o.n)
		res.Complete.WorkerHWMKB = measure.ProcHWMKB(w.Process.Pid)
		res.Complete.Delivered, res.Complete.Undelivered, res.Complete.DLRExpired = c["delivered"], c["undelivered"], c["dlr_expired"]
		if sms := s2.st.SMSStatus; sms != nil {
			res.Complete.SandboxStatus = sms
			match := c["delivered"] == sms["delivered"] && c["undelivered"] == sms["undelivered"] && c["dlr_expired"] == sms["pending"]
			res.Complete.OutcomesMatch = &match
			if !match {
				fmt.Fprintf(os.Stderr, "e2e: %s run %d: delivered %d, undelivered %d, dlr_expired %d; the sandbox has %v\n",
					res.Scenario, res.Run, c["delivered"], c["undelivered"], c["dlr_expired"], sms)
			}
		}
	}
	if s1.st.Duplicates != 0 {
		return fmt.Errorf("sandbox saw %d duplicates", s1.st.Duplicates)
	}
	return nil
}

func baselineRun(o options, res *Result, csvPath string) error {
	r, err := newRig(o, fmt.Sprintf("%s-%d", res.Scenario, res.Run))
	if err != nil {
		return err
	}
	defer r.close()
	bin := o.plain
	if res.Scenario == "noop" {
		bin = o.noop
	}
	cmd := exec.Command(bin, "-redis", fmt.Sprintf("127.0.0.1:%d", r.rport), "-sandbox", r.sandboxURL(),
		"-n", strconv.Itoa(o.n), "-concurrency", strconv.Itoa(o.concurrency), "-recipients", csvPath,
		"-sandbox-pid", strconv.Itoa(r.sandbox.Process.Pid))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %v", bin, err)
	}
	res.Baseline = json.RawMessage(strings.TrimSpace(string(out)))
	return nil
}

func pacingRun(o options, res *Result, csvPath string) error {
	r, err := newRig(o, fmt.Sprintf("%s-%d", res.Scenario, res.Run))
	if err != nil {
		return err
	}
	defer r.close()
	pport, err := freePort()
	if err != nil {
		return err
	}
	log := filepath.Join(r.dir, "arrivals.tsv")
	px := exec.Command(o.arrivals, "-listen", fmt.Sprintf("127.0.0.1:%d", pport), "-target", r.sandboxURL(), "-out", log)
	px.Stderr = os.Stderr
	if err := px.Start(); err != nil {
		return err
	}
	defer stop(px, 10*time.Second)
	pacingCSV := filepath.Join(r.dir, "pacing.csv")
	if err := head(csvPath, pacingCSV, o.pacingN); err != nil {
		return err
	}
	rate := fmt.Sprintf("{per_second: %d, burst: %d}", o.rate, o.burst)
	ids := []string{fmt.Sprintf("pace-sms-%d", res.Run), fmt.Sprintf("pace-wa-%d", res.Run)}
	for i, ch := range []string{"sms", "whatsapp"} {
		spec := filepath.Join(r.dir, ch+".yaml")
		if err := writeSpec(spec, ids[i], ch, pacingCSV, rate, o.pacingBatch); err != nil {
			return err
		}
		if _, err := dispatch(o, r, spec, o.pacingN, pacingCSV); err != nil {
			return err
		}
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", pport)); err == nil {
			c.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	var workers []*exec.Cmd
	for i := 0; i < o.workers; i++ {
		w, err := startWorker(o, r, fmt.Sprintf("http://127.0.0.1:%d", pport), fmt.Sprintf("worker%d", i))
		if err != nil {
			return err
		}
		workers = append(workers, w)
	}
	deadline := time.Now().Add(o.timeout)
	for _, id := range ids {
		for {
			c, _, err := progress(r, id)
			if err != nil {
				return err
			}
			if c.allSent() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not sent after %s: %v", id, o.timeout, c)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, w := range workers {
		stop(w, 40*time.Second)
	}
	stop(px, 10*time.Second)
	out, err := exec.Command(o.arrivals, "-analyze", log, "-limit", strconv.Itoa(o.rate), "-burst", strconv.Itoa(o.burst), "-json").Output()
	if err != nil {
		return fmt.Errorf("analyse arrivals: %v", err)
	}
	res.Pacing = json.RawMessage(strings.TrimSpace(string(out)))
	txt, _ := exec.Command(o.arrivals, "-analyze", log, "-limit", strconv.Itoa(o.rate), "-burst", strconv.Itoa(o.burst)).Output()
	fmt.Fprintf(os.Stderr, "pacing run %d (%s):\n%s", res.Run, log, txt)
	return nil
}

// head copies the header and the first n rows of a CSV.
func head(src, dst string, n int) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) < n+1 {
		return fmt.Errorf("%s has fewer than %d rows", src, n)
	}
	return os.WriteFile(dst, []byte(strings.Join(lines[:n+1], "")), 0o644)
}

// summary prints the median of each figure per scenario.
func summary(w io.Writer, all []Result) {
	type row struct{ rate, wus, rus, sus, other, dlr []float64 }
	rows := map[string]*row{}
	var order []string
	add := func(k string, rate, wus, rus, sus, other, dlr float64) {
		if rows[k] == nil {
			rows[k] = &row{}
			order = append(order, k)
		}
		x := rows[k]
		x.rate, x.wus, x.rus, x.sus, x.other = append(x.rate, rate), append(x.wus, wus), append(x.rus, rus), append(x.sus, sus), append(x.other, other)
		x.dlr = append(x.dlr, dlr)
	}
	for _, r := range all {
		if r.Error != "" {
			continue
		}
		switch {
		case r.Send != nil:
			add(r.Scenario+" (to last send)", r.Send.MsgsPerS, r.Send.WorkerUs, r.Send.RedisUs, r.Send.SandboxUs, r.Send.OtherPerMsg, r.Send.DLRPerMsg)
			if r.Complete != nil {
				add(r.Scenario+" (to completed)", r.Complete.MsgsPerS, r.Complete.WorkerUs, r.Complete.RedisUs, r.Complete.SandboxUs, r.Complete.OtherPerMsg, r.Complete.DLRPerMsg)
			}
		case r.Baseline != nil:
			var b struct {
				Process struct {
					PerS    float64 `json:"per_s"`
					CPUUs   float64 `json:"cpu_us_per_msg"`
					RedisUs float64 `json:"redis_cpu_us_per_msg"`
					SbUs    float64 `json:"sandbox_cpu_us_per_msg"`
				} `json:"process"`
			}
			json.Unmarshal(r.Baseline, &b) //nolint:errcheck // an old record without a baseline leaves b zero
			add(r.Scenario, b.Process.PerS, b.Process.CPUUs, b.Process.RedisUs, b.Process.SbUs, 0, 0)
		}
	}
	med := func(v []float64) string {
		s := slices.Clone(v)
		sort.Float64s(s)
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
		}
		return fmt.Sprintf("%.0f (%s)", s[len(s)/2], strings.Join(parts, "/"))
	}
	fmt.Fprintf(w, "\n%-28s %-28s %-22s %-22s %-22s %-14s %s\n", "scenario", "msgs/s", "worker µs/msg", "redis µs/msg", "sandbox µs/msg", "other req/msg", "dlr req/msg")
	for _, k := range order {
		x := rows[k]
		fmt.Fprintf(w, "%-28s %-28s %-22s %-22s %-22s %-14.3f %.4f\n", k, med(x.rate), med(x.wus), med(x.rus), med(x.sus), x.other[len(x.other)/2], x.dlr[len(x.dlr)/2])
	}
}
