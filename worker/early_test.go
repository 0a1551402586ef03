package worker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// A batch sent in several calls records each call's acceptances as soon as
// the call returns, when more calls follow. So a second attempt of the task
// that starts while the rest is being sent (a redelivery after a lost
// lease, the auditor's copy), or one after a crash, finds the first calls'
// rows accepted, not stamped rows of a vanished attempt that it would
// record unknown or, with at_least_once, send again.
func TestCallsAreRecordedAsTheyReturn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("early-calls", campaigns.ChannelWhatsAppTemplate)
	s.AtLeastOnce = true
	to := phones(120)
	batch := b.campaign(t, s, to...)
	batch.Request = 50
	var (
		mu     sync.Mutex
		sentAt []int64 // the campaign's sent counter when each call starts
		second []storage.ClaimResult
	)
	calls := b.templateCalls(func(to []string) ([]oneroute.Result, error) {
		p := b.progress(t, s.ID)
		mu.Lock()
		defer mu.Unlock()
		sentAt = append(sentAt, p.Sent)
		if len(sentAt) == 2 {
			// Another attempt claims the first call's rows, treating every
			// stamp as stale, while this one still sends.
			rows := make([]int, 50)
			for i := range rows {
				rows[i] = i + 1
			}
			reply, err := b.store.Claim(b.ctx, s.ID, storage.NewToken(), rows, 0)
			if err != nil {
				t.Error(err)
			} else {
				second = reply.Results
			}
		}
		return ok(to), nil
	})
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(calls()); got != "[50 50 20]" {
		t.Fatalf("calls of %s; want [50 50 20]", got)
	}
	if got := fmt.Sprint(sentAt); got != "[0 50 100]" {
		t.Errorf("sent counter when each call started: %s; want [0 50 100]", got)
	}
	for i, r := range second {
		if r.Code != storage.AlreadyFinal || r.Accepted != "id-"+to[i] {
			t.Fatalf("the second attempt's claim of row %d: %+v; want already accepted as id-%s", i+1, r, to[i])
		}
	}
	if p := b.progress(t, s.ID); p.Sent != 120 || p.Unknown != 0 || p.State != campaigns.StateSent && p.State != campaigns.StateCompleted {
		t.Errorf("sent %d, unknown %d, state %s; want 120 sent, 0 unknown", p.Sent, p.Unknown, p.State)
	}
	for _, n := range to {
		if k := b.prov.times(n); k != 1 {
			t.Errorf("%s sent %d times; want 1", n, k)
		}
	}
}

// Per-message requests: a row accepted while the task's later requests are
// still out is recorded within earlyDelay, long before its stamp would look
// stale; the task's end records the rest, and counts nobody twice.
func TestPerMessageAcceptancesAreRecordedWhileTheTaskSends(t *testing.T) {
	t.Parallel()
	b := setup(t) // 4 requests at a time
	s := spec("early-each", campaigns.ChannelSMS)
	to := phones(12)
	batch := b.campaign(t, s, to...)
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // a failed wait must not leave the task blocked
	var n sync.Map
	b.prov.sms = func(rcpt []string, _ string) ([]oneroute.Result, error) {
		if _, seen := n.LoadOrStore(rcpt[0], true); !seen && rcpt[0] >= to[4] {
			<-release // the second group waits until the first is recorded
		}
		return ok(rcpt), nil
	}
	done := make(chan error, 1)
	go func() { done <- b.run(t, batch) }()
	testwait.For(t, "the first 4 acceptances recorded while the task sends", 10*time.Second, func() bool {
		return b.progress(t, s.ID).Sent == 4
	})
	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := b.progress(t, s.ID); p.Sent != 12 || p.Unknown != 0 || p.Failed != 0 {
		t.Errorf("sent %d, unknown %d, failed %d; want 12, 0, 0", p.Sent, p.Unknown, p.Failed)
	}
}

