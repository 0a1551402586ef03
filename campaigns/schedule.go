package campaigns

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"
	"go.yaml.in/yaml/v3"
)

// Window is the hours of the week a campaign may message its recipients,
// as the spec's schedule.window gives them:
//
//	schedule:
//	  window: {start: "08:00", end: "20:00", timezone: Africa/Lagos, days: [mon, tue, wed, thu, fri]}
//
// The window is open from Start (included) to End (excluded), local time in
// Timezone, on Days (every day when empty). An End before Start makes a
// window across midnight ("22:00" to "06:00"); such a window belongs to the
// day it opens on, so a Friday night window runs into Saturday morning.
// Recipients with their own zone (Item.TZ) get the same hours in their zone:
// see In.
type Window struct {
	// Start is when the window opens, "HH:MM" (24-hour clock).
	Start string `yaml:"start" json:"start"`
	// End is when it closes, "HH:MM"; "24:00" is midnight at the end of
	// the day.
	End string `yaml:"end" json:"end"`
	// Timezone is the IANA zone the hours are read in, e.g. Africa/Lagos.
	Timezone string `yaml:"timezone" json:"timezone"`
	// Days are the week days the window opens on: mon, tue, wed, thu, fri,
	// sat, sun (or their full names); empty means every day.
	Days []string `yaml:"days" json:"days,omitempty"`
}

// In returns the window with its hours read in zone tz; "" keeps the
// window's own zone.
func (w Window) In(tz string) Window {
	if tz != "" {
		w.Timezone = tz
	}
	return w
}

// Open reports whether the window is open at t.
func (w Window) Open(t time.Time) bool {
	c, err := w.compile()
	if err != nil {
		return true // Validate refuses such a window; never hold sends on it
	}
	return c.open(t)
}

// NextOpening returns t when the window is open at t, else the time it next
// opens after t.
func (w Window) NextOpening(t time.Time) time.Time {
	c, err := w.compile()
	if err != nil {
		return t
	}
	return c.next(t)
}

// window is a Window ready to use.
type window struct {
	start, end int // minutes since midnight
	loc        *time.Location
	days       [7]bool // by time.Weekday
}

func (c window) open(t time.Time) bool {
	lt := t.In(c.loc)
	m := lt.Hour()*60 + lt.Minute()
	day := lt.Weekday()
	if c.start < c.end {
		return c.days[day] && m >= c.start && m < c.end
	}
	// Across midnight: the evening part of today's window, or the morning
	// part of yesterday's.
	return (c.days[day] && m >= c.start) || (c.days[(day+6)%7] && m < c.end)
}

func (c window) next(t time.Time) time.Time {
	if c.open(t) {
		return t
	}
	lt := t.In(c.loc)
	for d := 0; d <= 7; d++ {
		at := time.Date(lt.Year(), lt.Month(), lt.Day()+d, c.start/60, c.start%60, 0, 0, c.loc)
		if !at.Before(t) && c.days[at.Weekday()] {
			return at
		}
	}
	return t // no day at all: Validate refuses it
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// compile parses the window; its error names the field at fault.
func (w Window) compile() (window, error) {
	var c window
	var err error
	if c.start, err = clock(w.Start, false); err != nil {
		return c, fmt.Errorf("start %w", err)
	}
	if c.end, err = clock(w.End, true); err != nil {
		return c, fmt.Errorf("end %w", err)
	}
	if c.start == c.end {
		return c, fmt.Errorf("start and end are both %s: the window would never close (remove window to send at any hour) or never open", w.Start)
	}
	if c.loc, err = LoadZone(w.Timezone); err != nil {
		return c, fmt.Errorf("timezone %w", err)
	}
	if len(w.Days) == 0 {
		c.days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(strings.TrimSpace(d))]
		if !ok {
			return c, fmt.Errorf("days: %q is not a day; use mon, tue, wed, thu, fri, sat or sun", d)
		}
		c.days[wd] = true
	}
	return c, nil
}

// clock parses "HH:MM" into minutes since midnight; "24:00" only for an end.
func clock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case s == "":
		return 0, fmt.Errorf("is missing: give a time such as \"08:00\"")
	case !ok || len(m) != 2 || len(h) < 1 || len(h) > 2 || err1 != nil || err2 != nil:
		return 0, fmt.Errorf("%q: use HH:MM on a 24-hour clock, such as \"08:00\" or \"20:30\"", s)
	case end && hh == 24 && mm == 0:
		return 24 * 60, nil
	case hh < 0 || hh > 23 || mm < 0 || mm > 59:
		return 0, fmt.Errorf("%q is not a time of day: use 00:00 to 23:59", s)
	}
	return hh*60 + mm, nil
}

var zones sync.Map // name -> *time.Location

// LoadZone returns the IANA time zone name, such as Africa/Lagos. Unlike
// time.LoadLocation it refuses "" and "Local" (which depend on the machine)
// and caches what it loaded.
func LoadZone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" {
		return nil, fmt.Errorf("is missing: name an IANA zone such as Africa/Lagos")
	}
	if name == "Local" {
		return nil, fmt.Errorf("%q depends on the machine: name an IANA zone such as Africa/Lagos", name)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone: use a name such as Africa/Lagos or Europe/London", name)
	}
	zones.Store(name, l)
	return l, nil
}

