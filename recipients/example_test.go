package recipients_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
)

// A recipient file is read as a stream: each row carries its record number,
// its line, its fields, or the reason it is refused; reading goes on.
func ExampleNewSource() {
	spec, _ := campaigns.ParseSpec("c.yaml", []byte("channel: sms\nchannel_id: x\nrecipients: r.csv\nmessage: 'Hi {{.first_name}}'\n"))
	file := "phone,first_name\n0803 123 4567,Ada\n+234 803 123 4568,Bola,extra\n"
	src, _ := recipients.NewSource(strings.NewReader(file), recipients.OptionsOf(spec))
	defer src.Close()
	field, _ := recipients.AddressField(spec, src.Columns())
	for {
		row, err := src.Next()
		if err == io.EOF {
			break
		}
		if row.Err != nil {
			fmt.Printf("row %d (line %d) refused: %v\n", row.N, row.Line, row.Err)
			continue
		}
		to, _ := recipients.Normalize(spec, row.Fields[field])
		fmt.Printf("row %d: %s %s\n", row.N, to, row.Fields["first_name"])
	}
	// Output:
	// row 1: +2348031234567 Ada
	// row 2 (line 3) refused: has 3 fields, the header has 2
}
