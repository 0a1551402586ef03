// Command report runs fanout's benchmark scenarios beside their baselines
// and writes the report: a generated section of docs/benchmarks.md, the
// machine-readable bench/results.json, and a plot of the send rate of a
// paced run (docs/bench-pacing.svg). `make bench` runs it; every figure in
// the report comes from this run, on this machine, with the commands
// printed beside it.
//
//	go run ./bench/report -bin bench-out/bin [-runs 3] [-n 100000] [-quick]
//
// The binaries in -bin are fanout, e2e, plain, noop and arrivals (make
// bench builds them). Each end-to-end scenario runs in its own rig: a
// private redis-server, a sandbox process and fanout processes, as a user
// runs them (see bench/e2e).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

type options struct {
	bin, md, out, svg, dir string
	reuse                  string
	runs, n                int
	quick, micro           bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bench-out/bin", "`directory` holding fanout, e2e, plain, noop and arrivals")
	flag.StringVar(&o.md, "md", "docs/benchmarks.md", "Markdown `file` whose generated section is replaced")
	flag.StringVar(&o.out, "json", "bench/results.json", "results `file`")
	flag.StringVar(&o.svg, "svg", "docs/bench-pacing.svg", "send-rate plot `file`")
	flag.StringVar(&o.dir, "dir", "", "work `directory` (default a new temp dir; kept)")
	flag.StringVar(&o.reuse, "reuse", "", "take the end-to-end results from this earlier work `directory` instead of running them again (its <step>.jsonl files and arrival logs)")
	flag.IntVar(&o.runs, "runs", 3, "rounds of each end-to-end scenario (medians are reported)")
	flag.IntVar(&o.n, "n", 100000, "messages per end-to-end run")
	flag.BoolVar(&o.quick, "quick", false, "one round of 20,000 messages, shorter paced runs (a smoke test of the report)")
	flag.BoolVar(&o.micro, "micro", true, "also run the go test -bench micro-benchmarks with -benchmem")
	flag.Parse()
	if o.quick {
		o.runs, o.n = 1, 20000
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// Results is bench/results.json.
type Results struct {
	Machine  Machine             `json:"machine"`
	Commands []string            `json:"commands"`
	Summary  Summary             `json:"summary"`
	Runs     []json.RawMessage   `json:"runs"`
	Micro    []Micro             `json:"micro_benchmarks,omitempty"`
	Pacing   map[string][]Series `json:"send_rate_series,omitempty"`
}

// Machine is where and when the figures were taken.
type Machine struct {
	Date     string `json:"date"`
	Commit   string `json:"commit"`
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryKB int64  `json:"memory_kb"`
	Go       string `json:"go"`
	Redis    string `json:"redis"`
	LoadAvg  string `json:"loadavg_at_start"`
}

// Micro is one go test -bench line.
type Micro struct {
	Package string  `json:"package"`
	Name    string  `json:"name"`
	NsOp    float64 `json:"ns_per_op"`
	BOp     float64 `json:"bytes_per_op"`
	Allocs  float64 `json:"allocs_per_op"`
	Line    string  `json:"line"`
}

// Series is a send rate over time: messages per 100 ms bucket from the
// first arrival, for one sender.
type Series struct {
	Path    string `json:"path"`
	Buckets []int  `json:"per_100ms"`
}

func run(o options) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "fanout-report-")
		if err != nil {
			return err
		}
		o.dir = d
	}
	fmt.Fprintf(os.Stderr, "report: work dir %s\n", o.dir)
	res := Results{Machine: machine()}
	e2e := filepath.Join(o.bin, "e2e")
	common := []string{"-fanout", filepath.Join(o.bin, "fanout"), "-plain", filepath.Join(o.bin, "plain"),
		"-noop", filepath.Join(o.bin, "noop"), "-arrivals", filepath.Join(o.bin, "arrivals")}
	pacingN := 10000
	if o.quick {
		pacingN = 3000
	}
	steps := []struct {
		name string
		args []string
	}{
		{"side by side", []string{"-scenarios", "fanout-sms,plain,noop,fanout-wa", "-runs", strconv.Itoa(o.runs), "-n", strconv.Itoa(o.n), "-dlr-max-age", "30s"}},
		{"latency", []string{"-scenarios", "latency", "-runs", "1", "-latency-n", "100"}},
		{"pacing-1000", []string{"-scenarios", "pacing", "-runs", "1", "-workers", "3", "-rate", "1000", "-burst", "100", "-pacing-n", strconv.Itoa(pacingN)}},
		{"pacing-200", []string{"-scenarios", "pacing", "-runs", "1", "-workers", "3", "-rate", "200", "-burst", "20", "-pacing-n", "3000"}},
	}
	for _, st := range steps {
		dir := filepath.Join(o.dir, st.name)
		args := append(append(slices.Clone(common), st.args...), "-dir", dir)
		res.Commands = append(res.Commands, "e2e "+strings.Join(st.args, " "))
		fmt.Fprintf(os.Stderr, "report: %s: %s %s\n", st.name, e2e, strings.Join(args, " "))
		var out []byte
		var err error
		if o.reuse != "" {
			dir = filepath.Join(o.reuse, st.name)
			out, err = os.ReadFile(filepath.Join(o.reuse, st.name+".jsonl"))
		} else {
			cmd := exec.Command(e2e, args...)
			cmd.Stderr = os.Stderr
			out, err = cmd.Output()
		}
		if err != nil {
			return fmt.Errorf("%s: %v", st.name, err)
		}
		if err := os.WriteFile(filepath.Join(o.dir, st.name+".jsonl"), out, 0o644); err != nil {
			return err
		}
		for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
			if len(line) > 0 && line[0] == '{' {
				res.Runs = append(res.Runs, tag(line, st.name))
			}
		}
		if st.name == "pacing-1000" {
			s, err := series(filepath.Join(dir, "pacing-1", "arrivals.tsv"))
			if err != nil {
				return err
			}
			res.Pacing = map[string][]Series{"pacing-1000": s}
		}
	}
	if o.micro {
		m, cmdline, err := micro()
		if err != nil {
			return err
		}
		res.Micro = m
		res.Commands = append(res.Commands, cmdline)
	}
	res.Summary = summarise(res.Runs)
	res.Summary.N = o.n
	if err := writeJSON(o.out, res); err != nil {
		return err
	}
	if s := res.Pacing["pacing-1000"]; len(s) > 0 {
		if err := os.WriteFile(o.svg, []byte(plot(s, 1000)), 0o644); err != nil {
			return err
		}
	}
	return writeMarkdown(o, res)
}

