// Command gencsv writes the dispatcher benchmark's recipient file: Nigerian
// numbers in mixed formats with about 4% duplicates and 2% invalid rows.
//
//	go run ./bench/gencsv -rows 1000000 -out /tmp/recipients.csv
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "data rows to write")
	out := flag.String("out", "recipients.csv", "output `file`")
	flag.Parse()
	if err := write(*out, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "gencsv:", err)
		os.Exit(1)
	}
}

// write is the same generator as dispatcher's BenchmarkExpand.
func write(path string, n int) error {
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
