// Package oneroute is a client for the OneRoute messaging API (WhatsApp, SMS,
// email, OneOTP). Every failure comes back as a typed error that Classify
// sorts into what to do next; the API key travels only in the apiKey header.
//
//	c, err := oneroute.New(oneroute.Options{BaseURL: "https://api.oneroute.io", APIKey: key})
//	res, err := c.SendSMS(ctx, channelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"+2348031234567"}})
//	switch oneroute.Classify(err) { ... }
//
// The sandbox in oneroute/sandbox implements the same API for tests and demos.
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
	// Timeout bounds each request; default 15s.
	Timeout time.Duration
	// MaxResponseBytes caps a response body; default 4 MiB. A larger body is
	// an error, not a crash.
	MaxResponseBytes int64
	// UserAgent; default "fanout/dev".
	UserAgent string
	// HTTPClient replaces the tuned default transport (tests).
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
}

// New returns a client. It fails on a malformed base URL.
func New(o Options) (*Client, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("oneroute: base URL %q: want http(s)://host[:port]", o.BaseURL)
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
	if hc == nil {
		hc = &http.Client{Transport: NewTransport(o.MaxConnsPerHost)}
	}
	return &Client{base: u, apiKey: o.APIKey, timeout: o.Timeout, maxBody: o.MaxResponseBytes, userAgent: o.UserAgent, http: hc}, nil
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
		ExpectContinueTimeout: time.Second,
	}
}

// BaseURL returns the API root the client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// String never shows the key.
func (c *Client) String() string { return "oneroute.Client{" + c.base.String() + "}" }

// envelope is OneRoute's response wrapper. The payload is in data on most
// endpoints and in body on the OTP ones; both are accepted everywhere.
type envelope struct {
	Data    json.RawMessage `json:"data"`
	Body    json.RawMessage `json:"body"`
	Message string          `json:"message"`
	Success *bool           `json:"success"`
	Error   json.RawMessage `json:"error"`
	Errors  []struct {
		Message string `json:"message"`
	} `json:"errors"`
	Code json.RawMessage `json:"code"`
	Meta *Meta           `json:"meta"`
}

func (e *envelope) payload() json.RawMessage {
	if len(e.Data) > 0 && string(e.Data) != "null" {
		return e.Data
	}
	if len(e.Body) > 0 && string(e.Body) != "null" {
		return e.Body
	}
	return nil
}

func (e *envelope) errorText() string {
	if e.Message != "" {
		return e.Message
	}
	if len(e.Errors) > 0 && e.Errors[0].Message != "" {
		return e.Errors[0].Message
	}
	if len(e.Error) > 0 {
		var s string
		if json.Unmarshal(e.Error, &s) == nil {
			return s
		}
		return string(e.Error)
	}
	return ""
}

// Meta is pagination metadata; OneRoute may omit it.
type Meta struct {
	Page  int `json:"page"`
	Size  int `json:"size"`
	Total int `json:"total"`
}

// do sends one request and decodes the payload into out. raw skips the
// envelope (the DLR endpoint answers with a bare event object).
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, in, out any, raw bool) (*Meta, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := *c.base
	u.Path = c.base.Path + path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("oneroute %s: encode request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("oneroute %s: %w", op, err)
	}
	req.Header.Set("apiKey", c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	}))

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &TransportError{Op: op, Written: wrote.Load(), Err: scrubURL(err)}
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		io.CopyN(io.Discard, resp.Body, 64<<10)
		resp.Body.Close()
	}()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, &TransportError{Op: op, Written: true, Err: scrubURL(err)}
	}
	if int64(len(data)) > c.maxBody {
		return nil, &APIError{Op: op, Status: resp.StatusCode, Message: fmt.Sprintf("response body over the %d-byte cap", c.maxBody), oversize: true}
	}

	var env envelope
	jsonErr := json.Unmarshal(data, &env)
	if resp.StatusCode >= 300 || (jsonErr == nil && env.Success != nil && !*env.Success) {
		ae := &APIError{Op: op, Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
		if jsonErr == nil {
			ae.Message = env.errorText()
		}
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
		return nil, ae
	}
	if jsonErr != nil {
		return nil, &APIError{Op: op, Status: resp.StatusCode, Message: "response is not JSON: " + truncate(string(data), 120), malformed: true}
	}
	if out == nil {
		return env.Meta, nil
	}
	src := json.RawMessage(data)
	if !raw {
		src = env.payload()
		if src == nil {
			return env.Meta, &APIError{Op: op, Status: resp.StatusCode, Message: "response has no data", malformed: true}
		}
	}
	if err := json.Unmarshal(src, out); err != nil {
		return env.Meta, &APIError{Op: op, Status: resp.StatusCode, Message: "unexpected response shape: " + err.Error(), malformed: true}
	}
	return env.Meta, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// scrubURL drops the URL from *url.Error so no query string is ever logged.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// Phone formats an E.164 number the way the messaging endpoints expect it:
// digits only, no '+'.
func Phone(e164 string) string {
	return strings.TrimPrefix(e164, "+")
}

func phones(list []string) []string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = Phone(p)
	}
	return out
}
