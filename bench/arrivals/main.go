// Command arrivals measures pacing where providers count it: on arrival.
// It is a reverse proxy put between the workers and the OneRoute sandbox
// that writes one line per request (arrival time in ns, method, path, and
// how many messages the request carries: recipients[] of an SMS or email,
// messages[] of a WhatsApp template) before forwarding it; and an analyser
// of such a file: per sender, the largest count of messages in any sliding
// one-second window, counts per fixed second, the shape of the arrivals
// (lumps of requests closer than -lump apart) and the sustained rate.
//
//	go run ./bench/arrivals -listen 127.0.0.1:8766 -target http://127.0.0.1:8765 -out /tmp/arrivals.tsv &
//	ONEROUTE_BASE_URL=http://127.0.0.1:8766 fanout worker ...
//	kill -TERM %1   # flushes the file
//	go run ./bench/arrivals -analyze /tmp/arrivals.tsv -limit 200 -burst 20
//
// The sandbox itself records no arrival times; timestamps here are taken
// when the proxy has read the request's headers, before the body is read.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8766", "proxy listen `address`")
	target := flag.String("target", "http://127.0.0.1:8765", "sandbox `URL` to forward to")
	out := flag.String("out", "arrivals.tsv", "arrival log `file`")
	analyze := flag.String("analyze", "", "analyse this arrival log `file` instead of proxying")
	limit := flag.Int("limit", 0, "per-second limit, to compare against (analysis)")
	burst := flag.Int("burst", 0, "burst, to compare against (analysis)")
	lump := flag.Duration("lump", 5*time.Millisecond, "requests closer than this belong to one lump (analysis)")
	asJSON := flag.Bool("json", false, "print the analysis as JSON")
	flag.Parse()
	if *analyze != "" {
		res, err := Analyze(*analyze, *limit, *burst, *lump)
		if err != nil {
			fmt.Fprintln(os.Stderr, "arrivals:", err)
			os.Exit(1)
		}
		if *asJSON {
			json.NewEncoder(os.Stdout).Encode(res)
			return
		}
		for _, s := range res {
			s.print(os.Stdout)
		}
		return
	}
	if err := proxy(*listen, *target, *out); err != nil {
		fmt.Fprintln(os.Stderr, "arrivals:", err)
		os.Exit(1)
	}
}

type arrival struct {
	ns     int64
	method string
	path   string
	n      int
}

func proxy(listen, target, out string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	lines := make(chan arrival, 1<<16)
	written := make(chan struct{})
	go func() {
		w := bufio.NewWriterSize(f, 1<<20)
		for a := range lines {
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\n", a.ns, a.method, a.path, a.n)
		}
		if err := errors.Join(w.Flush(), f.Close()); err != nil {
			fmt.Fprintln(os.Stderr, "arrivals: the log is incomplete:", err)
		}
		close(written)
	}()
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		n := 0
		if r.Method == http.MethodPost && r.Body != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			n = count(body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		lines <- arrival{ns: now, method: r.Method, path: r.URL.Path, n: n}
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // at exit, past its deadline
	}()
	fmt.Fprintf(os.Stderr, "arrivals: proxy on http://%s to %s, log %s\n", ln.Addr(), target, out)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	close(lines)
	<-written
	return nil
}

// count returns how many messages a send body carries: the length of
// recipients[] (SMS, email) or messages[] (WhatsApp template); 1 otherwise.
func count(body []byte) int {
	var v struct {
		Recipients []json.RawMessage `json:"recipients"`
		Messages   []json.RawMessage `json:"messages"`
	}
	if json.Unmarshal(body, &v) != nil {
		return 1
	}
	if n := len(v.Recipients) + len(v.Messages); n > 0 {
		return n
	}
	return 1
}

// Stream is the analysis of one sender's sends (one POST path).
type Stream struct {
	Path     string  `json:"path"`
	Requests int     `json:"requests"`
	Messages int     `json:"messages"`
	Seconds  float64 `json:"seconds"`
	// Rate is messages over the time from the first arrival to the last.
	Rate float64 `json:"rate_per_s"`
	// Sustained is the rate after the first second (the initial burst
	// excluded), and SustainedShare its share of the limit.
	Sustained      float64 `json:"sustained_per_s"`
	SustainedShare float64 `json:"sustained_share,omitempty"`
	// SlidingMax is the most messages in any window [t, t+1s) starting at an
	// arrival; Bound is limit + burst.
	SlidingMax int `json:"sliding_1s_max"`
	Bound      int `json:"bound,omitempty"`
	// Windows over time: messages per fixed second from the first arrival
	// (the last, partial second left out).
	WindowMin int `json:"window_min"`
	WindowP50 int `json:"window_p50"`
	WindowMax int `json:"window_max"`
	// Request sizes (messages per request) and lumps (requests closer than
	// the lump gap to the previous one): messages per lump, how long a lump
	// lasts from its first arrival to its last, and the time from one
	// lump's start to the next one's.
	ReqSizeMin      int     `json:"request_size_min"`
	ReqSizeP50      int     `json:"request_size_p50"`
	ReqSizeMax      int     `json:"request_size_max"`
	Lumps           int     `json:"lumps"`
	LumpMin         int     `json:"lump_min"`
	LumpP50         int     `json:"lump_p50"`
	LumpMax         int     `json:"lump_max"`
	LumpSpreadP50Ms float64 `json:"lump_spread_p50_ms"`
	LumpGapP50Ms    float64 `json:"lump_gap_p50_ms"`
	OverBurstLumps  int     `json:"lumps_over_burst"`
}

