package oneroute_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/google/go-cmp/cmp"
)

// stub is an httptest server whose answers the test decides.
func stub(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, o oneroute.Options) *oneroute.Client {
	t.Helper()
	if o.APIKey == "" {
		o.APIKey = "test_client"
	}
	c, err := oneroute.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEnvelopeTolerance protects the reading of answers whose shape the
// published API leaves uncertain: either envelope, a bare array, unknown
// fields, odd metadata and every documented error shape.
func TestEnvelopeTolerance(t *testing.T) {
	t.Parallel()
	type want struct {
		Results []oneroute.Result
		Class   string
		Message string
	}
	ok := func(id string) want {
		return want{Results: []oneroute.Result{{Status: "success", Response: id}}, Class: "ok"}
	}
	tests := []struct {
		file   string
		status int
		want   want
	}{
		{"results_data.json", 200, ok("4700000000000000000001")},
		{"results_body.json", 200, ok("4744271336207951463605")},
		{"results_bare_array.json", 200, ok("4700000000000000000001")},
		{"results_unknown_fields.json", 200, ok("4700000000000000000001")},
		{"results_data_null_body_set.json", 200, ok("4700000000000000000001")},
		{"results_failed_entry.json", 200, want{Results: []oneroute.Result{{Status: "failed", Response: "Invalid number"}}, Class: "ok"}},
		{"results_wrong_count.json", 200, want{Class: "ambiguous", Message: "got 2 results for 1 messages",
			Results: []oneroute.Result{{Status: "success", Response: "1"}, {Status: "success", Response: "2"}}}},
		{"results_no_payload.json", 200, want{Class: "ambiguous", Message: "response has no data"}},
		{"results_not_json.txt", 200, want{Class: "ambiguous", Message: "response is not JSON: OK\n"}},
		{"error_message.json", 400, want{Class: "permanent", Message: `"template" is required`}},
		{"error_errors_array.json", 400, want{Class: "permanent", Message: `"recipients" must contain at least 1 items`}},
		{"error_error_string.json", 400, want{Class: "permanent", Message: "Channel is disabled"}},
		{"error_code_401.json", 200, want{Class: "unauthorized", Message: "Invalid API Key"}},
		{"error_success_false.json", 200, want{Class: "permanent", Message: "OTP already used!!"}},
		{"error_not_json.html", 502, want{Class: "ambiguous", Message: "Bad Gateway"}},
	}
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/case/"), "/")
		var status int
		fmt.Sscan(r.URL.Query().Get("status"), &status) //nolint:errcheck // a missing status leaves the default
		b, err := os.ReadFile(filepath.Join("testdata", "responses", name))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for _, tc := range tests {
			if tc.file == name {
				status = tc.status
			}
		}
		w.WriteHeader(status)
		w.Write(b) //nolint:gosec // G705: a recorded response from testdata, served to the client under test
	})
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, oneroute.Options{BaseURL: srv.URL + "/case/" + tc.file})
			res, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"+2348031234567"}})
			got := want{Results: res, Class: oneroute.Classify(err).String()}
			var ae *oneroute.APIError
			if errors.As(err, &ae) {
				got.Message = ae.Message
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// TestMissingMetaIsNil: list methods work whether or not OneRoute sends
// pagination metadata, and pass it on when it does.
func TestMissingMetaIsNil(t *testing.T) {
	t.Parallel()
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page[number]") == "2" {
			io.WriteString(w, `{"data":[{"id":"1","status":"sent","createdAt":"2021-06-03T14:37:25.664Z","updatedAt":"2021-06-03T14:37:25.664Z"}],"meta":{"page":2,"size":1,"total":7},"success":true}`)
			return
		}
		io.WriteString(w, `{"data":[],"success":true}`)
	})
	c := newClient(t, oneroute.Options{BaseURL: srv.URL})
	_, meta, err := c.FetchLogs(context.Background(), oneroute.LogFilter{CampaignID: "x"}, oneroute.Page{Size: 1})
	if err != nil || meta != nil {
		t.Fatalf("page 1: meta %v, err %v; want nil, nil", meta, err)
	}
	rows, meta, err := c.FetchLogs(context.Background(), oneroute.LogFilter{CampaignID: "x"}, oneroute.Page{Size: 1, Number: 2})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(&oneroute.Meta{Page: 2, Size: 1, Total: 7}, meta); d != "" || len(rows) != 1 {
		t.Errorf("page 2: %d rows, meta mismatch (-want +got):\n%s", len(rows), d)
	}
}

