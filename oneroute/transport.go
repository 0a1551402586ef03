package oneroute

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"time"
)

// Transport is the client's default HTTP transport: HTTP/1.1 to one API
// host, over kept-alive connections, each request written and its answer
// read on the caller's goroutine. net/http.Transport runs two goroutines per
// connection and hands every request and response between them; for
// thousands of small requests a second that hand-off is most of the
// client's CPU (bench/sendonly measured 59–72 µs per request against 19–27
// µs for a synchronous client; docs/benchmarks.md). Requests and answers
// are framed as net/http frames them: the usual ones (a known body length,
// an answer whose head fits the buffer in plain CRLF lines) by
// writeRequest and readResponse, byte for byte what Request.Write writes
// and what ReadResponse reads (their fuzz targets compare them), the rest
// by Request.Write and ReadResponse themselves. So chunked bodies,
// Connection: close and the rest behave as in net/http. Interim (1xx)
// answers are skipped; 101 Switching Protocols is an error.
//
// What it leaves out: proxies (New uses net/http's transport when the
// environment names a proxy for the base URL), HTTP/2, and redirects (the
// client follows none). It serves only the scheme and host it was built
// for.
type Transport struct {
	scheme, host, addr string // the one origin served; addr is host:port
	hostLine           string // "Host: host\r\n" as req.Write writes it, or "" (see writeRequest)
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
	// deadline is the connection's read and write deadline (zero: none).
	deadline time.Time
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
	t.hostLine = hostLine(host)
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
	return t.send(req, time.Time{}, nil)
}

// send is RoundTrip with a deadline (none when zero) that bounds it as a
// context deadline would, from the wait for a connection to the end of the
// body, without a context and timer per request: an expired deadline's
// errors are context.DeadlineExceeded. It sets *wrote (when wrote is not
// nil) whenever the request's httptrace WroteRequest hook would be told of
// a request written without error; the client reads it instead of
// installing a hook.
func (t *Transport) send(req *http.Request, deadline time.Time, wrote *bool) (*http.Response, error) {
	if req.URL.Scheme != t.scheme || req.URL.Host != t.host {
		closeBody(req)
		return nil, fmt.Errorf("oneroute: transport for %s://%s cannot send to %s://%s", t.scheme, t.host, req.URL.Scheme, req.URL.Host)
	}
	ctx := req.Context()
	select {
	case t.slots <- struct{}{}:
	default:
		var expired <-chan time.Time
		if !deadline.IsZero() {
			tm := time.NewTimer(time.Until(deadline))
			defer tm.Stop()
			expired = tm.C
		}
		select {
		case t.slots <- struct{}{}:
		case <-ctx.Done():
			closeBody(req)
			return nil, ctx.Err()
		case <-expired:
			closeBody(req)
			return nil, context.DeadlineExceeded
		}
	}
	resp, err := t.roundTrip(ctx, req, deadline, wrote)
	if err != nil {
		<-t.slots
	}
	return resp, err
}

// roundTrip sends req on a pooled or new connection. A write that fails on
// a reused connection (the server closed it while idle) is retried once on
// a new one: the server read none of it.
func (t *Transport) roundTrip(ctx context.Context, req *http.Request, deadline time.Time, wrote *bool) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(ctx)
	for try := 0; ; try++ {
		wc, reused, err := t.conn(ctx, deadline, try > 0)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		if deadline != wc.deadline {
			wc.c.SetDeadline(deadline) //nolint:errcheck // a closed conn fails the write
			wc.deadline = deadline
		}
		// Cancelling ctx (or its deadline) unblocks the write or read.
		var stop func() bool
		if ctx.Done() != nil {
			stop = context.AfterFunc(ctx, func() { wc.c.SetDeadline(time.Unix(1, 0)) }) //nolint:errcheck // on a closed conn the read fails anyway
		}
		werr := t.write(wc.bw, req, trace)
		if werr == nil {
			if wrote != nil {
				*wrote = true // as req.Write tells the hook: in the buffer
			}
			werr = wc.bw.Flush()
		}
		if werr != nil {
			stopped(stop)
			wc.c.Close()
			if reused && try == 0 && ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) && rewind(req) {
				continue
			}
			if trace != nil && trace.WroteRequest != nil {
				trace.WroteRequest(httptrace.WroteRequestInfo{Err: werr})
			}
			return nil, ctxErr(ctx, deadline, werr)
		}
		if trace != nil && trace.WroteRequest != nil {
			trace.WroteRequest(httptrace.WroteRequestInfo{})
		}
		wb := &wireBody{t: t, wc: wc, stop: stop}
		resp, err := readAnswer(wc.br, req, &wb.rb)
		if err != nil {
			stopped(stop)
			wc.c.Close()
			return nil, ctxErr(ctx, deadline, err)
		}
		wb.rc, wb.keep, wb.eof = resp.Body, !resp.Close && !req.Close, resp.Body == http.NoBody
		resp.Body = wb
		return resp, nil
	}
}

