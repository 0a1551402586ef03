package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/storage"
)

// The next campaign skips a number that opted out: the dispatcher leaves it
// out, counted suppressed, over more than one chunk of rows; an opt-out of
// another channel kind changes nothing; a dry run reads no Redis.
func TestDispatchSkipsOptedOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := 1; i <= 600; i++ { // three chunks
		fmt.Fprintf(&csv, "0803%07d,P%d\n", i, i)
	}
	// Rows 5 and 300 opted out of SMS (one written as the dispatcher
	// normalises it, as the worker stores it), row 7 only of WhatsApp.
	if _, err := b.store.AddOptOuts(ctx, storage.OptOutSMS, "stop-word:STOP", time.Now(), "+2348030000005", "+2348030000300"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.AddOptOuts(ctx, storage.OptOutWhatsApp, "manual", time.Now(), "+2348030000007"); err != nil {
		t.Fatal(err)
	}
	spec := b.spec(t, "optnext", smsSpec+"batch_size: 100\n", csv.String())

	dry, err := Dispatch(ctx, nil, nil, spec, openSource(t, spec), Options{DryRun: true})
	if err != nil || dry.Suppressed != 0 || dry.Valid != 600 {
		t.Fatalf("dry run: %+v, %v; want 600 valid, none suppressed (no Redis read)", dry, err)
	}
	res, err := b.dispatch(t, ctx, spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid != 598 || res.Suppressed != 2 || res.Total != 598 {
		t.Errorf("result %+v; want 598 valid, 2 suppressed", res)
	}
	seen := map[string]bool{}
	for _, bt := range b.tasks(t, spec) {
		for _, it := range bt.Items {
			seen[it.To] = true
		}
	}
	if len(seen) != 598 || seen["+2348030000005"] || seen["+2348030000300"] || !seen["+2348030000007"] {
		t.Errorf("enqueued %d recipients; opted-out 5: %v, 300: %v, whatsapp-only 7: %v", len(seen), seen["+2348030000005"], seen["+2348030000300"], seen["+2348030000007"])
	}
	p, err := b.store.Progress(ctx, spec.ID)
	if err != nil || p.Suppressed != 2 || p.Total != 598 {
		t.Errorf("progress suppressed %d, total %d, %v; want 2 and 598", p.Suppressed, p.Total, err)
	}
}
