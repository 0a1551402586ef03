package dispatcher

import (
	"slices"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
)

// zoneSource is how a run finds each recipient's zone for the spec's send
// window: from a column, from the phone number, or not at all.
type zoneSource struct {
	column    string // schedule.timezone_column
	fromPhone bool   // schedule.timezone_from_phone
	window    string // the window's own zone
}

func newZoneSource(spec campaigns.Spec) zoneSource {
	sc := spec.Schedule
	if sc == nil || sc.Window == nil {
		return zoneSource{}
	}
	return zoneSource{column: sc.TimezoneColumn, fromPhone: sc.TimezoneFromPhone, window: sc.Window.Timezone}
}

// zone returns a recipient's zone, "" for the window's own (so Items carry
// a zone only when it differs), and whether it fell back to the window's
// zone because the column was empty or not a zone, or the number's zone is
// unknown. raw is the column's value, addr the normalised address.
func (z zoneSource) zone(raw, addr string) (tz string, defaulted bool) {
	switch {
	case z.column != "":
		if raw == "" {
			return "", true
		}
		if _, err := campaigns.LoadZone(raw); err != nil {
			return "", true
		}
		tz = raw
	case z.fromPhone:
		var ok bool
		if tz, ok = campaigns.PhoneZone(addr, z.window); !ok {
			return "", true
		}
	default:
		return "", false
	}
	if tz == z.window {
		return "", false
	}
	return tz, false
}

// checkZoneColumn refuses a timezone_column the recipient file lacks.
func checkZoneColumn(spec campaigns.Spec, cols []string) error {
	sc := spec.Schedule
	if sc == nil || sc.TimezoneColumn == "" || cols == nil || slices.Contains(cols, sc.TimezoneColumn) {
		return nil
	}
	return spec.Errorf("schedule.timezone_column", "schedule.timezone_column %q is not a column of %s (%s); fix the name or add the column",
		sc.TimezoneColumn, spec.Recipients, recipients.ColumnsText(cols))
}

// startDelay is how long a batch dispatched at now is held back: until
// schedule.start_at, and, when every recipient reads the window in its own
// zone, until the window opens. Workers check again (a batch may be
// re-run or split at any time); this only spares them runs that would
// wait.
func startDelay(spec campaigns.Spec, now time.Time) time.Duration {
	if at := startsAt(spec, now); at != nil {
		return at.Sub(now)
	}
	return 0
}

// startsAt is when the campaign's batches dispatched at now start sending,
// if later than now: see startDelay.
func startsAt(spec campaigns.Spec, now time.Time) *time.Time {
	sc := spec.Schedule
	if sc == nil || !sc.Scheduled() {
		return nil
	}
	s := *sc
	if s.TimezoneColumn != "" || s.TimezoneFromPhone {
		s.Window = nil
	}
	at := (campaigns.Spec{Schedule: &s}).NextOpening(now)
	if !at.After(now) {
		return nil
	}
	at = at.UTC()
	return &at
}
