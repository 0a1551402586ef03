package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/fanoutdev/fanout/storage"
)

func cmdList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "list", "[flags]", `
Lists campaigns in Redis at REDIS_URL, newest first: id, name, state,
progress and creation time. With --json, one status object per line.`)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON status object per line")
	limit := fs.Int("n", 20, "show at most this many campaigns (0: all)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	cfg, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := storage.New(rdb)
	ids, err := store.List(ctx, *limit)
	if err != nil {
		return err
	}
	if len(ids) == 0 && !*asJSON {
		fmt.Fprintf(e.stderr, "no campaigns in Redis at %s\n", redisWhere(cfg.Redis))
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tNAME\tCHANNEL\tSTATE\tDONE\tSENT\tFAILED\tCREATED")
	}
	for _, id := range ids {
		p, err := store.Progress(ctx, id)
		if err != nil {
			continue // deleted since it was listed
		}
		if *asJSON {
			if err := json.NewEncoder(e.stdout).Encode(p); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%s\n", p.ID, p.Name, p.Channel, p.State, p.Done(), p.Total, p.Sent, p.Failed,
			p.CreatedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}
