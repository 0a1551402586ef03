package testwait_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/internal/testwait"
)

// For returns as soon as the condition holds, polling rather than sleeping
// the whole deadline.
func TestForReturnsWhenTheConditionHolds(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	start := time.Now()
	testwait.For(t, "three checks", 10*time.Second, func() bool { return n.Add(1) >= 3 })
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s; want about two poll intervals", took)
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("condition checked %d times; want 3", got)
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

// A condition that never holds fails the test once the deadline passes,
// naming what was awaited.
func TestForFailsAtTheDeadline(t *testing.T) {
	t.Parallel()
	r := &fatalRecorder{TB: t}
	start := time.Now()
	testwait.For(r, "never", 50*time.Millisecond, func() bool { return false })
	if want := "timed out after 50ms waiting for never"; !strings.Contains(r.msg, want) {
		t.Fatalf("failure %q; want %q", r.msg, want)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("failed after %s; want the whole 50ms", took)
	}
}
