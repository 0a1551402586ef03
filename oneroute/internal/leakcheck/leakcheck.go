// Package leakcheck fails a test binary that leaves goroutines of the
// oneroute packages running, in the manner of go.uber.org/goleak (which
// fanout's go.mod does not require yet). Call it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
//
// Only goroutines with a frame in github.com/fanoutdev/fanout/oneroute are
// counted, so idle keep-alive connections of net/http do not trip it.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

const ours = "github.com/fanoutdev/fanout/oneroute"

// Main runs the tests, then waits up to 5s for the package's goroutines to
// end, and fails the binary with their stacks if some remain.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := wait(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leakcheck: goroutines still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// wait polls until no goroutine of ours runs or the deadline passes, and
// returns the stacks of those left.
func wait(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		leaked := find()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
}

func find() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, ours) || strings.Contains(g, "leakcheck.") || strings.Contains(g, "testing.(*M).Run") {
			continue
		}
		leaked = append(leaked, g)
	}
	return strings.Join(leaked, "\n\n")
}
