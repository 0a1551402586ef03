package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// run is the part of one bench/e2e result line the report reads.
type runResult struct {
	Step     string  `json:"step"`
	Scenario string  `json:"scenario"`
	Run      int     `json:"run"`
	Load     string  `json:"loadavg_before"`
	Error    string  `json:"error"`
	Dispatch *window `json:"dispatch"`
	Send     *window `json:"to_last_send"`
	Complete *window `json:"to_completed"`
	Baseline *struct {
		Enqueue struct {
			PerS    float64 `json:"per_s"`
			CPUUs   float64 `json:"cpu_us_per_msg"`
			RedisUs float64 `json:"redis_cpu_us_per_msg"`
		} `json:"enqueue"`
		Process struct {
			PerS      float64 `json:"per_s"`
			CPUUs     float64 `json:"cpu_us_per_msg"`
			RedisUs   float64 `json:"redis_cpu_us_per_msg"`
			SandboxUs float64 `json:"sandbox_cpu_us_per_msg"`
		} `json:"process"`
		MaxRSSKB int64 `json:"max_rss_kb"`
	} `json:"baseline"`
	Memory *struct {
		PerPending float64 `json:"bytes_per_pending_recipient"`
		PerSent    float64 `json:"bytes_per_sent_recipient"`
	} `json:"redis_memory"`
	Latency *struct {
		Campaigns int     `json:"campaigns"`
		P50       float64 `json:"p50_ms"`
		P99       float64 `json:"p99_ms"`
		Max       float64 `json:"max_ms"`
	} `json:"latency"`
	Pacing []pacing `json:"pacing"`
}

type window struct {
	Seconds     float64 `json:"s"`
	MsgsPerS    float64 `json:"msgs_per_s"`
	WorkerUs    float64 `json:"worker_cpu_us_per_msg"`
	RedisUs     float64 `json:"redis_cpu_us_per_msg"`
	SandboxUs   float64 `json:"sandbox_cpu_us_per_msg"`
	OtherPerMsg float64 `json:"sandbox_other_requests_per_msg"`
	HWMKB       int64   `json:"worker_peak_rss_kb"`
	Delivered   int64   `json:"delivered"`
	Undelivered int64   `json:"undelivered"`
	DLRExpired  int64   `json:"dlr_expired"`
}

type pacing struct {
	Path       string  `json:"path"`
	Messages   int     `json:"messages"`
	Sustained  float64 `json:"sustained_per_s"`
	Share      float64 `json:"sustained_share"`
	SlidingMax int     `json:"sliding_1s_max"`
	Bound      int     `json:"bound"`
	WindowMin  int     `json:"window_min"`
	WindowP50  int     `json:"window_p50"`
	WindowMax  int     `json:"window_max"`
	ReqMax     int     `json:"request_size_max"`
}

// Summary is the report's headline figures (medians over the rounds).
type Summary struct {
	Rounds int                `json:"rounds"`
	N      int                `json:"messages_per_run"`
	Rows   []Row              `json:"rows"`
	Pacing map[string][]Pace  `json:"pacing"`
	Errors []string           `json:"errors,omitempty"`
	Values map[string]float64 `json:"values"`
}

