package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
)

// startProfile starts a CPU profile of this process when FANOUT_CPU_PROFILE
// names a file, for measuring a running worker (docs/benchmarks.md). The
// profile is written on SIGUSR1 or when the returned stop is called,
// whichever comes first; stop is safe to call more than once and does
// nothing when no profile runs.
func startProfile(getenv func(string) string, stderr io.Writer) (stop func(), err error) {
	path := getenv("FANOUT_CPU_PROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("FANOUT_CPU_PROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("FANOUT_CPU_PROFILE: %w", err)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(usr1)
			close(done)
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintln(stderr, "FANOUT_CPU_PROFILE:", err)
				return
			}
			fmt.Fprintln(stderr, "CPU profile written to", path)
		})
	}
	go func() {
		select {
		case <-usr1:
			stop()
		case <-done:
		}
	}()
	return stop, nil
}