// tag adds the report step's name to one e2e result line.
func tag(line []byte, step string) json.RawMessage {
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		return json.RawMessage(line)
	}
	m["step"] = step
	b, _ := json.Marshal(m)
	return b
}

func machine() Machine {
	m := Machine{Date: time.Now().UTC().Format(time.RFC3339), Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			m.MemoryKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if b, err := exec.Command("redis-server", "--version").Output(); err == nil {
		m.Redis = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

// micro runs the hot paths' go test benchmarks with -benchmem.
func micro() ([]Micro, string, error) {
	pkgs := []string{"./oneroute/", "./worker/", "./campaigns/", "./ratelimit/", "./dispatcher/", "./oneroute/sandbox/"}
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", "200ms", "-count", "1"}, pkgs...)
	cmdline := "go " + strings.Join(args, " ")
	fmt.Fprintln(os.Stderr, "report:", cmdline)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, cmdline, fmt.Errorf("micro-benchmarks: %v\n%s", err, out)
	}
	var ms []Micro
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, "pkg: "); ok {
			pkg = v
			continue
		}
		if !strings.HasPrefix(l, "Benchmark") {
			continue
		}
		f := strings.Fields(l)
		m := Micro{Package: pkg, Name: f[0], Line: l}
		for i := 2; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseFloat(f[i], 64)
			switch f[i+1] {
			case "ns/op":
				m.NsOp = v
			case "B/op":
				m.BOp = v
			case "allocs/op":
				m.Allocs = v
			}
		}
		ms = append(ms, m)
	}
	return ms, cmdline, nil
}

// series reads bench/arrivals' log (ns, method, path, messages per line)
// into messages per 100 ms per path, from the first arrival.
func series(path string) ([]Series, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type arr struct {
		ns   int64
		path string
		n    int
	}
	var all []arr
	t0 := int64(math.MaxInt64)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			continue
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		n, _ := strconv.Atoi(f[3])
		if n == 0 || !strings.Contains(f[2], "/sms") && !strings.Contains(f[2], "/template") {
			continue
		}
		all = append(all, arr{ns, f[2], n})
		t0 = min(t0, ns)
	}
	by := map[string][]int{}
	for _, a := range all {
		i := int((a.ns - t0) / int64(100*time.Millisecond))
		s := by[a.path]
		for len(s) <= i {
			s = append(s, 0)
		}
		s[i] += a.n
		by[a.path] = s
	}
	var out []Series
	for p, s := range by {
		out = append(out, Series{Path: p, Buckets: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// median of xs (0 when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// plot draws the send rate (messages per second over a sliding second,
// sampled every 100 ms) of each sender against the limit, as SVG.
func plot(ss []Series, limit int) string {
	const w, h, pad = 760.0, 300.0, 44.0
	n := 0
	for _, s := range ss {
		n = max(n, len(s.Buckets))
	}
	rates := make([][]float64, len(ss))
	top := float64(limit) * 1.3
	for k, s := range ss {
		r := make([]float64, len(s.Buckets))
		for i := range s.Buckets {
			sum := 0
			for j := max(0, i-9); j <= i; j++ {
				sum += s.Buckets[j]
			}
			r[i] = float64(sum)
			top = max(top, r[i]*1.1)
		}
		rates[k] = r
	}
	x := func(i int) float64 { return pad + (w-2*pad)*float64(i)/float64(max(n-1, 1)) }
	y := func(v float64) float64 { return h - pad - (h-2*pad)*v/top }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="16" font-size="13">Arrivals at the provider, per sliding second, 3 worker processes, limit %d/s per sender</text>`+"\n", pad, limit)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#c00" stroke-dasharray="4 3"/><text x="%.0f" y="%.1f" fill="#c00">limit %d/s</text>`+"\n",
		pad, y(float64(limit)), w-pad, y(float64(limit)), w-pad-60, y(float64(limit))-4, limit)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333"/><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333"/>`+"\n",
		pad, h-pad, w-pad, h-pad, pad, pad, pad, h-pad)
	for v := 0.0; v <= top; v += top / 4 {
		fmt.Fprintf(&b, `<text x="4" y="%.1f">%.0f</text>`+"\n", y(v)+4, v)
	}
	for i := 0; i < n; i += 50 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f">%ds</text>`+"\n", x(i)-6, h-pad+16, i/10)
	}
	colours := []string{"#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"}
	for k, r := range rates {
		var pts []string
		for i, v := range r {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		c := colours[k%len(colours)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", pad+10, pad+14*float64(k+1), c, ss[k].Path)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
