package oneroute_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// rawServer answers each request on a connection with answer(n), n
// counting the server's requests from 1, written as raw bytes.
func rawServer(t *testing.T, answer func(n int64) string) (url string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, answer(n.Add(1))); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

const okBody = `{"data":[{"status":"success","response":"1"}],"success":true}`

var okAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(okBody)) + "\r\n\r\n" + okBody

// TestWireTransportSkipsInterimAnswers: 1xx answers before the final one
// are skipped, and the next request on the connection reads its own
// answer; 101 fails the call as a sent request.
func TestWireTransportSkipsInterimAnswers(t *testing.T) {
	t.Parallel()
	srv, conns := rawServer(t, func(n int64) string {
		if n == 3 {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"
		}
		return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + okAnswer
	})
	c := newClient(t, oneroute.Options{BaseURL: srv})
	send := func() error {
		_, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
		return err
	}
	for i := range 2 {
		if err := send(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for two calls; want 1", n)
	}
	err := send()
	var te *oneroute.TransportError
	if !errors.As(err, &te) || !te.Written || !strings.Contains(err.Error(), "101") {
		t.Fatalf("err = %v; want a written TransportError naming the 101", err)
	}
}

// TestWireTransportTimeoutInBody: the client timeout bounds the body too:
// an answer that stops halfway fails at the timeout, as sent.
func TestWireTransportTimeoutInBody(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, `{"data":[`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := newClient(t, oneroute.Options{BaseURL: srv.URL, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	var te *oneroute.TransportError
	if !errors.As(err, &te) || !te.Written {
		t.Fatalf("err = %v; want a written TransportError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s; the timeout is 200ms", d)
	}
}

// TestWireTransportReusesConnPastDeadline: a kept-alive connection whose
// last request's deadline has passed is reused, not thrown away.
func TestWireTransportReusesConnPastDeadline(t *testing.T) {
	t.Parallel()
	srv, conns := rawServer(t, func(int64) string { return okAnswer })
	c := newClient(t, oneroute.Options{BaseURL: srv, Timeout: 100 * time.Millisecond})
	for i := range 2 {
		if _, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if i == 0 {
			time.Sleep(1200 * time.Millisecond) // past the deadline and the client's check age
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}
}
