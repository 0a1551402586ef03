package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

func FuzzAppendMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "hi", "a\"b\\c", "\n\r\t\x00\x1f", "caf\u00e9 \u2028\u2029", "bad \xff utf8", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := Append(nil, s)
		if !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("Append(%q) = %s, encoding/json %s", s, got, want.Bytes())
		}
		wantHTML, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendHTML(nil, s); !bytes.Equal(got, wantHTML) {
			t.Fatalf("AppendHTML(%q) = %s, json.Marshal %s", s, got, wantHTML)
		}
	})
}

// FuzzSkip: Skip accepts a value only when encoding/json finds it valid,
// and stops right after it.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0.5e+3,true,false,null,"x\u00e9\n"]}`, `"\ud800"`, `01`, `1.`, `-`, `[1,]`, `{"a" 1}`, `"a` + "\x01" + `"`, `"\x"`, "\"\xff\"", ` 12 `, `{}`, `[[[[]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Reader{B: data}
		if !r.Skip() {
			return
		}
		if !json.Valid(data[:r.I]) {
			t.Fatalf("Skip accepted %q, which encoding/json finds invalid", data[:r.I])
		}
		// The value ends where Skip stopped: the next byte does not
		// continue it.
		if r.I < len(data) && !bytes.ContainsAny(data[r.I:r.I+1], " \t\r\n") && json.Valid(data[:r.I+1]) {
			t.Fatalf("Skip stopped early in %q at %d", data, r.I)
		}
	})
}

// FuzzText: whenever Text reads a string, encoding/json reads the same
// string from the same bytes.
func FuzzText(f *testing.F) {
	for _, s := range []string{`"plain"`, `"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00"`, `"\u003cb\u003e \u0026"`, `"\ud83d"`, `"\ude00x"`, `"\x"`, "\"\xff\"", "\"é\"", `"ctl` + "\x01" + `"`, ` "ws" `, `"unterminated\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Reader{B: data}
		got, ok := r.Text()
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(data[:r.I], &want); err != nil {
			t.Fatalf("Text read %q from %q, encoding/json did not: %v", got, data[:r.I], err)
		}
		if got != want {
			t.Fatalf("Text read %q from %q, encoding/json %q", got, data[:r.I], want)
		}
	})
}
