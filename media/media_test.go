package media

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

// Every refused range is refused by its text, before any network access.
func TestCheckRefusesByText(t *testing.T) {
	refused := map[string]string{
		"https://127.0.0.1/a.jpg":                  "loopback",
		"https://127.8.9.10/a.jpg":                 "loopback",
		"https://169.254.169.254/latest/meta-data": "metadata",
		"https://169.254.10.1/a.jpg":               "link-local",
		"https://10.1.2.3/a.jpg":                   "private",
		"https://172.16.0.1/a.jpg":                 "private",
		"https://192.168.1.1/a.jpg":                "private",
		"https://[::1]/a.jpg":                      "loopback",
		"https://[::ffff:127.0.0.1]/a.jpg":         "loopback",
		"https://[::ffff:a9fe:a9fe]/a.jpg":         "metadata",
		"https://[fd00::1]/a.jpg":                  "private",
		"https://[fe80::1]/a.jpg":                  "link-local",
		"https://[64:ff9b::7f00:1]/a.jpg":          "translated",
		"https://100.64.0.1/a.jpg":                 "reserved",
		"https://0.0.0.0/a.jpg":                    "unspecified",
		"https://localhost/a.jpg":                  "local",
		"https://metadata.google.internal/x":       "internal",
		"https://intranet/a.jpg":                   "not a public",
		"http://cdn.example.com/a.jpg":             "only https",
		"ftp://cdn.example.com/a.jpg":              "only https",
		"file:///etc/passwd":                       "only https",
		"https://user:pw@cdn.example.com/a.jpg":    "credentials",
		"https:///a.jpg":                           "no host",
	}
	for raw, want := range refused {
		err := Check(raw, Options{})
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v; want refused, mentioning %q", raw, err, want)
		}
	}
	for _, ok := range []string{"https://cdn.example.com/a.jpg", "https://8.8.8.8/a.jpg", "https://[2001:4860::8888]/a.jpg", "https://cdn.example.com:8443/a.jpg?sig=1"} {
		if err := Check(ok, Options{}); err != nil {
			t.Errorf("Check(%q) = %v; want nil", ok, err)
		}
	}
	if err := Check("http://cdn.example.com/a.jpg", Options{AllowHTTP: true}); err != nil {
		t.Errorf("http with AllowHTTP: %v", err)
	}
}

// A refused URL never shows its query string (signed links carry secrets).
func TestRefusalHidesQuery(t *testing.T) {
	err := Check("https://user:secret@10.0.0.1/a.jpg?X-Amz-Signature=topsecret", Options{})
	if err == nil || strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "secret@") {
		t.Fatalf("error %v shows the link's secrets", err)
	}
}

// The socket-level check refuses whatever resolved the name.
func TestControlRefusesAtDial(t *testing.T) {
	for _, a := range []string{"127.0.0.1:443", "169.254.169.254:80", "10.0.0.1:443", "[::1]:443"} {
		if err := controlAddr("tcp", a, nil); !errors.Is(err, ErrRefused) {
			t.Errorf("controlAddr(%s) = %v; want refused", a, err)
		}
	}
	if err := controlAddr("tcp", "8.8.8.8:443", nil); err != nil {
		t.Errorf("controlAddr(8.8.8.8) = %v", err)
	}
}

type fakeResolver map[string]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	s, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr(s)}, nil
}

// stand-in: a local server that plays a public one. Names resolve through
// the fake resolver; connections to the public stand-in address go to the
// local server, so only a check can stop a request to the local server's
// own address.
type standIn struct {
	srv  *httptest.Server
	hits map[string]*atomic.Int64
	opts Options
}

const publicIP = "203.0.113.7"

func newStandIn(t *testing.T, h func(hit func(string), w http.ResponseWriter, r *http.Request)) *standIn {
	s := &standIn{hits: map[string]*atomic.Int64{}}
	for _, p := range []string{"/a.jpg", "/secret", "/big.mp4", "/page.html", "/next"} {
		s.hits[p] = new(atomic.Int64)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := s.hits[r.URL.Path]; c != nil {
			c.Add(1)
		}
		h(nil, w, r)
	}))
	t.Cleanup(s.srv.Close)
	local := s.srv.Listener.Addr().String()
	s.opts = Options{
		AllowHTTP: true,
		Resolver:  fakeResolver{"cdn.example.com": publicIP, "evil.example.com": "127.0.0.1", "inner.example.com": "10.0.0.5"},
		dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, publicIP+":") {
				addr = local
			}
			var d net.Dialer
			d.Control = controlAddr // the real socket check still applies to any other address
			if addr == local {
				d.Control = nil
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	return s
}

func (s *standIn) port() string {
	_, p, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	return p
}

// Links to this machine, the metadata address and private networks are
// refused and never fetched, by name, by IP and through redirects.
func TestProbeNeverFetchesRefusedAddresses(t *testing.T) {
	var s *standIn
	s = newStandIn(t, func(_ func(string), w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.jpg":
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Content-Length", "1000")
		case "/to-loopback":
			http.Redirect(w, r, "http://127.0.0.1:"+s.port()+"/secret", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-evil":
			http.Redirect(w, r, "http://evil.example.com:"+s.port()+"/secret", http.StatusFound)
		case "/to-inner":
			http.Redirect(w, r, "http://inner.example.com:"+s.port()+"/secret", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	c := NewClient(s.opts)
	ctx := context.Background()
	base := "http://cdn.example.com:" + s.port()
	if info, err := Probe(ctx, c, base+"/a.jpg", Image, s.opts); err != nil || info.ContentType != "image/jpeg" || info.Size != 1000 {
		t.Fatalf("public image: %+v, %v", info, err)
	}
	for path, want := range map[string]string{
		"/to-loopback": "loopback", "/to-metadata": "metadata", "/to-evil": "loopback",
		"/to-inner": "private", "/loop": "redirects",
	} {
		_, err := Probe(ctx, c, base+path, Image, s.opts)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want refused mentioning %q", path, err, want)
		}
	}
	for _, raw := range []string{"http://127.0.0.1:" + s.port() + "/secret", "http://evil.example.com:" + s.port() + "/secret"} {
		if _, err := Probe(ctx, c, raw, Image, s.opts); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v; want refused", raw, err)
		}
	}
	if n := s.hits["/secret"].Load(); n != 0 {
		t.Fatalf("the local server's /secret was fetched %d times", n)
	}
}

// Content type and size are checked against WhatsApp's limits per kind.
func TestProbeChecksTypeAndSize(t *testing.T) {
	s := newStandIn(t, func(_ func(string), w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big.mp4":
			w.Header().Set("Content-Type", "video/mp4")
			w.Header().Set("Content-Length", "20000000")
		case "/page.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		case "/gone":
			w.WriteHeader(http.StatusNotFound)
		case "/nohead":
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	c := NewClient(s.opts)
	base := "http://cdn.example.com:" + s.port()
	for path, tc := range map[string]struct {
		kind Kind
		want string
	}{
		"/big.mp4": {Video, "16 MiB"}, "/page.html": {Image, "text/html"}, "/gone": {Document, "404"},
	} {
		if _, err := Probe(context.Background(), c, base+path, tc.kind, s.opts); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want refused mentioning %q", path, err, tc.want)
		}
	}
	if info, err := Probe(context.Background(), c, base+"/nohead", Image, s.opts); err != nil || info.Size != -1 {
		t.Errorf("HEAD refused: %+v, %v; want passed with size unknown", info, err)
	}
}
