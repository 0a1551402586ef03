package monitor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/storage"
)

// keyRecorder is a go-redis hook that records every key a command names.
type keyRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (k *keyRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (k *keyRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		k.mu.Lock()
		for _, a := range cmd.Args()[1:] {
			if s, ok := a.(string); ok && strings.HasPrefix(s, "fanout:") {
				k.keys = append(k.keys, s)
			}
		}
		k.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (k *keyRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// createCampaigns records n campaigns in store, ids c0000 ... .
func createCampaigns(tb testing.TB, store *storage.Store, n int) {
	tb.Helper()
	for i := range n {
		spec, err := campaigns.ParseSpec("c.yaml", fmt.Appendf(nil,
			"id: c%04d\nname: Campaign %d\nchannel: sms\nchannel_id: ch-1\nmessage: \"Hi {{.first_name}}\"\nrecipients: r.csv\nrate:\n  per_second: 20\n", i, i))
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := store.Create(context.Background(), spec); err != nil {
			tb.Fatal(err)
		}
	}
}

// The dashboard's pages read campaign counters, reasons and specs, and
// never a ledger key or any other per-recipient data, so their cost does
// not grow with a campaign's size.
func TestPagesReadNoPerRecipientData(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := storage.New(rdb)
	createCampaigns(t, store, 3)
	rec := &keyRecorder{}
	rdb.AddHook(rec)
	h := New(Options{Store: store})
	for _, path := range []string{"/", "/campaigns/c0001", "/api/campaigns", "/api/campaigns/c0002"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
		}
	}
	if len(rec.keys) == 0 {
		t.Fatal("the hook saw no key: it cannot tell what the pages read")
	}
	for _, k := range rec.keys {
		rest := strings.TrimPrefix(k, "fanout:")
		if i := strings.Index(rest, "}"); i >= 0 {
			rest = rest[i+1:]
		}
		switch rest {
		case "", "campaigns", ":why": // the campaign hash, the index, the reasons
		default:
			t.Errorf("a page read %s", k)
		}
	}
}

// BenchmarkListPage renders the dashboard's first page and the API's full
// list with 1,000 campaigns in Redis (target: the page under 200 ms).
//
//	go test -run '^$' -bench ListPage -benchtime 20x ./monitor
func BenchmarkListPage(b *testing.B) {
	srv := redistest.Start(b)
	store := storage.New(srv.Client(b))
	createCampaigns(b, store, 1000)
	h := New(Options{Store: store})
	for _, path := range []string{"/", "/?page=20", "/api/campaigns?limit=0"} {
		b.Run(path, func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d", path, w.Code)
				}
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
