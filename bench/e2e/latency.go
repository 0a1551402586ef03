package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Latency is the latency scenario's result: how long a campaign enqueued by
// a script takes to reach OneRoute, with the worker otherwise idle.
type Latency struct {
	Campaigns int     `json:"campaigns"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	// PollIntervalMs is the worker's FANOUT_POLL_INTERVAL (default 200ms):
	// an idle worker looks for new tasks this often.
	PollIntervalMs float64 `json:"poll_interval_ms"`
}

// latencyRun enqueues latencyN one-recipient SMS campaigns one after the
// other with `fanout dispatch` against one running worker, and measures
// from the dispatch command's exit (the task is in Redis) to the
// recipient's outcome being recorded (OneRoute accepted it; settled_at, on
// Redis' clock, the same host clock), unthrottled.
func latencyRun(o options, res *Result, csvPath string) error {
	r, err := newRig(o, fmt.Sprintf("%s-%d", res.Scenario, res.Run))
	if err != nil {
		return err
	}
	defer r.close()
	w, err := startWorker(o, r, r.sandboxURL(), "worker")
	if err != nil {
		return err
	}
	defer stop(w, 40*time.Second)
	one := filepath.Join(r.dir, "one.csv")
	if err := head(csvPath, one, 1); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the worker start
	var ms []float64
	for i := range o.latencyN {
		id := fmt.Sprintf("lat-%d-%d", res.Run, i)
		spec := filepath.Join(r.dir, id+".yaml")
		if err := writeSpec(spec, id, "sms", one, "", 0); err != nil {
			return err
		}
		if _, err := dispatch(o, r, spec, 1, one); err != nil {
			return err
		}
		enqueued := time.Now()
		deadline := enqueued.Add(30 * time.Second)
		for {
			c, _, err := progress(r, id)
			if err != nil {
				return err
			}
			if c["settled_at"] > 0 {
				ms = append(ms, float64(time.UnixMilli(c["settled_at"]).Sub(enqueued).Microseconds())/1000)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("campaign %s not sent after 30s", id)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	slices.Sort(ms)
	q := func(p float64) float64 { return ms[min(len(ms)-1, int(p*float64(len(ms))))] }
	l := Latency{Campaigns: len(ms), P50Ms: q(0.5), P99Ms: q(0.99), MaxMs: ms[len(ms)-1], PollIntervalMs: 200}
	for _, kv := range o.workerEnv {
		if v, ok := strings.CutPrefix(kv, "FANOUT_POLL_INTERVAL="); ok {
			if d, err := time.ParseDuration(v); err == nil {
				l.PollIntervalMs = float64(d.Milliseconds())
			}
		}
	}
	res.N = len(ms)
	b, _ := json.Marshal(l)
	res.Latency = b
	fmt.Fprintf(os.Stderr, "latency run %d: %d campaigns, enqueue to accept p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", res.Run, l.Campaigns, l.P50Ms, l.P99Ms, l.MaxMs)
	return nil
}
