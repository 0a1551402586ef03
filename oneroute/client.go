package oneroute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is OneRoute's production API.
const DefaultBaseURL = "https://api.oneroute.io"

// Options configures a Client.
type Options struct {
	// BaseURL is the API root; default DefaultBaseURL.
	BaseURL string
	// APIKey is sent in the apiKey header and nowhere else.
	APIKey string
	// Timeout bounds each request, from dial to the last byte of the
	// response; default 15s.
	Timeout time.Duration
	// MaxResponseBytes caps a response body; default 4 MiB. A larger body is
	// an error (see Classify), not a crash.
	MaxResponseBytes int64
	// UserAgent is sent with every request; default "fanout/dev".
	UserAgent string
	// HTTPClient replaces the default client, whose transport is Transport
	// (or net/http's, from NewTransport, when the environment names a proxy
	// for BaseURL). Its
	// redirect policy is the caller's; the default client follows none, so
	// the apiKey header never reaches another host.
	HTTPClient *http.Client
	// MaxConnsPerHost bounds connections to the API; default 512.
	MaxConnsPerHost int
}

// Client calls the OneRoute API. It is safe for concurrent use; share one.
type Client struct {
	base      *url.URL
	apiKey    string
	timeout   time.Duration
	maxBody   int64
	userAgent string
	http      *http.Client
	// wire is http's transport when New built it: requests go to it
	// directly, without http.Client's redirect bookkeeping (the default
	// client follows none) and its copies of every request's header and URL.
	wire *Transport
}

// New returns a client. It fails on a malformed base URL or an API key that
// cannot travel in an HTTP header (the error does not show the key).
func New(o Options) (*Client, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("oneroute: base URL %q: want http(s)://host[:port][/path]", redactURL(o.BaseURL))
	}
	for i := 0; i < len(o.APIKey); i++ {
		if c := o.APIKey[i]; c < 0x21 || c > 0x7e {
			return nil, fmt.Errorf("oneroute: the API key has a character at position %d that is not allowed in a header", i)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 4 << 20
	}
	if o.UserAgent == "" {
		o.UserAgent = "fanout/dev"
	}
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = 512
	}
	hc := o.HTTPClient
	var wire *Transport
	if hc == nil {
		var rt http.RoundTripper
		if proxy, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err == nil && proxy == nil {
			if wire, err = NewWireTransport(u.Scheme, u.Host, o.MaxConnsPerHost); err != nil {
				return nil, err
			}
			rt = wire
		} else {
			// A proxy is configured: net/http knows how to use one.
			rt = NewTransport(o.MaxConnsPerHost)
		}
		hc = &http.Client{
			Transport: rt,
			// OneRoute does not redirect API calls; following one would
			// replay a POST and carry the apiKey header to another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Client{base: u, apiKey: o.APIKey, timeout: o.Timeout, maxBody: o.MaxResponseBytes, userAgent: o.UserAgent, http: hc, wire: wire}, nil
}

// redactURL hides credentials in a URL that failed to parse or had userinfo.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return "…" + s[i:]
	}
	return s
}

// NewTransport returns an HTTP transport tuned for thousands of requests a
// second to one host: large keep-alive pools and bounded dial and TLS times.
func NewTransport(maxConnsPerHost int) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          maxConnsPerHost,
		MaxIdleConnsPerHost:   maxConnsPerHost,
		MaxConnsPerHost:       maxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 0, // the per-request context bounds it
		ExpectContinueTimeout: time.Second,
	}
}

// BaseURL returns the API root the client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// String describes the client without its key.
func (c *Client) String() string { return "oneroute.Client{" + c.base.String() + "}" }

// GoString describes the client without its key, for %#v.
func (c *Client) GoString() string { return c.String() }

// Meta is pagination metadata; OneRoute may omit it, and then the list
// methods return a nil *Meta.
type Meta struct {
	// Page is the 1-based page number.
	Page int `json:"page"`
	// Size is the page size asked for.
	Size int `json:"size"`
	// Total is the number of items across all pages.
	Total int `json:"total"`
}

