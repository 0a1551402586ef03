package sandbox_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

func ExampleNew() {
	sb := sandbox.New(sandbox.Options{DLRDelay: -1})
	defer sb.Close()
	srv := httptest.NewServer(sb)
	defer srv.Close()

	c, _ := oneroute.New(oneroute.Options{BaseURL: srv.URL, APIKey: sandbox.KeyPrefix + "demo"})
	res, _ := c.SendSMS(context.Background(), sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"+2348031234567"}})
	if _, err := c.SendSMS(context.Background(), sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"+2348031234567"}}); err != nil {
		panic(err)
	}
	d, _ := c.GetSMSDLR(context.Background(), res[0].Response)
	st := sb.Stats()
	fmt.Println(d.Conversation.Status, st.Accepted, st.Duplicates)
	// Output: delivered 2 1
}

func ExampleServer_SetFaults() {
	sb := sandbox.New(sandbox.Options{})
	defer sb.Close()
	srv := httptest.NewServer(sb)
	defer srv.Close()

	sb.SetFaults(sandbox.Faults{ErrorRate: 1}) // or POST /sandbox/faults {"error_rate": 1}
	c, _ := oneroute.New(oneroute.Options{BaseURL: srv.URL, APIKey: "test_demo"})
	_, err := c.SendSMS(context.Background(), sandbox.SMSChannelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"2348031234567"}})
	fmt.Println(oneroute.Classify(err), sb.Stats().Faults, sb.Stats().Accepted)
	// Output: temporary 1 0
}
