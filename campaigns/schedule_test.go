package campaigns_test

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has

	"github.com/fanoutdev/fanout/campaigns"
)

func at(t *testing.T, tz, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A window holds sends to its hours and days, in its zone; NextOpening is
// the first instant it is open, and an open window answers the time asked.
// 2026-12-03 is a Thursday. Lagos (UTC+1), Nairobi (UTC+3) and Kolkata
// (UTC+5:30) have no daylight saving, so the expectations are exact.
func TestWindowNextOpening(t *testing.T) {
	t.Parallel()
	const lagos, nairobi = "Africa/Lagos", "Africa/Nairobi"
	day := campaigns.Window{Start: "08:00", End: "20:00", Timezone: lagos}
	weekdays := day
	weekdays.Days = []string{"mon", "tue", "wed", "thu", "Fri"}
	night := campaigns.Window{Start: "22:00", End: "06:00", Timezone: nairobi}
	friNight := night
	friNight.Days = []string{"friday"}
	for _, tc := range []struct {
		name string
		w    campaigns.Window
		tz   string // the time's zone
		now  string
		want string // in the time's zone; "" = open now
	}{
		{"open in the day", day, lagos, "2026-12-03 12:00", ""},
		{"opens at start", day, lagos, "2026-12-03 08:00", ""},
		{"before start", day, lagos, "2026-12-03 07:59", "2026-12-03 08:00"},
		{"closes at end", day, lagos, "2026-12-03 20:00", "2026-12-04 08:00"},
		{"at night", day, lagos, "2026-12-03 21:00", "2026-12-04 08:00"},
		{"read in its own zone", day, "UTC", "2026-12-03 19:30", "2026-12-04 07:00"},
		{"friday night waits for monday", weekdays, lagos, "2026-12-04 21:00", "2026-12-07 08:00"},
		{"saturday noon waits for monday", weekdays, lagos, "2026-12-05 12:00", "2026-12-07 08:00"},
		{"across midnight, evening", night, nairobi, "2026-12-03 23:00", ""},
		{"across midnight, morning", night, nairobi, "2026-12-03 03:00", ""},
		{"across midnight, closed", night, nairobi, "2026-12-03 06:00", "2026-12-03 22:00"},
		{"friday's night runs into saturday", friNight, nairobi, "2026-12-05 05:59", ""},
		{"thursday morning is wednesday's night", friNight, nairobi, "2026-12-03 03:00", "2026-12-04 22:00"},
		{"saturday night waits a week", friNight, nairobi, "2026-12-05 23:00", "2026-12-11 22:00"},
		{"end at midnight", campaigns.Window{Start: "18:00", End: "24:00", Timezone: lagos}, lagos, "2026-12-03 23:59", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := at(t, tc.tz, tc.now)
			want := now
			if tc.want != "" {
				want = at(t, tc.tz, tc.want)
			}
			if got := tc.w.NextOpening(now); !got.Equal(want) {
				t.Errorf("NextOpening(%s) = %s, want %s", now, got.In(now.Location()), want)
			}
			if got := tc.w.Open(now); got != (tc.want == "") {
				t.Errorf("Open(%s) = %v", now, got)
			}
		})
	}
}

// A recipient with their own zone gets the window's hours in that zone, and
// start_at holds everything before it.
func TestBatchOpensAt(t *testing.T) {
	t.Parallel()
	w := &campaigns.Window{Start: "08:00", End: "20:00", Timezone: "Africa/Lagos"}
	now := at(t, "Africa/Lagos", "2026-12-03 21:00")
	b := &campaigns.Batch{Window: w}
	if got, want := b.OpensAt(campaigns.Item{}, now), at(t, "Africa/Lagos", "2026-12-04 08:00"); !got.Equal(want) {
		t.Errorf("Lagos: %s, want %s", got, want)
	}
	// 21:00 in Lagos is 01:30 in Kolkata: 08:00 there comes first.
	if got, want := b.OpensAt(campaigns.Item{TZ: "Asia/Kolkata"}, now), at(t, "Asia/Kolkata", "2026-12-04 08:00"); !got.Equal(want) {
		t.Errorf("Kolkata: %s, want %s", got, want)
	}
	// 21:00 in Lagos is 12:00 in Honolulu: open.
	if got := b.OpensAt(campaigns.Item{TZ: "Pacific/Honolulu"}, now); !got.Equal(now) {
		t.Errorf("Honolulu: %s, want now", got)
	}
	start := at(t, "Africa/Lagos", "2026-12-05 10:00")
	b.StartAt = start.Unix()
	if got := b.OpensAt(campaigns.Item{}, now); !got.Equal(start) {
		t.Errorf("with start_at: %s, want %s", got, start)
	}
	b.StartAt = at(t, "Africa/Lagos", "2026-12-05 07:00").Unix()
	if got, want := b.OpensAt(campaigns.Item{}, now), at(t, "Africa/Lagos", "2026-12-05 08:00"); !got.Equal(want) {
		t.Errorf("start_at outside the window: %s, want %s", got, want)
	}
}

