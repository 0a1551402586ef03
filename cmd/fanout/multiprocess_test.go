package main

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
)

// Three `fanout worker` processes against one Redis complete one campaign
// together under one shared rate limit: every recipient is sent once and
// recorded, and the sends take at least as long as the limit allows for
// the whole campaign (three private limits would let it finish about three
// times sooner).
func TestThreeWorkerProcessesShareOneLimit(t *testing.T) {
	t.Parallel()
	const n, rate, burst = 300, 100, 10
	c := setupChaos(t, redistest.Options{}, 100*time.Millisecond)
	res := c.dispatch(t, writeCampaign(t, n, "rate: {per_second: 100, burst: 10}\n"), 50)
	for range 3 {
		c.startWorker(t)
	}
	// The first message the provider accepts starts the clock.
	testwait.For(t, "a first send", 60*time.Second, func() bool { return c.sb.Stats().Accepted > 0 })
	first := time.Now()
	insp := asynq.NewInspectorFromRedisClient(c.rdb)
	testwait.For(t, "three worker processes registered", 60*time.Second, func() bool {
		s, err := insp.Servers()
		return err == nil && len(s) == 3
	})
	p := c.waitFinal(t, res.ID, 3*time.Minute)
	c.checkLedger(t, p)
	st := c.sb.Stats()
	if st.Duplicates != 0 || st.Accepted != n || p.Sent != n {
		t.Errorf("sandbox accepted %d with %d duplicates, ledger sent %d; want %d, 0, %d", st.Accepted, st.Duplicates, p.Sent, n, n)
	}
	if p.SentAt == nil {
		t.Fatalf("no sent time: %+v", p)
	}
	// The burst may go at once; what follows cannot beat the shared limit
	// (the last send is recorded after its request, so this errs long).
	floor := time.Duration(float64(n-2*burst) / rate * float64(time.Second))
	if took := p.SentAt.Sub(first); took < floor {
		t.Errorf("%d sends took %s from the first to the last; a shared %d/s limit needs at least %s", n, took, rate, floor)
	} else {
		t.Logf("%d sends through 3 worker processes in %s (the shared %d/s limit allows no less than %s)", n, took.Round(time.Millisecond), rate, floor)
	}
}
