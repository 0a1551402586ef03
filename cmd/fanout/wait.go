package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// Exit codes of fanout wait, documented in docs/cli.md (0, 1 and 2 are
// every command's).
const (
	exitWaitFailures  = 3 // finished, but some recipients failed, are unknown or skipped (or, --until completed, undelivered or expired)
	exitWaitCancelled = 4 // the campaign was cancelled
	exitWaitTimeout   = 5 // --timeout passed first
)

// exitCodeError ends a command with its own exit code, after printing msg
// on standard error when it is set.
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return e.msg }

func cmdWait(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "wait", "[flags] CAMPAIGN-ID", `
Blocks until a campaign is over, then exits with a code that says how it
ended, for scripts:

  0  completed (or sent, with --until sent) and every recipient sent, and
     with --until completed delivered (or read)
  1  error (Redis unreachable, ...)
  2  bad usage or no such campaign
  3  over, with recipients failed, unknown or skipped (--until completed:
     also undelivered or dlr_expired)
  4  cancelled
  5  --timeout passed first

It reads the campaign's counters in Redis every --interval. With --json it
prints the campaign's status object (as status --json) when it returns.`)
	cfgFile := configFlag(fs)
	until := fs.String("until", "completed", "the `state` to wait for: completed (every recipient final, delivery reports included) or sent (sending over)")
	timeout := fs.Duration("timeout", 0, "give up after this long (exit 5); 0 waits for ever")
	every := fs.Duration("interval", time.Second, "read the counters this often")
	asJSON := fs.Bool("json", false, "print the campaign's status object when done")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, "one campaign id"); err != nil {
		return err
	}
	if *until != "sent" && *until != "completed" {
		return &usageError{fmt.Sprintf("--until %q: want completed or sent", *until)}
	}
	if *every <= 0 || *timeout < 0 {
		return &usageError{"--interval must be positive and --timeout not negative"}
	}
	cfg, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	id, store := pos[0], storage.New(rdb)
	var deadline <-chan time.Time
	if *timeout > 0 {
		t := time.NewTimer(*timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		p, err := store.Progress(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return &inputError{fmt.Errorf("no campaign %q in Redis at %s", id, redisWhere(cfg.Redis))}
		}
		if err != nil {
			return err
		}
		over := p.Final() || (*until == "sent" && p.SendingOver())
		if over {
			if *asJSON {
				if err := json.NewEncoder(e.stdout).Encode(p); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(e.stdout, waitSummary(p))
			}
			return waitOutcome(p, *until == "completed")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			if *asJSON {
				json.NewEncoder(e.stdout).Encode(p)
			}
			return &exitCodeError{code: exitWaitTimeout, msg: fmt.Sprintf("fanout wait: campaign %s is still %s after %s (%d pending)", id, p.State, *timeout, p.Pending)}
		case <-tick.C:
		}
	}
}

// waitOutcome is the exit of fanout wait for a campaign that is over.
func waitOutcome(p campaigns.Progress, completed bool) error {
	switch {
	case p.State == campaigns.StateCancelled:
		return &exitCodeError{code: exitWaitCancelled}
	case p.Failed+p.Unknown+p.Skipped > 0, completed && p.Undelivered+p.DLRExpired > 0:
		return &exitCodeError{code: exitWaitFailures}
	}
	return nil
}

func waitSummary(p campaigns.Progress) string {
	s := fmt.Sprintf("campaign %s %s: %d of %d sent, %d failed, %d unknown, %d skipped", p.ID, p.State, p.Sent, p.Total, p.Failed, p.Unknown, p.Skipped)
	if p.Delivered+p.Undelivered+p.DLRExpired > 0 {
		s += fmt.Sprintf("; %d delivered, %d undelivered, %d dlr_expired", p.Delivered, p.Undelivered, p.DLRExpired)
	}
	return s
}
