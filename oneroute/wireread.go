package oneroute

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
)

// readResponse reads one answer from br as http.ReadResponse does, with
// the same results (status, Header, ContentLength, Close, TransferEncoding,
// Body bytes and errors), at a fraction of its cost for the answers an API
// gives: the whole head buffered, every line ending in CRLF, header names of
// letters, digits and '-', values of printable ASCII. Anything else (a head
// over the buffer, bare LF, folded lines, Trailer or Pragma headers, several
// Content-Length or Transfer-Encoding values, a malformed line) is left
// unread and handed to http.ReadResponse, so odd and hostile input gets
// net/http's own answer, errors included. FuzzReadResponse checks the two
// against each other.
//
// rb, when not nil, is used for the body instead of a new one.
func readResponse(br *bufio.Reader, req *http.Request, rb *respBody) (*http.Response, error) {
	n := bufferHead(br)
	if n <= 0 {
		return http.ReadResponse(br, req)
	}
	head, _ := br.Peek(n)
	resp, kind := parseHead(head, req)
	if resp == nil {
		return http.ReadResponse(br, req)
	}
	br.Discard(n)
	if kind == noBody {
		resp.Body = http.NoBody
		return resp, nil
	}
	if rb == nil {
		rb = new(respBody)
	}
	*rb = respBody{br: br, kind: kind, n: resp.ContentLength, resp: resp}
	resp.Body = rb
	return resp, nil
}

// bufferHead waits until the answer's head (status line, headers, blank
// line) is buffered in br and returns its length. It returns 0 when the
// head should be read by http.ReadResponse instead: a line outside the
// lean subset (ReadResponse would not wait for more bytes either), a read
// error (ReadResponse meets it again and reports it), or a head larger than
// the buffer.
func bufferHead(br *bufio.Reader) int {
	for want := 1; ; {
		if _, err := br.Peek(want); err != nil {
			return 0
		}
		buf, _ := br.Peek(br.Buffered())
		switch n := scanHead(buf); {
		case n > 0:
			return n
		case n < 0:
			return 0
		}
		want = br.Buffered() + 1
	}
}

// scanHead checks a head against the lean subset. It returns the head's
// length when it is complete, 0 when b is an unfinished head whose complete
// lines are all in the subset, -1 when a complete line is outside it.
func scanHead(b []byte) int {
	lines := 0
	for i := 0; ; lines++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		line := b[i : i+j]
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return -1 // bare LF
		}
		line = line[:len(line)-1]
		i += j + 1
		switch {
		case lines == 0:
			if !statusLine(line) {
				return -1
			}
		case len(line) == 0:
			return i
		case !headerLine(line):
			return -1
		}
	}
}

// statusLine accepts "HTTP/1.0 " or "HTTP/1.1 ", three digits, then
// nothing or a space and a printable reason.
func statusLine(l []byte) bool {
	if len(l) < 12 || string(l[:7]) != "HTTP/1." || (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
		!isDigit(l[9]) || !isDigit(l[10]) || !isDigit(l[11]) {
		return false
	}
	if len(l) == 12 {
		return true
	}
	return l[12] == ' ' && printable(l[13:])
}

// headerLine accepts a name of letters, digits and '-' starting with a
// letter, a colon, and a printable value (spaces and tabs included).
func headerLine(l []byte) bool {
	i := 0
	for i < len(l) && (isLetter(l[i]) || (i > 0 && (isDigit(l[i]) || l[i] == '-'))) {
		i++
	}
	return i > 0 && i < len(l) && l[i] == ':' && printable(l[i+1:])
}

func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// parseHead builds the response from a head scanHead accepted, applying
// net/http's framing rules (readTransfer, fixLength, shouldClose), and the
// kind of its body. It returns a nil response for the cases left to
// http.ReadResponse.
func parseHead(head []byte, req *http.Request) (*http.Response, int) {
	s := string(head) // one copy; every string below is a part of it
	nl := strings.IndexByte(s, '\n')
	line := s[:nl-1]
	resp := &http.Response{Proto: line[:8], ProtoMajor: 1, ProtoMinor: int(line[7] - '0'), Status: line[9:], Request: req}
	resp.StatusCode = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	s = s[nl+1 : len(s)-2] // the header lines, each ending in CRLF
	n := strings.Count(s, "\n")
	h := make(http.Header, n)
	vals := make([]string, n)
	for i := 0; s != ""; i++ {
		nl := strings.IndexByte(s, '\n')
		line := s[:nl-1]
		s = s[nl+1:]
		colon := strings.IndexByte(line, ':')
		key, v := line[:colon], strings.Trim(line[colon+1:], " \t")
		if !canonical(key) {
			key = http.CanonicalHeaderKey(key)
		}
		if vv, ok := h[key]; ok {
			h[key] = append(vv, v)
			continue
		}
		vals[i] = v
		h[key] = vals[i : i+1 : i+1]
	}
	resp.Header = h
	if _, ok := h["Trailer"]; ok {
		return nil, 0
	}
	if _, ok := h["Pragma"]; ok {
		return nil, 0
	}

	method := "GET"
	if req != nil {
		method = req.Method
	}
	// Transfer-Encoding (readTransfer, parseTransferEncoding).
	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok {
		if resp.ProtoMinor == 1 {
			if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
				return nil, 0
			}
			chunked = true
		}
		delete(h, "Transfer-Encoding")
	}
	// Content-Length (fixLength).
	cl := int64(-1)
	if v, ok := h["Content-Length"]; ok {
		if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > 18 {
			return nil, 0
		}
		cl = 0
		for i := 0; i < len(v[0]); i++ {
			if !isDigit(v[0][i]) {
				return nil, 0
			}
			cl = cl*10 + int64(v[0][i]-'0')
		}
	}
	// Connection (shouldClose).
	conn := h["Connection"]
	hasClose := containsToken(conn, "close")
	if resp.ProtoMinor == 0 {
		resp.Close = hasClose || !containsToken(conn, "keep-alive")
	} else if hasClose {
		delete(h, "Connection")
		resp.Close = true
	}

	st := resp.StatusCode
	bodyAllowed := !(st >= 100 && st <= 199) && st != 204 && st != 304
	realLength := cl
	switch {
	case method == "HEAD" || !bodyAllowed:
		realLength = 0
	case chunked:
		delete(h, "Content-Length")
		realLength = -1
	}
	resp.ContentLength = realLength
	if method == "HEAD" {
		resp.ContentLength = cl
	}
	if realLength == -1 && !chunked && bodyAllowed {
		resp.Close = true // the body ends when the connection does
	}
	if chunked {
		resp.TransferEncoding = []string{"chunked"}
	}
	switch {
	case chunked && method != "HEAD" && bodyAllowed:
		return resp, bodyChunked
	case chunked, realLength == 0:
		return resp, noBody
	case realLength > 0:
		return resp, bodyLength
	case resp.Close:
		return resp, bodyToEOF
	}
	return resp, noBody
}

