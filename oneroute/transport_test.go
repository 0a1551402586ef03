package oneroute_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/oneroute"
)

// TestWireTransportSurvivesServerIdleClose: a connection the server closed
// while it sat idle is never used for a send (which would make the send
// ambiguous): the next call opens a new one and succeeds.
func TestWireTransportSurvivesServerIdleClose(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"data":[{"status":"success","response":"1"}],"success":true}`)
	}))
	srv.Config.IdleTimeout = 300 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, oneroute.Options{BaseURL: srv.URL})
	send := func() error {
		_, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
		return err
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the server's idle timeout and the client's check age
	if err := send(); err != nil {
		t.Fatalf("second call after the server closed the idle connection: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (the closed one replaced once)", n)
	}
}

// TestWireTransportReadsChunkedAndClose: answers framed with chunked
// encoding, or ending with Connection: close, are read whole, and a
// connection the server closes is not reused.
func TestWireTransportReadsChunkedAndClose(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, `{"data":[{"status":"success",`)
		w.(http.Flusher).Flush() // forces chunked encoding
		io.WriteString(w, `"response":"`+strings.Repeat("7", 100)+`"}],"success":true}`)
	})
	c := newClient(t, oneroute.Options{BaseURL: srv.URL})
	for i := range 6 {
		res, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if len(res) != 1 || res[0].Response != strings.Repeat("7", 100) {
			t.Fatalf("call %d: %+v", i, res)
		}
	}
}

// TestWireTransportCancel: cancelling a call waiting for a slow answer
// returns at once with the context's error, marked written (OneRoute may
// have acted on it).
func TestWireTransportCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	c := newClient(t, oneroute.Options{BaseURL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.SendSMS(ctx, "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	var te *oneroute.TransportError
	if !errors.As(err, &te) || !te.Written || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want a written TransportError wrapping context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

// TestWireTransportOneOrigin: the transport sends only to the origin it was
// built for, so the apiKey header cannot reach another host.
func TestWireTransportOneOrigin(t *testing.T) {
	t.Parallel()
	tr, err := oneroute.NewWireTransport("http", "127.0.0.1:1", 4)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://example.com/x", nil)
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "cannot send to") {
		t.Fatalf("err = %v; want a refusal", err)
	}
}
