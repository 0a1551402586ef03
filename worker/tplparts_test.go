package worker

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// capturing sends through the sandbox and keeps each template request.
type capturing struct {
	*oneroute.Client
	mu   sync.Mutex
	reqs []oneroute.TemplateRequest
}

func (c *capturing) SendTemplate(ctx context.Context, r oneroute.TemplateRequest) ([]oneroute.Result, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r)
	c.mu.Unlock()
	return c.Client.SendTemplate(ctx, r)
}

// A template's rendered header and button values reach OneRoute in each
// message's template, and the sandbox checks them against its templates:
// the right header type and button count are sent, a wrong header type
// fails that recipient.
func TestTemplateHeaderAndButtonsAreSent(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{})
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "tplparts"})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	prov := &capturing{Client: client}
	b.mux = NewMux(Deps{Store: b.store, Provider: prov, Enqueuer: b.enq, Limiter: b.lim}, b.opts)

	for _, tc := range []struct {
		id, template, header string
		content              []campaigns.Content
		sent, failed         int64
	}{
		{"hdr", "new_collection", campaigns.HeaderImage, []campaigns.Content{
			{Params: []string{"Ada"}, Header: "https://cdn.example.com/a1.jpg"},
			{Params: []string{"Bola"}, Header: "https://cdn.example.com/b2.jpg"}}, 2, 0},
		{"btn", "track_order", "", []campaigns.Content{
			{Params: []string{"Ada"}, Buttons: []string{"A1B2", "stop-1"}}}, 1, 0},
		{"badhdr", "new_collection", campaigns.HeaderVideo, []campaigns.Content{
			{Params: []string{"Ada"}, Header: "https://cdn.example.com/a.mp4"}}, 0, 1},
	} {
		s := campaigns.Spec{ID: "tpl-" + tc.id, Channel: campaigns.ChannelWhatsAppTemplate, From: sandbox.WhatsAppNumber, Recipients: "r.csv",
			Template: &campaigns.Template{Name: tc.template, Parameters: []string{"{{.x}}"}}}
		to := make([]string, len(tc.content))
		for i := range to {
			to[i] = fmt.Sprintf("+2348031234%03d", i)
		}
		batch := b.campaign(t, s, to...)
		batch.HeaderType = tc.header
		for i := range batch.Items {
			c := tc.content[i]
			batch.Items[i].Content = &c
		}
		if err := b.run(t, batch); err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		if p := b.progress(t, s.ID); p.Sent != tc.sent || p.Failed != tc.failed {
			t.Errorf("%s: sent %d failed %d, want %d and %d", tc.id, p.Sent, p.Failed, tc.sent, tc.failed)
		}
	}
	prov.mu.Lock()
	defer prov.mu.Unlock()
	if len(prov.reqs) != 3 {
		t.Fatalf("%d template requests, want 3", len(prov.reqs))
	}
	m := prov.reqs[0].Messages[1].Template
	if m.Header == nil || m.Header.Type != "image" || m.Header.Link != "https://cdn.example.com/b2.jpg" || m.Buttons != nil || m.Parameters[0].Text != "Bola" {
		t.Errorf("header message: %+v", m)
	}
	m = prov.reqs[1].Messages[0].Template
	if m.Header != nil || len(m.Buttons) != 2 || m.Buttons[0] != (oneroute.TemplateParam{Type: "text", Text: "A1B2"}) || m.Buttons[1].Text != "stop-1" {
		t.Errorf("buttons message: %+v", m)
	}
}
