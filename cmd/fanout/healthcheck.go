package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultHealthURL is a worker's readiness endpoint with
// FANOUT_METRICS_ADDR=:9090, the port deploy/ uses.
const defaultHealthURL = "http://127.0.0.1:9090/readyz"

// cmdHealthcheck asks a health endpoint and exits 0 on 200, 1 otherwise: a
// probe for the distroless image, which has no curl or wget.
func cmdHealthcheck(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "healthcheck", "[flags]", `
Asks a fanout process's health endpoint with one GET and exits 0 when it
answers 200, 1 otherwise (no answer, another status, or the timeout), naming
the status and the first line of the answer. Meant for Docker's HEALTHCHECK
in the distroless image, which has no curl:

  HEALTHCHECK CMD ["/usr/local/bin/fanout", "healthcheck"]

A worker serves /healthz and /readyz on FANOUT_METRICS_ADDR, the monitor on
FANOUT_MONITOR_ADDR.`)
	target := fs.String("url", defaultHealthURL, "the health endpoint's `URL`")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	if u, err := url.Parse(*target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &usageError{fmt.Sprintf("--url %q: want http://host:port/path, such as %s", *target, defaultHealthURL)}
	}
	if *timeout <= 0 {
		return &usageError{fmt.Sprintf("--timeout %s: want a positive duration, such as 5s", *timeout)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return &usageError{fmt.Sprintf("--url %q: %v", *target, err)}
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("%s: no answer: %v", *target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", *target, resp.Status, line)
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", *target, resp.Status)
	return nil
}
