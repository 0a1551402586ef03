package monitor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
)

// The history stays bounded: equal counters add no point, a campaign keeps
// at most MaxPoints (the newest), and the campaign seen longest ago is
// forgotten past MaxCampaigns.
func TestHistoryStaysBounded(t *testing.T) {
	t.Parallel()
	h := NewHistory()
	h.MaxPoints, h.MaxCampaigns = 3, 2
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		p := campaigns.Progress{ID: "a", Sent: int64(i), Total: 10}
		h.Add(p, t0.Add(time.Duration(i)*time.Second))
		h.Add(p, t0.Add(time.Duration(i)*time.Second+time.Millisecond)) // unchanged: no point
	}
	pts := h.Points("a")
	if len(pts) != 3 || pts[0].Sent != 2 || pts[2].Sent != 4 {
		t.Errorf("points %+v, want the 3 newest (sent 2, 3, 4)", pts)
	}
	h.Add(campaigns.Progress{ID: "b"}, t0.Add(time.Minute))
	h.Add(campaigns.Progress{ID: "c"}, t0.Add(2*time.Minute))
	if len(h.Points("a")) != 0 || len(h.Points("b")) != 1 || len(h.Points("c")) != 1 {
		t.Errorf("after a third campaign: a %d, b %d, c %d points; want a forgotten", len(h.Points("a")), len(h.Points("b")), len(h.Points("c")))
	}
}

// The chart is an SVG with one line per counter, scaled to the total, and
// a note instead while there are fewer than two points.
func TestChart(t *testing.T) {
	t.Parallel()
	if got := string(chart(nil)); !strings.Contains(got, "fills in") {
		t.Errorf("chart of no points: %s", got)
	}
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var pts []Point
	for i := range 4 {
		pts = append(pts, Point{At: t0.Add(time.Duration(i) * time.Minute), Sent: int64(i * 10), Failed: int64(i), Pending: int64(100 - i*11), Total: 100})
	}
	got := string(chart(pts))
	for _, want := range []string{"<svg", `class="s-sent"`, `class="s-delivered"`, `class="s-failed"`, `class="s-remaining"`, ">100<", "12:00:00", "(3m00s)"} {
		if !strings.Contains(got, want) {
			t.Errorf("chart lacks %s", want)
		}
	}
	if n := strings.Count(got, "<polyline"); n != 4 {
		t.Errorf("%d lines, want 4", n)
	}
	// The last sent point is at the right edge, 30 of 100 up the plot.
	if want := fmt.Sprintf("628.0,%.1f", 12+(200-12-28)*(1-0.3)); !strings.Contains(got, want) {
		t.Errorf("chart lacks the point %s", want)
	}
}
