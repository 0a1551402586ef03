package worker

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
)

// After Redis lost its last writes (restarted from an old AOF, or failed
// over to a replica that lagged), a recipient whose send was recorded in
// the lost second looks pending again. Once the fleet has seen Redis'
// run_id change, such recipients are looked up before any send: the one
// OneRoute has is recorded accepted and not sent again, the one it lacks is
// sent; status shows the loss. Without a restart nothing is looked up.
func TestRolledBackSendsAreVerifiedAfterARedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.StartWith(t, redistest.Options{RequireReal: true}) // miniredis has no run_id
	rdb := srv.Client(t)
	store := storage.New(rdb)
	b := &testBundle{ctx: t.Context(), store: store, prov: &fakeProvider{}, enq: &fakeEnqueuer{}, lim: &blockRecorder{}}
	b.opts = Options{MaxAttempts: 3, RequestTimeout: time.Second, PerCallConcurrency: 4}
	b.mux = NewMux(Deps{Store: store, Provider: b.prov, Enqueuer: KeepCopies(b.enq, store), Limiter: b.lim}, b.opts)
	var mu sync.Mutex
	var listed []oneroute.SMSMessage
	lookups := 0
	b.prov.sms = func(to []string, text string) ([]oneroute.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range to {
			listed = append(listed, oneroute.SMSMessage{ID: "id-" + n, To: n[1:], Message: text, CreatedAt: time.Now()})
		}
		return ok(to), nil
	}
	b.prov.list = func() ([]oneroute.SMSMessage, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups++
		return append([]oneroute.SMSMessage(nil), listed...), nil
	}
	s := spec("loss", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001", "+2348030000002")
	// The fleet sees this Redis.
	if at, err := store.LossAt(b.ctx, s.ID); err != nil || !at.IsZero() {
		t.Fatalf("first look: loss at %v, %v; want none", at, err)
	}
	// Recipient 1 was sent and recorded, then Redis lost the record: its
	// ledger entry and counter are rolled back.
	if err := b.run(t, &campaigns.Batch{Campaign: s.ID, Channel: batch.Channel, ChannelID: batch.ChannelID, Items: batch.Items[:1]}); err != nil {
		t.Fatal(err)
	}
	rollback(t, rdb, s.ID, 1)
	// Redis restarted: another run_id than the fleet saw.
	if err := rdb.HSet(b.ctx, "fanout:epoch", "run_id", "an-earlier-instance").Err(); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveCopy(b.ctx, s.ID, storage.Copy{Key: "b0", Rows: []int{1, 2}}); err != nil {
		t.Fatal(err) // the campaign is not final: it is on the audit list
	}
	lookups = 0
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	kids := b.children(t, "sms:send")
	for _, k := range kids {
		if err := b.run(t, k); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.prov.times("+2348030000001"); n != 1 {
		t.Errorf("recipient 1, whose record Redis lost, sent %d times; want 1", n)
	}
	if n := b.prov.times("+2348030000002"); n != 1 {
		t.Errorf("recipient 2 sent %d times; want 1", n)
	}
	if lookups < 2 {
		t.Errorf("%d lookups after the restart; want both recipients verified", lookups)
	}
	p := b.progress(t, s.ID)
	if p.Sent != 2 || p.Pending != 0 {
		t.Errorf("sent %d pending %d; want 2 0", p.Sent, p.Pending)
	}
	loss, err := store.MarkedLoss(b.ctx, s.ID)
	if err != nil || loss.Count != 1 || loss.At.IsZero() {
		t.Errorf("campaign's Redis losses %+v, %v; want one, shown by status", loss, err)
	}
}

// rollback deletes a row's ledger entry and takes back its sent count, as
// a Redis restored from an older AOF would.
func rollback(t *testing.T, rdb *redis.Client, id string, row int) {
	t.Helper()
	ctx := t.Context()
	if err := rdb.HDel(ctx, "fanout:{"+id+"}:l:0", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HIncrBy(ctx, "fanout:{"+id+"}", "sent", -1).Err(); err != nil {
		t.Fatal(err)
	}
}
