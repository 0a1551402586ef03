package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/fanoutdev/fanout/internal/jsonstr"
)

// jsonCT is shared by every answer; its capacity is 1 so an append by
// anyone copies instead of writing into it.
var jsonCT = []string{"application/json; charset=utf-8"}[:1:1]

var invalidKeyBody = []byte(`{"data":null,"message":"Invalid API Key","success":false}` + "\n")

// writeRaw sends a prepared JSON answer.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonCT
	w.WriteHeader(status)
	w.Write(body)
}

// writeJSON sends v as JSON (off the hot path).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"data":null,"message":"Internal server error","success":false}`)
	}
	writeRaw(w, status, append(b, '\n'))
}

// fail sends OneRoute's error envelope.
func fail(w http.ResponseWriter, status int, msg string) {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"data":null,"message":`...)
	b = jsonstr.Append(b, msg)
	b = append(b, `,"success":false}`+"\n"...)
	writeRaw(w, status, b)
}

// ok sends the messaging envelope, payload in "data".
func ok(w http.ResponseWriter, msg string, data any) {
	writeJSON(w, 200, map[string]any{"data": data, "message": msg, "success": true})
}

// okBody sends the OTP envelope, payload in "body".
func okBody(w http.ResponseWriter, msg string, body any) {
	writeJSON(w, 200, map[string]any{"body": body, "message": msg, "success": true})
}

// bufPool holds request and response buffers of the hot path.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// maxBody caps request bodies, like a JSON body parser's limit.
const maxBody = 1 << 20

// readBody reads a request body into a pooled buffer, answering 413 when it
// is over maxBody. The caller returns the buffer with putBuf.
func readBody(w http.ResponseWriter, r *http.Request) (*[]byte, bool) {
	bp := getBuf()
	b := *bp
	if n := r.ContentLength; n > maxBody {
		putBuf(bp)
		fail(w, http.StatusRequestEntityTooLarge, "request entity too large")
		return nil, false
	} else if n > int64(cap(b)) {
		b = make([]byte, 0, n)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > maxBody {
			*bp = b
			putBuf(bp)
			fail(w, http.StatusRequestEntityTooLarge, "request entity too large")
			return nil, false
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			putBuf(bp)
			fail(w, http.StatusBadRequest, "could not read body")
			return nil, false
		}
	}
	*bp = b
	return bp, true
}

// decode reads a JSON object into v, answering 400 in the style of Joi (the
// validator OneRoute's error texts come from) on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	bp, okRead := readBody(w, r)
	if !okRead {
		return false
	}
	defer putBuf(bp)
	return decodeBytes(w, *bp, v)
}

func decodeBytes(w http.ResponseWriter, body []byte, v any) bool {
	t := bytes.TrimSpace(body)
	if len(t) == 0 || t[0] != '{' {
		if len(t) > 0 && json.Valid(t) {
			fail(w, http.StatusBadRequest, `"value" must be of type object`)
		} else {
			fail(w, http.StatusBadRequest, "Unexpected token in JSON at position 0")
		}
		return false
	}
	if err := json.Unmarshal(t, v); err != nil {
		fail(w, http.StatusBadRequest, joiMessage(err))
		return false
	}
	return true
}

// joiMessage renders a decoding error as Joi would word it.
func joiMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// Like OneRoute's messages, name the key, not its path.
		field := te.Field[strings.LastIndexByte(te.Field, '.')+1:]
		if field == "" {
			field = "value"
		}
		return fmt.Sprintf("%q %s", field, joiType(te.Type))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("Unexpected token in JSON at position %d", se.Offset)
	}
	return `"value" must be of type object`
}

func joiType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "must be a string"
	case reflect.Slice, reflect.Array:
		return "must be an array"
	case reflect.Bool:
		return "must be a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "must be a number"
	}
	return "must be of type object"
}

// Joi-style messages.
func required(field string) string     { return strconv.Quote(field) + " is required" }
func notEmpty(field string) string     { return strconv.Quote(field) + " is not allowed to be empty" }
func invalidPhone(field string) string { return strconv.Quote(field) + " must be a valid phone number" }
func oneOf(field string, vals ...string) string {
	return strconv.Quote(field) + " must be one of [" + strings.Join(vals, ", ") + "]"
}
