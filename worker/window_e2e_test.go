package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/tasks"
)

// A campaign dispatched at 21:00 in Lagos with a window of 08:00 to 20:00
// sends nothing that night: every batch task the dispatcher queued comes
// back as a wait that is not a failure (no retry used), the sandbox gets no
// request and no row is claimed. At 08:00 the same tasks, run again as asynq
// runs them, send every recipient exactly once. The worker's clock is fake;
// nothing sleeps.
func TestDispatchedAtNightSendsAtTheOpening(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: lagos(t, "2099-01-01 21:00")}
	b := setupSweep(t, Options{MaxAttempts: 3, RequestTimeout: 2 * time.Second, NowFunc: clk.Now})
	const n = 120

	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("phone\n")
	for i := range n {
		fmt.Fprintf(&csv, "+23480310%05d\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "r.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := campaigns.ParseSpec(filepath.Join(dir, "c.yaml"), []byte("id: night\nchannel: sms\nchannel_id: "+sandbox.SMSChannelID+
		"\nmessage: hi\nrecipients: r.csv\nbatch_size: 50\nschedule:\n  window: {start: \"08:00\", end: \"20:00\", timezone: Africa/Lagos}\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := recipients.OpenSource(spec.RecipientsPath(), recipients.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := dispatcher.Dispatch(b.ctx, b.store, asynq.NewClientFromRedisClient(b.rdb), spec, src, dispatcher.Options{}); err != nil {
		t.Fatal(err)
	}
	// The dispatcher holds the batches until the window opens by the real
	// clock: take them whether pending or scheduled.
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	var queued []*asynq.Task
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListPendingTasks, insp.ListScheduledTasks} {
		infos, err := list(tasks.QueueSMS)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range infos {
			queued = append(queued, asynq.NewTask(ti.Type, ti.Payload))
		}
	}
	if len(queued) != 3 {
		t.Fatalf("%d batch tasks queued, want 3", len(queued))
	}

	for _, task := range queued {
		if err := b.mux.ProcessTask(b.ctx, task); err == nil || IsFailure(err) {
			t.Fatalf("at 21:00: %v, want a wait that is not a failure", err)
		}
	}
	if st := b.sb.Stats(); st.SendRequests != 0 || st.Accepted != 0 {
		t.Fatalf("the sandbox got %d send requests (%d accepted) at night", st.SendRequests, st.Accepted)
	}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i + 1
	}
	entries, err := b.store.Ledger(b.ctx, spec.ID, rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.State != 0 {
			t.Fatalf("row %d claimed (%q) while waiting", e.Row, e.State)
		}
	}

	clk.Set(lagos(t, "2099-01-02 08:00"))
	for range 2 {
		for _, task := range queued {
			if err := b.mux.ProcessTask(b.ctx, task); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := b.sb.Stats(); st.Accepted != n || st.Duplicates != 0 {
		t.Fatalf("the sandbox accepted %d (%d duplicates), want %d once each", st.Accepted, st.Duplicates, n)
	}
	if p := b.progress(t, spec.ID); p.Sent != n || p.Pending != 0 || p.Failed != 0 {
		t.Fatalf("sent %d pending %d failed %d, want %d 0 0", p.Sent, p.Pending, p.Failed, n)
	}
}
