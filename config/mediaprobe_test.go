package config_test

import (
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/config"
)

// FANOUT_MEDIA_PROBE is off by default, on with true, and refused when not
// a boolean.
func TestMediaProbe(t *testing.T) {
	t.Parallel()
	if cfg, err := config.Load(env(nil), ""); err != nil || cfg.Dispatch.MediaProbe {
		t.Fatalf("default: %v, %v; want off", cfg.Dispatch.MediaProbe, err)
	}
	if cfg, err := config.Load(env(map[string]string{"FANOUT_MEDIA_PROBE": "true"}), ""); err != nil || !cfg.Dispatch.MediaProbe {
		t.Fatalf("true: %v, %v", cfg.Dispatch.MediaProbe, err)
	}
	if _, err := config.Load(env(map[string]string{"FANOUT_MEDIA_PROBE": "maybe"}), ""); err == nil || !strings.Contains(err.Error(), `FANOUT_MEDIA_PROBE="maybe"`) {
		t.Fatalf("maybe: %v", err)
	}
}
