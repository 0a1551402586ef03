package dispatcher

import (
	"math"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
)

// Estimate is how long sending a campaign's recipients takes at its rate
// limits, ignoring provider latency and retries: a lower bound.
type Estimate struct {
	// Seconds is the estimated sending time; 0 when no limit is set.
	Seconds float64 `json:"seconds"`
	// Human is Seconds as a duration ("2h46m40s"), or "no rate limit".
	Human string `json:"human"`
	// Bound names the limit that sets the pace: per_second, per_minute,
	// per_day or none.
	Bound string `json:"bound"`
	// Limit is the effective limit: the spec's rate over the configured one.
	Limit campaigns.Rate `json:"limit"`
}

// EffectiveRate is the limit a campaign sends under: each field of the
// spec's rate wins over the configured default, as in the worker.
func EffectiveRate(def campaigns.Rate, spec *campaigns.Rate) campaigns.Rate {
	return spec.Over(def)
}

// EstimateSend estimates the time to send n messages under l. Each level is
// taken alone and the slowest wins: the per-second level lets a burst go at
// once and then one message every 1/PerSecond seconds; a per-minute or
// per-day cap lets a full cap go per window.
func EstimateSend(n int, l campaigns.Rate) Estimate {
	e := Estimate{Bound: "none", Limit: l}
	if n > 0 {
		if l.PerSecond > 0 {
			burst := l.Burst
			if burst <= 0 {
				burst = l.PerSecond
			}
			if s := float64(max(0, n-burst)) / float64(l.PerSecond); s >= e.Seconds {
				e.Seconds, e.Bound = s, "per_second"
			}
		}
		if l.PerMinute > 0 {
			if s := math.Floor(float64(n-1)/float64(l.PerMinute)) * 60; s > e.Seconds {
				e.Seconds, e.Bound = s, "per_minute"
			}
		}
		if l.PerDay > 0 {
			if s := math.Floor(float64(n-1)/float64(l.PerDay)) * 86400; s > e.Seconds {
				e.Seconds, e.Bound = s, "per_day"
			}
		}
	}
	if l.PerSecond <= 0 && l.PerMinute <= 0 && l.PerDay <= 0 {
		e.Human = "no rate limit"
		return e
	}
	e.Human = time.Duration(e.Seconds * float64(time.Second)).Round(time.Second).String()
	return e
}
