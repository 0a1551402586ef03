package recipients

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/internal/gencsv"
)

// benchCSV is the dispatcher benchmark's recipient file (plain rows); the
// same rows with every name quoted, one in ten on two lines; and with every
// field quoted, as some exports write them.
func benchCSV(b *testing.B, rows int) (plain, quoted, allQuoted []byte) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "r.csv")
	if err := gencsv.Write(path, rows); err != nil {
		b.Fatal(err)
	}
	plain, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var q, aq bytes.Buffer
	for i, line := range strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n") {
		f := strings.Split(line, ",")
		fmt.Fprintf(&aq, "\"%s\"\r\n", strings.Join(f, `","`))
		if i > 0 && i%10 == 0 {
			f[1] = `"` + f[1] + "\nsecond line, \"\"quoted\"\"" + `"`
		} else if i > 0 {
			f[1] = `"` + f[1] + `"`
		}
		fmt.Fprintln(&q, strings.Join(f, ","))
	}
	return plain, q.Bytes(), aq.Bytes()
}

// BenchmarkCSVSource reads 200,000 recipients from memory through the CSV
// source, so the reader's own cost shows without the dispatcher's.
func BenchmarkCSVSource(b *testing.B) {
	const rows = 200_000
	plain, quoted, allQuoted := benchCSV(b, rows)
	for _, bc := range []struct {
		name string
		data []byte
	}{{"plain", plain}, {"quoted", quoted}, {"all-quoted", allQuoted}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for b.Loop() {
				src, err := NewSource(bytes.NewReader(bc.data), SourceOptions{})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					row, err := src.Next()
					if err == io.EOF {
						break
					}
					if err != nil || row.Err != nil {
						b.Fatalf("row %d: %v %v", row.N, err, row.Err)
					}
					n++
				}
				if n != rows {
					b.Fatalf("read %d rows, want %d", n, rows)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
