package main

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/storage"
)

// watchBundle is a 2,000-recipient SMS campaign in a private Redis, sent by
// the test itself through the store (no worker): sendSome settles the next
// recipients the way a worker records them.
type watchBundle struct {
	*testBundle
	store *storage.Store
	id    string
	rows  []int
	next  int
}

func setupWatch(t *testing.T, id string) *watchBundle {
	t.Helper()
	srv := redistest.Start(t)
	b := &watchBundle{testBundle: setup(t), store: storage.New(srv.Client(t)), id: id}
	b.env["REDIS_URL"] = srv.URL()
	ctx := context.Background()
	spec := campaigns.Spec{ID: id, Name: "watch", Channel: campaigns.ChannelSMS, ChannelID: "ch", Message: "hi", Recipients: "r.csv",
		Rate: &campaigns.Rate{PerSecond: 1000}}
	if _, err := b.store.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for seq := 0; seq*50 < n; seq++ {
		if _, err := b.store.AddBatch(ctx, id, seq, 50, seq*50+50); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.store.FinishDispatch(ctx, id, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	for r := 1; r <= n; r++ {
		b.rows = append(b.rows, r)
	}
	return b
}

// sendSome claims and accepts the next k recipients.
func (b *watchBundle) sendSome(t *testing.T, k int) {
	t.Helper()
	rows := b.rows[b.next:min(b.next+k, len(b.rows))]
	b.next += len(rows)
	ctx := context.Background()
	if _, err := b.store.Claim(ctx, b.id, "T", rows, time.Minute); err != nil {
		t.Error(err)
		return
	}
	outs := make([]campaigns.Outcome, len(rows))
	for i, r := range rows {
		outs[i] = campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: "m" + strconv.Itoa(r)}
	}
	if _, err := b.store.Record(ctx, b.id, storage.ModeSend, "T", outs); err != nil {
		t.Error(err)
	}
}

// sendAll sends the campaign in steps of 100 while status watches it.
func (b *watchBundle) sendAll(t *testing.T, every time.Duration) {
	t.Helper()
	for b.next < len(b.rows) {
		b.sendSome(t, 100)
		time.Sleep(every)
	}
}

// screen replays what a terminal shows for the bytes written to it: text,
// CR, LF, cursor up (ESC[nA) and erase (ESC[J, ESC[K); other escape
// sequences are dropped. It returns the lines left on the screen.
func screen(out []byte) []string {
	lines := []string{""}
	row, col := 0, 0
	put := func(c byte) {
		for len(lines[row]) < col {
			lines[row] += " "
		}
		l := lines[row]
		if col < len(l) {
			lines[row] = l[:col] + string(c) + l[col+1:]
		} else {
			lines[row] = l + string(c)
		}
		col++
	}
	for i := 0; i < len(out); i++ {
		switch c := out[i]; {
		case c == '\r':
			col = 0
		case c == '\n':
			row++
			if row == len(lines) {
				lines = append(lines, "")
			}
		case c == 0x1b && i+1 < len(out) && out[i+1] == '[':
			j := i + 2
			for j < len(out) && (out[j] < 0x40 || out[j] > 0x7e) {
				j++
			}
			if j == len(out) {
				return lines
			}
			arg := string(out[i+2 : j])
			switch out[j] {
			case 'A':
				n, err := strconv.Atoi(arg)
				if err != nil {
					n = 1
				}
				row = max(row-n, 0)
			case 'J':
				lines = lines[:row+1]
				lines[row] = lines[row][:min(col, len(lines[row]))]
			case 'K':
				lines[row] = lines[row][:min(col, len(lines[row]))]
			}
			i = j
		case c >= 0x20:
			put(c)
		}
	}
	return lines
}

// On a terminal, status --watch redraws one block in place: after a whole
// 2,000-recipient campaign the screen holds one status block (one heading,
// one bar per stage), though it was drawn many times; and it returns once
// sending is over, with delivery reports still awaited.
func TestWatchRedrawsInPlaceOnATerminal(t *testing.T) {
	t.Parallel()
	b := setupWatch(t, "watch-tty")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 200}); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	read := make(chan struct{})
	go func() { defer close(read); io.Copy(&raw, ptmx) }()

	go b.sendAll(t, 20*time.Millisecond)
	e := &env{stdout: tty, stderr: &b.stderr, stdin: strings.NewReader(""), getenv: func(k string) string { return b.env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := runMain(ctx, e, []string{"status", "--watch", "--interval", "50ms", b.id})
	tty.Close()
	<-read
	if code != 0 {
		t.Fatalf("exit %d: %s", code, b.stderr.String())
	}
	out := raw.Bytes()
	var shown []string
	for _, l := range screen(out) {
		if strings.TrimSpace(l) != "" {
			shown = append(shown, l)
		}
	}
	if draws := bytes.Count(out, []byte("campaign watch-tty (watch)")); draws < 2 {
		t.Fatalf("drawn %d times, want several redraws; output:\n%q", draws, out)
	}
	heads, sends := 0, 0
	for _, l := range shown {
		heads += strings.Count(l, "campaign watch-tty (watch)")
		if strings.HasPrefix(strings.TrimSpace(l), "sends") {
			sends++
		}
	}
	if heads != 1 || sends != 1 {
		t.Fatalf("screen holds %d headings and %d sends bars, want one status block:\n%s", heads, sends, strings.Join(shown, "\n"))
	}
	text := strings.Join(shown, "\n")
	t.Logf("screen:\n%s\ndraws: %d", text, bytes.Count(out, []byte("campaign watch-tty (watch)")))
	for _, want := range []string{"sent", "dispatch", "2000/2000", "reports", "awaiting 2000", "--until completed"} {
		if !strings.Contains(text, want) {
			t.Errorf("screen lacks %q:\n%s", want, text)
		}
	}
}

// On a pipe, status --watch prints one line per interval, never the
// terminal's escape sequences; --until completed waits for the delivery
// reports too.
func TestWatchPrintsLinesOnAPipe(t *testing.T) {
	t.Parallel()
	b := setupWatch(t, "watch-pipe")
	for b.next < len(b.rows) {
		b.sendSome(t, 500)
	}
	done := make(chan int)
	go func() {
		done <- b.run(t, "status", "--watch", "--until", "completed", "--interval", "20ms", b.id)
	}()
	time.Sleep(200 * time.Millisecond) // a few lines while reports are awaited
	outs := make([]campaigns.Outcome, len(b.rows))
	for i, r := range b.rows {
		outs[i] = campaigns.Outcome{Row: r, State: storage.LedgerDelivered, Value: "m" + strconv.Itoa(r)}
	}
	if _, err := b.store.Record(context.Background(), b.id, storage.ModeDLR, "", outs); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, b.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(b.stdout.String()), "\n")
	if len(lines) < 3 || strings.Contains(b.stdout.String(), "\x1b") {
		t.Fatalf("want several plain lines, got:\n%q", b.stdout.String())
	}
	if !strings.Contains(lines[0], " sent ") || !strings.Contains(lines[len(lines)-2], " completed ") ||
		lines[len(lines)-1] != "campaign watch-pipe is completed" {
		t.Fatalf("want lines from sent to completed, got:\n%s", b.stdout.String())
	}
	if code := b.run(t, "status", "--watch", "--until", "done", b.id); code != exitBadInput {
		t.Fatalf("--until done: exit %d, want %d", code, exitBadInput)
	}
}

// status --watch, with its default interval and the default
// FANOUT_DLR_MAX_AGE (24h of awaited reports), returns within 5 s of the
// last send: it stops at sent instead of waiting for the reports.
func TestWatchReturnsSoonAfterTheLastSend(t *testing.T) {
	t.Parallel()
	b := setupWatch(t, "watch-soon")
	done := make(chan int)
	go func() { done <- b.run(t, "status", "--watch", b.id) }()
	for b.next < len(b.rows) {
		b.sendSome(t, 400)
		time.Sleep(200 * time.Millisecond)
	}
	var code int
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("status --watch still running 30 s after the last send")
	}
	returned := time.Now()
	p, err := b.store.Progress(context.Background(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || p.State != campaigns.StateSent || p.SentAt == nil || p.AwaitingDLR != 2000 {
		t.Fatalf("exit %d, state %s, sent_at %v, awaiting %d; want 0, sent, set, 2000\n%s", code, p.State, p.SentAt, p.AwaitingDLR, b.stderr.String())
	}
	if d := returned.Sub(*p.SentAt); d > 5*time.Second {
		t.Fatalf("returned %s after the last send, want within 5 s", d)
	}
}
