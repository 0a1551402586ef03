// Command plain is issue 9's naive delivery baseline: one asynq task and one
// OneRoute HTTP call (oneroute.Client.SendSMS) per personalised message,
// against the sandbox in its own process. It prints messages/s and CPU
// (its own, Redis', the sandbox's) as JSON; see bench/internal/baseline.
//
//	fanout sandbox --addr 127.0.0.1:8765 &
//	go run ./bench/plain -redis 127.0.0.1:6390 -sandbox http://127.0.0.1:8765 \
//	    -n 100000 -concurrency 50 -recipients /tmp/r.csv -sandbox-pid $SANDBOX_PID
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/fanoutdev/fanout/bench/internal/baseline"
	"github.com/fanoutdev/fanout/oneroute"
)

func main() {
	c := baseline.Flags(flag.CommandLine, "plain")
	flag.Parse()
	client, err := oneroute.New(oneroute.Options{BaseURL: c.SandboxURL, APIKey: c.APIKey})
	if err != nil {
		fmt.Fprintln(os.Stderr, "plain:", err)
		os.Exit(2)
	}
	send := func(ctx context.Context, m *baseline.Message, n *baseline.Counters) error {
		res, err := client.SendSMS(ctx, c.ChannelID, oneroute.SMSRequest{Message: m.Text, Recipients: []string{m.To}})
		if err != nil {
			return err
		}
		if res[0].Accepted() {
			n.Accepted.Add(1)
		} else {
			n.Refused.Add(1)
		}
		return nil
	}
	if err := baseline.Run(c, send); err != nil {
		fmt.Fprintln(os.Stderr, "plain:", err)
		os.Exit(1)
	}
}
