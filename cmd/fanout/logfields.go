package main

import (
	"reflect"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/config"
)

// setLogDurations makes every logged duration a Go duration string, "1.5s"
// or "25s": human in the console, and parsed from JSON by
// time.ParseDuration or a log tool's duration parser, unit included.
// zerolog's setting is global, so main calls this once at start, before
// any logger is used.
func setLogDurations() {
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
}

// logStart writes the worker's start-up line: its settings, secrets
// redacted, with durations as "15s" and "24h" instead of nanoseconds.
func logStart(log zerolog.Logger, cfg config.Config) {
	log.Info().Dict("config", settingsDict(reflect.ValueOf(cfg.Redacted()))).Str("version", version).Msg("worker starting")
}

// settingsDict writes a settings struct as a log object in field order:
// nested structs as objects, durations as short Go durations, the rest as
// JSON (a config.Secret marshals as [REDACTED]).
func settingsDict(v reflect.Value) *zerolog.Event {
	d := zerolog.Dict()
	durationType := reflect.TypeFor[time.Duration]()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		switch {
		case fv.Type() == durationType:
			d.Str(f.Name, shortDuration(time.Duration(fv.Int())))
		case fv.Kind() == reflect.Struct:
			d.Dict(f.Name, settingsDict(fv))
		default:
			d.Interface(f.Name, fv.Interface())
		}
	}
	return d
}