// PhoneZone returns the time zone of an E.164 number, as phonenumbers
// knows it. Mobile numbers of a country with several zones carry no place,
// so prefer (the window's zone) wins when it is one of the number's or its
// country's zones; otherwise the number's first zone, else its country's
// first. ok is false when no zone is known; prefer is returned then.
func PhoneZone(e164, prefer string) (tz string, ok bool) {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return prefer, false
	}
	known := func(zs []string, err error) []string {
		if err != nil || len(zs) == 0 || zs[0] == "Etc/Unknown" {
			return nil
		}
		return zs
	}
	number := known(phonenumbers.GetTimezonesForNumber(n))
	country := known(phonenumbers.GetTimezonesForPrefix("+" + strconv.Itoa(int(n.GetCountryCode()))))
	if slices.Contains(number, prefer) || slices.Contains(country, prefer) {
		return prefer, true
	}
	for _, z := range append(number, country...) {
		if _, err := LoadZone(z); err == nil {
			return z, true
		}
	}
	return prefer, false
}

// Scheduled reports whether the spec holds sends back by time: a start_at
// or a window.
func (s Schedule) Scheduled() bool { return s.StartAt != nil || s.Window != nil }

// NextOpening returns when the campaign may next send, at or after now, by
// its start_at and window (in the window's own zone): now when it may send
// at once.
func (s Spec) NextOpening(now time.Time) time.Time {
	if s.Schedule == nil {
		return now
	}
	return opening(now, s.Schedule.StartAt, s.Schedule.Window, "")
}

// OpensAt returns when item it of the batch may be sent, at or after now:
// after the batch's StartAt, and in its Window read in the item's zone. It
// returns now when the item may be sent at once.
func (b *Batch) OpensAt(it Item, now time.Time) time.Time {
	var start *time.Time
	if b.StartAt > 0 {
		t := time.Unix(b.StartAt, 0)
		start = &t
	}
	return opening(now, start, b.Window, it.TZ)
}

func opening(now time.Time, start *time.Time, w *Window, tz string) time.Time {
	t := now
	if start != nil && start.After(t) {
		t = *start
	}
	if w != nil {
		t = w.In(tz).NextOpening(t)
	}
	return t
}

// StartUnix is the spec's start_at as unix seconds, or 0 for none.
func (s Spec) StartUnix() int64 {
	if s.Schedule == nil || s.Schedule.StartAt == nil {
		return 0
	}
	return s.Schedule.StartAt.Unix()
}

// SendWindow is the spec's window, or nil.
func (s Spec) SendWindow() *Window {
	if s.Schedule == nil {
		return nil
	}
	return s.Schedule.Window
}

// validateSchedule checks schedule's start_at, window and per-recipient
// zone keys; each error names the key's line.
func (s *Spec) validateSchedule() SpecErrors {
	sc := s.Schedule
	if sc == nil {
		return nil
	}
	var errs SpecErrors
	add := func(key, format string, args ...any) {
		at := "schedule." + key
		for s.lines[at] == 0 && strings.Contains(at, ".") {
			at = at[:strings.LastIndex(at, ".")] // the nearest key with a line
		}
		errs = append(errs, s.Errorf(at, format, args...))
	}
	if sc.StartAt != nil && sc.ExpiresAt != nil && !sc.StartAt.Before(*sc.ExpiresAt) {
		add("start_at", "schedule.start_at %s is not before schedule.expires_at %s: nothing would be sent",
			sc.StartAt.Format(time.RFC3339), sc.ExpiresAt.Format(time.RFC3339))
	}
	if w := sc.Window; w != nil {
		if _, err := w.compile(); err != nil {
			field, _, _ := strings.Cut(err.Error(), " ")
			if strings.HasPrefix(err.Error(), "start and end") {
				field = "end"
			}
			add("window."+strings.TrimSuffix(field, ":"), "schedule.window.%v", err)
		}
	}
	if sc.TimezoneColumn != "" || sc.TimezoneFromPhone {
		key := "timezone_column"
		if sc.TimezoneColumn == "" {
			key = "timezone_from_phone"
		}
		switch {
		case sc.Window == nil:
			add(key, "schedule.%s needs schedule.window: the hours to read in each recipient's zone", key)
		case sc.TimezoneColumn != "" && sc.TimezoneFromPhone:
			add(key, "schedule.timezone_column and schedule.timezone_from_phone: use one")
		case sc.TimezoneFromPhone && s.Channel.AddressKind() != "phone":
			add(key, "schedule.timezone_from_phone needs phone numbers; channel %s sends to email addresses (use timezone_column)", s.Channel)
		}
	}
	return errs
}

// scheduleLines records the lines of schedule's keys in lines, as
// "schedule.window" and "schedule.window.start", so that errors point at
// them. m is the spec's top-level mapping.
func scheduleLines(m *yaml.Node, lines map[string]int) {
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := prefix + "." + n.Content[i].Value
			lines[k] = n.Content[i].Line
			if prefix == "schedule" {
				walk(n.Content[i+1], k)
			}
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "schedule" {
			walk(m.Content[i+1], "schedule")
		}
	}
}

// scheduleTimeError finds a schedule time (start_at, expires_at) that is
// not a time, for a decoding error that names no line and would repeat the
// value; nil when every one reads. m is the spec's top-level mapping.
func scheduleTimeError(m *yaml.Node, file string) *SpecError {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		sc := m.Content[i+1]
		if m.Content[i].Value != "schedule" || sc.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(sc.Content); j += 2 {
			k, v := sc.Content[j], sc.Content[j+1]
			if k.Value != "start_at" && k.Value != "expires_at" {
				continue
			}
			var t time.Time
			if v.Kind != yaml.ScalarNode || v.Decode(&t) != nil {
				return &SpecError{File: file, Line: v.Line, Msg: fmt.Sprintf("schedule.%s is not a time: use RFC 3339 with its offset, e.g. 2026-12-01T18:00:00+01:00", k.Value)}
			}
		}
	}
	return nil
}
