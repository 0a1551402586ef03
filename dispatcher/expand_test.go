package dispatcher

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/tasks"
	"github.com/hibiken/asynq"
)

// A detached dispatch uploads the file, and workers expand it in slices
// (each task hands over to a continuation after MaxRun): the campaign ends
// with exactly the batches of an attached dispatch, and the upload is gone.
func TestDetachedExpansion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	csv := recipientsCSV(3000, 9)
	o := Options{BatchSize: 25, CheckpointEvery: 2}
	want, ref := b.reference(t, smsSpec, csv, o)
	spec := b.spec(t, "detached", smsSpec, csv)
	ctx := context.Background()

	up := b.store.NewUpload(ctx, spec.ID, UploadMeta(recipients.OptionsOf(spec), o))
	data, err := os.ReadFile(spec.RecipientsPath())
	if err != nil {
		t.Fatal(err)
	}
	// Small writes, as a tee under a reader makes them.
	for r := strings.NewReader(string(data)); r.Len() > 0; {
		buf := make([]byte, 777)
		n, _ := r.Read(buf)
		if _, err := up.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Detach(ctx, b.store, b.client, spec, o); err != nil {
		t.Fatal(err)
	}
	if err := Detach(ctx, b.store, b.client, spec, o); err != nil {
		t.Fatalf("second Detach: %v", err)
	}
	// Slices of a millisecond: several continuations however fast the
	// machine (a slice always makes a checkpoint's worth of progress).
	h := NewExpandHandler(b.store, b.client, Options{MaxRun: time.Millisecond, CheckpointEvery: 8})
	runs := 0
	for ; runs < 1000; runs++ {
		pending, err := b.insp.ListPendingTasks(tasks.Queue(spec.Channel), asynq.PageSize(10000))
		if err != nil {
			t.Fatal(err)
		}
		var next *asynq.TaskInfo
		for _, ti := range pending {
			if ti.Type == tasks.TypeExpand {
				if next != nil {
					t.Fatalf("two expansion tasks pending: %s and %s", next.ID, ti.ID)
				}
				next = ti
			}
		}
		if next == nil {
			break
		}
		if err := b.insp.DeleteTask(tasks.Queue(spec.Channel), next.ID); err != nil {
			t.Fatal(err)
		}
		if err := h.ProcessTask(ctx, asynq.NewTask(next.Type, next.Payload)); err != nil {
			t.Fatalf("expand task %s: %v", next.ID, err)
		}
	}
	t.Logf("expanded in %d tasks", runs)
	if runs < 2 {
		t.Errorf("expanded in %d task(s); want continuations", runs)
	}
	b.checkExactlyOnce(t, spec, want, ref)
	tag := "fanout:{" + spec.ID + "}"
	left := []string{tag + ":src", tag + ":src:0", tag + ":sup", tag + ":seen"}
	if n, _ := b.rdb.Exists(ctx, left...).Result(); n != 0 {
		t.Errorf("%d upload or checkpoint keys left after the expansion", n)
	}
}
