package worker

import (
	"context"
	"time"
)

// senders runs provider calls on long-lived goroutines, at most max at once
// across the whole worker, whatever the number of tasks: the in-flight
// limit (Options.InFlight), apart from the task concurrency. A goroutine
// whose stack has grown to the depth of an HTTP call keeps it for the next
// call, instead of each message paying for a fresh goroutine's growth. A
// sender with nothing to do for senderIdle exits, so an idle worker (or a
// test) keeps no goroutines.
type senders struct {
	jobs chan func()
	// slots holds one token per live sender goroutine.
	slots chan struct{}
}

// senderIdle is how long a sender goroutine waits for its next call before
// it exits.
const senderIdle = 200 * time.Millisecond

func newSenders(max int) *senders {
	return &senders{jobs: make(chan func()), slots: make(chan struct{}, max)}
}

// do runs f on a sender goroutine: an idle one, or a new one while fewer
// than max run. It waits for one otherwise, and returns false without
// running f when ctx is done or stop is closed first.
func (s *senders) do(ctx context.Context, stop <-chan struct{}, f func()) bool {
	select {
	case s.jobs <- f:
		return true
	default:
	}
	select {
	case s.jobs <- f:
		return true
	case s.slots <- struct{}{}:
		go s.loop(f)
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

// loop runs f, then every call handed to it, until it has been idle for
// senderIdle.
func (s *senders) loop(f func()) {
	defer func() { <-s.slots }()
	idle := time.NewTimer(senderIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(senderIdle)
		select {
		case f = <-s.jobs:
		case <-idle.C:
			return
		}
	}
}
