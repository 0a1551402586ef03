package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
)

type fakeProgress map[string]campaigns.Progress

func (f fakeProgress) List(context.Context, int) ([]string, error) {
	var ids []string
	for id := range f {
		ids = append(ids, id)
	}
	return ids, nil
}

func (f fakeProgress) Progress(_ context.Context, id string) (campaigns.Progress, error) {
	p, ok := f[id]
	if !ok {
		return p, storage.ErrNotFound
	}
	return p, nil
}

// gather collects c and returns its series as "name{k=v,...}" -> value.
func gather(t *testing.T, cs ...prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// expectSeries fails for every series of want whose value in got differs.
func expectSeries(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for key, v := range want {
		if got[key] != v {
			t.Errorf("%s = %v, want %v", key, got[key], v)
		}
	}
}

// refuseLabels fails for every series of got whose labels hold one of the
// values.
func refuseLabels(t *testing.T, got map[string]float64, why string, values ...string) {
	t.Helper()
	for key := range got {
		for _, v := range values {
			if strings.Contains(key, v) {
				t.Errorf("%s: %s", why, key)
			}
		}
	}
}

// Campaign ids are labels only for campaigns that are not final or that
// finished within the recent window; the totals count every campaign.
func TestCampaignCollectorBoundsLabels(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	recent, old := now.Add(-10*time.Minute), now.Add(-3*time.Hour)
	eta := 30.0
	c := NewCampaignCollector(fakeProgress{
		"live":   {ID: "live", Channel: campaigns.ChannelSMS, State: campaigns.StateRunning, Total: 10, Sent: 4, Failed: 1, Pending: 5, Rate: 2, ETA: &eta},
		"paused": {ID: "paused", Channel: campaigns.ChannelEmail, State: campaigns.StatePaused, Total: 3, Pending: 3},
		"fresh":  {ID: "fresh", Channel: campaigns.ChannelSMS, State: campaigns.StateCompleted, Total: 2, Sent: 2, Delivered: 2, FinishedAt: &recent},
		"old":    {ID: "old", Channel: campaigns.ChannelSMS, State: campaigns.StateCompleted, Total: 7, Sent: 7, FinishedAt: &old},
	}, time.Hour)
	c.now = func() time.Time { return now }
	expectSeries(t, gather(t, c), map[string]float64{
		"fanout_campaign_messages{campaign=live,channel=sms,outcome=sent}":        4,
		"fanout_campaign_messages{campaign=live,channel=sms,outcome=pending}":     5,
		"fanout_campaign_messages{campaign=paused,channel=email,outcome=pending}": 3,
		"fanout_campaign_messages{campaign=fresh,channel=sms,outcome=delivered}":  2,
		"fanout_campaign_rate_per_second{campaign=live}":                          2,
		"fanout_campaign_eta_seconds{campaign=live}":                              30,
		"fanout_messages{channel=sms,outcome=sent}":                               13,
		"fanout_messages{channel=sms,outcome=failed}":                             1,
		"fanout_messages{channel=email,outcome=pending}":                          3,
		"fanout_campaigns{state=completed}":                                       2,
		"fanout_campaigns{state=running}":                                         1,
		"fanout_campaigns{state=cancelled}":                                       0,
		"fanout_campaign_scrape_error{}":                                          0,
	})
	refuseLabels(t, gather(t, c), "a campaign finished 3h ago still has series", "campaign=old")
}

type failingProgress struct{ fakeProgress }

func (failingProgress) List(context.Context, int) ([]string, error) {
	return nil, errors.New("connection refused")
}

// A scrape that cannot read Redis says so in a gauge instead of failing
// the whole /metrics page.
func TestCampaignCollectorReportsScrapeErrors(t *testing.T) {
	t.Parallel()
	got := gather(t, NewCampaignCollector(failingProgress{}, 0))
	if got["fanout_campaign_scrape_error{}"] != 1 {
		t.Errorf("scrape error gauge = %v, want 1", got["fanout_campaign_scrape_error{}"])
	}
}

// Endpoints are path templates: ids never become label values.
func TestEndpoint(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ method, path, want string }{
		{"POST", "/api/public/channel/9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002/sms", "POST /api/public/channel/{id}/sms"},
		{"GET", "/api/public/dlr/msg-123/sms", "GET /api/public/dlr/{id}/sms"},
		{"GET", "/api/public/channel/abc/sms", "GET /api/public/channel/{id}/sms"},
		{"POST", "/api/public/conversation/template", "POST /api/public/conversation/template"},
		{"POST", "/api/oneotp/send", "POST /api/oneotp/send"},
		{"GET", "/api/public/channels/sms", "GET /api/public/channels/sms"},
		{"PROPFIND", "/a/b/c/d/e/f/g/h", "OTHER /{id}/{id}/{id}/{id}/{id}/{id}/…"},
	} {
		if got := Endpoint(c.method, c.path); got != c.want {
			t.Errorf("Endpoint(%s %s) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// Every request through the transport is timed once, by endpoint and
// status class; a request that fails counts as "error".
func TestTransportTimesRequests(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "bad") {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	m := NewWorker()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: m.Transport(tr)}
	for _, p := range []string{"/api/public/channel/c1/sms", "/api/public/channel/c2/sms", "/api/public/channel/bad/sms"} {
		resp, err := hc.Post(srv.URL+p, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/api/public/dlr/x/sms", nil)
	if _, err := hc.Do(req); err == nil {
		t.Fatal("a request to port 1 succeeded")
	}
	expectSeries(t, gather(t, m.provider), map[string]float64{
		"fanout_provider_request_duration_seconds{endpoint=POST /api/public/channel/{id}/sms,status_class=2xx}": 2,
		"fanout_provider_request_duration_seconds{endpoint=POST /api/public/channel/{id}/sms,status_class=4xx}": 1,
		"fanout_provider_request_duration_seconds{endpoint=GET /api/public/dlr/{id}/sms,status_class=error}":    1,
	})
}

type fakeLimiter struct{ refuse bool }

func (f fakeLimiter) Allow(ctx context.Context, key string, l ratelimit.Limit, n int) (ratelimit.Result, error) {
	return f.Reserve(ctx, key, l, n, 0)
}

func (f fakeLimiter) Reserve(_ context.Context, _ string, _ ratelimit.Limit, n int, _ time.Duration) (ratelimit.Result, error) {
	if f.refuse {
		return ratelimit.Result{RetryAfter: 2 * time.Second}, nil
	}
	return ratelimit.Result{Allowed: n, Delay: 100 * time.Millisecond}, nil
}

func (fakeLimiter) Block(context.Context, string, time.Duration) error { return nil }

// The limiter decorator passes answers through unchanged and counts the
// permits, the refusals and the waits by channel, never by sender id.
func TestLimiterCountsWaits(t *testing.T) {
	t.Parallel()
	m := NewWorker()
	ok, no := m.Limiter(fakeLimiter{}), m.Limiter(fakeLimiter{refuse: true})
	ctx := context.Background()
	if res, _ := ok.Reserve(ctx, "sms:chan-1", ratelimit.Limit{PerSecond: 5}, 3, time.Second); res.Allowed != 3 || res.Delay != 100*time.Millisecond {
		t.Errorf("Reserve through the decorator = %+v", res)
	}
	if res, _ := no.Allow(ctx, "whatsapp:+2348031234567", ratelimit.Limit{PerSecond: 5}, 2); res.Allowed != 0 || res.RetryAfter != 2*time.Second {
		t.Errorf("Allow through the decorator = %+v", res)
	}
	if err := ok.Block(ctx, "sms:chan-1", time.Second); err != nil {
		t.Fatal(err)
	}
	got := gather(t, m.asked, m.refused, m.wait, m.blocked)
	expectSeries(t, got, map[string]float64{
		"fanout_ratelimit_permits_requested_total{channel=sms}":      3,
		"fanout_ratelimit_permits_requested_total{channel=whatsapp}": 2,
		"fanout_ratelimit_refusals_total{channel=whatsapp}":          1,
		"fanout_ratelimit_wait_seconds{channel=sms}":                 1,
		"fanout_ratelimit_wait_seconds{channel=whatsapp}":            1,
		"fanout_ratelimit_blocks_total{channel=sms}":                 1,
	})
	refuseLabels(t, got, "a sender id became a label", "234803", "chan-1")
}

// /healthz answers while the process runs; /readyz fails with the reason
// while a check fails; /metrics serves the registry.
func TestHealthHandler(t *testing.T) {
	t.Parallel()
	ready := errors.New("redis: connection refused")
	m := NewWorker()
	h := HealthHandler(m.Handler(), map[string]CheckFunc{"redis": func(context.Context) error { return ready }})
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/healthz", 200, `"status":"ok"`},
		{"/readyz", 503, `"redis":"redis: connection refused"`},
		{"/metrics", 200, "go_goroutines"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s: %d %s, want %d with %s", c.path, rec.Code, rec.Body.String(), c.code, c.want)
		}
	}
	ready = nil
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Errorf("/readyz once Redis answers: %d %s", rec.Code, rec.Body.String())
	}
}

// Every fanout series the Grafana dashboard in deploy/ queries exists, so
// the dashboard never shows "no data" for a renamed metric.
func TestGrafanaDashboardUsesExistingSeries(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/grafana-fanout.json")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	ch := make(chan *prometheus.Desc, 100)
	w := NewWorker()
	for _, c := range []prometheus.Collector{NewCampaignCollector(fakeProgress{}, 0), NewQueueCollector(nil),
		w.provider, w.asked, w.refused, w.wait, w.blocked, w.failures} {
		c.Describe(ch)
	}
	close(ch)
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		if m := name.FindStringSubmatch(d.String()); m != nil {
			known[m[1]] = true
		}
	}
	used := regexp.MustCompile(`fanout_[a-z_]+`).FindAllString(string(data), -1)
	if len(used) == 0 {
		t.Fatal("the dashboard queries no fanout series")
	}
	for _, u := range used {
		base := u
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if !known[base] {
			t.Errorf("the dashboard queries %s, which no collector exports", u)
		}
	}
}