// On a channel whose rows no look-up can settle, earlyEvery waiting
// acceptances are recorded without waiting for earlyDelay; an SMS waits for
// it. After close nothing more is recorded early: settle records it.
func TestEarlyRecordsEveryAndDelay(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	b.campaign(t, "every", 12) // rows 1..120, SMS
	sent := func() int64 {
		p, err := b.store.Progress(b.ctx, "every")
		if err != nil {
			t.Fatal(err)
		}
		return p.Sent
	}
	attempt := func(ch campaigns.Channel, rows []int) *attempt {
		a := &attempt{s: &batchSender{deps: Deps{Store: b.store}}, b: &campaigns.Batch{Campaign: "every", Channel: ch}, token: storage.NewToken()}
		if _, err := b.store.Claim(b.ctx, "every", a.token, rows, time.Minute); err != nil {
			t.Fatal(err)
		}
		return a
	}
	var email, sms []int
	for r := 1; r <= earlyEvery; r++ {
		email, sms = append(email, r), append(sms, 60+r)
	}
	// Email: the 50th acceptance records all 50, long before the delay.
	r := newEarlyRecords(b.ctx, attempt(campaigns.ChannelEmail, email))
	r.delay = time.Hour
	for _, row := range email {
		r.add(row, fmt.Sprint("id-", row))
	}
	testwait.For(t, "50 email acceptances recorded at once", 10*time.Second, func() bool { return sent() == earlyEvery })
	r.close()
	if n, rec := len(r.acceptedEarly()), r.recorded(email[0]); n != earlyEvery || !rec {
		t.Errorf("email: %d rows recorded early, first %v; want %d, true", n, rec, earlyEvery)
	}
	// SMS: 50 acceptances wait for the delay; closed before it, none is
	// recorded early, and a late add is ignored.
	a := attempt(campaigns.ChannelSMS, sms)
	r = newEarlyRecords(b.ctx, a)
	r.delay = time.Hour
	for _, row := range sms {
		r.add(row, fmt.Sprint("id-", row))
	}
	r.close()
	r.add(1000, "late")
	if got, n := sent(), len(r.acceptedEarly()); got != earlyEvery || n != 0 {
		t.Errorf("sms: campaign sent %d, %d rows recorded early; want %d (the email rows), 0", got, n, earlyEvery)
	}
	// By time: the same rows, with a short delay, are recorded after it.
	r = newEarlyRecords(b.ctx, a)
	r.delay = 10 * time.Millisecond
	for _, row := range sms {
		r.add(row, fmt.Sprint("id-", row))
	}
	testwait.For(t, "the SMS rows recorded after the delay", 10*time.Second, func() bool { return r.recorded(sms[len(sms)-1]) })
	r.close()
	if got := sent(); got != 2*earlyEvery {
		t.Errorf("sent %d; want %d", got, 2*earlyEvery)
	}
}

// Rows recorded early get their delivery reports swept even when the
// task's last call accepts nothing (throttled here): the sweep is planned
// from the early records, not only from what the task's end records.
func TestEarlyRowsAreSwept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("early-sweep", campaigns.ChannelSMS)
	s.Message = "hi all" // one text: a batched call
	to := phones(120)
	batch := b.campaign(t, s, to...)
	batch.Shared, batch.Request = &campaigns.Content{Text: "hi all"}, 50
	for i := range batch.Items {
		batch.Items[i].Content = nil
	}
	var calls int
	var mu sync.Mutex
	b.prov.sms = func(rcpt []string, _ string) ([]oneroute.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 3 {
			return nil, &oneroute.APIError{Status: 429, Message: "slow down", RetryAfter: time.Second}
		}
		return ok(rcpt), nil
	}
	b.enq.take(tasks.TypeDLRSweep)
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	if p := b.progress(t, s.ID); p.Sent != 100 || calls != 3 {
		t.Fatalf("sent %d in %d calls; want 100 in 3", p.Sent, calls)
	}
	if n := len(b.enq.take(tasks.TypeDLRSweep)); n == 0 {
		t.Error("no delivery-report sweep planned for the 100 rows recorded early")
	}
}
