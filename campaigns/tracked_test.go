package campaigns

import "testing"

// Every channel awaits its delivery statuses before its campaign
// completes; only SMS reads them from delivery reports, the others from
// webhooks and the Logs API.
func TestTrackedChannels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ch                     Channel
		tracked, byLogs, bySMS bool
	}{
		{ChannelSMS, true, false, true},
		{ChannelWhatsAppTemplate, true, true, false},
		{ChannelEmail, true, true, false},
		{Channel("fax"), false, false, false},
	} {
		if got := tc.ch.Tracked(); got != tc.tracked {
			t.Errorf("%s.Tracked() = %v, want %v", tc.ch, got, tc.tracked)
		}
		if got := tc.ch.TrackedByLogs(); got != tc.byLogs {
			t.Errorf("%s.TrackedByLogs() = %v, want %v", tc.ch, got, tc.byLogs)
		}
		if got := tc.ch.TracksDLR(); got != tc.bySMS {
			t.Errorf("%s.TracksDLR() = %v, want %v", tc.ch, got, tc.bySMS)
		}
	}
}
