package oneroute_test

import (
	"testing"

	"github.com/fanoutdev/fanout/oneroute/internal/leakcheck"
)

// TestMain fails the package if a test leaves a sandbox or client goroutine
// running.
func TestMain(m *testing.M) { leakcheck.Main(m) }
