package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// frame is one look at a campaign while watching it: its progress and the
// recent rate of each stage, from watcher.
type frame struct {
	p campaigns.Progress
	// Recipients per second over the last rateSpan of unpaused time, each
	// with false until known: enqueued by the dispatcher, settled by a
	// send, settled by a delivery report.
	dispatch, sends, reports rated
	// eta is the time left to send, from the recent send rate bounded by
	// the rate limit; false when unknown.
	eta   time.Duration
	etaOK bool
}

type rated struct {
	perS float64
	ok   bool
}

// rateSpan is the window of the watch's rates and ETA.
const rateSpan = 10 * time.Second

// watcher turns successive progress reads into frames.
type watcher struct {
	limit                    float64 // the campaign's steady rate limit, 0: none
	dispatch, sends, reports rateWindow
}

func newWatcher(limit float64) *watcher {
	return &watcher{limit: limit, dispatch: rateWindow{span: rateSpan}, sends: rateWindow{span: rateSpan}, reports: rateWindow{span: rateSpan}}
}

// frame observes p, read at now.
func (w *watcher) frame(now time.Time, p campaigns.Progress) frame {
	paused := p.State == campaigns.StatePaused
	w.dispatch.observe(now, p.Total, paused)
	w.sends.observe(now, p.Done(), paused)
	w.reports.observe(now, p.Delivered+p.Undelivered+p.DLRExpired, paused)
	f := frame{p: p}
	f.dispatch.perS, f.dispatch.ok = w.dispatch.rate()
	f.sends.perS, f.sends.ok = w.sends.rate()
	f.reports.perS, f.reports.ok = w.reports.rate()
	if !p.SendingOver() {
		f.eta, f.etaOK = w.sends.eta(p.Pending, w.limit)
	}
	return f
}

// view shows the frames of a watch.
type view interface {
	show(f frame) error
	// close shows the last frame for good.
	close()
}

// watchStatus shows the campaign every interval until stop says it is over
// or ctx ends.
func watchStatus(ctx context.Context, store *storage.Store, id string, limit float64, every time.Duration, v view, stop func(campaigns.Progress) bool) (campaigns.Progress, error) {
	defer v.close()
	w := newWatcher(limit)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p, err := store.Progress(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return p, nil
			}
			return p, err
		}
		if err := v.show(w.frame(time.Now(), p)); err != nil {
			return p, err
		}
		if stop(p) {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return p, nil
		case <-t.C:
		}
	}
}

// lineView prints one line per frame: for a pipe or a log.
type lineView struct{ w io.Writer }

func (v lineView) show(f frame) error {
	_, err := fmt.Fprintln(v.w, frameLine(f))
	return err
}

func (lineView) close() {}

// frameLine is a frame in one line.
func frameLine(f frame) string {
	p := f.p
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", time.Now().UTC().Format("15:04:05"), p.ID, p.State)
	if p.Reason != "" && (p.State == campaigns.StatePaused || p.State == campaigns.StateCancelled) {
		fmt.Fprintf(&b, " (%s)", p.Reason)
	}
	b.WriteString(openingText(p))
	fmt.Fprintf(&b, "  dispatch %s", dispatchText(f))
	fmt.Fprintf(&b, "  sends %s", sendsText(f))
	if p.Channel.Tracked() {
		fmt.Fprintf(&b, "  reports %s", reportsText(f))
	}
	return b.String()
}

func rateText(r rated) string {
	if !r.ok {
		return ""
	}
	return fmt.Sprintf(" %.0f/s", r.perS)
}

func dispatchText(f frame) string {
	s := fmt.Sprintf("%d enqueued in %s", f.p.Total, plural(f.p.Batches, "batch", "batches"))
	if f.p.Dispatched {
		return s + ", done"
	}
	return s + rateText(f.dispatch)
}

func sendsText(f frame) string {
	p := f.p
	s := fmt.Sprintf("%d/%d%s", p.Done(), p.Total, rateText(f.sends))
	if f.etaOK {
		s += fmt.Sprintf(" eta %s", f.eta.Round(time.Second))
	}
	return s + fmt.Sprintf(" (sent %d, failed %d, unknown %d, skipped %d)", p.Sent, p.Failed, p.Unknown, p.Skipped)
}

