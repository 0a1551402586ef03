package campaigns_test

import (
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
)

// Line finds nested keys (template.name), so errors found after loading
// (the preflight's) point at the key itself; a nested key not written in
// the file falls back to its parent's line, an unknown key to 0.
func TestSpecLineOfNestedKeys(t *testing.T) {
	t.Parallel()
	s, err := campaigns.ParseSpec("c.yaml", []byte("channel: whatsapp_template\nrecipients: r.csv\nfrom: \"2348000000001\"\ntemplate:\n  name: welcome\n  parameters:\n    - \"{{.name}}\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int{"from": 3, "template": 4, "template.name": 5, "template.parameters": 6, "template.language": 4, "channel_id": 0} {
		if got := s.Line(key); got != want {
			t.Errorf("Line(%q) = %d, want %d", key, got, want)
		}
	}
	if got := s.Errorf("template.parameters", "x").Error(); got != "c.yaml:6: x" {
		t.Errorf("Errorf = %q", got)
	}
}
