package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "status", "[flags] CAMPAIGN-ID", `
Prints a campaign's state and counters from Redis at REDIS_URL.

  total        valid recipients enqueued
  sent         accepted by OneRoute (includes delivered and undelivered)
  failed       refused for good, with a reason in the ledger
  unknown      ambiguous outcome no lookup could settle; never resent
  delivered / undelivered / dlr_expired   SMS delivery reports
  pending      not yet final

With --json, prints one object for scripts; its field names never change.`)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object")
	watch := fs.Bool("watch", false, "refresh every second until the campaign is final")
	id, store, notFound, closeStore, err := campaignStore(ctx, e, fs, cfgFile, args)
	if err != nil {
		return err
	}
	defer closeStore()
	for {
		p, err := store.Progress(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return notFound()
		}
		if err != nil {
			return err
		}
		if *asJSON {
			if err := json.NewEncoder(e.stdout).Encode(p); err != nil {
				return err
			}
		} else {
			printProgress(e.stdout, p)
		}
		if !*watch || p.Final() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func printProgress(w io.Writer, p campaigns.Progress) {
	fmt.Fprintf(w, "campaign   %s", p.ID)
	if p.Name != "" {
		fmt.Fprintf(w, " (%s)", p.Name)
	}
	fmt.Fprintf(w, "\nchannel    %s\nstate      %s", p.Channel, p.State)
	if p.Reason != "" {
		fmt.Fprintf(w, ": %s", p.Reason)
	}
	fmt.Fprintf(w, "\nprogress   %s\n", bar(p.Done(), p.Total, 30))
	if p.Rate > 0 {
		fmt.Fprintf(w, "rate       %.1f recipients/s sent", p.Rate)
		if p.ETA != nil {
			fmt.Fprintf(w, ", about %s left", (time.Duration(*p.ETA) * time.Second).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "total      %d\nsent       %d\nfailed     %d\nunknown    %d\nskipped    %d\npending    %d\n",
		p.Total, p.Sent, p.Failed, p.Unknown, p.Skipped, p.Pending)
	if p.Channel.TracksDLR() {
		fmt.Fprintf(w, "delivered  %d\nundelivered %d\ndlr_expired %d\nawaiting delivery reports %d\n", p.Delivered, p.Undelivered, p.DLRExpired, p.AwaitingDLR)
	}
	fmt.Fprintf(w, "refused    %d invalid, %s, %d suppressed\n", p.Invalid, plural(p.Duplicates, "duplicate", "duplicates"), p.Suppressed)
	printReasons(w, p.FailureReasons, 5)
	if p.RedisLossAt != nil {
		fmt.Fprintf(w, "warning    Redis restarted or failed over at %s (%dx) while this campaign ran, and may have lost its last writes;\n"+
			"           recipients sent since were first looked up at OneRoute (unknown where the channel has no lookup): docs/configuration.md, Redis\n",
			p.RedisLossAt.Format(time.RFC3339), p.RedisLosses)
	}
	if p.FinishedAt != nil {
		fmt.Fprintf(w, "finished   %s (took %s)\n", p.FinishedAt.Format(time.RFC3339), p.FinishedAt.Sub(p.CreatedAt).Round(time.Millisecond))
	}
}

// bar is a meter followed by done/total and the percentage.
func bar(done, total int64, width int) string {
	if total <= 0 {
		return fmt.Sprintf("%s 0/0", meter(0, 0, width))
	}
	return fmt.Sprintf("%s %d/%d (%.0f%%)", meter(done, total, width), done, total, 100*float64(done)/float64(total))
}

// meter draws done of total as a bar of width cells: [####......].
func meter(done, total int64, width int) string {
	n := 0
	if total > 0 {
		n = int(min(done, total) * int64(width) / total)
	}
	b := make([]byte, width)
	for i := range b {
		if i < n {
			b[i] = '#'
		} else {
			b[i] = '.'
		}
	}
	return "[" + string(b) + "]"
}

// printReasons prints the most frequent failure reasons.
func printReasons(w io.Writer, reasons map[string]int64, top int) {
	if len(reasons) == 0 {
		return
	}
	type kv struct {
		k string
		v int64
	}
	var list []kv
	for k, v := range reasons {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v || (list[i].v == list[j].v && list[i].k < list[j].k) })
	fmt.Fprintln(w, "why failed or unknown:")
	for i, r := range list {
		if i == top {
			fmt.Fprintf(w, "  ... %s (fanout status --json shows them all)\n", plural(len(list)-top, "more reason", "more reasons"))
			break
		}
		fmt.Fprintf(w, "  %7d  %s\n", r.v, r.k)
	}
}
