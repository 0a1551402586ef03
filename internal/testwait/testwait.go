// Package testwait lets a test wait for a condition with a deadline instead
// of a fixed sleep: the condition is checked at once, then every Poll, and
// the test fails with what it was waiting for when the deadline passes.
//
//	testwait.For(t, "the webhook to be delivered", 10*time.Second, func() bool {
//		return sb.Stats().WebhooksSent == 1
//	})
//
// It imports only the standard library, so any package's tests may use it,
// oneroute's included.
package testwait

import (
	"testing"
	"time"
)

// Poll is how often For checks its condition.
const Poll = 10 * time.Millisecond

// For returns once cond reports true, or fails the test (t.Fatalf) when it
// has not within the given time; what names the awaited event in the
// message. cond runs on the test's goroutine.
func For(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(Poll)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("timed out after %s waiting for %s", within, what)
			return
		case <-tick.C:
			if cond() {
				return
			}
		}
	}
}
