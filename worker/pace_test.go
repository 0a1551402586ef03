package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/worker"
)

// arrival is one request as the provider saw it: when it arrived and how
// many messages it carried.
type arrival struct {
	at time.Time
	n  int
}

// arrivals is a stand-in provider's log: it timestamps each send request
// when its headers arrive, counts its recipients (recipients[] of an SMS,
// messages[] of a WhatsApp template), and passes it on to the sandbox.
type arrivals struct {
	next http.Handler
	mu   sync.Mutex
	log  map[string][]arrival // by path
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Recipients []json.RawMessage `json:"recipients"`
		Messages   []json.RawMessage `json:"messages"`
	}
	if r.Method == http.MethodPost && json.Unmarshal(body, &req) == nil {
		if n := len(req.Recipients) + len(req.Messages); n > 0 {
			a.mu.Lock()
			a.log[r.URL.Path] = append(a.log[r.URL.Path], arrival{at: at, n: n})
			a.mu.Unlock()
		}
	}
	a.next.ServeHTTP(w, r)
}

// paceFigures are the provider-side figures of one sender's arrivals.
type paceFigures struct {
	total      int
	maxWindow  int     // most messages in any sliding one-second window
	sustained  float64 // messages per second after the first second
	maxRequest int     // most messages in one request
}

func figures(log []arrival) paceFigures {
	slices.SortFunc(log, func(x, y arrival) int { return x.at.Compare(y.at) })
	var f paceFigures
	in, lo := 0, 0
	for _, a := range log {
		f.total += a.n
		f.maxRequest = max(f.maxRequest, a.n)
		in += a.n
		for !a.at.Before(log[lo].at.Add(time.Second)) {
			in -= log[lo].n
			lo++
		}
		f.maxWindow = max(f.maxWindow, in)
	}
	// The first second holds the initial burst; the rate after it is the
	// steady one.
	first := log[0].at.Add(time.Second)
	after := 0
	for _, a := range log {
		if !a.at.Before(first) {
			after += a.n
		}
	}
	if span := log[len(log)-1].at.Sub(first).Seconds(); span > 0 {
		// n messages over their n-1 intervals.
		f.sustained = float64(after-1) / span
	}
	return f
}

// The provider never sees more than the limit plus the burst in any second,
// whatever the shape of the requests and however many workers share the
// sender, and the sender still gets its whole rate: pacing holds at
// arrival, not only at the limiter. Three workers (each with its own Redis
// client, like three processes) share one Redis; one campaign of
// personalised SMS (one request per message) and one of WhatsApp templates
// (one request per batch of 50), each on its own sender with
// rate {per_second: 200, burst: 20}, run at once. FANOUT_LONG=1 sends
// 3,000 of each instead of 600.
func TestPacingAtArrival(t *testing.T) {
	// Not parallel: it measures time, so it runs alone, before the parallel
	// tests start.
	n := 600
	if os.Getenv("FANOUT_LONG") == "1" {
		n = 3000
	}
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: time.Hour})
	t.Cleanup(sb.Close)
	rec := &arrivals{next: sb, log: map[string][]arrival{}}
	api := httptest.NewServer(rec)
	t.Cleanup(api.Close)

	for i := range 3 {
		rdb := srv.Client(t)
		client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: fmt.Sprintf("test_pace%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		w := worker.NewServer(rdb, worker.Deps{Store: storage.New(rdb), Provider: client,
			Enqueuer: asynq.NewClientFromRedisClient(rdb), Limiter: ratelimit.NewRedis(rdb), Logger: zerolog.Nop()},
			worker.Options{Concurrency: 20, PollInterval: 20 * time.Millisecond, DLRInterval: time.Hour})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}

	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := range n {
		fmt.Fprintf(&csv, "0803%07d,N%d\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "r.csv"), []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	rate := "rate: {per_second: 200, burst: 20}\nbatch_size: 50\nrecipients: r.csv\n"
	specs := []string{
		fmt.Sprintf("name: sms\nchannel: sms\nchannel_id: %s\nmessage: \"Hello {{.name}}\"\n", sandbox.SMSChannelID) + rate,
		fmt.Sprintf("name: wa\nchannel: whatsapp_template\nfrom: %q\ntemplate:\n  name: first_welcome_messsage\n  parameters: [\"{{.name}}\"]\n", sandbox.WhatsAppNumber) + rate,
	}
	rdb := srv.Client(t)
	store := storage.New(rdb)
	ctx := context.Background()
	var ids []string
	for i, text := range specs {
		path := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
		spec, err := campaigns.ParseSpec(path, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		src, err := recipients.OpenSource(spec.RecipientsPath(), recipients.SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		if _, err := dispatcher.Dispatch(ctx, store, asynq.NewClientFromRedisClient(rdb), spec, src, dispatcher.Options{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, spec.ID)
	}
	deadline := time.Now().Add(time.Duration(n)*time.Second/200 + 30*time.Second)
	for _, id := range ids {
		for {
			p, err := store.Progress(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if p.Done() == int64(n) {
				if p.Sent != int64(n) {
					t.Fatalf("campaign %s: %+v, want all %d sent", id, p, n)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("campaign %s not done in time: %+v", id, p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.log) != 2 {
		t.Fatalf("arrivals on %d paths, want 2 (SMS and WhatsApp): %v", len(rec.log), rec.log)
	}
	// The bound on arrivals holds whatever the load. The sustained share
	// does not: on a loaded 2-core machine releases run late by up to
	// ~100 ms, the worker does not send a message released too late and
	// gives it to a child task a second later, which in a 3-second run
	// costs from a few percent to half of the rate (seen at load 12 with
	// and without -race). So make test only logs the share; FANOUT_LONG=1
	// (make chaos-pace) asserts it at 90% over a longer run.
	bound, share := 220, 0.0
	if os.Getenv("FANOUT_LONG") == "1" {
		share = 0.9
	}
	for path, log := range rec.log {
		f := figures(log)
		t.Logf("%s: %d messages, max sliding 1 s window %d (limit + burst 220), sustained %.1f/s (%.1f%% of 200), largest request %d",
			path, f.total, f.maxWindow, f.sustained, f.sustained/2, f.maxRequest)
		if f.total != n {
			t.Errorf("%s: provider saw %d messages, want %d", path, f.total, n)
		}
		if f.maxRequest > 20 {
			t.Errorf("%s: a request carried %d messages, more than the burst 20", path, f.maxRequest)
		}
		if f.maxWindow > bound {
			t.Errorf("%s: %d messages arrived within one second, more than %d (limit + burst: 220)", path, f.maxWindow, bound)
		}
		if f.sustained < share*200 {
			t.Errorf("%s: sustained %.1f/s, below %.0f%% of the limit", path, f.sustained, share*100)
		}
	}
}
