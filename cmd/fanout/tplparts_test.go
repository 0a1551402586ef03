package main

import (
	"encoding/json"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
)

// The buttons example end to end on the sandbox: the preflight accepts its
// buttons, and the sandbox, which checks each message's button values
// against track_order, accepts every recipient.
func TestRunButtonsExample(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	if code := b.run(t, "run", "--sandbox", "--json", "--timeout", "60s", "../../examples/whatsapp-buttons.yaml"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, b.stderr.String())
	}
	var got struct {
		campaigns.Progress
		Sandbox struct {
			Accepted int64 `json:"accepted"`
		} `json:"sandbox"`
	}
	if err := json.Unmarshal(b.stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", b.stdout.String(), err)
	}
	if got.Sent != 5 || got.Failed != 0 || got.Sandbox.Accepted != 5 {
		t.Fatalf("sent %d failed %d, sandbox accepted %d; want 5 0 5", got.Sent, got.Failed, got.Sandbox.Accepted)
	}
}
