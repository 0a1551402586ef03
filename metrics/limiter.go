package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanoutdev/fanout/ratelimit"
)

// Limiter decorates a ratelimit.Limiter: it counts the permits asked for,
// the refusals (the caller waits RetryAfter) and the delays of
// reservations, by channel. Build it with Worker.Limiter.
type Limiter struct {
	next     ratelimit.Limiter
	asked    *prometheus.CounterVec
	refused  *prometheus.CounterVec
	wait     *prometheus.HistogramVec
	blocked  *prometheus.CounterVec
	failures *prometheus.CounterVec
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// senderChannel reduces a limiter key ("sms:<channel id>",
// "whatsapp:<from>") to its channel, so sender ids never become label
// values.
func senderChannel(key string) string {
	ch, _, _ := strings.Cut(key, ":")
	switch ch {
	case "sms", "whatsapp", "email":
		return ch
	}
	return "other"
}

func (l *Limiter) observe(key string, n int, res ratelimit.Result, err error) {
	ch := senderChannel(key)
	if err != nil {
		l.failures.WithLabelValues(ch).Inc()
		return
	}
	l.asked.WithLabelValues(ch).Add(float64(n))
	switch {
	case res.Allowed < n:
		l.refused.WithLabelValues(ch).Inc()
		l.wait.WithLabelValues(ch).Observe(res.RetryAfter.Seconds())
	default:
		l.wait.WithLabelValues(ch).Observe(res.Delay.Seconds())
	}
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, lim ratelimit.Limit, n int) (ratelimit.Result, error) {
	res, err := l.next.Allow(ctx, key, lim, n)
	l.observe(key, n, res, err)
	return res, err
}

// Reserve implements ratelimit.Limiter.
func (l *Limiter) Reserve(ctx context.Context, key string, lim ratelimit.Limit, n int, ahead time.Duration) (ratelimit.Result, error) {
	res, err := l.next.Reserve(ctx, key, lim, n, ahead)
	l.observe(key, n, res, err)
	return res, err
}

// Block implements ratelimit.Limiter.
func (l *Limiter) Block(ctx context.Context, key string, d time.Duration) error {
	l.blocked.WithLabelValues(senderChannel(key)).Inc()
	return l.next.Block(ctx, key, d)
}
