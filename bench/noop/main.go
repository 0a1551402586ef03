// Command noop is bare asynq: the same one-task-per-message tasks as
// bench/plain, and a handler that does nothing. It bounds what any
// one-task-per-message design can reach on this machine; see
// bench/internal/baseline.
//
//	go run ./bench/noop -redis 127.0.0.1:6390 -n 100000 -concurrency 50 -recipients /tmp/r.csv
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/fanoutdev/fanout/bench/internal/baseline"
)

func main() {
	c := baseline.Flags(flag.CommandLine, "noop")
	flag.Parse()
	noop := func(context.Context, *baseline.Message, *baseline.Counters) error { return nil }
	if err := baseline.Run(c, noop); err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}
