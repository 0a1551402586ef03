package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/webhooks"
)

// fanout webhooks refuses to start without the secret (exit 2, naming the
// variable), and with it receives a signed event (200), refuses a forged
// one (401), answers /healthz and /readyz, and stops cleanly on a signal.
func TestWebhooksCommand(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	if code := b.run(t, "webhooks"); code != exitBadInput || !strings.Contains(b.stderr.String(), "ONEROUTE_WEBHOOK_SECRET") {
		t.Fatalf("without a secret: exit %d, stderr %q; want 2 naming ONEROUTE_WEBHOOK_SECRET", code, b.stderr.String())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{"REDIS_URL": srv.URL(), "ONEROUTE_WEBHOOK_SECRET": "whsec_cmd", "LOG_LEVEL": "warn",
		"FANOUT_WHATSAPP_NUMBER": "2348000000001"}
	e := &env{stdout: io.Discard, stderr: io.Discard, stdin: strings.NewReader(""), getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() { exited <- runMain(ctx, e, []string{"webhooks", "--addr", addr}) }()
	defer func() {
		cancel()
		if code := <-exited; code != exitOK {
			t.Errorf("webhooks exit %d", code)
		}
	}()
	get := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testwait.For(t, "/readyz to answer 200", 30*time.Second, func() bool { return get("/readyz") == 200 })
	if code := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	post := func(body []byte, sig string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+webhooks.Path, bytes.NewReader(body))
		req.Header.Set(oneroute.SignatureHeader, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := []byte(`{"event":"smsDeliveryReport","message":null,"conversation":{"id":"123","status":"delivered"}}`)
	if code := post(body, oneroute.WebhookSignature("whsec_cmd", body)); code != http.StatusOK {
		t.Errorf("signed event: %d, want 200", code)
	}
	if code := post(body, oneroute.WebhookSignature("forged", body)); code != http.StatusUnauthorized {
		t.Errorf("forged event: %d, want 401", code)
	}
	// The applier took the event from the stream (an unknown message's
	// report: put off for later).
	rdb := srv.Client(t)
	testwait.For(t, "the event to be applied", 30*time.Second, func() bool {
		return rdb.XLen(context.Background(), "fanout:{hooks}:s").Val() == 0 && rdb.ZCard(context.Background(), "fanout:{hooks}:later").Val() == 1
	})
	// A STOP reply opts its sender out (worker.OptOuts).
	stop := []byte(`{"event":"newMessage","message":{"sender":{"name":"C","authUser":false},"content":"Stop","contentType":"TEXT","conversation_id":"c1"},"conversation":{"id":"c1","customer":{"name":"C"},"customer_id":"cust-2348030000001"}}`)
	if code := post(stop, oneroute.WebhookSignature("whsec_cmd", stop)); code != http.StatusOK {
		t.Errorf("signed STOP: %d, want 200", code)
	}
	store := storage.New(rdb)
	testwait.For(t, "the sender to be opted out", 30*time.Second, func() bool {
		got, err := store.OptedOut(context.Background(), storage.OptOutWhatsApp, []string{"+2348030000001"})
		return err == nil && len(got) == 1 && got[0] != nil
	})
	// Any inbound WhatsApp message opens the business number's 24-hour
	// session window with its sender, at the message's time; one from the
	// business side opens nothing.
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	hello := []byte(`{"event":"newMessage","message":{"sender":{"name":"D","authUser":false},"content":"Hello","contentType":"TEXT","conversation_id":"c2","createdAt":"` + at.Format(time.RFC3339) + `"},"conversation":{"id":"c2","customer":{"name":"D"},"customer_id":"cust-2348030000002"}}`)
	agent := []byte(`{"event":"newMessage","message":{"sender":{"name":"Agent","authUser":true},"content":"Hi","contentType":"TEXT","conversation_id":"c3"},"conversation":{"id":"c3","customer":{"name":"E"},"customer_id":"cust-2348030000003"}}`)
	for _, body := range [][]byte{hello, agent} {
		if code := post(body, oneroute.WebhookSignature("whsec_cmd", body)); code != http.StatusOK {
			t.Errorf("signed newMessage: %d, want 200", code)
		}
	}
	customers := []string{"+2348030000002", "+2348030000003"}
	var last []time.Time
	testwait.For(t, "the inbound message to open a session window", 30*time.Second, func() bool {
		last, err = store.LastInbound(context.Background(), "2348000000001", customers, time.Now())
		return err == nil && last[0].Equal(at) && rdb.XLen(context.Background(), "fanout:{hooks}:s").Val() == 0
	})
	if !last[1].IsZero() {
		t.Errorf("a message from the business side opened a window: %v", last[1])
	}
}

// fanout run --sandbox --webhooks: the sandbox posts its delivery reports
// to an embedded receiver, and the campaign completes from them with the
// same counts as polling gives, without reading a report on its own.
// --webhooks without --sandbox is a usage error.
func TestRunSandboxWebhooks(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	code := b.run(t, "run", "--sandbox", "--webhooks", "--json", "--dlr-max-age", "3s", "--timeout", "90s", "testdata/e2e/campaign.yaml")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, b.stderr.String())
	}
	var got runResult
	if err := json.Unmarshal(b.stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", b.stdout.String(), err)
	}
	if got.State != campaigns.StateCompleted || got.Delivered != 16 || got.Undelivered != 2 || got.DLRExpired != 2 || got.Sandbox == nil {
		t.Fatalf("state %s, delivered %d, undelivered %d, dlr_expired %d; want completed, 16, 2, 2", got.State, got.Delivered, got.Undelivered, got.DLRExpired)
	}
	// A few pages: the sweep's first pass may come before the first webhook
	// (its interval is the sandbox's delay), and the passes after the
	// webhooks stopped list the pending messages they expire.
	if s := got.Sandbox; s.WebhooksSent != 18 || s.DLRRequests != 0 || s.SMSListRequests > 5 {
		t.Errorf("sandbox: %d webhooks answered, %d report reads, %d list pages; want 18, 0, at most 5", s.WebhooksSent, s.DLRRequests, s.SMSListRequests)
	}
	if code := b.run(t, "run", "--webhooks", "testdata/e2e/campaign.yaml"); code != exitBadInput || !strings.Contains(b.stderr.String(), "--webhooks needs --sandbox") {
		t.Errorf("--webhooks without --sandbox: exit %d, stderr %q", code, b.stderr.String())
	}
}

// deploy/k8s runs fanout webhooks with its probes on the port it listens
// on, and a Service in front of that port.
func TestK8sWebhooksProbes(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	w := deploymentRunning(t, b, "webhooks")
	c := w.spec.Template.Spec.Containers[0]
	addr := ""
	for i, a := range c.Args {
		if a == "--addr" && i+1 < len(c.Args) {
			addr = c.Args[i+1]
		}
	}
	if addr == "" {
		t.Fatalf("%s: no --addr", w.where)
	}
	checkProbes(t, w.where, c, listenPort(t, w.where, "--addr", addr))
	if w.env["ONEROUTE_WEBHOOK_SECRET_FILE"] == "" {
		t.Errorf("%s: no ONEROUTE_WEBHOOK_SECRET_FILE", w.where)
	}
}

// fanout monitor with ONEROUTE_WEBHOOK_SECRET serves POST
// /webhooks/oneroute without its login (the signature authenticates), and
// keeps asking the login everywhere else.
func TestMonitorServesWebhooks(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{"REDIS_URL": srv.URL(), "ONEROUTE_WEBHOOK_SECRET": "whsec_mon", "FANOUT_MONITOR_AUTH": "ops:pw-for-the-test", "LOG_LEVEL": "error"}
	e := &env{stdout: io.Discard, stderr: io.Discard, stdin: strings.NewReader(""), getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() { exited <- runMain(ctx, e, []string{"monitor", "--addr", addr}) }()
	defer func() {
		cancel()
		if code := <-exited; code != exitOK {
			t.Errorf("monitor exit %d", code)
		}
	}()
	do := func(method, path string, body []byte, sig string) int {
		req, _ := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
		if sig != "" {
			req.Header.Set(oneroute.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	testwait.For(t, "the monitor to answer", 30*time.Second, func() bool { return do("GET", "/healthz", nil, "") == 200 })
	body := []byte(`{"event":"smsDeliveryReport","message":null,"conversation":{"id":"77","status":"delivered"}}`)
	if code := do("POST", webhooks.Path, body, oneroute.WebhookSignature("whsec_mon", body)); code != http.StatusOK {
		t.Errorf("signed event: %d, want 200", code)
	}
	if code := do("POST", webhooks.Path, body, oneroute.WebhookSignature("forged", body)); code != http.StatusUnauthorized {
		t.Errorf("forged event: %d, want 401", code)
	}
	if code := do("GET", "/", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("dashboard without a login: %d, want 401", code)
	}
}
