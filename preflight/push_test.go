package preflight_test

import (
	"context"
	"testing"

	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/preflight"
)

// A push campaign has no channel list to check: preflight passes it without
// asking OneRoute anything, even when OneRoute cannot be asked.
func TestCheckSkipsPush(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(t, "channel: push\nrecipients: r.csv\nwidget_id: "+sandbox.WidgetID+"\ntitle: Hi {{.name}}\nmessage: hi\n")
	if err := preflight.Check(context.Background(), spec, downCatalog{err: context.DeadlineExceeded}); err != nil {
		t.Errorf("push refused: %v", err)
	}
	if m := preflight.Medium(spec.Channel); m != "" {
		t.Errorf("Medium(push) = %q, want none", m)
	}
}