// A phone number's zone is its own, or its country's; the window's zone
// wins within its country, where mobile numbers carry no place.
func TestPhoneZone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		phone, prefer, want string
		ok                  bool
	}{
		{"+2348031234567", "Africa/Lagos", "Africa/Lagos", true},
		{"+254712345678", "Africa/Lagos", "Africa/Nairobi", true},
		{"+12125550100", "Africa/Lagos", "America/New_York", true},
		{"+12125550100", "America/Chicago", "America/Chicago", true},
		{"+61412345678", "Australia/Perth", "Australia/Perth", true},
		{"not a number", "Africa/Lagos", "Africa/Lagos", false},
	} {
		got, ok := campaigns.PhoneZone(tc.phone, tc.prefer)
		if got != tc.want || ok != tc.ok {
			t.Errorf("PhoneZone(%q, %q) = %q, %v; want %q, %v", tc.phone, tc.prefer, got, ok, tc.want, tc.ok)
		}
	}
}

// Every mistake in schedule's window and zone keys is refused with the
// line of the key at fault.
func TestScheduleValidation(t *testing.T) {
	t.Parallel()
	const base = "channel: sms\nchannel_id: c1\nmessage: hi\nrecipients: r.csv\n" // schedule: is line 5
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad start", "schedule:\n  window:\n    start: 8am\n    end: \"20:00\"\n    timezone: Africa/Lagos\n",
			`c.yaml:7: schedule.window.start "8am": use HH:MM`},
		{"hour past 23", "schedule:\n  window:\n    start: \"08:00\"\n    end: \"25:00\"\n    timezone: Africa/Lagos\n",
			`c.yaml:8: schedule.window.end "25:00" is not a time of day`},
		{"no end", "schedule:\n  window: {start: \"08:00\", timezone: Africa/Lagos}\n",
			`c.yaml:6: schedule.window.end is missing`},
		{"equal", "schedule:\n  window:\n    start: \"08:00\"\n    end: \"08:00\"\n    timezone: Africa/Lagos\n",
			`c.yaml:8: schedule.window.start and end are both 08:00`},
		{"unknown zone", "schedule:\n  window:\n    start: \"08:00\"\n    end: \"20:00\"\n    timezone: Mars/Base\n",
			`c.yaml:9: schedule.window.timezone "Mars/Base" is not an IANA time zone`},
		{"no zone", "schedule:\n  window:\n    start: \"08:00\"\n    end: \"20:00\"\n",
			`c.yaml:6: schedule.window.timezone is missing`},
		{"bad day", "schedule:\n  window:\n    start: \"08:00\"\n    end: \"20:00\"\n    timezone: Africa/Lagos\n    days: [mon, funday]\n",
			`c.yaml:10: schedule.window.days: "funday" is not a day`},
		{"zone column without window", "schedule:\n  timezone_column: tz\n",
			`c.yaml:6: schedule.timezone_column needs schedule.window`},
		{"both zone sources", "schedule:\n  window: {start: \"08:00\", end: \"20:00\", timezone: Africa/Lagos}\n  timezone_column: tz\n  timezone_from_phone: true\n",
			`c.yaml:7: schedule.timezone_column and schedule.timezone_from_phone: use one`},
		{"start_at not a time", "schedule:\n  start_at: tomorrow\n",
			`c.yaml:6: schedule.start_at is not a time: use RFC 3339`},
		{"expires_at without offset", "schedule:\n  expires_at: \"2099-01-01 18:00\"\n",
			`c.yaml:6: schedule.expires_at is not a time`},
		{"start after expiry", "schedule:\n  start_at: 2099-01-02T00:00:00Z\n  expires_at: 2099-01-01T00:00:00Z\n",
			`c.yaml:6: schedule.start_at 2099-01-02T00:00:00Z is not before schedule.expires_at`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.ParseSpec("c.yaml", []byte(base+tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	ok := base + "schedule:\n  start_at: 2026-12-03T21:00:00+01:00\n  window: {start: \"22:00\", end: \"06:00\", timezone: Africa/Lagos, days: [fri, sat]}\n  timezone_from_phone: true\n"
	s, err := campaigns.ParseSpec("c.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if s.StartUnix() == 0 || s.SendWindow() == nil || s.SendWindow().Start != "22:00" {
		t.Fatalf("schedule not kept: %+v", s.Schedule)
	}
}

// The send-window example loads as it is.
func TestSMSWindowExampleLoads(t *testing.T) {
	t.Parallel()
	s, err := campaigns.LoadSpec("../examples/sms-window.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w := s.SendWindow(); w == nil || w.Timezone != "Africa/Lagos" || !s.Schedule.TimezoneFromPhone {
		t.Fatalf("schedule %+v", s.Schedule)
	}
}

// Across a daylight-saving change the window keeps its wall-clock hours:
// London's 08:00 is 08:00 GMT before the change and 08:00 BST after it.
func TestWindowAcrossDaylightSaving(t *testing.T) {
	t.Parallel()
	w := campaigns.Window{Start: "08:00", End: "20:00", Timezone: "Europe/London"}
	// Clocks go forward at 01:00 UTC on Sunday 2026-03-29.
	now := time.Date(2026, 3, 28, 21, 0, 0, 0, time.UTC)
	if got, want := w.NextOpening(now), time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("spring: %s, want %s", got.UTC(), want)
	}
	// Clocks go back at 01:00 UTC on Sunday 2026-10-25.
	now = time.Date(2026, 10, 24, 20, 0, 0, 0, time.UTC)
	if got, want := w.NextOpening(now), time.Date(2026, 10, 25, 8, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("autumn: %s, want %s", got.UTC(), want)
	}
	if !w.Open(time.Date(2026, 10, 24, 18, 59, 0, 0, time.UTC)) || w.Open(time.Date(2026, 10, 24, 19, 0, 0, 0, time.UTC)) {
		t.Error("closes at 20:00 BST = 19:00 UTC")
	}
}

// Any window the parser accepts opens: NextOpening is never before the time
// asked, the window is open then, and it is at most a week ahead. Zones
// without daylight saving, where every wall time exists.
func FuzzWindow(f *testing.F) {
	f.Add("08:00", "20:00", "mon,tue", int64(4102520400), uint8(0))
	f.Add("22:00", "06:00", "fri", int64(4102520400), uint8(1))
	f.Add("00:00", "24:00", "", int64(0), uint8(2))
	f.Add("8:5", "24:00", "sun", int64(-1), uint8(0))
	zones := []string{"Africa/Lagos", "Asia/Kolkata", "UTC"}
	f.Fuzz(func(t *testing.T, start, end, days string, unix int64, zone uint8) {
		w := campaigns.Window{Start: start, End: end, Timezone: zones[int(zone)%len(zones)]}
		if days != "" {
			w.Days = strings.Split(days, ",")
		}
		now := time.Unix(unix%(1<<40), 0)
		got := w.NextOpening(now) // must not panic, valid or not
		s := campaigns.Spec{Channel: campaigns.ChannelSMS, ChannelID: "c", Message: "hi", Recipients: "r.csv",
			Schedule: &campaigns.Schedule{Window: &w}}
		if s.Validate() != nil {
			return
		}
		if got.Before(now) || !w.Open(got) || got.Sub(now) > 8*24*time.Hour {
			t.Fatalf("%+v at %s: next opening %s (open %v)", w, now, got, w.Open(got))
		}
	})
}
