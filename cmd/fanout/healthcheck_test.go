package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fanout healthcheck is the only probe the distroless image has: it must
// exit 0 exactly when the endpoint answers 200, and 1 (naming the status
// and the reason) for any other answer or none, so Docker marks a worker
// whose Redis is gone unhealthy.
func TestHealthcheckExitCodes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/readyz":
			http.Error(w, "redis: dial tcp 10.0.0.7:6379: connection refused\nmore", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		noStderr bool
	}{
		{"200 is healthy", []string{"--url", srv.URL + "/healthz"}, exitOK, "200 OK", "", true},
		{"503 names the reason", []string{"--url", srv.URL + "/readyz"}, exitError, "", "answered 503 Service Unavailable: redis: dial tcp 10.0.0.7:6379: connection refused", false},
		{"404 is unhealthy", []string{"--url", srv.URL + "/nope"}, exitError, "", "answered 404", false},
		{"no answer", []string{"--url", goneURL + "/readyz"}, exitError, "", "no answer", false},
		{"not a URL", []string{"--url", "127.0.0.1:9090/readyz"}, exitBadInput, "", "want http://host:port/path", false},
		{"zero timeout", []string{"--url", srv.URL, "--timeout", "0s"}, exitBadInput, "", "want a positive duration", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			code := b.run(t, append([]string{"healthcheck"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, b.stderr.String())
			}
			if !strings.Contains(b.stdout.String(), c.stdout) {
				t.Errorf("stdout = %q, want it to contain %q", b.stdout.String(), c.stdout)
			}
			if !strings.Contains(b.stderr.String(), c.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", b.stderr.String(), c.stderr)
			}
			if c.noStderr && b.stderr.Len() != 0 {
				t.Errorf("stderr = %q, want nothing", b.stderr.String())
			}
		})
	}
}