func (s Stream) print(w io.Writer) {
	fmt.Fprintf(w, "%s\n", s.Path)
	fmt.Fprintf(w, "  %d requests, %d messages in %.2fs: %.1f/s overall, %.1f/s after the first second", s.Requests, s.Messages, s.Seconds, s.Rate, s.Sustained)
	if s.SustainedShare > 0 {
		fmt.Fprintf(w, " (%.1f%% of the limit)", 100*s.SustainedShare)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  sliding 1-second window max %d", s.SlidingMax)
	if s.Bound > 0 {
		fmt.Fprintf(w, " (limit + burst = %d)", s.Bound)
	}
	fmt.Fprintf(w, "; fixed seconds min %d, p50 %d, max %d\n", s.WindowMin, s.WindowP50, s.WindowMax)
	fmt.Fprintf(w, "  messages per request min %d, p50 %d, max %d\n", s.ReqSizeMin, s.ReqSizeP50, s.ReqSizeMax)
	fmt.Fprintf(w, "  %d lumps (requests < gap apart): messages per lump min %d, p50 %d, max %d; %d lumps above the burst; lump spread p50 %.2f ms; gap between lumps p50 %.1f ms\n",
		s.Lumps, s.LumpMin, s.LumpP50, s.LumpMax, s.OverBurstLumps, s.LumpSpreadP50Ms, s.LumpGapP50Ms)
}

// Analyze reads an arrival log and analyses each POST path apart.
func Analyze(path string, limit, burst int, lumpGap time.Duration) ([]Stream, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	by := map[string][]arrival{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 4 || p[1] != http.MethodPost {
			continue
		}
		ns, _ := strconv.ParseInt(p[0], 10, 64)
		n, _ := strconv.Atoi(p[3])
		by[p[2]] = append(by[p[2]], arrival{ns: ns, method: p[1], path: p[2], n: n})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var out []Stream
	for path, as := range by {
		out = append(out, analyse(path, as, limit, burst, lumpGap))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func analyse(path string, as []arrival, limit, burst int, lumpGap time.Duration) Stream {
	slices.SortFunc(as, func(a, b arrival) int { return int(a.ns - b.ns) })
	s := Stream{Path: path, Requests: len(as)}
	sizes := make([]int, len(as))
	for i, a := range as {
		s.Messages += a.n
		sizes[i] = a.n
	}
	first, last := as[0].ns, as[len(as)-1].ns
	s.Seconds = float64(last-first) / 1e9
	if s.Seconds > 0 {
		s.Rate = float64(s.Messages) / s.Seconds
	}
	// Sliding window [t_i, t_i + 1s).
	j, sum := 0, 0
	for i := range as {
		for j < len(as) && as[j].ns < as[i].ns+int64(time.Second) {
			sum += as[j].n
			j++
		}
		s.SlidingMax = max(s.SlidingMax, sum)
		sum -= as[i].n
	}
	if limit > 0 {
		s.Bound = limit + max(burst, 0)
	}
	// Fixed seconds from the first arrival; the last partial one dropped.
	full := int((last - first) / int64(time.Second))
	if full > 0 {
		w := make([]int, full)
		after := 0
		for _, a := range as {
			k := int((a.ns - first) / int64(time.Second))
			if k < full {
				w[k] += a.n
			}
			if a.ns >= first+int64(time.Second) {
				after += a.n
			}
		}
		ws := slices.Clone(w)
		slices.Sort(ws)
		s.WindowMin, s.WindowP50, s.WindowMax = ws[0], ws[len(ws)/2], ws[len(ws)-1]
		if d := s.Seconds - 1; d > 0 {
			s.Sustained = float64(after) / d
		}
		if limit > 0 {
			s.SustainedShare = s.Sustained / float64(limit)
		}
	}
	slices.Sort(sizes)
	s.ReqSizeMin, s.ReqSizeP50, s.ReqSizeMax = sizes[0], sizes[len(sizes)/2], sizes[len(sizes)-1]
	// Lumps.
	var lumps, spreads []int
	var gaps []float64
	start, size := as[0].ns, as[0].n
	prev := as[0].ns
	for _, a := range as[1:] {
		if a.ns-prev < int64(lumpGap) {
			size += a.n
		} else {
			lumps = append(lumps, size)
			spreads = append(spreads, int(prev-start))
			gaps = append(gaps, float64(a.ns-start)/1e6)
			start, size = a.ns, a.n
		}
		prev = a.ns
	}
	lumps = append(lumps, size)
	spreads = append(spreads, int(prev-start))
	s.Lumps = len(lumps)
	for _, l := range lumps {
		if burst > 0 && l > burst {
			s.OverBurstLumps++
		}
	}
	slices.Sort(lumps)
	slices.Sort(spreads)
	slices.Sort(gaps)
	s.LumpMin, s.LumpP50, s.LumpMax = lumps[0], lumps[len(lumps)/2], lumps[len(lumps)-1]
	s.LumpSpreadP50Ms = float64(spreads[len(spreads)/2]) / 1e6
	if len(gaps) > 0 {
		s.LumpGapP50Ms = gaps[len(gaps)/2]
	}
	return s
}
