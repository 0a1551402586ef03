package dispatcher

import (
	"context"
	"fmt"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
)

// work validates rows: it runs on every core.
func (r *run) work(ctx context.Context, jobs <-chan *chunk) {
	normalize := recipients.NormalizeEmail
	if r.spec.Channel.AddressKind() == "phone" {
		normalize = recipients.NewPhoneNormalizer(r.spec.DefaultRegion).Normalize
	}
	if r.spec.Channel == campaigns.ChannelPush {
		normalize = recipients.NormalizeCustomer
	}
	for {
		var c *chunk
		select {
		case c = <-jobs:
		case <-ctx.Done():
			return
		}
		if c == nil {
			return
		}
		for i := range c.rows {
			r.process(&c.rows[i], normalize)
		}
		if err := r.skipOptedOut(ctx, c); err != nil {
			c.rows, c.err = c.rows[:0], err
		}
		close(c.done)
	}
}

func (r *run) process(x *rowRec, normalize func(string) (string, error)) {
	x.rowHash = addrHash(x.raw)
	if x.err != nil {
		x.reason = x.err.Error()
		return
	}
	if !x.has {
		x.reason = fmt.Sprintf("no %q field", r.pf.addrField)
		return
	}
	addr, err := normalize(x.raw)
	if err != nil {
		x.reason = err.Error()
		return
	}
	x.addr, x.hash = addr, addrHash(addr)
	x.tz, x.tzDefault = r.zones.zone(x.tzRaw, addr)
	if r.pf.suppressed.Has(x.hash) {
		x.suppressed = true
		return
	}
	if r.personal {
		c, err := r.pf.renderer.Render(x.fields)
		if err != nil {
			x.renderErr = err
			return
		}
		x.content = &c
	}
}
