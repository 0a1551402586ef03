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

// controlCommands are pause, resume and cancel: atomic state changes that
// every worker obeys at its next task of the campaign.
func controlCommand(action string) func(ctx context.Context, e *env, args []string) error {
	about := map[string]string{
		"pause": `
Pauses a dispatching, running or sent campaign fleet-wide: workers claim none
of its recipients until 'fanout resume'. Sends already on the wire finish and
are recorded; delivery reports are still read. A paused campaign past its
schedule.expires_at skips what is left.`,
		"resume": `
Resumes a paused campaign, whether an operator or a worker paused it (for
example after OneRoute refused the API key: fix the key first). A campaign
with nothing left to send goes on to sent or completed.`,
		"cancel": `
Cancels a campaign for good: recipients not yet sent are skipped at once,
whatever became of their tasks; sends already on the wire finish and are
recorded. A sent campaign awaits its delivery reports no more: it is final
at once (reports read later still count).`,
	}[action]
	return func(ctx context.Context, e *env, args []string) error {
		fs := newFlags(e, action, "[flags] CAMPAIGN-ID", about)
		cfgFile := configFlag(fs)
		asJSON := fs.Bool("json", false, "print the campaign's status object afterwards")
		def := "by an operator"
		if action == "resume" {
			def = "resumed by an operator"
		}
		reason := fs.String("reason", def, "why, recorded with the state change and shown by status until the next one")
		id, store, notFound, closeStore, err := campaignStore(ctx, e, fs, cfgFile, args)
		if err != nil {
			return err
		}
		defer closeStore()
		var st campaigns.State
		switch action {
		case "pause":
			st, err = store.Pause(ctx, id, *reason)
		case "resume":
			st, err = store.Resume(ctx, id, *reason)
		case "cancel":
			st, err = store.Cancel(ctx, id, *reason)
		}
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return notFound()
		case errors.Is(err, storage.ErrTransition):
			return &inputError{fmt.Errorf("cannot %s campaign %s: it is %s", action, id, st)}
		case err != nil:
			return err
		}
		var settled storage.Settled
		if action == "cancel" {
			// Skip every recipient not yet sent now, whatever became of its
			// task; requests on the wire are left to their attempt.
			if settled, err = store.SettleCancelled(ctx, id, time.Time{}); err != nil {
				return fmt.Errorf("campaign %s is cancelled, but settling its recipients failed (a worker finishes it): %w", id, err)
			}
		}
		if *asJSON {
			p, err := store.Progress(ctx, id)
			if err != nil {
				return err
			}
			return json.NewEncoder(e.stdout).Encode(p)
		}
		fmt.Fprintf(e.stdout, "campaign %s is now %s\n", id, st)
		if settled.Skipped > 0 {
			fmt.Fprintf(e.stdout, "%d recipients skipped\n", settled.Skipped)
		}
		if settled.InFlight > 0 {
			fmt.Fprintf(e.stdout, "%d requests in flight are recorded when they finish\n", settled.InFlight)
		}
		return nil
	}
}
