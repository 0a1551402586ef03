package monitor

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// chart draws a campaign's counters over time as an inline SVG: sent,
// delivered, failed + unknown and remaining, against the total. Only
// numbers go into the markup, so it needs no escaping.
func chart(pts []Point) template.HTML {
	const w, h, left, right, top, bottom = 640.0, 200.0, 56.0, 12.0, 12.0, 28.0
	if len(pts) < 2 {
		return template.HTML(`<p class="muted">The chart fills in as the monitor samples this campaign (every few seconds while it is open or running).</p>`)
	}
	t0, t1 := pts[0].At, pts[len(pts)-1].At
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	var ymax int64 = 1
	for _, p := range pts {
		ymax = max(ymax, p.Total, p.Sent+p.Failed+p.Unknown+p.Skipped+p.Pending)
	}
	x := func(t time.Time) float64 { return left + (w-left-right)*t.Sub(t0).Seconds()/span }
	y := func(v int64) float64 { return top + (h-top-bottom)*(1-float64(v)/float64(ymax)) }
	line := func(class string, v func(Point) int64) string {
		var b strings.Builder
		for i, p := range pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x(p.At), y(v(p)))
		}
		return fmt.Sprintf(`<polyline class="%s" fill="none" stroke-width="2" points="%s"/>`, class, b.String())
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="counters over time">`, w, h)
	for i := 0; i <= 4; i++ {
		v := ymax * int64(i) / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f"/><text class="axis" x="%.0f" y="%.1f" text-anchor="end">%d</text>`,
			left, w-right, y(v), y(v), left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.0f">%s</text><text class="axis" x="%.0f" y="%.0f" text-anchor="end">%s (%s)</text>`,
		left, h-8, t0.UTC().Format("15:04:05"), w-right, h-8, t1.UTC().Format("15:04:05 UTC"), humanDuration(t1.Sub(t0)))
	b.WriteString(line("s-sent", func(p Point) int64 { return p.Sent }))
	b.WriteString(line("s-delivered", func(p Point) int64 { return p.Delivered }))
	b.WriteString(line("s-failed", func(p Point) int64 { return p.Failed + p.Unknown }))
	b.WriteString(line("s-remaining", func(p Point) int64 { return p.Pending }))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // G203: built from numbers, times and fixed class names only
}