func reportsText(f frame) string {
	p := f.p
	return fmt.Sprintf("%d/%d%s (delivered %d, undelivered %d, expired %d, awaiting %d)",
		p.Delivered+p.Undelivered+p.DLRExpired, p.Sent, rateText(f.reports), p.Delivered, p.Undelivered, p.DLRExpired, p.AwaitingDLR)
}

// throttledView shows at most one frame every so often, and the last one
// when closed.
type throttledView struct {
	v       view
	every   time.Duration
	last    time.Time
	pending *frame
}

func (t *throttledView) show(f frame) error {
	if now := time.Now(); now.Sub(t.last) >= t.every {
		t.last, t.pending = now, nil
		return t.v.show(f)
	}
	t.pending = &f
	return nil
}

func (t *throttledView) close() {
	if t.pending != nil {
		t.v.show(*t.pending) //nolint:errcheck // the last frame, on the way out: a failed terminal write has no remedy
	}
	t.v.close()
}

// canRedraw reports whether w is a terminal wide enough for barView; a
// terminal of unknown size (0 columns, as under some wrappers) is not.
func canRedraw(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	return err == nil && cols >= 40
}

// barView redraws one block in place on a terminal: a heading and one bar
// per stage (dispatch, sends, delivery reports), drawn by mpb when show
// asks, not on a timer of its own.
type barView struct {
	mu      sync.Mutex
	f       frame
	prog    *mpb.Progress
	refresh chan any
	bars    []*mpb.Bar
	stages  []func(campaigns.Progress) (done, total int64)
}

// newBarView draws on w, a terminal; dlr adds the delivery-report bar.
func newBarView(w io.Writer, dlr bool) *barView {
	v := &barView{refresh: make(chan any)}
	v.prog = mpb.New(mpb.WithOutput(w), mpb.WithManualRefresh(v.refresh), mpb.WithWidth(100))
	text := func(fn func(frame) string) decor.Decorator {
		return decor.Any(func(decor.Statistics) string {
			v.mu.Lock()
			defer v.mu.Unlock()
			return fn(v.f)
		})
	}
	head := v.prog.New(0, mpb.NopStyle(), mpb.PrependDecorators(text(headText)))
	v.bars = append(v.bars, head)
	v.stages = append(v.stages, func(campaigns.Progress) (int64, int64) { return 0, 0 })
	stage := func(name string, of func(campaigns.Progress) (int64, int64), fn func(frame) string) {
		b := v.prog.New(0, mpb.BarStyle(), mpb.BarWidth(30),
			mpb.PrependDecorators(decor.Name(name, decor.WC{W: 10, C: decor.DindentRight})),
			mpb.AppendDecorators(text(fn)))
		v.bars = append(v.bars, b)
		v.stages = append(v.stages, of)
	}
	stage("dispatch", func(p campaigns.Progress) (int64, int64) {
		if p.Dispatched {
			return p.Total, p.Total
		}
		return p.Total, p.Total + 1 // the file's size in recipients is unknown until the end
	}, func(f frame) string { return " " + dispatchText(f) })
	stage("sends", func(p campaigns.Progress) (int64, int64) { return p.Done(), p.Total },
		func(f frame) string { return " " + sendsText(f) })
	if dlr {
		stage("reports", func(p campaigns.Progress) (int64, int64) {
			return p.Delivered + p.Undelivered + p.DLRExpired, p.Sent
		}, func(f frame) string { return " " + reportsText(f) })
	}
	return v
}

// headText is the block's first line: the campaign and its state.
func headText(f frame) string {
	p := f.p
	s := "campaign " + p.ID
	if p.Name != "" {
		s += " (" + p.Name + ")"
	}
	s += fmt.Sprintf("  %s  %s", p.Channel, p.State)
	if p.Reason != "" && (p.State == campaigns.StatePaused || p.State == campaigns.StateCancelled) {
		s += ": " + p.Reason
	}
	return s + openingText(p)
}

func (v *barView) show(f frame) error {
	v.mu.Lock()
	v.f = f
	v.mu.Unlock()
	for i, b := range v.bars[1:] {
		done, total := v.stages[i+1](f.p)
		b.SetTotal(max(total, 1), false)
		b.SetCurrent(done)
	}
	v.refresh <- struct{}{}
	return nil
}

func (v *barView) close() {
	for _, b := range v.bars {
		b.Abort(false) // keep the last drawing on screen
	}
	v.prog.Wait()
}
