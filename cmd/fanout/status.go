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

  state        dispatching, running, paused, sent (every recipient has a
               final send state; delivery reports still awaited), completed
               (every recipient final) or cancelled
  total        valid recipients enqueued
  sent         accepted by OneRoute (includes delivered and undelivered)
  failed       refused for good, with a reason in the ledger
  unknown      ambiguous outcome no lookup could settle; never resent
  delivered / undelivered / dlr_expired   delivery reports
  read         WhatsApp messages read (counted in delivered too)
  pending      not yet final

With --watch it follows the campaign until sending is over (state sent,
completed or cancelled), or with --until completed until every recipient is
final. On a terminal the status is one block redrawn in place, a bar per
stage with its recent rate; otherwise it prints one line per interval. The
ETA comes from the rate over the last 10 s of unpaused time, never faster
than the campaign's rate limit.

With --json, prints one object for scripts (one per interval with --watch);
its field names never change.`)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object")
	watch := fs.Bool("watch", false, "follow the campaign until sending is over (see --until)")
	until := fs.String("until", "sent", "with --watch, the `state` to stop at: sent (sending over, or anything later) or completed (every recipient final, or cancelled)")
	every := fs.Duration("interval", time.Second, "with --watch, read the counters this often")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, "one campaign id"); err != nil {
		return err
	}
	if *until != "sent" && *until != "completed" {
		return &usageError{fmt.Sprintf("--until %q: want sent or completed", *until)}
	}
	if *every <= 0 {
		return &usageError{fmt.Sprintf("--interval %s: want a positive duration such as 1s", *every)}
	}
	cfg, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	id, store := pos[0], storage.New(rdb)
	notFound := func() error {
		return &inputError{fmt.Errorf("no campaign %q in Redis at %s", id, redisWhere(cfg.Redis))}
	}
	spec, err := store.Spec(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return err
	}
	if !*watch {
		p, err := store.Progress(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return notFound()
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(p)
		}
		printProgress(e.stdout, p)
		return nil
	}
	stop := campaigns.Progress.SendingOver
	if *until == "completed" {
		stop = campaigns.Progress.Final
	}
	var v view
	switch {
	case *asJSON:
		v = jsonView{e.stdout}
	case canRedraw(e.stdout):
		v = newBarView(e.stdout, spec.Channel.Tracked())
	default:
		v = lineView{e.stdout}
	}
	p, err := watchStatus(ctx, store, id, spec.Rate.Over(defaultRate(cfg)).Steady(), *every, v, stop)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound()
	}
	if err == nil && !*asJSON {
		watchEnd(e.stdout, p)
	}
	return err
}

// jsonView prints each frame as a status object, its ETA from the watch's
// recent rate.
type jsonView struct{ w io.Writer }

func (v jsonView) show(f frame) error {
	p := f.p
	if f.etaOK {
		s := f.eta.Seconds()
		p.ETA = &s
	}
	return json.NewEncoder(v.w).Encode(p)
}

func (jsonView) close() {}

// watchEnd says why a watch stopped, and what is left.
func watchEnd(w io.Writer, p campaigns.Progress) {
	switch {
	case p.State == campaigns.StateSent:
		fmt.Fprintf(w, "campaign %s is sent: %s awaited (follow them with: fanout status --watch --until completed %s)\n",
			p.ID, plural(p.AwaitingDLR, "delivery report", "delivery reports"), p.ID)
	case p.Final():
		fmt.Fprintf(w, "campaign %s is %s\n", p.ID, p.State)
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
	printOpening(w, p)
	if p.Rate > 0 {
		fmt.Fprintf(w, "rate       %.1f recipients/s sent", p.Rate)
		if p.ETA != nil {
			fmt.Fprintf(w, ", about %s left", (time.Duration(*p.ETA) * time.Second).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "total      %d\nsent       %d\nfailed     %d\nunknown    %d\nskipped    %d\npending    %d\n",
		p.Total, p.Sent, p.Failed, p.Unknown, p.Skipped, p.Pending)
	if p.Channel.Tracked() {
		fmt.Fprintf(w, "delivered  %d\nundelivered %d\ndlr_expired %d\nawaiting delivery reports %d\n", p.Delivered, p.Undelivered, p.DLRExpired, p.AwaitingDLR)
		if p.Read > 0 || p.Channel == campaigns.ChannelWhatsAppTemplate || p.Channel == campaigns.ChannelWhatsAppCampaign {
			fmt.Fprintf(w, "read       %d\n", p.Read)
		}
	}
	printRoutes(w, p)
	fmt.Fprintf(w, "refused    %d invalid, %s, %d suppressed", p.Invalid, plural(p.Duplicates, "duplicate", "duplicates"), p.Suppressed)
	if p.OptedOut > 0 {
		fmt.Fprintf(w, " (%d opted out while running, counted skipped too)", p.OptedOut)
	}
	fmt.Fprintln(w)
	printReasons(w, p.FailureReasons, 5)
	if p.SentAt != nil && p.FinishedAt == nil {
		fmt.Fprintf(w, "all sent   %s (took %s); delivery reports awaited\n", p.SentAt.Format(time.RFC3339), p.SentAt.Sub(p.CreatedAt).Round(time.Millisecond))
	}
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

// printRoutes shows how a whatsapp_session campaign's recipients went:
// session messages, fallback templates, and the estimated saving.
func printRoutes(w io.Writer, p campaigns.Progress) {
	if p.Channel != campaigns.ChannelWhatsAppSession {
		return
	}
	fmt.Fprintf(w, "session_sent %d\ntemplate_sent %d\n", p.SessionSent, p.TemplateSent)
	if p.SavedEstimate > 0 {
		fmt.Fprintf(w, "saved_estimate %.2f (session messages x template_price)\n", p.SavedEstimate)
	}
}