// envelope is OneRoute's response wrapper. The payload is in data on most
// endpoints and in body on the OTP ones; both are accepted everywhere. Each
// field is decoded on its own so that one odd field (a string meta, a
// numeric message) does not make the whole answer unreadable.
type envelope struct {
	payload   json.RawMessage // data, else body, else nil
	message   string
	success   *bool
	code      int
	meta      *Meta
	errorText string // from errors[0].message or error, when message is empty
}

// parseEnvelope reads an answer. A top-level array is taken as the payload
// itself. It fails only when data is not JSON at all.
func parseEnvelope(data []byte) (envelope, error) {
	var env envelope
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if !json.Valid(trimmed) {
			return env, errors.New("invalid JSON array")
		}
		env.payload = trimmed
		return env, nil
	}
	// One pass into raw fields; a struct costs a fraction of a map here.
	var fields struct {
		Data    json.RawMessage `json:"data"`
		Body    json.RawMessage `json:"body"`
		Message json.RawMessage `json:"message"`
		Success json.RawMessage `json:"success"`
		Code    json.RawMessage `json:"code"`
		Meta    json.RawMessage `json:"meta"`
		Errors  json.RawMessage `json:"errors"`
		Error   json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &fields); err != nil {
		return env, err
	}
	present := func(v json.RawMessage) json.RawMessage {
		if len(v) == 0 || string(v) == "null" {
			return nil
		}
		return v
	}
	if v := present(fields.Data); v != nil {
		env.payload = v
	} else if v := present(fields.Body); v != nil {
		env.payload = v
	}
	if v := present(fields.Message); v != nil {
		if json.Unmarshal(v, &env.message) != nil {
			env.message = truncate(string(v), 200)
		}
	}
	if v := present(fields.Success); v != nil {
		var b bool
		if json.Unmarshal(v, &b) == nil {
			env.success = &b
		} else if s := strings.Trim(string(v), `"`); s == "true" || s == "false" {
			b = s == "true"
			env.success = &b
		}
	}
	if v := present(fields.Code); v != nil {
		var n json.Number
		if json.Unmarshal(v, &n) == nil {
			if i, err := strconv.Atoi(n.String()); err == nil {
				env.code = i
			}
		} else {
			var s string
			if json.Unmarshal(v, &s) == nil {
				env.code, _ = strconv.Atoi(s)
			}
		}
	}
	if v := present(fields.Meta); v != nil {
		var m Meta
		if json.Unmarshal(v, &m) == nil {
			env.meta = &m
		}
	}
	if v := present(fields.Errors); v != nil {
		var list []struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(v, &list) == nil && len(list) > 0 {
			env.errorText = list[0].Message
		}
	}
	if v := present(fields.Error); v != nil && env.errorText == "" {
		var s string
		if json.Unmarshal(v, &s) == nil {
			env.errorText = s
		} else {
			var obj struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(v, &obj) == nil && obj.Message != "" {
				env.errorText = obj.Message
			} else {
				env.errorText = truncate(string(v), 200)
			}
		}
	}
	return env, nil
}

// failed reports an answer that refuses the request whatever its HTTP status.
func (e *envelope) failed() bool { return e.success != nil && !*e.success }

// text is the error text, read in the order the OneRoute widget reads it.
func (e *envelope) text() string {
	if e.message != "" {
		return e.message
	}
	return e.errorText
}

// call is one API request.
type call struct {
	op     string     // names the client method in errors, e.g. "send sms"
	method string     // HTTP method
	path   string     // below the base URL, already escaped
	query  url.Values // optional
	in     any        // JSON request body, or nil
	body   []byte     // the request body already encoded as JSON, instead of in
	out    any        // decoded from the payload, or nil
	raw    bool       // decode out from the whole answer (no envelope)
}

// do sends one request and decodes the payload into out. raw skips the
// envelope (the DLR endpoint answers with a bare event object). It is the
// original entry point and stays for callers in this package.
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, in, out any, raw bool) (*Meta, error) {
	return c.send(ctx, call{op: op, method: method, path: path, query: query, in: in, out: out, raw: raw})
}

