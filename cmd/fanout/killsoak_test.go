package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// A kill soak (issue 13 item 6): three `fanout worker` processes send a
// 20,000-recipient personalised SMS campaign at 500/s while, every 1.5 s, a
// worker picked at random is killed (SIGKILL) and started again, 20 times;
// sends take 50 ms at the provider. The rolling variant stops workers with
// SIGTERM instead, 1,000 recipients at 10/s with sends that take 5 s, so
// every stop lands on sends in flight. The unthrottled variant kills
// workers running the default tasks of an unthrottled personalised
// campaign (200 recipients, config.DefaultUnlimitedBatchSize), with sends
// that take 1 s so that the kills land mid-campaign.
// Every recipient ends final, none is sent twice, and the counters equal
// a recount of the ledger. make chaos only (FANOUT_CHAOS=1); the kills are
// FANOUT_KILLS (default 20), the recipients FANOUT_KILL_RECIPIENTS.
func TestKillSoak(t *testing.T) {
	if !chaos() {
		t.Skip("long (three worker processes killed 20 times); run with make chaos")
	}
	for _, c := range []struct {
		name    string
		sig     syscall.Signal
		latency int
		n, rate int // rate 0: no limit
		batch   int // 0: the default
	}{
		{"SIGKILL", syscall.SIGKILL, 50, envInt("FANOUT_KILL_RECIPIENTS", 20_000), 500, 50},
		{"SIGTERM", syscall.SIGTERM, 5000, envInt("FANOUT_KILL_RECIPIENTS", 20_000) / 20, 10, 50},
		{"SIGKILL-unthrottled", syscall.SIGKILL, 1000, envInt("FANOUT_KILL_RECIPIENTS", 20_000), 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each with its own redis-server, sandbox and workers; mostly waiting
			killSoak(t, c.sig, c.latency, c.n, c.rate, c.batch, envInt("FANOUT_KILLS", 20))
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func killSoak(t *testing.T, sig syscall.Signal, latencyMS, n, rate, batch, kills int) {
	c := setupChaos(t, redistest.Options{RequireReal: true, AOF: true}, 100*time.Millisecond)
	c.sb.SetFaults(sandbox.Faults{LatencyMS: latencyMS})
	env := []string{"ONEROUTE_TIMEOUT=10s", "FANOUT_CONCURRENCY=20"}
	workers := make([]*exec.Cmd, 3)
	for i := range workers {
		workers[i], _ = c.startWorker(t, env...)
	}
	start := time.Now()
	limit := ""
	if rate > 0 {
		limit = fmt.Sprintf("rate: {per_second: %d, burst: %d}\n", rate, max(rate/10, 1))
	}
	res := c.dispatch(t, writeCampaign(t, n, limit), batch)
	if batch == 0 && res.Batches != (n+config.DefaultUnlimitedBatchSize-1)/config.DefaultUnlimitedBatchSize {
		t.Fatalf("%d batches of %d recipients; want tasks of %d", res.Batches, n, config.DefaultUnlimitedBatchSize)
	}
	testwait.For(t, "the first sends", time.Minute, func() bool { return c.sb.Stats().Accepted > 0 })
	done := 0
	for k := 0; k < kills; k++ {
		time.Sleep(1500 * time.Millisecond)
		if p, _ := c.store.Progress(c.ctx, res.ID); p.Final() {
			break
		}
		i := rand.IntN(len(workers))
		workers[i].Process.Signal(sig)
		workers[i].Wait()
		workers[i], _ = c.startWorker(t, env...)
		done++
	}
	killedFor := time.Since(start)
	mid, _ := c.store.Progress(c.ctx, res.ID)
	p := c.waitFinal(t, res.ID, 10*time.Minute)
	st := c.sb.Stats()
	t.Logf("%s soak: %d recipients, 3 workers, %d %s in %s (%d sent by then); final after %s: sent %d failed %d unknown %d; sandbox send requests %d, accepted %d, duplicates %d",
		sig, n, done, sig, killedFor.Round(time.Second), mid.Sent, time.Since(start).Round(time.Second), p.Sent, p.Failed, p.Unknown,
		st.SendRequests, st.Accepted, st.Duplicates)
	c.checkLedger(t, p)
	if done < kills && mid.Sent < int64(n) {
		t.Errorf("only %d of %d kills", done, kills)
	}
	if st.Duplicates != 0 || st.Accepted != p.Sent || p.Sent+p.Unknown != int64(n) || p.Failed != 0 {
		t.Errorf("accepted %d, duplicates %d, sent %d, unknown %d, failed %d; want %d accepted and sent, 0 duplicates",
			st.Accepted, st.Duplicates, p.Sent, p.Unknown, p.Failed, n)
	}
}