// write puts req in bw: by writeRequest, or req.Write for the requests it
// leaves. Either tells the trace's WroteRequest hook, before the flush.
func (t *Transport) write(bw *bufio.Writer, req *http.Request, trace *httptrace.ClientTrace) error {
	host := t.hostLine
	if req.Host != "" && req.Host != t.host {
		host = ""
	}
	if ok, err := writeRequest(bw, req, host, trace); ok {
		return err
	}
	return req.Write(bw)
}

// rewind makes req's body readable again for a second try, when it can.
func rewind(req *http.Request) bool {
	if b, ok := req.Body.(*byteBody); ok {
		b.Seek(0, io.SeekStart) //nolint:errcheck // offset 0 is always valid
		return true
	}
	if req.GetBody == nil {
		return false
	}
	body, err := req.GetBody()
	if err != nil {
		return false
	}
	req.Body = body
	return true
}

// maxInterim bounds the 1xx answers skipped before the final one, as in
// net/http's transport.
const maxInterim = 5

// readAnswer reads the final answer to req, skipping interim (1xx) ones;
// 101 Switching Protocols is an error, as no request asks for it.
func readAnswer(br *bufio.Reader, req *http.Request, rb *respBody) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := readResponse(br, req, rb)
		if err != nil {
			return nil, err
		}
		switch st := resp.StatusCode; {
		case st == http.StatusSwitchingProtocols:
			return nil, errors.New("oneroute: transport: unexpected 101 Switching Protocols")
		case st >= 100 && st <= 199:
			if n == maxInterim {
				return nil, errors.New("oneroute: transport: too many 1xx informational responses")
			}
			continue
		}
		return resp, nil
	}
}

// ctxErr prefers the context's error to the I/O error it caused, and
// reports the I/O timeout of an expired deadline as
// context.DeadlineExceeded, as a context with that deadline would have.
func ctxErr(ctx context.Context, deadline time.Time, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if !deadline.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// stopped undoes context.AfterFunc, if there was one, and reports whether
// it had not fired.
func stopped(stop func() bool) bool {
	return stop == nil || stop()
}

// conn returns an idle connection that is still open, or a new one (fresh
// forces a new one).
func (t *Transport) conn(ctx context.Context, deadline time.Time, fresh bool) (wc *wireConn, reused bool, err error) {
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
		if idle > checkAfter && idle <= t.IdleTimeout && !wc.deadline.IsZero() {
			// The last request's deadline may have passed: the check
			// below would fail on it.
			wc.c.SetDeadline(time.Time{}) //nolint:errcheck // a closed conn fails the check
			wc.deadline = time.Time{}
		}
		if idle > t.IdleTimeout || (idle > checkAfter && !alive(wc)) {
			wc.c.Close()
			continue
		}
		return wc, true, nil
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
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
	rc   io.ReadCloser // the body as read: &rb, http.NoBody or net/http's
	rb   respBody      // the body readResponse reads, when it reads it
	t    *Transport
	wc   *wireConn
	stop func() bool
	keep bool // the connection may be reused once the body is read
	eof  bool
	done bool // finished: no more reads from the connection
	once sync.Once
}

func (b *wireBody) Read(p []byte) (int, error) {
	if b.done {
		if b.eof {
			return 0, io.EOF
		}
		return 0, http.ErrBodyReadAfterClose
	}
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
		b.done = true
		defer func() { <-b.t.slots }()
		if stopped(b.stop) && b.keep && b.eof {
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
