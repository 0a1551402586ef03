package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// ProgressReader is what the campaign collector needs of *storage.Store.
type ProgressReader interface {
	List(ctx context.Context, limit int) ([]string, error)
	Progress(ctx context.Context, id string) (campaigns.Progress, error)
}

var _ ProgressReader = (*storage.Store)(nil)

// Outcomes are the values of the outcome label, in the order they are
// exported. delivered, undelivered, dlr_expired and awaiting_dlr are parts
// of sent (SMS delivery reports); pending is what is not final yet.
var Outcomes = []string{"pending", "sent", "failed", "unknown", "skipped", "delivered", "undelivered", "dlr_expired", "awaiting_dlr"}

func outcomeValues(p campaigns.Progress) []int64 {
	return []int64{p.Pending, p.Sent, p.Failed, p.Unknown, p.Skipped, p.Delivered, p.Undelivered, p.DLRExpired, p.AwaitingDLR}
}

// CampaignCollector exports campaign counters read from Redis at scrape
// time. Totals over every campaign carry channel and outcome labels only;
// the per-campaign series exist only for campaigns that are not final or
// that finished less than Recent ago, so the number of series stays bounded
// by the campaigns that are running, not by history.
type CampaignCollector struct {
	store   ProgressReader
	recent  time.Duration
	timeout time.Duration
	now     func() time.Time

	messages         *prometheus.Desc
	campaignsByState *prometheus.Desc
	campaignMessages *prometheus.Desc
	campaignRate     *prometheus.Desc
	campaignETA      *prometheus.Desc
	scrapeErrors     *prometheus.Desc
}

// DefaultRecent is how long a finished campaign keeps its per-campaign
// series.
const DefaultRecent = time.Hour

// NewCampaignCollector returns a collector over store. recent <= 0 takes
// DefaultRecent.
func NewCampaignCollector(store ProgressReader, recent time.Duration) *CampaignCollector {
	if recent <= 0 {
		recent = DefaultRecent
	}
	return &CampaignCollector{
		store: store, recent: recent, timeout: 10 * time.Second, now: time.Now,
		messages: prometheus.NewDesc("fanout_messages",
			"Recipients of every campaign in Redis by channel and outcome (from the campaign counters; delivered, undelivered, dlr_expired and awaiting_dlr are parts of sent).",
			[]string{"channel", "outcome"}, nil),
		campaignsByState: prometheus.NewDesc("fanout_campaigns",
			"Campaigns in Redis by state.", []string{"state"}, nil),
		campaignMessages: prometheus.NewDesc("fanout_campaign_messages",
			"Recipients of one active or recently finished campaign by outcome.",
			[]string{"campaign", "channel", "outcome"}, nil),
		campaignRate: prometheus.NewDesc("fanout_campaign_rate_per_second",
			"Recipients settled per second since the campaign's first outcome (active or recently finished campaigns).",
			[]string{"campaign"}, nil),
		campaignETA: prometheus.NewDesc("fanout_campaign_eta_seconds",
			"Estimated seconds until every enqueued recipient of a running campaign is settled.",
			[]string{"campaign"}, nil),
		scrapeErrors: prometheus.NewDesc("fanout_campaign_scrape_error",
			"1 when the last scrape could not read the campaigns from Redis.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *CampaignCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.messages, c.campaignsByState, c.campaignMessages, c.campaignRate, c.campaignETA, c.scrapeErrors} {
		ch <- d
	}
}

type channelOutcome struct {
	channel campaigns.Channel
	outcome int
}

// Collect implements prometheus.Collector.
func (c *CampaignCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	failed := 0.0
	ids, err := c.store.List(ctx, 0)
	if err != nil {
		failed = 1
	}
	totals := map[channelOutcome]int64{}
	states := map[campaigns.State]int{}
	for _, st := range []campaigns.State{campaigns.StateDispatching, campaigns.StateRunning, campaigns.StateSent, campaigns.StatePaused, campaigns.StateCancelled, campaigns.StateCompleted} {
		states[st] = 0
	}
	now := c.now()
	for _, id := range ids {
		p, err := c.store.Progress(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			failed = 1
			break
		}
		states[p.State]++
		vals := outcomeValues(p)
		for i, v := range vals {
			totals[channelOutcome{p.Channel, i}] += v
		}
		if !c.labelled(p, now) {
			continue
		}
		for i, v := range vals {
			ch <- prometheus.MustNewConstMetric(c.campaignMessages, prometheus.GaugeValue, float64(v), p.ID, string(p.Channel), Outcomes[i])
		}
		ch <- prometheus.MustNewConstMetric(c.campaignRate, prometheus.GaugeValue, p.Rate, p.ID)
		if p.ETA != nil {
			ch <- prometheus.MustNewConstMetric(c.campaignETA, prometheus.GaugeValue, *p.ETA, p.ID)
		}
	}
	for k, v := range totals {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(v), string(k.channel), Outcomes[k.outcome])
	}
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(c.campaignsByState, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.GaugeValue, failed)
}

// labelled reports whether a campaign gets series of its own: it is not
// final, or it finished less than recent ago.
func (c *CampaignCollector) labelled(p campaigns.Progress, now time.Time) bool {
	if !p.Final() {
		return true
	}
	return p.FinishedAt != nil && now.Sub(*p.FinishedAt) < c.recent
}