// send performs a call: one request, bounded by the client timeout, whose
// every failure is an *APIError or a *TransportError.
func (c *Client) send(ctx context.Context, k call) (*Meta, error) {
	// The client's own transport takes the deadline as it is and sets it on
	// the connection; a context with a timer would cost more than the call's
	// own parsing.
	deadline := time.Now().Add(c.timeout)
	if c.wire == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}

	// k.path is already escaped (pathID); keep it as sent.
	u := *c.base
	u.RawPath = c.base.EscapedPath() + k.path
	u.Path = u.RawPath
	if strings.IndexByte(u.RawPath, '%') >= 0 {
		p, err := url.PathUnescape(u.RawPath)
		if err != nil {
			return nil, fmt.Errorf("oneroute %s: %w: bad path", k.op, ErrInvalidRequest)
		}
		u.Path = p
	} else {
		u.RawPath = "" // the path needs no escapes: as url.Parse leaves it
	}
	if k.query != nil {
		u.RawQuery = k.query.Encode()
	}
	var body []byte
	switch {
	case k.body != nil:
		body = k.body
	case k.in != nil:
		b, err := json.Marshal(k.in)
		if err != nil {
			return nil, fmt.Errorf("oneroute %s: encode request: %w", k.op, err)
		}
		body = b
	}
	// The client's own transport tells whether the request was written
	// through wrote; another one through the httptrace hook.
	var wrote bool
	var traced *atomic.Bool
	if c.wire == nil {
		traced = new(atomic.Bool)
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			// Written means the whole request left: only then may OneRoute
			// have acted on it.
			WroteRequest: func(info httptrace.WroteRequestInfo) {
				if info.Err == nil {
					traced.Store(true)
				}
			},
		})
	}
	// The URL is built above; parsing it again from a string would only
	// cost time.
	req, err := http.NewRequestWithContext(ctx, k.method, "/", nil)
	if err != nil {
		return nil, fmt.Errorf("oneroute %s: %w", k.op, err)
	}
	*req.URL, req.Host = u, strings.TrimSuffix(u.Host, ":")
	// Canonical names set directly, one array for the values: Header.Set
	// would canonicalise "apiKey" into a new string and allocate a slice
	// per field on every call.
	vals := make([]string, 4)
	vals[0], vals[1], vals[2], vals[3] = c.apiKey, "application/json", c.userAgent, "application/json"
	req.Header["Apikey"] = vals[0:1:1]
	req.Header["Accept"] = vals[1:2:2]
	req.Header["User-Agent"] = vals[2:3:3]
	if body != nil {
		req.Header["Content-Type"] = vals[3:4:4]
	}
	if len(body) > 0 {
		b := &byteBody{}
		b.Reset(body)
		req.Body, req.ContentLength = b, int64(len(body))
		if c.wire == nil {
			req.GetBody = func() (io.ReadCloser, error) {
				b := &byteBody{}
				b.Reset(body)
				return b, nil
			}
		}
	}

	resp, err := c.do1(req, deadline, &wrote)
	if err != nil {
		return nil, &TransportError{Op: k.op, Written: wrote || (traced != nil && traced.Load()), Err: c.scrub(err)}
	}
	data, err := readAll(resp.Body, resp.ContentLength, c.maxBody)
	if err != nil || int64(len(data)) > c.maxBody {
		// Not read to its end: drain a little so the connection can be
		// reused.
		io.CopyN(io.Discard, resp.Body, 64<<10)
	}
	resp.Body.Close()
	if err != nil {
		return nil, &TransportError{Op: k.op, Written: true, Err: c.scrub(err)}
	}
	if int64(len(data)) > c.maxBody {
		return nil, &APIError{Op: k.op, Status: resp.StatusCode, Message: fmt.Sprintf("response body over the %d-byte cap", c.maxBody), oversize: true}
	}

	if !k.raw && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		switch out := k.out.(type) {
		case *[]Result:
			// The usual answer of a send, read without reflection.
			if rs, ok := fastResults(data); ok {
				*out = rs
				return nil, nil
			}
		case *[]SMSMessage:
			// The usual page of the message list, read without
			// reflection.
			if ms, meta, ok := fastSMSList(data); ok {
				*out = ms
				return meta, nil
			}
		}
	}
	env, jsonErr := parseEnvelope(data)
	if resp.StatusCode >= 300 || resp.StatusCode < 200 || (jsonErr == nil && env.failed()) {
		ae := &APIError{Op: k.op, Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		if jsonErr == nil {
			ae.Message = c.redact(env.text())
			ae.Code = env.code
		}
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
		return nil, ae
	}
	if jsonErr != nil {
		return nil, &APIError{Op: k.op, Status: resp.StatusCode, Message: "response is not JSON: " + c.redact(truncate(string(data), 120)), malformed: true}
	}
	if k.out == nil {
		return env.meta, nil
	}
	src := json.RawMessage(data)
	if !k.raw {
		src = env.payload
		if src == nil {
			return env.meta, &APIError{Op: k.op, Status: resp.StatusCode, Message: "response has no data", malformed: true}
		}
	}
	if err := json.Unmarshal(src, k.out); err != nil {
		return env.meta, &APIError{Op: k.op, Status: resp.StatusCode, Message: "unexpected response shape: " + err.Error(), malformed: true}
	}
	return env.meta, nil
}

