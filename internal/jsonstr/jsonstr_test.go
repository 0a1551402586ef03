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
