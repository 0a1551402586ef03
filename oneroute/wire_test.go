package oneroute

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// answerSeeds are answers the transport meets, well-formed and not.
var answerSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\n X-A: folded\r\nPragma: no-cache\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 abc OK\r\n\r\n",
	"HTTP/1.1  200 OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n",
	"HTTP/1.1 200",
	"",
}

// FuzzReadResponse: readResponse gives the same answer as
// http.ReadResponse for any bytes, split into reads anywhere: the same
// status, headers, framing, body bytes, trailer and errors (as error or
// not), and it leaves the same bytes unread for the next answer.
func FuzzReadResponse(f *testing.F) {
	for _, s := range answerSeeds {
		f.Add([]byte(s), false, uint8(0))
		f.Add([]byte(s), true, uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool, split uint8) {
		req := &http.Request{Method: "POST"}
		if head {
			req.Method = "HEAD"
		}
		reader := func() *bufio.Reader {
			var r io.Reader = bytes.NewReader(data)
			if split > 0 {
				r = &chopReader{r: r, n: int(split)}
			}
			return bufio.NewReaderSize(r, 256)
		}
		wantBR, gotBR := reader(), reader()
		want, werr := http.ReadResponse(wantBR, req)
		got, gerr := readResponse(gotBR, req, nil)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("errors differ: net/http %v, readResponse %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		compareResponses(t, want, got)
		if diff := cmp.Diff(rest(wantBR), rest(gotBR)); diff != "" {
			t.Errorf("unread bytes differ (-net/http +readResponse):\n%s", diff)
		}
	})
}

// chopReader returns at most n bytes a read.
type chopReader struct {
	r io.Reader
	n int
}

func (c *chopReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

func rest(br *bufio.Reader) string {
	b, _ := io.ReadAll(br)
	return string(b)
}

// compareResponses reads both bodies and compares what a caller sees.
func compareResponses(t *testing.T, want, got *http.Response) {
	t.Helper()
	type view struct {
		Status, Proto            string
		StatusCode, Major, Minor int
		Header, Trailer          http.Header
		ContentLength            int64
		Close                    bool
		TransferEncoding         []string
		NoBody                   bool
		Body                     string
		BodyErr, ReadAfterEO     bool
	}
	see := func(r *http.Response) view {
		v := view{Status: r.Status, Proto: r.Proto, StatusCode: r.StatusCode, Major: r.ProtoMajor, Minor: r.ProtoMinor,
			Header: r.Header, ContentLength: r.ContentLength, Close: r.Close, TransferEncoding: r.TransferEncoding,
			NoBody: r.Body == http.NoBody}
		b, err := io.ReadAll(r.Body)
		v.Body, v.BodyErr = string(b), err != nil
		if err == nil {
			n, err := r.Body.Read(make([]byte, 1))
			v.ReadAfterEO = n != 0 || err != io.EOF
		}
		// Not compared: what Close returns. net/http's body drains itself
		// on Close; the transport's closes the connection instead.
		r.Body.Close()
		v.Trailer = r.Trailer
		return v
	}
	if diff := cmp.Diff(see(want), see(got)); diff != "" {
		t.Errorf("answers differ (-net/http +readResponse):\n%s", diff)
	}
}

// TestReadResponseLeanPath: the answers an API gives are read by
// readResponse itself (not handed to http.ReadResponse), with net/http's
// results; the others get net/http's.
func TestReadResponseLeanPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, answer, method string
		lean                 bool
	}{
		{"content length", answerSeeds[0], "POST", true},
		{"close", answerSeeds[1], "POST", true},
		{"chunked", answerSeeds[2], "POST", true},
		{"chunked with trailer and a length to drop", answerSeeds[3], "POST", true},
		{"HTTP/1.0 to the end", answerSeeds[5], "POST", true},
		{"HTTP/1.0 keep-alive", answerSeeds[6], "POST", true},
		{"204 with a length", answerSeeds[7], "POST", true},
		{"304", answerSeeds[8], "GET", true},
		{"HEAD with a length", answerSeeds[0], "HEAD", true},
		{"HEAD chunked", answerSeeds[2], "HEAD", true},
		{"lower-case names", answerSeeds[10], "POST", true},
		{"cut short", answerSeeds[11], "POST", true},
		{"unknown transfer encoding", answerSeeds[4], "POST", false},
		{"duplicate length", answerSeeds[12], "POST", false},
		{"folded line and pragma", answerSeeds[15], "POST", false},
		{"bare LF", answerSeeds[16], "POST", false},
		{"bad status", answerSeeds[17], "POST", false},
		{"bad header line", answerSeeds[21], "POST", false},
		{"control character", answerSeeds[22], "POST", false},
		{"head cut short", answerSeeds[23], "POST", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := &http.Request{Method: tc.method}
			data := []byte(tc.answer)
			n := bufferHead(bufio.NewReader(bytes.NewReader(data)))
			if lean := n > 0 && func() bool { resp, _ := parseHead(data[:n], req); return resp != nil }(); lean != tc.lean {
				t.Errorf("read by readResponse itself: %v; want %v", lean, tc.lean)
			}
			want, werr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
			got, gerr := readResponse(bufio.NewReader(bytes.NewReader(data)), req, nil)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("errors differ: net/http %v, readResponse %v", werr, gerr)
			}
			if werr == nil {
				compareResponses(t, want, got)
			}
		})
	}
}

