package monitor

import (
	"context"
	"sync"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
)

// Point is a campaign's counters at one moment.
type Point struct {
	At                             time.Time
	Sent, Failed, Unknown, Skipped int64
	Delivered, Pending, Total      int64
}

// History keeps the counters of campaigns over time, sampled by this
// process while it runs (Run), in memory: at most MaxPoints a campaign and
// MaxCampaigns campaigns, the oldest forgotten first. A restarted monitor
// starts a new history; the counters themselves are in Redis.
type History struct {
	mu     sync.Mutex
	points map[string][]Point
	seen   map[string]time.Time
	// MaxPoints a campaign keeps; default 360 (30 minutes at the default
	// 5-second sample, longer while counters do not change).
	MaxPoints int
	// MaxCampaigns kept; default 500.
	MaxCampaigns int
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{points: map[string][]Point{}, seen: map[string]time.Time{}, MaxPoints: 360, MaxCampaigns: 500}
}

// Add records p at now, unless its counters equal the last point's.
func (h *History) Add(p campaigns.Progress, now time.Time) {
	pt := Point{At: now, Sent: p.Sent, Failed: p.Failed, Unknown: p.Unknown, Skipped: p.Skipped,
		Delivered: p.Delivered, Pending: p.Pending, Total: p.Total}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[p.ID] = now
	pts := h.points[p.ID]
	if n := len(pts); n > 0 {
		last := pts[n-1]
		last.At = now
		if last == pt {
			return
		}
	}
	pts = append(pts, pt)
	if len(pts) > h.MaxPoints {
		pts = append(pts[:0:0], pts[len(pts)-h.MaxPoints:]...)
	}
	h.points[p.ID] = pts
	for len(h.points) > h.MaxCampaigns {
		h.evictOldest()
	}
}

func (h *History) evictOldest() {
	var oldest string
	var at time.Time
	for id, t := range h.seen {
		if oldest == "" || t.Before(at) {
			oldest, at = id, t
		}
	}
	delete(h.points, oldest)
	delete(h.seen, oldest)
}

// Points returns a copy of a campaign's points, oldest first.
func (h *History) Points(id string) []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Point(nil), h.points[id]...)
}

// Run samples the newest campaigns that are not final every interval
// until ctx is done. It returns nil when ctx is done.
func (h *History) Run(ctx context.Context, store Campaigns, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		h.sample(ctx, store)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sampleNewest is how many of the newest campaigns each sample looks at.
const sampleNewest = 200

func (h *History) sample(ctx context.Context, store Campaigns) {
	ids, err := store.List(ctx, sampleNewest)
	if err != nil {
		return // the next tick tries again; the dashboard shows the error
	}
	now := time.Now()
	for _, id := range ids {
		p, err := store.Progress(ctx, id)
		if err != nil {
			continue
		}
		if p.Final() && len(h.Points(id)) == 0 {
			continue // finished before we looked: nothing to chart
		}
		h.Add(p, now)
	}
}
