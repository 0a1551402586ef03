// Package gencsv writes the recipient file of fanout's dispatcher benchmark,
// shared by BenchmarkExpand and the bench/gencsv command.
package gencsv

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
)

// Write writes n rows of Nigerian numbers in mixed formats (national, +234,
// 234, spaced), about 4% duplicates written another way and 2% invalid
// values, with a name and a discount column. The same seed always gives the
// same file.
func Write(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(2026, 4))
	prefixes := []string{"803", "806", "813", "816", "703", "706", "810", "814", "903", "906", "805", "807", "815", "905", "802", "808", "812", "701", "902", "809", "817", "818", "909", "908"}
	fmt.Fprintln(w, "phone,first_name,discount")
	recent := make([]string, 0, 1024)
	for i := 0; i < n; i++ {
		var nsn string
		switch p := rng.IntN(100); {
		case p < 2:
			fmt.Fprintf(w, "%d,Bad%d,10\n", rng.IntN(100000), i)
			continue
		case p < 6 && len(recent) > 0:
			nsn = recent[rng.IntN(len(recent))]
		default:
			nsn = prefixes[rng.IntN(len(prefixes))] + fmt.Sprintf("%07d", rng.IntN(10000000))
			if len(recent) < cap(recent) {
				recent = append(recent, nsn)
			} else {
				recent[rng.IntN(len(recent))] = nsn
			}
		}
		var phone string
		switch rng.IntN(4) {
		case 0:
			phone = "0" + nsn
		case 1:
			phone = "+234" + nsn
		case 2:
			phone = "234" + nsn
		default:
			phone = "0" + nsn[:3] + " " + nsn[3:6] + " " + nsn[6:]
		}
		fmt.Fprintf(w, "%s,Name%d,%d\n", phone, i, 5+rng.IntN(20))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
