package oneroute

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// writeRequest writes req to bw as req.Write does, byte for byte, for the
// requests an API client makes: a Host the transport knows (hostLine is
// "Host: ...\r\n" as req.Write would write it), no body or one of known
// length, no Close, TransferEncoding or Trailer, at most maxWriteHeaders
// header fields with values on one line, and no trace hooks for single
// header fields. It returns false, having written nothing, for any other
// request; the caller then uses req.Write. Like req.Write it closes the
// body and calls trace.WroteRequest once the request is in bw (not yet
// flushed). FuzzWriteRequest checks it against req.Write.
func writeRequest(bw *bufio.Writer, req *http.Request, hostLine string, trace *httptrace.ClientTrace) (handled bool, err error) {
	u := req.URL
	if hostLine == "" || u == nil || u.Opaque != "" || req.Method == "CONNECT" || req.Close || len(req.TransferEncoding) > 0 || req.Trailer != nil ||
		(trace != nil && (trace.WroteHeaderField != nil || trace.WroteHeaders != nil || trace.Wait100Continue != nil)) {
		return false, nil
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	if (hasBody && req.ContentLength <= 0) || (!hasBody && req.ContentLength != 0) {
		return false, nil // unknown length (chunked), or an error for req.Write to report
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if ctl(path) || ctl(u.RawQuery) {
		return false, nil
	}
	ua := "Go-http-client/1.1"
	if v, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if strings.ContainsAny(ua, "\r\n") {
		return false, nil
	}
	// The other fields, sorted by name as Header.Write sorts them.
	var keys [maxWriteHeaders]string
	nk := 0
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if nk == len(keys) || !validToken(k) {
			return false, nil
		}
		for _, v := range vv {
			if strings.ContainsAny(v, "\r\n") {
				return false, nil
			}
		}
		keys[nk] = k
		nk++
		for i := nk - 1; i > 0 && keys[i] < keys[i-1]; i-- {
			keys[i], keys[i-1] = keys[i-1], keys[i]
		}
	}

	method := req.Method
	if method == "" {
		method = "GET"
	}
	defer func() {
		if trace != nil && trace.WroteRequest != nil {
			trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
		}
	}()
	// The head is appended in bw's free space and written once.
	b := bw.AvailableBuffer()
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	if u.ForceQuery || u.RawQuery != "" {
		b = append(b, '?')
		b = append(b, u.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\n"...)
	b = append(b, hostLine...)
	if ua != "" {
		b = append(b, "User-Agent: "...)
		b = append(b, textproto.TrimString(ua)...)
		b = append(b, "\r\n"...)
	}
	if req.ContentLength > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	for _, k := range keys[:nk] {
		for _, v := range req.Header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, textproto.TrimString(v)...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	_, err = bw.Write(b)
	if err != nil || !hasBody {
		if hasBody {
			req.Body.Close()
		}
		return true, err
	}
	if _, mem := req.Body.(*byteBody); !mem && req.GetBody == nil {
		// Not one of the in-memory bodies http.NewRequest knows: send the
		// head first, as req.Write does, in case reading the body blocks.
		if err := bw.Flush(); err != nil {
			req.Body.Close()
			return true, err
		}
	}
	return true, writeBody(bw, req.Body, req.ContentLength)
}

// maxWriteHeaders bounds the header fields writeRequest sorts on its
// stack; requests with more go through req.Write.
const maxWriteHeaders = 16

// writeBody copies a body of n bytes into bw, reading straight into its
// buffer, and closes it; a body of another length is an error, as in
// req.Write.
func writeBody(bw *bufio.Writer, body io.ReadCloser, n int64) (err error) {
	defer func() {
		if cerr := body.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var copied int64
	for copied < n {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), n-copied)]
		k, rerr := body.Read(buf)
		if _, err := bw.Write(buf[:k]); err != nil {
			return err
		}
		copied += int64(k)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if copied == n {
		// req.Write reads the rest to tell the body's true length.
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:cap(buf)]
		for {
			k, rerr := body.Read(buf)
			copied += int64(k)
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return rerr
			}
		}
	}
	if copied != n {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", n, copied)
	}
	return nil
}

// ctl reports a control character, which req.Write refuses in a URL.
func ctl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// validToken reports a non-empty header field name of token characters
// (httpguts.ValidHeaderFieldName); Header.Write drops other names.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// hostLine returns the Host line req.Write writes for a request to host,
// or "" when it would write something else than "Host: host".
func hostLine(host string) string {
	var b bytes.Buffer
	req := &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: host, Header: http.Header{"User-Agent": {""}}}
	if err := req.Write(&b); err != nil {
		return ""
	}
	_, rest, _ := strings.Cut(b.String(), "\r\n")
	line, _, _ := strings.Cut(rest, "\r\n")
	if line != "Host: "+host {
		return ""
	}
	return line + "\r\n"
}

// byteBody is a request body in memory, the client's own: writeRequest
// sends it with the head, and a send retried on a new connection rewinds
// it.
type byteBody struct{ bytes.Reader }

// Close does nothing: the bytes stay for a retry.
func (*byteBody) Close() error { return nil }
