package sandbox_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/oneroute/sandbox/internal/loadgen"
)

// BenchmarkSandboxSMSSend measures Send SMS requests per second over a real
// loopback listener and 64 keep-alive connections, each request to a
// distinct number (so every one is stored). The load generator shares the
// CPUs, so the figure is a floor for the sandbox alone.
func BenchmarkSandboxSMSSend(b *testing.B) {
	sb := sandbox.New(sandbox.Options{})
	defer sb.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // http.ErrServerClosed at cleanup
	defer srv.Close()
	b.ResetTimer()
	res, err := loadgen.Run(context.Background(), loadgen.Config{Addr: ln.Addr().String(), Conns: 64, Requests: int64(b.N)})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.OK != int64(b.N) || res.Errors > 0 {
		b.Fatalf("%s", res)
	}
	b.ReportMetric(res.PerSecond(), "req/s")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
}

// nopWriter is a ResponseWriter that discards the answer.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkHandlerSMSSend measures the handler alone (routing, key check,
// parsing, storing, answering), without the network: the CPU the sandbox
// spends per Send SMS request besides net/http's own.
func BenchmarkHandlerSMSSend(b *testing.B) {
	sb := sandbox.New(sandbox.Options{})
	defer sb.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var body []byte
		rd := &bodyReader{}
		req, _ := http.NewRequest("POST", "http://sandbox"+loadgen.SMSPath, rd)
		req.Header.Set("apiKey", "test_bench")
		w := &nopWriter{h: http.Header{}}
		n := uint64(0)
		for pb.Next() {
			n++
			body = loadgen.SMSBody(body[:0], n)
			rd.b, rd.i = body, 0
			req.ContentLength = int64(len(body))
			clear(w.h)
			sb.ServeHTTP(w, req)
		}
	})
}

type bodyReader struct {
	b []byte
	i int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}

func (r *bodyReader) Close() error { return nil }
