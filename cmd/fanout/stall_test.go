package main

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
)

// A 45 s Redis stall (the redis-server process stopped with SIGSTOP) in the
// middle of a campaign: every asynq lease runs out during it. Within 10 s of
// its end the workers send again and no task is left behind with a lapsed
// lease (asynq alone brings such tasks back 60 to 90 s later), no
// recipient is failed for the stall, none is sent twice, and the campaign
// completes. FANOUT_STALL_SECONDS changes the stall; FANOUT_STALL_UNDEFENDED=1
// turns the fast requeue off to show the difference. make chaos-stall.
func TestRedisStallResumesQuickly(t *testing.T) {
	if !chaos() {
		t.Skip("a 45 s Redis stall: FANOUT_CHAOS=1 (make chaos-stall)")
	}
	if redistest.Binary() == "" {
		t.Skip("redis-server is not installed")
	}
	stall := 45 * time.Second
	if v, err := strconv.Atoi(os.Getenv("FANOUT_STALL_SECONDS")); err == nil && v > 0 {
		stall = time.Duration(v) * time.Second
	}
	c := setupChaos(t, redistest.Options{}, 100*time.Millisecond)
	const n = 3000
	opts := fastOptions()
	opts.RequestTimeout = 2 * time.Second
	if os.Getenv("FANOUT_STALL_UNDEFENDED") == "1" {
		opts.LeaseProbe = -1
	}
	c.startWorkers(t, 2, opts)
	res := c.dispatch(t, writeCampaign(t, n, "rate: {per_second: 50, burst: 10}\n"), 25)
	testwait.For(t, "the first 300 sends", time.Minute, func() bool { return c.sb.Stats().Accepted >= 300 })

	before := c.sb.Stats().Accepted
	if err := c.redis.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(stall) // the stall itself: nothing to wait for
	during := c.sb.Stats().Accepted - before
	if err := c.redis.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawed := time.Now()

	// Work resumes: the first send after the stall, and the moment no task
	// holds a lapsed lease any more.
	var firstSend, leasesClear time.Duration
	afterStall := c.sb.Stats().Accepted
	deadline := thawed.Add(3 * time.Minute)
	for time.Now().Before(deadline) && (firstSend == 0 || leasesClear == 0) {
		if firstSend == 0 && c.sb.Stats().Accepted > afterStall {
			firstSend = time.Since(thawed)
		}
		if leasesClear == 0 {
			lapsed := int64(0)
			ok := true
			for _, q := range []string{"sms", "dlr"} {
				k, err := c.rdb.ZCount(context.Background(), "asynq:{"+q+"}:lease", "-inf", strconv.FormatInt(time.Now().Add(-2*time.Second).Unix(), 10)).Result()
				ok = ok && err == nil
				lapsed += k
			}
			if ok && lapsed == 0 {
				leasesClear = time.Since(thawed)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p := c.waitFinal(t, res.ID, 5*time.Minute)
	st := c.sb.Stats()
	t.Logf("Redis stalled %s after %d sends (%d accepted during the stall): first send %s after it ended, no lapsed lease %s after; campaign %s, sent %d failed %d unknown %d; sandbox accepted %d duplicates %d",
		stall, before, during, firstSend.Round(100*time.Millisecond), leasesClear.Round(100*time.Millisecond), time.Since(thawed).Round(time.Second), p.Sent, p.Failed, p.Unknown, st.Accepted, st.Duplicates)
	c.checkLedger(t, p)
	if firstSend == 0 || firstSend > 10*time.Second || leasesClear == 0 || leasesClear > 10*time.Second {
		t.Errorf("work resumed %s and lapsed leases cleared %s after the stall; want both within 10 s", firstSend, leasesClear)
	}
	if p.Failed != 0 || p.Unknown != 0 || st.Duplicates != 0 || p.Sent != n {
		t.Errorf("sent %d failed %d unknown %d duplicates %d; want %d sent, none failed, unknown or twice", p.Sent, p.Failed, p.Unknown, st.Duplicates, n)
	}
}