// TestRequestShape protects what goes on the wire: the headers, the key in
// apiKey only, numbers without '+' for messaging and with '+' for OneOTP.
func TestRequestShape(t *testing.T) {
	t.Parallel()
	type seen struct {
		Method, Path, Query, UserAgent, APIKey, ContentType, Accept, Body string
	}
	var mu sync.Mutex
	var got []seen
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.UserAgent(), r.Header.Get("apiKey"), r.Header.Get("Content-Type"), r.Header.Get("Accept"), string(b)})
		mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/send"):
			io.WriteString(w, `{"body":{"key":"k","data":[],"errors":[]},"success":true}`)
		case r.Method == "GET":
			io.WriteString(w, `{"data":[],"success":true}`)
		default:
			io.WriteString(w, `{"data":[{"status":"success","response":"1"}],"success":true}`)
		}
	})
	c := newClient(t, oneroute.Options{BaseURL: srv.URL + "/v1/", APIKey: "test_shape", UserAgent: "fanout/1.2.3"})
	ctx := context.Background()
	if _, err := c.SendSMS(ctx, "ch 1", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"+234 803 123 4567"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendOTP(ctx, oneroute.OTPRequest{Channels: []string{"sms"}, TemplateID: "t", PhoneNumber: "2348031234567"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.FetchSMSMessages(ctx, "ch", oneroute.DLRDelivered, oneroute.Page{Size: 10, Number: 3}); err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{"POST", "/v1/api/public/channel/ch 1/sms", "", "fanout/1.2.3", "test_shape", "application/json", "application/json",
			`{"message":"Hi","recipients":["2348031234567"]}`},
		{"POST", "/v1/api/oneotp/send", "", "fanout/1.2.3", "test_shape", "application/json", "application/json",
			`{"channels":["SMS"],"templateId":"t","phoneNumber":"+2348031234567"}`},
		{"GET", "/v1/api/public/channel/ch/sms", "page%5Bnumber%5D=3&page%5Bsize%5D=10&status=delivered", "fanout/1.2.3", "test_shape", "", "application/json", ""},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", d)
	}
}

// TestTimeoutAfterWriteIsAmbiguous: a request the server received but never
// answered may have been accepted; the per-request timeout bounds the wait.
func TestTimeoutAfterWriteIsAmbiguous(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	received := make(chan struct{}, 1)
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newClient(t, oneroute.Options{BaseURL: srv.URL, Timeout: 150 * time.Millisecond})
	start := time.Now()
	_, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s; the 150ms timeout did not bound the request", took)
	}
	<-received
	var te *oneroute.TransportError
	if !errors.As(err, &te) || !te.Written || oneroute.Classify(err) != oneroute.Ambiguous || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v (%T); want an ambiguous TransportError wrapping DeadlineExceeded", err, err)
	}
}

// TestContextCancellation: the caller's context ends the request, before
// or after it was written, and the error says which.
func TestContextCancellation(t *testing.T) {
	t.Parallel()
	received := make(chan struct{}, 1)
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received <- struct{}{}
		<-r.Context().Done()
	})
	c := newClient(t, oneroute.Options{BaseURL: srv.URL})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.FetchChannels(ctx, oneroute.MediumSMS)
	if !errors.Is(err, context.Canceled) || oneroute.Classify(err) != oneroute.Temporary {
		t.Errorf("cancelled before: err = %v, class %s; want context.Canceled, temporary", err, oneroute.Classify(err))
	}

	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		<-received
		cancel()
	}()
	_, err = c.SendSMS(ctx, "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	if !errors.Is(err, context.Canceled) || oneroute.Classify(err) != oneroute.Ambiguous {
		t.Errorf("cancelled after the write: err = %v, class %s; want context.Canceled, ambiguous", err, oneroute.Classify(err))
	}
}

// TestRefusedIsTemporary: nothing listening means nothing was sent.
func TestRefusedIsTemporary(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, oneroute.Options{BaseURL: "http://" + addr})
	_, err = c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	var te *oneroute.TransportError
	if !errors.As(err, &te) || te.Written || oneroute.Classify(err) != oneroute.Temporary {
		t.Fatalf("err = %v; want a temporary TransportError, not written", err)
	}
	if strings.Contains(err.Error(), "http://") {
		t.Errorf("error shows the URL: %v", err)
	}
}

