package dispatcher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
)

// A header link templated per recipient is checked as each row renders: a
// row whose link points at this machine or the cloud metadata address is
// rejected with the reason, and the other rows go on.
func TestDispatchRefusesPrivateHeaderLinkPerRow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	csv := "phone,name,img\n08031234561,Ada,https://cdn.example.com/a.jpg\n08031234562,Bola,https://127.0.0.1/a.jpg\n" +
		"08031234563,Chi,https://169.254.169.254/latest/meta-data\n08031234564,Dayo,https://cdn.example.com/d.jpg\n"
	if err := os.WriteFile(filepath.Join(dir, "r.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := campaigns.ParseSpec(filepath.Join(dir, "c.yaml"), []byte("id: hdr\nchannel: whatsapp_template\nfrom: \"2348000000001\"\nrecipients: r.csv\n"+
		"template:\n  name: new_collection\n  parameters: [\"{{.name}}\"]\n  header: {type: image, url: \"{{.img}}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []Reject
	res, err := Dispatch(context.Background(), nil, nil, spec, openSource(t, spec), Options{
		DryRun: true, Reject: func(r Reject) { got = append(got, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid != 2 || res.Invalid != 2 || len(got) != 2 {
		t.Fatalf("valid %d invalid %d rejects %+v; want rows 2 and 3 rejected", res.Valid, res.Invalid, got)
	}
	for i, want := range []string{"loopback", "metadata"} {
		if got[i].Row != i+2 || !strings.Contains(got[i].Reason, "template.header.url") || !strings.Contains(got[i].Reason, want) {
			t.Errorf("reject %d: %+v, want row %d refused as %s at template.header.url", i, got[i], i+2, want)
		}
	}
}

// The batch carries the header's type, and each item its rendered link and
// button values.
func TestDispatchCarriesHeaderAndButtons(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(t, "hdrbtn", "channel: whatsapp_template\nfrom: \"2348000000001\"\ntemplate:\n  name: new_collection\n  parameters: [\"{{.name}}\"]\n"+
		"  header: {type: image, url: \"https://cdn.example.com/{{.sku}}.jpg\"}\n  buttons: [{type: url, parameter: \"{{.sku}}-x\"}]\n",
		"phone,name,sku\n08031234561,Ada,a1\n08031234562,Bola,b2\n")
	if _, err := b.dispatch(t, context.Background(), spec, Options{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, bt := range b.tasks(t, spec) {
		for _, it := range bt.Items {
			c := bt.ContentOf(it)
			got = append(got, bt.HeaderType+" "+c.Header+" "+strings.Join(c.Buttons, ","))
		}
	}
	want := "image https://cdn.example.com/a1.jpg a1-x|image https://cdn.example.com/b2.jpg b2-x"
	if strings.Join(got, "|") != want {
		t.Errorf("items: %q, want %q", strings.Join(got, "|"), want)
	}
}
