package dispatcher_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/recipients"
)

// Open a recipient file for a campaign, checked against its spec before
// anything connects anywhere, and dispatch it: here a dry run, which
// validates and counts without Redis.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "fanout-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir) //nolint:errcheck // best effort: a temporary directory
	csv := "phone,name\n0803 123 4567,Ada\n12345,Nobody\n08031234568,Bayo\n"
	if err := os.WriteFile(filepath.Join(dir, "people.csv"), []byte(csv), 0o600); err != nil {
		panic(err)
	}
	spec, err := campaigns.ParseSpec(filepath.Join(dir, "welcome.yaml"), []byte(`
id: welcome
channel: sms
channel_id: my-sms-channel
message: "Hi {{.name}}"
recipients: people.csv
`))
	if err != nil {
		panic(err)
	}
	in, err := dispatcher.Open(spec, spec.RecipientsPath(), os.Stdin, recipients.OptionsOf(spec))
	if err != nil {
		panic(err)
	}
	defer in.Close()
	res, err := dispatcher.Dispatch(context.Background(), nil, nil, in.Spec, in.Source, dispatcher.Options{DryRun: true})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d rows, %d valid, %d invalid\n", res.ID, res.Rows, res.Valid, res.Invalid)
	// Output:
	// welcome: 3 rows, 2 valid, 1 invalid
}
