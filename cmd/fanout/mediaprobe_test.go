package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/media"
)

// probeServer is a TLS media host standing in for https://example.com (the
// name its test certificate holds): every connection goes to it.
func probeServer(t *testing.T) *http.Client {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			t.Errorf("%s %s: a probe only asks with HEAD", r.Method, r.URL.Path)
		}
		switch r.URL.Path {
		case "/ok.jpg":
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Content-Length", "2048")
		case "/page.jpg":
			w.Header().Set("Content-Type", "text/html")
		case "/big.mp4":
			w.Header().Set("Content-Type", "video/mp4")
			w.Header().Set("Content-Length", "40000000")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c := srv.Client()
	tr := c.Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	c.Transport = tr
	return c
}

// With FANOUT_MEDIA_PROBE, a fixed media link whose type, size or answer
// WhatsApp would not take refuses the spec at its line; a good one passes.
func TestProbeMedia(t *testing.T) {
	t.Parallel()
	client := probeServer(t)
	const tpl = "channel: whatsapp_template\nfrom: \"2348000000001\"\nrecipients: r.csv\ntemplate:\n  name: new_collection\n  parameters: [\"{{.name}}\"]\n"
	const session = "channel: whatsapp_session\nfrom: \"2348000000001\"\nmessage: Hi {{.name}}\nrecipients: r.csv\nfallback_template: {name: order_update}\n"
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"good header", tpl + "  header: {type: image, url: \"https://example.com/ok.jpg\"}\n", ""},
		{"templated header is not probed", tpl + "  header: {type: image, url: \"https://example.com/{{.sku}}.jpg\"}\n", ""},
		{"header of the wrong type", tpl + "  header: {type: image, url: \"https://example.com/page.jpg\"}\n",
			`c.yaml:7: template.header: media URL https://example.com/page.jpg refused: content type "text/html" is not a WhatsApp image type`},
		{"header not found", tpl + "  header: {type: document, url: \"https://example.com/gone.pdf\"}\n",
			"c.yaml:7: template.header: media URL https://example.com/gone.pdf refused: the server answered 404"},
		{"session media too big", session + "media_url: https://example.com/big.mp4\n",
			"c.yaml:6: media_url: media URL https://example.com/big.mp4 refused: 40000000 bytes is over WhatsApp's 16 MiB limit for video"},
		{"session media good", session + "media_url: https://example.com/ok.jpg\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec, err := campaigns.ParseSpec("c.yaml", []byte(tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			err = probeMedia(context.Background(), spec, client, media.Options{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
