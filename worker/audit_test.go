package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

type auditBundle struct {
	ctx   context.Context
	store *storage.Store
	enq   Enqueuer
	insp  *asynq.Inspector
	aud   *Auditor
}

func setupAudit(t *testing.T) *auditBundle {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := storage.New(rdb)
	aud := NewAuditor(rdb, store, zerolog.Nop(), AuditOptions{RequestTimeout: time.Second})
	aud.opts.StallAfter = 0 // every running campaign with recipients left counts as stalled
	return &auditBundle{ctx: context.Background(), store: store,
		enq: KeepCopies(asynq.NewClientFromRedisClient(rdb), store), insp: asynq.NewInspectorFromRedisClient(rdb), aud: aud}
}

// campaign creates a dispatched SMS campaign whose batches are enqueued
// through KeepCopies, seq i holding rows i*10+1 .. i*10+10.
func (b *auditBundle) campaign(t *testing.T, id string, batches int) []*campaigns.Batch {
	t.Helper()
	if _, err := b.store.Create(b.ctx, spec(id, campaigns.ChannelSMS)); err != nil {
		t.Fatal(err)
	}
	var out []*campaigns.Batch
	for seq := range batches {
		bt := &campaigns.Batch{Campaign: id, Seq: seq, Channel: campaigns.ChannelSMS, ChannelID: "chan"}
		for r := seq*10 + 1; r <= seq*10+10; r++ {
			bt.Items = append(bt.Items, campaigns.Item{Row: r, To: fmt.Sprintf("+23480300%05d", r)})
		}
		if _, err := b.store.AddBatch(b.ctx, id, seq, 10, seq*10+10); err != nil {
			t.Fatal(err)
		}
		if err := tasks.Enqueue(b.ctx, b.enq, tasks.Send(bt, tasks.Options{})); err != nil {
			t.Fatal(err)
		}
		out = append(out, bt)
	}
	if err := b.store.FinishDispatch(b.ctx, id, storage.DispatchCounts{Rows: batches * 10}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (b *auditBundle) copies(t *testing.T, id string) []string {
	t.Helper()
	var keys []string
	if err := b.store.Copies(b.ctx, id, func(chunk []storage.Copy) error {
		for _, c := range chunk {
			keys = append(keys, c.Key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// The auditor re-creates a deleted batch task whose rows are not final, but
// not one whose open rows a live follow-up task holds (its copy is dropped
// instead), and it leaves live tasks alone. A completed campaign's copies
// are dropped.
func TestAuditRestoresOnlyStrandedBatches(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	bs := b.campaign(t, "aud", 3)
	// b1 ran: it sent rows 11-15 and left 16-20 to a follow-up, then
	// completed (asynq deleted its task).
	if _, err := b.store.Claim(b.ctx, "aud", "A", []int{11, 12, 13, 14, 15}, time.Minute); err != nil {
		t.Fatal(err)
	}
	var outs []campaigns.Outcome
	for r := 11; r <= 15; r++ {
		outs = append(outs, campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: "id" + strconv.Itoa(r)})
	}
	if _, err := b.store.Record(b.ctx, "aud", storage.ModeSend, "A", outs); err != nil {
		t.Fatal(err)
	}
	child := *bs[1]
	child.Items, child.Attempt = bs[1].Items[5:], 1
	if err := tasks.Enqueue(b.ctx, b.enq, tasks.Send(&child, tasks.Options{Delay: time.Hour})); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"aud:b0", "aud:b1"} {
		if err := b.insp.DeleteTask("sms", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.aud.Audit(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.insp.GetTaskInfo("sms", "aud:b0"); err != nil {
		t.Errorf("b0 (all rows pending, no task) was not re-created: %v", err)
	}
	if _, err := b.insp.GetTaskInfo("sms", "aud:b1"); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("b1, whose open rows its follow-up holds, was re-created (err %v)", err)
	}
	got := strings.Join(b.copies(t, "aud"), ",")
	if strings.Contains(got, "b1,") || strings.HasSuffix(got, "b1") || !strings.Contains(got, "b0") || !strings.Contains(got, "b2") || !strings.Contains(got, "b1r1-") {
		t.Errorf("copies after the audit: %s; want b0, b2 and b1's follow-up, not b1", got)
	}
	// Completed: every copy goes.
	if _, err := b.store.Cancel(b.ctx, "aud", "test"); err != nil {
		t.Fatal(err)
	}
	if err := b.aud.Audit(b.ctx); err != nil {
		t.Fatal(err)
	}
	p, _ := b.store.Progress(b.ctx, "aud")
	if p.Sent+p.Skipped != p.Total || p.Sent != 5 {
		t.Errorf("cancelled: sent %d skipped %d of %d; want every row settled", p.Sent, p.Skipped, p.Total)
	}
	if ids, _ := b.store.Audited(b.ctx); len(ids) != 0 {
		t.Errorf("still audited after the campaign settled: %v", ids)
	}
}

// No batch task is enqueued without its copy: when the copy cannot be
// saved, the enqueue fails (the caller retries) and no task exists.
func TestKeepCopiesFailsClosed(t *testing.T) {
	t.Parallel()
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { down.Close() })
	fe := &fakeEnqueuer{}
	enq := KeepCopies(fe, storage.New(down))
	bt := &campaigns.Batch{Campaign: "kc", Channel: campaigns.ChannelSMS, Items: []campaigns.Item{{Row: 1, To: "+2348030000001"}}}
	if err := tasks.Enqueue(context.Background(), enq, tasks.Send(bt, tasks.Options{})); err == nil {
		t.Fatal("enqueued without a copy")
	}
	if len(fe.tasks) != 0 {
		t.Fatalf("%d tasks enqueued without a copy", len(fe.tasks))
	}
	if err := tasks.Enqueue(context.Background(), enq, tasks.Poll(&tasks.DLRPoll{Campaign: "kc", Items: []tasks.DLRItem{{Row: 1, ID: "x"}}}, tasks.Options{})); err == nil || len(fe.tasks) != 0 {
		t.Fatalf("a dlr:poll enqueued without its copy (%v, %d tasks)", err, len(fe.tasks))
	}
	// Other task types pass through untouched.
	if err := tasks.Enqueue(context.Background(), enq, tasks.NewExpand(tasks.Expand{Campaign: "kc"}, campaigns.ChannelSMS, tasks.Options{})); err != nil || len(fe.tasks) != 1 {
		t.Fatalf("a campaign:expand went through with %v, %d tasks", err, len(fe.tasks))
	}
}

// A batch copy costs Redis memory for as long as its campaign runs: it must
// stay well under the task payload it copies. Measured on a real Redis for
// 20,000 personalised SMS in batches of 50; the figure is logged
// (go test ./worker -run CopyBytes -v).
func TestCopyBytesPerRecipient(t *testing.T) {
	t.Parallel()
	srv := redistest.StartWith(t, redistest.Options{RequireReal: true})
	rdb := srv.Client(t)
	store := storage.New(rdb)
	ctx := context.Background()
	enq := KeepCopies(&fakeEnqueuer{}, store)
	const n, size = 20_000, 50
	used := func() int64 { return redistest.UsedMemory(t, rdb) }
	before := used()
	var payload int
	for seq := 0; seq*size < n; seq++ {
		bt := &campaigns.Batch{Campaign: "mem", Seq: seq, Channel: campaigns.ChannelSMS, ChannelID: "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002"}
		for r := seq*size + 1; r <= seq*size+size; r++ {
			bt.Items = append(bt.Items, campaigns.Item{Row: r, To: fmt.Sprintf("+234803%07d", r),
				Content: &campaigns.Content{Text: fmt.Sprintf("Hello Person %d, your order %d ships today. Reply STOP to opt out.", r, 100000+r)}})
		}
		task := tasks.Send(bt, tasks.Options{})
		payload += len(task.Payload())
		if err := tasks.Enqueue(ctx, enq, task); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(used()-before) / n
	t.Logf("batch copies: %.1f bytes of Redis memory per recipient (task payload: %.1f bytes per recipient)", per, float64(payload)/n)
	if per <= 0 || per > float64(payload)/n {
		t.Errorf("a copy costs %.1f bytes per recipient, more than the %.1f-byte payload it copies", per, float64(payload)/n)
	}
}

// A batch task left active with an expired lease (its worker crashed, or
// lost Redis for longer than the lease) is sent again by the auditor as a
// follow-up under a new id, without waiting 30-90 s for asynq's recoverer;
// a task whose lease is still valid is left alone.
func TestAuditRecoversOrphanedBatches(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := storage.New(rdb)
	aud := NewAuditor(rdb, store, zerolog.Nop(), AuditOptions{RequestTimeout: time.Second})
	aud.opts.StallAfter = 0
	b := &auditBundle{ctx: context.Background(), store: store, enq: KeepCopies(asynq.NewClientFromRedisClient(rdb), store),
		insp: asynq.NewInspectorFromRedisClient(rdb), aud: aud}
	bs := b.campaign(t, "orph", 2)
	// Dequeue both as asynq v0.26.0 does (dequeueCmd); b0's lease expired a
	// minute ago, b1's is valid for 30 s.
	for i, lease := range []time.Time{time.Now().Add(-time.Minute), time.Now().Add(30 * time.Second)} {
		id := "orph:b" + strconv.Itoa(i)
		pipe := rdb.TxPipeline()
		pipe.LRem(b.ctx, "asynq:{sms}:pending", 0, id)
		pipe.LPush(b.ctx, "asynq:{sms}:active", id)
		pipe.HSet(b.ctx, "asynq:{sms}:t:"+id, "state", "active")
		pipe.ZAdd(b.ctx, "asynq:{sms}:lease", redis.Z{Score: float64(lease.Unix()), Member: id})
		if _, err := pipe.Exec(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.aud.Audit(b.ctx); err != nil {
		t.Fatal(err)
	}
	follow := *bs[0]
	follow.Attempt = 1
	if _, err := b.insp.GetTaskInfo("sms", tasks.BatchID(&follow)); err != nil {
		t.Errorf("the orphaned b0 was not sent again as %s: %v", tasks.BatchID(&follow), err)
	}
	other := *bs[1]
	other.Attempt = 1
	if _, err := b.insp.GetTaskInfo("sms", tasks.BatchID(&other)); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("b1, whose lease is valid, was sent again (err %v)", err)
	}
}

// A delivery-report poll lost with Redis' last writes (or deleted) would
// keep an SMS campaign from ever completing: the auditor enqueues it again
// from its copy while its rows still await their reports, and drops the
// copy once they have them.
func TestAuditRestoresLostPolls(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	bs := b.campaign(t, "dlr", 1)
	rows := make([]int, 10)
	for i := range rows {
		rows[i] = i + 1
	}
	if _, err := b.store.Claim(b.ctx, "dlr", "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	var outs []campaigns.Outcome
	var items []tasks.DLRItem
	for _, r := range rows {
		outs = append(outs, campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: "id" + strconv.Itoa(r)})
		items = append(items, tasks.DLRItem{Row: r, ID: "id" + strconv.Itoa(r)})
	}
	if _, err := b.store.Record(b.ctx, "dlr", storage.ModeSend, "A", outs); err != nil {
		t.Fatal(err)
	}
	if err := b.insp.DeleteTask("sms", tasks.BatchID(bs[0])); err != nil {
		t.Fatal(err) // the batch completed
	}
	poll := &tasks.DLRPoll{Campaign: "dlr", Key: "b0-A-x", Items: items}
	if err := tasks.Enqueue(b.ctx, b.enq, tasks.Poll(poll, tasks.Options{})); err != nil {
		t.Fatal(err)
	}
	if err := b.insp.DeleteTask("dlr", poll.ID()); err != nil {
		t.Fatal(err)
	}
	if err := b.aud.Audit(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.insp.GetTaskInfo("dlr", poll.ID()); err != nil {
		t.Fatalf("the lost poll was not re-created: %v", err)
	}
	if got := b.copies(t, "dlr"); len(got) != 1 || got[0] != "dlr:b0-A-x:0" {
		t.Fatalf("copies %v, want only the poll's (the batch's rows are final)", got)
	}
	// The campaign is sent, its reports awaited: its delivery-report sweep
	// is scheduled too, whether or not one was lost.
	if _, err := b.insp.GetTaskInfo("dlr", tasks.DLRSweep{Campaign: "dlr"}.ID()); err != nil {
		t.Fatalf("no sweep scheduled for a stalled sent campaign: %v", err)
	}
}

// A campaign waiting for its send window is not stalled: the audit leaves
// it alone while the noted opening is ahead, even with a task missing, and
// audits it as usual once the opening has passed.
func TestAuditLeavesWindowWaitsAlone(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	b.campaign(t, "win", 1)
	if err := b.insp.DeleteTask("sms", "win:b0"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := b.store.NoteOpening(b.ctx, "win", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if err := b.aud.Audit(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.insp.GetTaskInfo("sms", "win:b0"); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("a window-waiting campaign was audited as stalled (err %v)", err)
	}
	if err := b.store.NoteOpening(b.ctx, "win", now.Add(-time.Second), now.Add(-2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.aud.Audit(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.insp.GetTaskInfo("sms", "win:b0"); err != nil {
		t.Fatalf("after the opening, the lost batch was not re-created: %v", err)
	}
}
