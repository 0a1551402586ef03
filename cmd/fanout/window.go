package main

import (
	"fmt"
	"io"
	"time"
	_ "time/tzdata" // send windows name IANA zones; minimal containers have no zoneinfo

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
)

// openingText is a watch line's note of a campaign waiting for its send
// window or start_at: "  waiting until 2026-12-04T07:00:00Z (in 9h12m)".
func openingText(p campaigns.Progress) string {
	if p.NextOpening == nil {
		return ""
	}
	return "  waiting until " + whenText(*p.NextOpening)
}

// printOpening adds status's "next open" line for a waiting campaign.
func printOpening(w io.Writer, p campaigns.Progress) {
	if p.NextOpening != nil {
		fmt.Fprintf(w, "next open  %s: recipients wait for schedule.start_at or schedule.window\n", whenText(*p.NextOpening))
	}
}

// printStart tells a dispatch's user when sending starts, if later.
func printStart(w io.Writer, res dispatcher.Result) {
	if res.StartsAt != nil {
		fmt.Fprintf(w, "sending starts %s (schedule.start_at or schedule.window); until then nothing is sent\n", whenText(*res.StartsAt))
	}
	if res.TimezoneDefaulted > 0 {
		fmt.Fprintf(w, "%s no usable time zone and use the window's own (schedule.timezone_column empty or unknown, or a number of no known zone)\n",
			plural(res.TimezoneDefaulted, "recipient has", "recipients have"))
	}
}

// whenText is a future time in UTC and how far ahead it is.
func whenText(t time.Time) string {
	return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), time.Until(t).Round(time.Minute))
}
