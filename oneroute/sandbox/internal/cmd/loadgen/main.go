// Command loadgen measures how many Send SMS requests a second the OneRoute
// sandbox answers. It either targets a running sandbox
//
//	go run ./cmd/fanout sandbox --addr 127.0.0.1:8765 &
//	go run ./oneroute/sandbox/internal/cmd/loadgen -addr 127.0.0.1:8765 -c 64 -d 10s -runs 5
//
// or, without -addr, starts one in this process on a loopback listener.
// It prints each run and the median rate.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/oneroute/sandbox/internal/loadgen"
)

func main() {
	addr := flag.String("addr", "", "sandbox `host:port`; empty starts one in this process")
	conns := flag.Int("c", 64, "keep-alive connections")
	dur := flag.Duration("d", 5*time.Second, "duration of each run")
	runs := flag.Int("runs", 3, "number of runs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *conns, *dur, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, conns int, dur time.Duration, runs int) error {
	if addr == "" {
		sb := sandbox.New(sandbox.Options{})
		defer sb.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln) //nolint:errcheck // http.ErrServerClosed at exit
		defer srv.Close()
		addr = ln.Addr().String()
		fmt.Printf("sandbox in process on %s\n", addr)
	}
	var rates []float64
	for i := range runs {
		res, err := loadgen.Run(ctx, loadgen.Config{Addr: addr, Conns: conns, Duration: dur})
		if err != nil {
			return err
		}
		fmt.Printf("run %d: %s\n", i+1, res)
		rates = append(rates, res.PerSecond())
		if ctx.Err() != nil {
			break
		}
	}
	slices.Sort(rates)
	fmt.Printf("median: %.0f req/s over %d runs\n", rates[len(rates)/2], len(rates))
	return nil
}
