package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/worker"
)

func cmdRetryFailed(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "retry-failed", "[flags] CAMPAIGN-ID", `
Sends again, through the same ledger, the recipients of a campaign that
failed for a temporary reason: OneRoute kept answering 5xx (or refused the
connection) until FANOUT_MAX_ATTEMPTS ran out ("gave up after N attempts:
..."), or asynq gave up on their task ("abandoned after ..."). Recipients
refused for good (invalid number, validation errors) stay failed unless
--reason names their reason. Recipients accepted, unknown or skipped are
never sent again.

The campaign goes back to running (a paused one stays paused) and the
workers send the retried recipients as new tasks (<id>:b<n>x<round>); its
counters stay exact: failed goes down by the recipients retried, and they
count again once final. Prints how many recipients per reason are (with
--dry-run: would be) sent again, and the ones kept failed.

Works for recipients that failed under this version or later: the workers
keep the address and content of each failed recipient for it. Older ones
are counted as no_source and stay failed.`)
	cfgFile := configFlag(fs)
	var reasons []string
	fs.Func("reason", "also retry recipients that failed for this `reason` (a recorded reason starting with it matches); repeatable", func(s string) error {
		reasons = append(reasons, s)
		return nil
	})
	dry := fs.Bool("dry-run", false, "count what would be retried, change nothing")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, "one campaign id"); err != nil {
		return err
	}
	cfg, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	id, store := pos[0], storage.New(rdb)
	client := asynq.NewClientFromRedisClient(rdb)
	enq := worker.KeepCopies(client, store) // the auditor re-creates lost tasks from copies
	res, err := worker.RetryFailed(ctx, store, enq, id, worker.RetryOptions{
		Reasons: reasons, DryRun: *dry, BatchSize: cfg.Dispatch.BatchSize, TaskTimeout: cfg.Worker.TaskTimeout,
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return &inputError{fmt.Errorf("no campaign %q in Redis at %s", id, redisWhere(cfg.Redis))}
	case errors.Is(err, storage.ErrTransition):
		return &inputError{fmt.Errorf("cannot retry campaign %s: %w (a dispatching campaign is retried once expanded; a cancelled one never)", id, err)}
	case errors.Is(err, storage.ErrRoundTaken):
		return &inputError{fmt.Errorf("%w; run fanout retry-failed again once it is done", err)}
	case err != nil:
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	verb := "sent again"
	if res.DryRun {
		verb = "would be sent again"
	}
	fmt.Fprintf(e.stdout, "campaign %s: %d of %d failed recipients %s", id, res.Retried, res.Failed, verb)
	if res.Round > 0 {
		fmt.Fprintf(e.stdout, " (retry %d, %d tasks)", res.Round, res.Batches)
	}
	fmt.Fprintln(e.stdout)
	for _, r := range worker.SortedReasons(res.Reasons) {
		fmt.Fprintf(e.stdout, "  %6d  %s\n", res.Reasons[r], r)
	}
	if len(res.Kept) > 0 {
		fmt.Fprintln(e.stdout, "kept failed (permanent; name a reason with --reason to retry it):")
		for _, r := range worker.SortedReasons(res.Kept) {
			fmt.Fprintf(e.stdout, "  %6d  %s\n", res.Kept[r], r)
		}
	}
	if res.NoSource > 0 {
		fmt.Fprintf(e.stdout, "%d retryable recipients failed before their address was kept; they stay failed\n", res.NoSource)
	}
	if res.State != "" && !res.DryRun {
		fmt.Fprintf(e.stdout, "campaign state: %s\n", res.State)
	}
	return nil
}