// canonical reports whether key is already in canonical form (an upper
// case letter first and after each '-', lower case elsewhere).
func canonical(key string) bool {
	upper := true
	for i := 0; i < len(key); i++ {
		c := key[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// containsToken reports whether a comma-separated list in any of values
// holds token, ASCII case aside (httpguts.HeaderValuesContainsToken).
func containsToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.Trim(item, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// Body kinds of a respBody.
const (
	noBody      = iota // none: http.NoBody
	bodyLength         // Content-Length: n bytes
	bodyChunked        // Transfer-Encoding: chunked, then a trailer
	bodyToEOF          // everything until the connection closes
)

// respBody reads a body framed as parseHead found, with net/http's
// results: io.ErrUnexpectedEOF for a body cut short, io.EOF with its last
// bytes, the trailer of a chunked body read into the response.
type respBody struct {
	br     *bufio.Reader
	kind   int
	n      int64     // bytes left of a bodyLength body
	chunks io.Reader // the bodyChunked decoder
	resp   *http.Response
	eof    bool
	closed bool
}

func (b *respBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	switch b.kind {
	case bodyLength:
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err := b.br.Read(p)
		b.n -= int64(n)
		if b.n == 0 {
			b.eof = true
			return n, io.EOF
		}
		if err == io.EOF {
			b.eof = true
			err = io.ErrUnexpectedEOF
		}
		return n, err
	case bodyChunked:
		if b.chunks == nil {
			b.chunks = httputil.NewChunkedReader(b.br)
		}
		n, err := b.chunks.Read(p)
		if err == io.EOF {
			b.eof = true
			if terr := b.readTrailer(); terr != nil {
				b.eof, b.closed = false, true
				err = terr
			}
		}
		return n, err
	default:
		n, err := b.br.Read(p)
		if err == io.EOF {
			b.eof = true
		}
		return n, err
	}
}

// readTrailer reads what follows the last chunk, as net/http's body does.
func (b *respBody) readTrailer() error {
	buf, err := b.br.Peek(2)
	if string(buf) == "\r\n" {
		b.br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if !upcomingDoubleCRLF(b.br) {
		return errors.New("http: suspiciously long trailer after chunked body")
	}
	hdr, err := textproto.NewReader(b.br).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		return err
	}
	if b.resp.Trailer == nil {
		b.resp.Trailer = http.Header(hdr)
	} else {
		for k, v := range hdr {
			b.resp.Trailer[k] = v
		}
	}
	return nil
}

var errTrailerEOF = errors.New("http: unexpected EOF reading trailer")

// upcomingDoubleCRLF reports whether the buffer, filled as far as it goes,
// holds the end of a trailer.
func upcomingDoubleCRLF(br *bufio.Reader) bool {
	for size := 4; ; size++ {
		buf, err := br.Peek(size)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// Close stops reading; it reads nothing more.
func (b *respBody) Close() error {
	b.closed = true
	return nil
}