// TestReadAnswerSkipsInterim: 1xx answers before the final one are
// skipped (at most five), 101 is an error.
func TestReadAnswerSkipsInterim(t *testing.T) {
	t.Parallel()
	final := "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		name, answer string
		status       int
	}{
		{"100 then final", "HTTP/1.1 100 Continue\r\n\r\n" + final, 201},
		{"103 with headers, 102, final", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + final, 201},
		{"five interim", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 5) + final, 201},
		{"six interim", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6) + final, 0},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", 0},
		{"interim then EOF", "HTTP/1.1 100 Continue\r\n\r\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := readAnswer(bufio.NewReader(strings.NewReader(tc.answer)), &http.Request{Method: "POST"}, nil)
			if tc.status == 0 {
				if err == nil {
					t.Fatalf("status %d; want an error", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || string(body) != "ok" || err != nil {
				t.Errorf("status %d, body %q, err %v; want %d, \"ok\"", resp.StatusCode, body, err, tc.status)
			}
		})
	}
}

// FuzzWriteRequest: writeRequest writes the bytes req.Write writes, or
// leaves the request to it, and tells the WroteRequest hook the same.
func FuzzWriteRequest(f *testing.F) {
	f.Add("POST", "/api/public/channel/9b2f/sms", "", "test_key", "fanout/dev", []byte(`{"message":"hi"}`), uint8(0))
	f.Add("GET", "/api/public/dlr/a%2Fb/sms", "page%5Bsize%5D=1000&status=delivered", "k", "", []byte(nil), uint8(1))
	f.Add("DELETE", "", "", " spaced ", "ua\r\nx", []byte(nil), uint8(2))
	f.Add("HEAD", "/x y", "q", "k", "ua", []byte("abc"), uint8(3))
	f.Add("", "/", "", "", " ", []byte("abcdef"), uint8(4))
	f.Fuzz(func(t *testing.T, method, path, query, key, ua string, body []byte, mode uint8) {
		build := func() (*http.Request, *string) {
			u := &url.URL{Scheme: "http", Host: "api.test:8080", Path: path, RawQuery: query, ForceQuery: mode&8 != 0}
			if p, err := url.PathUnescape(path); err == nil && p != path {
				u.Path, u.RawPath = p, path
			}
			req := &http.Request{Method: method, URL: u, Header: http.Header{"Apikey": {key}, "Accept": {"application/json"}}}
			if mode&1 != 0 {
				req.Header["User-Agent"] = []string{ua}
			}
			if mode&16 != 0 {
				req.Header["X-Two"] = []string{"a", key}
				req.Header["bad name"] = []string{"x"}
			}
			if len(body) > 0 || mode&2 != 0 {
				req.Body = &byteBody{}
				req.Body.(*byteBody).Reset(body)
				req.ContentLength = int64(len(body))
				switch mode & 0x60 {
				case 0x20:
					req.ContentLength++ // a body shorter than its length
				case 0x40:
					req.ContentLength-- // longer
				}
			}
			if mode&4 != 0 {
				req.Host = "other.test"
			}
			var told string
			ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
				told += "wrote:" + errString(i.Err) + ";"
			}})
			return req.WithContext(ctx), &told
		}
		req, wantTold := build()
		var want bytes.Buffer
		werr := req.Write(&want)
		req, gotTold := build()
		var got bytes.Buffer
		bw := bufio.NewWriterSize(&got, 64)
		host := ""
		if req.Host == "" {
			host = hostLine(req.URL.Host)
		}
		handled, gerr := writeRequest(bw, req, host, httptrace.ContextClientTrace(req.Context()))
		if !handled {
			if got.Len() > 0 || bw.Buffered() > 0 || *gotTold != "" {
				t.Fatalf("left to req.Write but wrote %q, told %q", got.String(), *gotTold)
			}
			return
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("errors differ: req.Write %v, writeRequest %v", werr, gerr)
		}
		if werr == nil {
			if diff := cmp.Diff(want.String(), got.String()); diff != "" {
				t.Errorf("bytes differ (-req.Write +writeRequest):\n%s", diff)
			}
		}
		if (*wantTold == "wrote:;") != (*gotTold == "wrote:;") || strings.Count(*gotTold, "wrote:") != 1 {
			t.Errorf("hook told %q; req.Write told %q", *gotTold, *wantTold)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestWriteRequestLeanPath: the client's requests are written by
// writeRequest itself.
func TestWriteRequestLeanPath(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("http://127.0.0.1:8080/api/public/channel/ch/sms")
	b := &byteBody{}
	b.Reset([]byte(`{"message":"hi"}`))
	req := &http.Request{Method: "POST", URL: u, Body: b, ContentLength: 16,
		Header: http.Header{"Apikey": {"k"}, "Accept": {"application/json"}, "User-Agent": {"fanout/dev"}, "Content-Type": {"application/json"}}}
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	handled, err := writeRequest(bw, req, hostLine(u.Host), nil)
	if ferr := bw.Flush(); ferr != nil {
		t.Fatal(ferr)
	}
	want := "POST /api/public/channel/ch/sms HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: fanout/dev\r\nContent-Length: 16\r\n" +
		"Accept: application/json\r\nApikey: k\r\nContent-Type: application/json\r\n\r\n{\"message\":\"hi\"}"
	if !handled || err != nil || out.String() != want {
		t.Fatalf("handled %v, err %v, wrote %q; want %q", handled, err, out.String(), want)
	}
}
