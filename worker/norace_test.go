//go:build !race

package worker_test

// raceEnabled: the race detector slows every goroutine several times, so
// timing tests widen their bounds.
const raceEnabled = false //nolint:unused // the !race twin of race_test.go, for timing tests
