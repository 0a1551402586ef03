package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// notifyContext returns a context that the first signal on ch cancels, so
// every command stops gracefully (a worker finishes and records its sends, a
// dispatch saves its checkpoint), with one line on stderr saying so.
//
// A second signal calls exit at once, whatever the process is doing: work
// stuck in a read or a slow send must never make Ctrl-C or SIGTERM useless.
// The exit code is 128 + the signal's number (130 for SIGINT, 143 for
// SIGTERM), as a shell reports a process the signal killed. Work in
// progress is recovered by the next run: a rerun dispatch resumes from its
// checkpoint, and asynq gives a worker's unfinished tasks to another worker,
// which looks up the sends OneRoute already accepted before it sends again.
//
// stop releases the goroutine that watches ch; it does not stop the delivery
// of signals to ch (signal.Stop does).
func notifyContext(parent context.Context, ch <-chan os.Signal, exit func(int), stderr io.Writer) (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	go func() {
		var sig os.Signal
		select {
		case sig = <-ch:
		case <-ctx.Done():
			return // finished, or the parent was cancelled
		case <-done:
			return
		}
		fmt.Fprintf(stderr, "fanout: stopping (%s); %s again to exit at once\n", sig, again(sig))
		cancel()
		select {
		case sig = <-ch:
		case <-done:
			return
		}
		fmt.Fprintf(stderr, "fanout: second signal (%s), exiting now; work in progress is recovered by the next run "+
			"(dispatch resumes from its checkpoint, asynq retries a worker's unfinished tasks)\n", sig)
		exit(signalExitCode(sig))
	}()
	release := sync.OnceFunc(func() { close(done) })
	return ctx, func() {
		release()
		cancel()
	}
}

// again says how to send the signal a second time.
func again(sig os.Signal) string {
	if sig == os.Interrupt {
		return "press Ctrl-C"
	}
	return "send it"
}

// signalExitCode is 128 + the signal's number: 130 for SIGINT, 143 for
// SIGTERM.
func signalExitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitError
}
