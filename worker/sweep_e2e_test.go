package worker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/worker"
)

// End to end (dispatcher, asynq, worker, sandbox): a personalised SMS
// campaign completes with delivered, undelivered and dlr_expired equal to
// the sandbox's own outcomes, and its delivery reports cost at most 0.1
// provider requests per message (issue 9).
func TestDeliveryReportsInBulk(t *testing.T) {
	t.Parallel()
	const n = 3000
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: 200 * time.Millisecond})
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	rdb := srv.Client(t)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "bulk"})
	if err != nil {
		t.Fatal(err)
	}
	store := storage.New(rdb)
	w := worker.NewServer(rdb, worker.Deps{Store: store, Provider: client, Enqueuer: asynq.NewClientFromRedisClient(rdb), Logger: zerolog.Nop()},
		worker.Options{Concurrency: 10, PollInterval: 20 * time.Millisecond, DLRInterval: 200 * time.Millisecond, DLRMaxAge: 3 * time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := range n {
		fmt.Fprintf(&csv, "0803%07d,N%d\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "r.csv"), []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("name: dlr\nchannel: sms\nchannel_id: %s\nmessage: \"Hello {{.name}}\"\nrecipients: r.csv\n", sandbox.SMSChannelID)
	spec, err := campaigns.ParseSpec(filepath.Join(dir, "c.yaml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	src, err := recipients.OpenSource(spec.RecipientsPath(), recipients.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx := context.Background()
	if _, err := dispatcher.Dispatch(ctx, store, asynq.NewClientFromRedisClient(rdb), spec, src, dispatcher.Options{}); err != nil {
		t.Fatal(err)
	}
	var p campaigns.Progress
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if p, err = store.Progress(ctx, spec.ID); err != nil {
			t.Fatal(err)
		}
		if p.State == campaigns.StateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not completed in time: %+v; sandbox %+v", p, sb.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := sb.Stats()
	if p.Sent != n || st.Accepted != n || st.Duplicates != 0 {
		t.Fatalf("sent %d, sandbox accepted %d with %d duplicates; want %d, %d, 0", p.Sent, st.Accepted, st.Duplicates, n, n)
	}
	if p.Delivered != st.SMSStatus["delivered"] || p.Undelivered != st.SMSStatus["undelivered"] || p.DLRExpired != st.SMSStatus["pending"] {
		t.Fatalf("delivered %d, undelivered %d, dlr_expired %d; the sandbox has %v", p.Delivered, p.Undelivered, p.DLRExpired, st.SMSStatus)
	}
	reqs := st.SMSListRequests + st.DLRRequests
	t.Logf("%d messages: %d list requests, %d per-message report requests (%.4f per message)", n, st.SMSListRequests, st.DLRRequests, float64(reqs)/n)
	if float64(reqs) > 0.1*n {
		t.Errorf("%d delivery-report requests for %d messages, more than 0.1 per message", reqs, n)
	}
}
