package preflight_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/preflight"
)

func ExampleCheck() {
	sb := sandbox.New(sandbox.Options{}) // its seeded channels and templates stand in for the account
	srv := httptest.NewServer(sb)
	defer func() { srv.Close(); sb.Close() }()
	client, _ := oneroute.New(oneroute.Options{BaseURL: srv.URL, APIKey: sandbox.KeyPrefix + "example"})

	spec, _ := campaigns.ParseSpec("welcome.yaml", []byte(`channel: whatsapp_template
from: "2348000000001"
template:
  name: order_shipped
  parameters: ["{{.name}}"]
recipients: r.csv
`))
	fmt.Println(preflight.Check(context.Background(), spec, client))
	// Output:
	// welcome.yaml:5: template order_shipped takes 2 parameters (its body: "Hi {{1}}, your order {{2}} has shipped."), the spec gives 1: make template.parameters a list of 2
}