// Row is one line of the report's main table.
type Row struct {
	What     string  `json:"what"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
}

// Pace is one sender of a paced run.
type Pace struct {
	pacing
	Limit int `json:"limit"`
}

func summarise(raw []json.RawMessage) Summary {
	var runs []runResult
	s := Summary{Pacing: map[string][]Pace{}, Values: map[string]float64{}}
	for _, r := range raw {
		var x runResult
		if json.Unmarshal(r, &x) != nil {
			continue
		}
		if x.Error != "" {
			s.Errors = append(s.Errors, fmt.Sprintf("%s %s run %d: %s", x.Step, x.Scenario, x.Run, x.Error))
			continue
		}
		runs = append(runs, x)
	}
	med := func(scenario string, f func(runResult) (float64, bool)) float64 {
		var xs []float64
		for _, r := range runs {
			if r.Scenario == scenario {
				if v, ok := f(r); ok {
					xs = append(xs, v)
				}
			}
		}
		return median(xs)
	}
	// Ratios are taken within a round (side by side), then the median.
	ratio := func(a, b string, f func(runResult) (float64, bool)) float64 {
		by := map[int][2]float64{}
		for _, r := range runs {
			if r.Step != "side by side" {
				continue
			}
			v, ok := f(r)
			if !ok {
				continue
			}
			p := by[r.Run]
			switch r.Scenario {
			case a:
				p[0] = v
			case b:
				p[1] = v
			}
			by[r.Run] = p
		}
		var xs []float64
		for _, p := range by {
			if p[0] > 0 && p[1] > 0 {
				xs = append(xs, p[0]/p[1])
			}
		}
		s.Rounds = max(s.Rounds, len(xs))
		return median(xs)
	}
	rate := func(r runResult) (float64, bool) {
		switch {
		case r.Send != nil:
			return r.Send.MsgsPerS, true
		case r.Baseline != nil:
			return r.Baseline.Process.PerS, true
		}
		return 0, false
	}
	cpu := func(r runResult) (float64, bool) {
		switch {
		case r.Send != nil:
			return r.Send.WorkerUs + r.Send.RedisUs, true
		case r.Baseline != nil:
			return r.Baseline.Process.CPUUs + r.Baseline.Process.RedisUs, true
		}
		return 0, false
	}
	sms := med("fanout-sms", rate)
	add := func(key, what string, v float64, unit, base string, ratio float64, target string) {
		s.Values[key] = v
		s.Rows = append(s.Rows, Row{What: what, Value: v, Unit: unit, Baseline: base, Ratio: ratio, Target: target})
	}
	add("sms_msgs_per_s", "personalised SMS, 1 worker, worker start to last send", sms, "msgs/s",
		fmt.Sprintf("plain %.0f, noop %.0f", med("plain", rate), med("noop", rate)), ratio("fanout-sms", "plain", rate), "≥ 26,000 and ≥ 3× plain")
	add("sms_vs_noop", "same, against bare asynq with a no-op handler", ratio("fanout-sms", "noop", rate), "× noop", "", 0, "")
	add("sms_cpu_us", "CPU per personalised SMS, worker + Redis", med("fanout-sms", cpu), "µs/msg",
		fmt.Sprintf("plain %.0f", med("plain", cpu)), 0, "≤ 40")
	add("sms_sandbox_us", "the sandbox's own CPU per SMS (not fanout's)", med("fanout-sms", func(r runResult) (float64, bool) {
		return r.Send.SandboxUs, r.Send != nil
	}), "µs/msg", "", 0, "")
	add("wa_msgs_per_s", "batched WhatsApp templates (50 a call), 1 worker", med("fanout-wa", rate), "msgs/s", "", 0, "≥ 50,000")
	add("wa_cpu_us", "CPU per WhatsApp message, worker + Redis", med("fanout-wa", cpu), "µs/msg", "", 0, "")
	add("dispatch_per_s", "expansion from CSV (fanout dispatch, whole process)", med("fanout-sms", func(r runResult) (float64, bool) {
		return r.Dispatch.MsgsPerS, r.Dispatch != nil
	}), "recipients/s", fmt.Sprintf("plain Enqueue loop %.0f", med("plain", func(r runResult) (float64, bool) { return r.Baseline.Enqueue.PerS, r.Baseline != nil })), 0, "")
	add("dlr_requests_per_msg", "delivery-report requests per SMS, to completed", med("fanout-sms", func(r runResult) (float64, bool) {
		return r.Complete.OtherPerMsg, r.Complete != nil
	}), "requests/msg", "", 0, "≤ 0.1")
	add("worker_rss_mb", "worker peak RSS (largest of the runs)", maxOf(runs, func(r runResult) float64 {
		if r.Complete != nil {
			return float64(r.Complete.HWMKB) / 1024
		}
		if r.Send != nil {
			return float64(r.Send.HWMKB) / 1024
		}
		return 0
	}), "MB", "", 0, "≤ 100")
	add("dispatch_rss_mb", "dispatcher peak RSS (largest of the runs)", maxOf(runs, func(r runResult) float64 {
		if r.Dispatch != nil {
			return float64(r.Dispatch.HWMKB) / 1024
		}
		return 0
	}), "MB", "", 0, "")
	add("redis_bytes_pending", "Redis bytes per pending recipient (after dispatch)", med("fanout-sms", func(r runResult) (float64, bool) {
		return r.Memory.PerPending, r.Memory != nil
	}), "B", "", 0, "")
	add("redis_bytes_sent", "Redis bytes per sent recipient (ledger, counters)", med("fanout-sms", func(r runResult) (float64, bool) {
		return r.Memory.PerSent, r.Memory != nil
	}), "B", "", 0, "")
	for _, r := range runs {
		if r.Latency != nil {
			add("latency_p50_ms", "enqueue to accept, idle worker, p50", r.Latency.P50, "ms", "", 0, "")
			add("latency_p99_ms", "enqueue to accept, idle worker, p99", r.Latency.P99, "ms", "", 0, "")
		}
		if r.Scenario == "pacing" {
			limit := 200
			if r.Step == "pacing-1000" {
				limit = 1000
			}
			for _, p := range r.Pacing {
				s.Pacing[r.Step] = append(s.Pacing[r.Step], Pace{pacing: p, Limit: limit})
			}
		}
	}
	return s
}

func maxOf(runs []runResult, f func(runResult) float64) float64 {
	m := 0.0
	for _, r := range runs {
		m = max(m, f(r))
	}
	return m
}

// Markers of the generated section of docs/benchmarks.md.
const (
	beginMark = "<!-- bench/report: begin (generated by make bench; edits are overwritten) -->"
	endMark   = "<!-- bench/report: end -->"
)

func writeMarkdown(o options, res Results) error {
	var b strings.Builder
	m := res.Machine
	s := res.Summary
	fmt.Fprintf(&b, "%s\n## make bench report\n\n", beginMark)
	fmt.Fprintf(&b, "Taken %s at commit `%s` on %d cores (%s), %d MB of memory, %s, %s; load average %s at the start. ",
		m.Date, m.Commit, m.Cores, m.CPU, m.MemoryKB/1024, m.Go, m.Redis, m.LoadAvg)
	fmt.Fprintf(&b, "%d messages per end-to-end run, %d side-by-side rounds; medians, and ratios taken within a round. ", o.n, s.Rounds)
	b.WriteString("Each run has its own private redis-server and sandbox process; fanout runs as the `fanout` binary (dispatch, then one `fanout worker`). Raw figures: `bench/results.json`.\n\n")
	b.WriteString("| what | value | baseline, same rounds | ratio | issue 9 target |\n|---|---|---|---|---|\n")
	for _, r := range s.Rows {
		ratio := ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s |\n", r.What, num(r.Value), r.Unit, r.Baseline, ratio, r.Target)
	}
	b.WriteString("\n### Pacing at the provider (arrival times through bench/arrivals, 3 worker processes)\n\n")
	b.WriteString("| run | sender | messages | sliding 1 s max (bound) | fixed seconds min / p50 / max | sustained | largest request |\n|---|---|---|---|---|---|---|\n")
	for _, step := range []string{"pacing-200", "pacing-1000"} {
		for _, p := range s.Pacing[step] {
			fmt.Fprintf(&b, "| %s | `%s` | %d | %d (%d) | %d / %d / %d | %.1f/s (%.1f%% of %d) | %d |\n", step, p.Path, p.Messages,
				p.SlidingMax, p.Bound, p.WindowMin, p.WindowP50, p.WindowMax, p.Sustained, 100*p.Share, p.Limit, p.ReqMax)
		}
	}
	if len(res.Pacing["pacing-1000"]) > 0 {
		fmt.Fprintf(&b, "\n![send rate over time](%s)\n", relTo(o.md, o.svg))
	}
	if len(res.Micro) > 0 {
		b.WriteString("\n### Micro-benchmarks (`go test -bench`, -benchmem)\n\n| package | benchmark | ns/op | B/op | allocs/op |\n|---|---|---|---|---|\n")
		for _, mb := range res.Micro {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", strings.TrimPrefix(mb.Package, "github.com/fanoutdev/fanout/"), mb.Name, num(mb.NsOp), num(mb.BOp), num(mb.Allocs))
		}
	}
	if len(s.Errors) > 0 {
		b.WriteString("\n**Runs that failed** (left out of the figures):\n\n")
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	b.WriteString("\nCommands (bench/e2e flags; `make bench` builds the binaries into bench-out/bin):\n\n```\n")
	for _, c := range res.Commands {
		b.WriteString(c + "\n")
	}
	fmt.Fprintf(&b, "```\n%s\n", endMark)
	old, _ := os.ReadFile(o.md)
	doc := string(old)
	if i, j := strings.Index(doc, beginMark), strings.Index(doc, endMark); i >= 0 && j > i {
		doc = doc[:i] + b.String() + doc[j+len(endMark)+1:]
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + b.String()
	}
	return os.WriteFile(o.md, []byte(doc), 0o644)
}

// num prints a figure with sensible precision and thousands separators.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 0.1:
		return fmt.Sprintf("%.4f", v)
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 1000:
		return fmt.Sprintf("%.0f", v)
	}
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// relTo is target's path relative to the directory of from.
func relTo(from, target string) string {
	dir := from[:strings.LastIndex(from, "/")+1]
	return strings.TrimPrefix(target, dir)
}
