// Command gencsv writes the dispatcher benchmark's recipient file: Nigerian
// numbers in mixed formats with about 4% duplicates and 2% invalid rows.
//
//	go run ./bench/gencsv -rows 1000000 -out /tmp/recipients.csv
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/fanoutdev/fanout/internal/gencsv"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "data rows to write")
	out := flag.String("out", "recipients.csv", "output `file`")
	flag.Parse()
	if err := gencsv.Write(*out, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "gencsv:", err)
		os.Exit(1)
	}
}
