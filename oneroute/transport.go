package oneroute

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// Transport is the client's default HTTP transport: HTTP/1.1 to one API
// host, over kept-alive connections, each request written and its answer
// read on the caller's goroutine. net/http.Transport runs two goroutines per
// connection and hands every request and response between them; for
// thousands of small requests a second that hand-off is most of the
// client's CPU (bench/sendonly measured 59–72 µs per request against 19–27
// µs for a synchronous client; docs/benchmarks.md). Request framing and
// response parsing are net/http's own (Request.Write, ReadResponse), so
// chunked bodies, Connection: close and the rest behave as in net/http.
//
// What it leaves out: proxies (New uses net/http's transport when the
// environment names a proxy for the base URL), HTTP/2, and redirects (the
// client follows none). It serves only the scheme and host it was built
// for.
type Transport struct {
	scheme, host, addr string // the one origin served; addr is host:port
	tls                *tls.Config
	dialer             net.Dialer
	// IdleTimeout closes a connection idle for longer; default 30s, below
	// the keep-alive timeout of common servers, so a request rarely meets a
	// connection the server is closing.
	IdleTimeout time.Duration

	slots chan struct{} // one per request in flight
	mu    sync.Mutex
	idle  []*wireConn // most recently used last; at most cap(slots)
}

// wireConn is one kept-alive connection.
type wireConn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// checkAfter is how long a connection may sit idle before it is checked
// for a close from the server before reuse (a read that does not block).
const checkAfter = time.Second

var _ http.RoundTripper = (*Transport)(nil)

// NewWireTransport returns a Transport for one origin (scheme http or
// https, host as in a URL), with at most maxConns requests in flight and as
// many idle connections kept (default 512).
func NewWireTransport(scheme, host string, maxConns int) (*Transport, error) {
	if maxConns <= 0 {
		maxConns = 512
	}
	t := &Transport{scheme: scheme, host: host, IdleTimeout: 30 * time.Second, slots: make(chan struct{}, maxConns),
		dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
	hostname, port, err := net.SplitHostPort(host)
	if err != nil {
		hostname, port = host, "80"
		if scheme == "https" {
			port = "443"
		}
	}
	t.addr = net.JoinHostPort(hostname, port)
	switch scheme {
	case "http":
	case "https":
		t.tls = &tls.Config{ServerName: hostname, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	default:
		return nil, fmt.Errorf("oneroute: transport: scheme %q: want http or https", scheme)
	}
	return t, nil
}

// RoundTrip implements http.RoundTripper. A request to another origin is
// refused. The response body must be read to its end or closed; the
// connection goes back to the pool when it has been read to its end.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != t.scheme || req.URL.Host != t.host {
		closeBody(req)
		return nil, fmt.Errorf("oneroute: transport for %s://%s cannot send to %s://%s", t.scheme, t.host, req.URL.Scheme, req.URL.Host)
	}
	ctx := req.Context()
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		closeBody(req)
		return nil, ctx.Err()
	}
	resp, err := t.roundTrip(ctx, req)
	if err != nil {
		<-t.slots
	}
	return resp, err
}

// roundTrip sends req on a pooled or new connection. A write that fails on
// a reused connection (the server closed it while idle) is retried once on
// a new one: the server read none of it.
func (t *Transport) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(ctx)
	for try := 0; ; try++ {
		wc, reused, err := t.conn(ctx, try > 0)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		// Cancelling ctx (or its deadline) unblocks the write or read.
		stop := context.AfterFunc(ctx, func() { wc.c.SetDeadline(time.Unix(1, 0)) }) //nolint:errcheck // on a closed conn the read fails anyway
		werr := req.Write(wc.bw)
		if werr == nil {
			werr = wc.bw.Flush()
		}
		if werr != nil {
			stop()
			wc.c.Close()
			if reused && try == 0 && ctx.Err() == nil && req.GetBody != nil {
				if body, err := req.GetBody(); err == nil {
					req.Body = body
					continue
				}
			}
			if trace != nil && trace.WroteRequest != nil {
				trace.WroteRequest(httptrace.WroteRequestInfo{Err: werr})
			}
			return nil, ctxErr(ctx, werr)
		}
		if trace != nil && trace.WroteRequest != nil {
			trace.WroteRequest(httptrace.WroteRequestInfo{})
		}
		resp, err := http.ReadResponse(wc.br, req)
		if err != nil {
			stop()
			wc.c.Close()
			return nil, ctxErr(ctx, err)
		}
		resp.Body = &wireBody{rc: resp.Body, t: t, wc: wc, stop: stop, keep: !resp.Close && !req.Close}
		return resp, nil
	}
}

// ctxErr prefers the context's error to the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// conn returns an idle connection that is still open, or a new one (fresh
// forces a new one).
func (t *Transport) conn(ctx context.Context, fresh bool) (wc *wireConn, reused bool, err error) {
	for !fresh {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		wc = t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		idle := time.Since(wc.idleAt)
		if idle > t.IdleTimeout || (idle > checkAfter && !alive(wc)) {
			wc.c.Close()
			continue
		}
		return wc, true, nil
	}
	c, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	if t.tls != nil {
		tc := tls.Client(c, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, false, err
		}
		c = tc
	}
	return &wireConn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, false, nil
}

// alive reports whether an idle connection is still open: nothing is
// buffered, and a peek at its socket that does not block finds nothing (a
// closed connection reads EOF; a server has nothing to say before a
// request, so any bytes mean trouble too).
func alive(wc *wireConn) bool {
	if wc.br.Buffered() > 0 {
		return false
	}
	c := wc.c
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return peekEmpty(c)
}

// put returns a connection to the idle pool, or closes it when the pool
// is full.
func (t *Transport) put(wc *wireConn) {
	wc.idleAt = time.Now()
	t.mu.Lock()
	if len(t.idle) >= cap(t.slots) {
		t.mu.Unlock()
		wc.c.Close()
		return
	}
	t.idle = append(t.idle, wc)
	t.mu.Unlock()
}

// CloseIdleConnections closes the connections not in use.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, wc := range idle {
		wc.c.Close()
	}
}

// wireBody is a response body; its end gives the connection back.
type wireBody struct {
	rc   io.ReadCloser
	t    *Transport
	wc   *wireConn
	stop func() bool
	keep bool // the connection may be reused once the body is read
	eof  bool
	once sync.Once
}

func (b *wireBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		b.finish()
	} else if err != nil {
		b.finish()
	}
	return n, err
}

func (b *wireBody) Close() error {
	b.finish()
	return nil
}

// finish releases the connection once: back to the pool when the body was
// read to its end and the context did not fire, closed otherwise.
func (b *wireBody) finish() {
	b.once.Do(func() {
		defer func() { <-b.t.slots }()
		if b.stop() && b.keep && b.eof {
			b.rc.Close()
			b.t.put(b.wc)
			return
		}
		// Close the connection first: closing a body not read to its end
		// would read the rest of it.
		b.wc.c.Close()
		b.rc.Close()
	})
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
