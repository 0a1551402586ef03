package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
)

// startCluster runs a three-master Redis Cluster on loopback (no
// replicas), slots split evenly, and returns its nodes' addresses once
// every node says cluster_state:ok.
func startCluster(t *testing.T) []string {
	t.Helper()
	bin := redistest.Binary()
	if bin == "" {
		t.Skip("redis-server is not installed (or FANOUT_TEST_REDIS=miniredis): Redis Cluster not tested")
	}
	ctx := context.Background()
	var addrs []string
	var clients []*redis.Client
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		p := freeTestPort(t)
		runRedisServer(t, bin, "--port", strconv.Itoa(p), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--logfile", filepath.Join(dir, "redis.log"))
		addr := "127.0.0.1:" + strconv.Itoa(p)
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		waitFor(t, addr+" answers", func() bool { return c.Ping(ctx).Err() == nil })
		addrs, clients = append(addrs, addr), append(clients, c)
	}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, c := range clients {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", ranges[i][0], ranges[i][1]).Err(); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			host, port, _ := strings.Cut(addrs[0], ":")
			if err := c.ClusterMeet(ctx, host, port).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range clients {
		waitFor(t, "cluster_state:ok", func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3")
		})
	}
	return addrs
}

// runRedisServer starts bin with args (redis-server in some mode) and
// kills it when the test ends.
func runRedisServer(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
}

// waitFor polls cond every 50 ms for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30s", what)
		}
		tick := time.NewTimer(50 * time.Millisecond)
		<-tick.C
	}
}

// On a Redis Cluster (REDIS_CLUSTER_ADDRS), a campaign goes the whole way:
// dispatch --detach uploads it, a worker expands and sends it under a rate
// limit, every recipient once, with the counters right. The ledger's,
// counters' and limiter's multi-key scripts keep their keys in one slot
// ({campaign id}, {sender}), else Redis would refuse them with CROSSSLOT.
func TestClusterCampaignEndToEnd(t *testing.T) {
	t.Parallel()
	if os.Getenv("FANOUT_TEST_REDIS") == "miniredis" {
		t.Skip("FANOUT_TEST_REDIS=miniredis: Redis Cluster needs redis-server")
	}
	addrs := startCluster(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: 100 * time.Millisecond})
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	b := setup(t)
	for k, v := range map[string]string{"REDIS_URL": "redis://unused.invalid:6379/0", "REDIS_CLUSTER_ADDRS": strings.Join(addrs, ","),
		"ONEROUTE_BASE_URL": api.URL, "ONEROUTE_API_KEY": "test_cluster", "FANOUT_RATE_PER_SECOND": "50",
		"FANOUT_POLL_INTERVAL": "100ms", "FANOUT_DLR_INTERVAL": "200ms", "FANOUT_DLR_MAX_AGE": "2s"} {
		b.env[k] = v
	}
	if code := b.run(t, "dispatch", "--detach", "--json", "--id", "cluster-e2e", "testdata/e2e/campaign.yaml"); code != 0 {
		t.Fatalf("dispatch --detach on the cluster: exit %d\n%s", code, b.stderr.String())
	}
	cfg, err := config.Load(func(k string) string { return b.env[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rdb, err := openRedis(ctx, cfg.Redis, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("client %T, want a cluster client", rdb)
	}
	client, _ := newOneRoute(cfg.OneRoute)
	w := newWorker(rdb, client, ratelimit.NewRedis(rdb), cfg, zerolog.Nop())
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	store := storage.New(rdb)
	var p campaigns.Progress
	waitFor(t, "final campaign", func() bool {
		p, err = store.Progress(ctx, "cluster-e2e")
		return err == nil && p.Final()
	})
	if p.Total != 20 || p.Sent != 20 || p.Delivered != 16 || p.Undelivered != 2 || p.DLRExpired != 2 || p.Invalid != 2 || p.Duplicates != 2 {
		t.Fatalf("got %+v", p)
	}
	if st := sb.Stats(); st.Duplicates != 0 || st.Accepted != 20 {
		t.Fatalf("sandbox %+v", st)
	}
	// The keys are spread over the nodes: the test ran on a cluster, not
	// on one node that happened to hold every slot.
	cc := rdb.(*redis.ClusterClient)
	var nodesWithKeys atomic.Int32 // ForEachMaster calls in parallel
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		if n, err := c.DBSize(ctx).Result(); err == nil && n > 0 {
			nodesWithKeys.Add(1)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := nodesWithKeys.Load(); n < 2 {
		t.Errorf("keys on %d node(s), want at least 2", n)
	}
}
