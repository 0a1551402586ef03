package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/config"
)

// TestMain sets the process-wide logging as main does, before any test
// logs: zerolog's duration format, and go-redis quiet.
func TestMain(m *testing.M) {
	setLogDurations()
	redis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}

// The worker's start-up line gives its durations in human units, parseable
// from JSON, and keeps the API key redacted.
func TestWorkerStartupLogDurations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.env["LOG_LEVEL"] = "info"
	b.env["ONEROUTE_API_KEY"] = "test_secret_key"
	b.env["REDIS_URL"] = "redis://127.0.0.1:1/0" // unreachable: the worker stops after its first line
	if code := b.run(t, "worker"); code != exitError {
		t.Fatalf("exit %d, want 1\n%s", code, b.stderr.String())
	}
	first, _, _ := strings.Cut(b.stderr.String(), "\n")
	var line struct {
		Config struct {
			OneRoute struct{ APIKey, Timeout string }
			Worker   struct{ ShutdownTimeout, TaskTimeout, DLRInterval, DLRMaxAge, PollInterval string }
		}
	}
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("decode %q: %v", first, err)
	}
	w := line.Config.Worker
	got := []string{line.Config.OneRoute.APIKey, line.Config.OneRoute.Timeout, w.ShutdownTimeout, w.TaskTimeout, w.DLRInterval, w.DLRMaxAge, w.PollInterval}
	if diff := cmp.Diff([]string{"[REDACTED]", "15s", "25s", "5m", "5s", "24h", "200ms"}, got); diff != "" {
		t.Errorf("api key, timeouts (-want +got):\n%s", diff)
	}
	for _, s := range got[1:] {
		if _, err := time.ParseDuration(s); err != nil {
			t.Errorf("%q does not parse as a duration: %v", s, err)
		}
	}
	if strings.Contains(b.stderr.String(), "test_secret_key") {
		t.Error("the API key is in the log")
	}
}

// Every Dur field, such as the worker's stop time "took", carries its unit
// in both formats.
func TestLogDurationHasUnit(t *testing.T) {
	t.Parallel()
	cases := []struct{ format, want string }{
		{"json", `"took":"1.5s"`},
		{"console", "took=1.5s"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		log := newLogger(&buf, config.Log{Format: tc.format, Level: "info"})
		log.Info().Dur("took", 1500*time.Millisecond).Msg("worker stopped")
		if got := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(buf.String(), ""); !strings.Contains(got, tc.want) {
			t.Errorf("%s: no %s in %q", tc.format, tc.want, buf.String())
		}
	}
}
