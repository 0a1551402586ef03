package worker

import (
	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/ratelimit"
)

// limiterLimit converts a rate to the limiter's form. It is the one place
// campaigns.Rate, the rate fanout passes around, meets ratelimit.Limit, which
// stays a type of its own because ratelimit imports none of fanout's
// packages. The conversion compiles only while both have the same fields.
func limiterLimit(r campaigns.Rate) ratelimit.Limit { return ratelimit.Limit(r) }
