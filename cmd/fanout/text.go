package main

import (
	"fmt"

	"github.com/fanoutdev/fanout/dispatcher"
)

// plural writes a count with its noun in the right number: plural(1,
// "batch", "batches") is "1 batch", plural(2, ...) "2 batches". The noun may
// carry its verb: plural(n, "row was", "rows were").
func plural[N ~int | ~int64](n N, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// estimateText is the dispatch summary's clause on sending time, starting
// with ", ": the time at the rate limits, or that no limit is set. It is ""
// without an estimate.
func estimateText(e *dispatcher.Estimate) string {
	switch {
	case e == nil:
		return ""
	case e.Limit.PerSecond <= 0 && e.Limit.PerMinute <= 0 && e.Limit.PerDay <= 0:
		return ", no rate limit set"
	default:
		return ", sending time at the rate limits " + e.Human
	}
}
