package campaigns_test

import (
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
)

// Spec mistakes that would otherwise be silent are refused with the line and
// the fix: a fractional rate (which would mean no limit), a region that is
// not one, a deadline already past, a cap smaller than a batch.
func TestSpecRefusesSilentMistakes(t *testing.T) {
	t.Parallel()
	base := "channel: sms\nchannel_id: x\nmessage: hi\nrecipients: r.csv\n"
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"fractional rate", "rate: {per_second: 0.5}\n", "c.yaml:5: per_second: 0.5 is not a whole number"},
		{"fractional batch", "batch_size: 10.7\n", "c.yaml:5: batch_size: 10.7 is not a whole number"},
		{"region name", "default_region: Nigeria\n", `c.yaml:5: default_region "NIGERIA" is not a region`},
		{"past deadline", "schedule: {expires_at: 2020-01-01T00:00:00Z}\n", "c.yaml:5: schedule.expires_at 2020-01-01T00:00:00Z is in the past"},
		{"cap below a batch", "batch_size: 50\nrate: {per_minute: 10}\n", "c.yaml:6: rate.per_minute (10) is smaller than a batch (50 recipients)"},
		{"unknown key", "batchsize: 5\n", "c.yaml:5: field batchsize is not a spec key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.ParseSpec("c.yaml", []byte(base+tc.extra))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := campaigns.ParseSpec("c.yaml", []byte(base+"rate: {per_second: 80, burst: 10}\nschedule: {expires_at: 2099-01-01T00:00:00Z}\n")); err != nil {
		t.Fatalf("a good spec: %v", err)
	}
}