// do1 makes one request: through the client's own transport when New built
// it, bounded by deadline (its errors wrapped in *url.Error, as http.Client
// wraps them; *wrote set when the request was written), or http.Client.Do
// otherwise (whose context carries the deadline).
func (c *Client) do1(req *http.Request, deadline time.Time, wrote *bool) (*http.Response, error) {
	if c.wire == nil {
		return c.http.Do(req)
	}
	resp, err := c.wire.send(req, deadline, wrote)
	if err != nil {
		m := req.Method
		return nil, &url.Error{Op: m[:1] + strings.ToLower(m[1:]), URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

// readAll reads a body as io.ReadAll(io.LimitReader(r, limit+1)) does,
// into a buffer sized from the body's length when it is known (size >= 0).
func readAll(r io.Reader, size, limit int64) ([]byte, error) {
	if size < 0 || size > limit {
		size = 511 // io.ReadAll's first buffer
	}
	b := make([]byte, 0, size+1)
	for {
		n, err := r.Read(b[len(b):min(int64(cap(b)), limit+1)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if int64(len(b)) > limit {
			return b, nil
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// scrub drops the URL from *url.Error (it prints the query string) and any
// echo of the key from a transport error.
func (c *Client) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	if c.apiKey != "" && strings.Contains(err.Error(), c.apiKey) {
		return &redactedError{msg: c.redact(err.Error()), err: err}
	}
	return err
}

// redact removes the key from text a server or a library produced.
func (c *Client) redact(s string) string {
	if c.apiKey == "" {
		return s
	}
	return strings.ReplaceAll(s, c.apiKey, "[REDACTED]")
}

// redactedError keeps an error's chain (for errors.Is and As) but prints a
// message with the key removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3). It returns 0 when absent, unreadable or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Page selects one page of a list (1-based). Zero values mean the first page
// of 100.
type Page struct {
	// Size is page[size]; default 100.
	Size int
	// Number is page[number], 1-based; default 1.
	Number int
}

func (p Page) values(q url.Values) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if p.Size <= 0 {
		p.Size = 100
	}
	if p.Number <= 0 {
		p.Number = 1
	}
	q.Set("page[size]", strconv.Itoa(p.Size))
	q.Set("page[number]", strconv.Itoa(p.Number))
	return q
}

// pathID escapes an id for a path segment and refuses an empty one, which
// would silently address another endpoint.
func pathID(op, what, id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", fmt.Errorf("oneroute %s: %w: empty %s", op, ErrInvalidRequest, what)
	}
	return url.PathEscape(id), nil
}