// TestBodyCap: an answer over the cap is an error, read no further than the
// cap, and a 2xx one is ambiguous (the send may have been accepted).
func TestBodyCap(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"data":[{"status":"success","response":"`)
		chunk := []byte(strings.Repeat("x", 32<<10))
		for i := 0; i < 1<<10; i++ { // up to 32 MiB unless the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
			served.Add(int64(len(chunk)))
		}
	})
	c := newClient(t, oneroute.Options{BaseURL: srv.URL, MaxResponseBytes: 1 << 10})
	_, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	var ae *oneroute.APIError
	if !errors.As(err, &ae) || oneroute.Classify(err) != oneroute.Ambiguous || !strings.Contains(ae.Message, "1024-byte cap") {
		t.Fatalf("err = %v; want an ambiguous APIError about the cap", err)
	}
	if n := served.Load(); n > 16<<20 {
		t.Errorf("the server wrote %d bytes; the client read far past its cap", n)
	}
}

// TestConnectionsAreReused: answers are read to the end (or drained), so
// sequential calls share one keep-alive connection.
func TestConnectionsAreReused(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/public/channel/bad/sms" {
			w.WriteHeader(400)
			io.WriteString(w, `{"data":null,"message":"\"message\" is required","success":false}`+strings.Repeat(" ", 8<<10))
			return
		}
		io.WriteString(w, `{"data":[{"status":"success","response":"1"}],"success":true}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, oneroute.Options{BaseURL: srv.URL, MaxResponseBytes: 4 << 10})
	for i := range 6 {
		ch := "ok"
		if i%2 == 1 {
			ch = "bad"
		}
		// Half go to a bad channel on purpose: only the good ones must succeed.
		if _, err := c.SendSMS(context.Background(), ch, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}}); err != nil && ch == "ok" {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 6 sequential calls; want 1", n)
	}
}

// TestRedirectsAreNotFollowed: following one would replay a POST and send
// the apiKey header to another host.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var leaked atomic.Bool
	other := stub(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("apiKey") != "" {
			leaked.Store(true)
		}
	})
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound) //nolint:gosec // G710: the test server redirects to another test server
	})
	c := newClient(t, oneroute.Options{BaseURL: srv.URL})
	_, err := c.FetchChannels(context.Background(), oneroute.MediumSMS)
	if oneroute.Classify(err) != oneroute.Temporary || leaked.Load() {
		t.Errorf("err = %v, class %s, key sent to the other host: %v; want temporary, false", err, oneroute.Classify(err), leaked.Load())
	}
}

// TestKeyNeverLeaks sends a canary key down every path (success, 4xx, 5xx,
// a server that echoes it, a timeout, a refusal, a bad base URL) and checks
// that it appears in no error, no client rendering, and nowhere in the
// request but the apiKey header.
func TestKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	const canary = "test_CANARY-7f3a9c1e"
	var mu sync.Mutex
	var misplaced []string
	release := make(chan struct{})
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		for k, v := range r.Header {
			if k != "Apikey" && strings.Contains(strings.Join(v, ","), canary) {
				misplaced = append(misplaced, "header "+k)
			}
		}
		if strings.Contains(r.URL.String(), canary) || strings.Contains(string(b), canary) {
			misplaced = append(misplaced, "URL or body")
		}
		mu.Unlock()
		switch r.URL.Path {
		case "/api/public/channels/sms":
			io.WriteString(w, `{"data":[],"success":true}`)
		case "/api/public/channels/email":
			w.WriteHeader(400)
			io.WriteString(w, `{"data":null,"message":"bad key `+canary+`","success":false}`)
		case "/api/public/channels/whatsapp":
			w.WriteHeader(500)
			io.WriteString(w, `<pre>apiKey: `+canary+`</pre>`)
		case "/api/public/channel/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			io.WriteString(w, `not json `+canary)
		}
	})
	defer close(release)
	c := newClient(t, oneroute.Options{BaseURL: srv.URL, APIKey: canary, Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	var errs []error
	_, err := c.FetchChannels(ctx, oneroute.MediumSMS)
	errs = append(errs, err)
	_, err = c.FetchChannels(ctx, oneroute.MediumEmail)
	errs = append(errs, err)
	_, err = c.FetchChannels(ctx, oneroute.MediumWhatsApp)
	errs = append(errs, err)
	_, err = c.FetchChannel(ctx, "slow")
	errs = append(errs, err)
	_, err = c.FetchTemplates(ctx, "echo")
	errs = append(errs, err)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + ln.Addr().String()
	ln.Close()
	rc := newClient(t, oneroute.Options{BaseURL: refused, APIKey: canary})
	_, err = rc.SendSMS(ctx, "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	errs = append(errs, err)
	_, err = oneroute.New(oneroute.Options{APIKey: canary + "\n"})
	errs = append(errs, err)
	_, err = oneroute.New(oneroute.Options{BaseURL: "http://user:" + canary + "@[::1", APIKey: canary})
	errs = append(errs, err)

	for i, err := range errs {
		if i > 0 && err == nil {
			t.Errorf("call %d: no error", i)
		}
		if err != nil && strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), canary) {
			t.Errorf("call %d: the error shows the key: %v", i, err)
		}
	}
	if s := fmt.Sprintf("%v %+v %#v %s", c, c, c, c); strings.Contains(s, canary) {
		t.Errorf("the client renders its key: %s", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(misplaced) > 0 {
		t.Errorf("the key travelled outside the apiKey header: %v", misplaced)
	}
}

// TestInvalidArguments: a request that cannot be formed is refused before
// anything is sent, as a permanent error.
func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	c := newClient(t, oneroute.Options{BaseURL: srv.URL})
	ctx := context.Background()
	_, err1 := c.SendSMS(ctx, " ", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"1"}})
	_, err2 := c.GetSMSDLR(ctx, "")
	_, err3 := c.FetchChannels(ctx, "fax")
	for i, err := range []error{err1, err2, err3} {
		if !errors.Is(err, oneroute.ErrInvalidRequest) || oneroute.Classify(err) != oneroute.Permanent {
			t.Errorf("call %d: err = %v; want ErrInvalidRequest, permanent", i, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
	if _, err := oneroute.New(oneroute.Options{BaseURL: "ftp://example.com"}); err == nil {
		t.Error("New accepted an ftp base URL")
	}
}

// TestPhoneFormats protects the number formats of each endpoint family.
func TestPhoneFormats(t *testing.T) {
	t.Parallel()
	in := []string{"+2348031234567", "2348031234567", "+234 803-123-4567", "(234) 803.123.4567", " +2348031234567 ", "", "+234803123456a"}
	var got [][2]string
	for _, p := range in {
		got = append(got, [2]string{oneroute.Phone(p), oneroute.OTPPhone(p)})
	}
	want := [][2]string{
		{"2348031234567", "+2348031234567"}, {"2348031234567", "+2348031234567"}, {"2348031234567", "+2348031234567"},
		{"2348031234567", "+2348031234567"}, {"2348031234567", "+2348031234567"}, {"", ""}, {"234803123456a", "+234803123456a"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("mismatch (-want +got):\n%s", d)
	}
}

// TestRetryAfterHeader: a 429's Retry-After, in seconds or as an HTTP date,
// reaches the caller through RetryAfter.
func TestRetryAfterHeader(t *testing.T) {
	t.Parallel()
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	srv := stub(t, func(w http.ResponseWriter, r *http.Request) {
		// The case's header value is the first path segment.
		v, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/api/")
		if v != "none" {
			w.Header().Set("Retry-After", v)
		}
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"data":null,"message":"Too many requests","success":false}`)
	})
	for _, tc := range []struct {
		header   string
		min, max time.Duration
	}{
		{"7", 7 * time.Second, 7 * time.Second},
		{date, 80 * time.Second, 91 * time.Second},
		{"none", 0, 0},
		{"soon", 0, 0},
	} {
		c := newClient(t, oneroute.Options{BaseURL: srv.URL + "/" + url.PathEscape(tc.header)})
		_, err := c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
		if got := oneroute.RetryAfter(err); oneroute.Classify(err) != oneroute.Throttled || got < tc.min || got > tc.max {
			t.Errorf("Retry-After %q: class %s, RetryAfter %s; want throttled, %s to %s", tc.header, oneroute.Classify(err), got, tc.min, tc.max)
		}
	}
}
