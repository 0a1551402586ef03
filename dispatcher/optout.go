package dispatcher

import (
	"context"
	"fmt"

	"github.com/fanoutdev/fanout/storage"
)

// skipOptedOut marks the chunk's valid rows whose address is in the opt-out
// set of the campaign's channel kind (storage.OptedOut) as suppressed:
// they are left out of the campaign and counted suppressed, like the
// spec's suppression list. One HMGET per chunk (256 rows), from the
// workers, so lookups of several chunks overlap. A dry run reads no Redis
// and skips nobody here.
//
// Known limit: a dispatch resumed with a rejects report (Options.Reject)
// replays the rows before its checkpoint through here too; if an address
// among them opted out (or was removed) since the interrupted run, the
// replayed counts differ from the checkpoint's and the resume stops with
// ErrFileChanged. A resume without a rejects report skips those rows and is
// not affected.
func (r *run) skipOptedOut(ctx context.Context, c *chunk) error {
	if r.opts.DryRun || r.d.store == nil {
		return nil
	}
	var addrs []string
	var at []int
	for i := range c.rows {
		x := &c.rows[i]
		if x.reason == "" && x.addr != "" && !x.suppressed {
			addrs, at = append(addrs, x.addr), append(at, i)
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	found, err := r.d.store.OptedOut(ctx, storage.OptOutKind(r.spec.Channel), addrs)
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", r.spec.ID, err)
	}
	for j, o := range found {
		if o != nil {
			x := &c.rows[at[j]]
			x.suppressed, x.content, x.renderErr = true, nil, nil
		}
	}
	return nil
}
