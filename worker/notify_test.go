package worker

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// receiver records the completion notices posted to it.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	status int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, b)
	r.sigs = append(r.sigs, req.Header.Get(SignatureHeader))
	if r.status != 0 {
		w.WriteHeader(r.status)
	}
}

// A campaign with notify_url that completes gets one notice: the auditor
// enqueues campaign:notify (<cid>:notify:0) when it finds it completed,
// once however many rounds run; the handler posts a JSON summary whose
// X-Fanout-Signature is the hex HMAC-SHA512 of the exact body. A receiver
// answering 5xx makes the task fail (asynq retries it); a notice of a
// completion that is no longer current (a retry round since) posts nothing.
func TestCompletionNoticeIsEnqueuedOnceAndSigned(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	const id = "notify"
	sp := spec(id, campaigns.ChannelSMS)
	sp.NotifyURL = srv.URL + "/hook"
	if _, err := b.store.Create(b.ctx, sp); err != nil {
		t.Fatal(err)
	}
	bt := &campaigns.Batch{Campaign: id, Seq: 0, Channel: campaigns.ChannelSMS, ChannelID: "chan"}
	var rows []int
	var outs []campaigns.Outcome
	for r := 1; r <= 5; r++ {
		bt.Items = append(bt.Items, campaigns.Item{Row: r, To: fmt.Sprintf("+2348030000%03d", r)})
		rows = append(rows, r)
		outs = append(outs, campaigns.Outcome{Row: r, State: storage.LedgerFailed, Value: "Invalid number"})
	}
	if _, err := b.store.AddBatch(b.ctx, id, 0, 5, 5); err != nil {
		t.Fatal(err)
	}
	if err := tasks.Enqueue(b.ctx, b.enq, tasks.Send(bt, tasks.Options{})); err != nil {
		t.Fatal(err)
	}
	if err := b.store.FinishDispatch(b.ctx, id, storage.DispatchCounts{Rows: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Claim(b.ctx, id, "T", rows, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, id, storage.ModeSend, "T", outs); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := b.aud.Audit(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	info, err := b.insp.GetTaskInfo(tasks.QueueDLR, id+":notify:0")
	if err != nil {
		t.Fatalf("no completion notice enqueued: %v", err)
	}
	pending, _ := b.insp.ListPendingTasks(tasks.QueueDLR)
	if len(pending) != 1 {
		t.Errorf("%d tasks on the dlr queue, want the one notice", len(pending))
	}
	secret := []byte("s3cret")
	h := &NotifyHandler{store: b.store, client: srv.Client(), secret: secret}
	if err := h.ProcessTask(b.ctx, asynq.NewTask(info.Type, info.Payload)); err != nil {
		t.Fatal(err)
	}
	if len(rcv.bodies) != 1 {
		t.Fatalf("%d notices posted, want 1", len(rcv.bodies))
	}
	mac := hmac.New(sha512.New, secret)
	mac.Write(rcv.bodies[0])
	if want := hex.EncodeToString(mac.Sum(nil)); rcv.sigs[0] != want {
		t.Errorf("signature %q, want %q", rcv.sigs[0], want)
	}
	changed := append([]byte(nil), rcv.bodies[0]...)
	changed[len(changed)/2] ^= 1
	if Sign(secret, changed) == rcv.sigs[0] {
		t.Error("a changed byte keeps the signature")
	}
	var n Notice
	if err := json.Unmarshal(rcv.bodies[0], &n); err != nil {
		t.Fatal(err)
	}
	if n.Event != "campaign.completed" || n.Campaign.ID != id || n.Campaign.State != campaigns.StateCompleted || n.Campaign.Failed != 5 || n.Retries != 0 {
		t.Errorf("notice = %+v", n)
	}

	rcv.status = http.StatusBadGateway
	if err := h.ProcessTask(b.ctx, asynq.NewTask(info.Type, info.Payload)); err == nil {
		t.Error("a 502 from the receiver did not fail the task")
	}
	// A notice for another completion than the current one posts nothing.
	stale := tasks.NewNotify(tasks.Notify{Campaign: id, Retries: 1}, tasks.Options{})
	before := len(rcv.bodies)
	if err := h.ProcessTask(context.Background(), stale.Task); err != nil || len(rcv.bodies) != before {
		t.Errorf("stale notice: %v, %d posts, want nil and none", err, len(rcv.bodies)-before)
	}
}
