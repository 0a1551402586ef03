// Package loadgen drives HTTP/1.1 load at one endpoint over keep-alive
// connections, with as little client-side work as possible (pre-built
// requests, no net/http client), so that on a small machine the server under
// test, not the generator, gets most of the CPU. It measures the sandbox's
// request rate (BenchmarkSandboxSMSSend and cmd/loadgen).
//
//	res, err := loadgen.Run(ctx, loadgen.Config{Addr: "127.0.0.1:8765", Conns: 64, Duration: 10 * time.Second})
//	fmt.Println(res)
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SMSPath is the sandbox's Send SMS endpoint on its seeded channel.
const SMSPath = "/api/public/channel/9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002/sms"

// Config describes a run.
type Config struct {
	// Addr is host:port of the server.
	Addr string
	// Path is the endpoint; default SMSPath.
	Path string
	// APIKey goes in the apiKey header; default "test_loadgen".
	APIKey string
	// Conns is the number of keep-alive connections, each with one request
	// in flight; default 64.
	Conns int
	// Duration bounds the run when Requests is 0; default 5s.
	Duration time.Duration
	// Requests, when positive, stops the run after that many requests.
	Requests int64
	// BodyFunc appends the body of request n to b; default an SMS to a
	// distinct number per request (so the server stores every one).
	BodyFunc func(b []byte, n uint64) []byte
}

// SMSBody appends a Send SMS body to one recipient, distinct for each n.
func SMSBody(b []byte, n uint64) []byte {
	b = append(b, `{"message":"Hello from fanout, your code is ready","recipients":["23480`...)
	var d [8]byte
	num := strconv.AppendUint(d[:0], n%100_000_000, 10)
	for range 8 - len(num) {
		b = append(b, '0')
	}
	b = append(b, num...)
	return append(b, `"]}`...)
}

// Result is what a run measured.
type Result struct {
	// Requests counts answered requests; OK those answered 2xx.
	Requests, OK int64
	// Errors counts connection failures.
	Errors int64
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
	// P50 and P99 are latency percentiles.
	P50, P99 time.Duration
}

// PerSecond is the rate of answered requests.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// String prints the result on one line.
func (r Result) String() string {
	return fmt.Sprintf("%d requests in %s: %.0f req/s, %d non-2xx, %d errors, p50 %s, p99 %s",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.PerSecond(), r.Requests-r.OK, r.Errors, r.P50, r.P99)
}

// Run drives load until ctx ends, Duration passes, or Requests are answered.
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Path == "" {
		c.Path = SMSPath
	}
	if c.APIKey == "" {
		c.APIKey = "test_loadgen"
	}
	if c.Conns <= 0 {
		c.Conns = 64
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.BodyFunc == nil {
		c.BodyFunc = SMSBody
	}
	if c.Requests <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	conns := make([]net.Conn, c.Conns)
	for i := range conns {
		conn, err := net.Dial("tcp", c.Addr)
		if err != nil {
			for _, x := range conns[:i] {
				x.Close()
			}
			return Result{}, fmt.Errorf("loadgen: dial %s: %w", c.Addr, err)
		}
		conns[i] = conn
	}
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fanout-loadgen\r\napiKey: %s\r\nContent-Type: application/json\r\nContent-Length: ", c.Path, c.Addr, c.APIKey)

	var (
		seq, left atomic.Int64
		res       Result
		mu        sync.Mutex
		lat       []time.Duration
		wg        sync.WaitGroup
	)
	left.Store(c.Requests)
	stop := context.AfterFunc(ctx, func() {
		for _, conn := range conns {
			conn.SetDeadline(time.Now()) //nolint:errcheck // unblock reads and writes
		}
	})
	defer stop()
	start := time.Now()
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			var w worker
			w.run(ctx, conn, head, c, &seq, &left)
			mu.Lock()
			res.Requests += w.requests
			res.OK += w.ok
			res.Errors += w.errors
			lat = append(lat, w.lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[len(lat)*99/100]
	}
	return res, nil
}

// worker runs requests one at a time on one connection.
type worker struct {
	requests, ok, errors int64
	lat                  []time.Duration // sampled, one in 16
}

func (w *worker) run(ctx context.Context, conn net.Conn, head []byte, c Config, seq, left *atomic.Int64) {
	br := bufio.NewReaderSize(conn, 16<<10)
	req := make([]byte, 0, 1024)
	body := make([]byte, 0, 512)
	for ctx.Err() == nil {
		if c.Requests > 0 && left.Add(-1) < 0 {
			return
		}
		n := uint64(seq.Add(1))
		body = c.BodyFunc(body[:0], n)
		req = append(req[:0], head...)
		req = strconv.AppendInt(req, int64(len(body)), 10)
		req = append(req, "\r\n\r\n"...)
		req = append(req, body...)
		t0 := time.Now()
		if _, err := conn.Write(req); err != nil {
			w.fail(ctx)
			return
		}
		status, err := readResponse(br)
		if err != nil {
			w.fail(ctx)
			return
		}
		w.requests++
		if status >= 200 && status < 300 {
			w.ok++
		}
		if n%16 == 0 {
			w.lat = append(w.lat, time.Since(t0))
		}
	}
}

func (w *worker) fail(ctx context.Context) {
	if ctx.Err() == nil {
		w.errors++
	}
}

var errMalformed = errors.New("malformed response")

// readResponse reads one response and returns its status. It understands
// Content-Length and chunked bodies, which is all a Go server sends.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, errMalformed
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, errMalformed
	}
	length, chunked := -1, false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, found := bytes.Cut(line, []byte(":")); found {
			v = bytes.TrimSpace(v)
			switch {
			case asciiEqualFold(k, "Content-Length"):
				if length, err = strconv.Atoi(string(v)); err != nil {
					return 0, errMalformed
				}
			case asciiEqualFold(k, "Transfer-Encoding"):
				chunked = asciiEqualFold(v, "chunked")
			}
		}
	}
	switch {
	case chunked:
		for {
			line, err = br.ReadSlice('\n')
			if err != nil {
				return 0, err
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if err != nil {
				return 0, errMalformed
			}
			if _, err := br.Discard(int(size) + 2); err != nil {
				return 0, err
			}
			if size == 0 {
				return status, nil
			}
		}
	case length >= 0:
		if _, err := br.Discard(length); err != nil {
			return 0, err
		}
		return status, nil
	}
	return 0, io.ErrUnexpectedEOF
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i]|0x20, s[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}
