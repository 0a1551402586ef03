// Package media checks the media URLs a campaign links (a session
// message's image, video, document or audio, a template's header) before
// anything is sent, so that a spec cannot turn fanout into a way to reach
// the networks it runs in (server-side request forgery), and so that a
// wrong link fails at preflight instead of for every recipient.
//
// Three layers, each enough on its own for what it covers:
//   - Check refuses a URL by its text: a scheme other than https (http only
//     when Options.AllowHTTP), credentials in the URL, an IP literal in a
//     refused range, a host such as "localhost".
//   - The Client resolves names itself and refuses, at dial time, any
//     address in a refused range: a name that resolves to 127.0.0.1 or that
//     changes its answer between the check and the request (DNS rebinding)
//     is refused where the connection is made, and no proxy is used.
//   - Every redirect is checked the same way before it is followed, and at
//     most MaxRedirects are followed.
//
// Probe asks the server for the link's content type and size with a HEAD
// request through that client, when the configuration wants links
// verified, and checks them against what WhatsApp accepts for the kind of
// media.
//
// Refused ranges: loopback, private (RFC 1918, fc00::/7), link-local
// (169.254.0.0/16 with the cloud metadata address 169.254.169.254,
// fe80::/10), unspecified, multicast, broadcast, shared address space
// (100.64.0.0/10), 0.0.0.0/8, 192.0.0.0/24, benchmarking (198.18.0.0/15),
// reserved (240.0.0.0/4), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
// prefixes, and IPv4 addresses written as IPv6 (::ffff:a.b.c.d) in any
// refused range.
package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxRedirects is how many redirects a probe follows.
const MaxRedirects = 3

// RefusedError is a URL refused before or instead of being fetched. Reason
// says why, in words an operator can act on.
type RefusedError struct {
	URL    string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("media URL %s refused: %s", e.URL, e.Reason)
}

// ErrRefused matches every RefusedError with errors.Is.
var ErrRefused = errors.New("media URL refused")

// Is makes errors.Is(err, ErrRefused) true for a RefusedError.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Options tune the checks. The zero value is the safe default: https only,
// public addresses only.
type Options struct {
	// AllowHTTP accepts plain http URLs as well (links then travel and can
	// be changed in the clear; OneRoute fetches them, not only fanout).
	AllowHTTP bool
	// Timeout bounds one probe, redirects included (default 10 s).
	Timeout time.Duration
	// Resolver resolves host names (default net.DefaultResolver).
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}

	// dial replaces the final connect, after the address was checked: tests
	// use it to reach a local server standing in for a public one.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

var refusedPrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4",
		"64:ff9b::/96", "64:ff9b:1::/48", "2002::/16",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// AddrRefused says why an address may not be fetched from, or "" when it
// may.
func AddrRefused(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "not an IP address"
	case a.IsLoopback():
		return "a loopback address (this machine)"
	case a.IsPrivate():
		return "a private network address"
	case a.IsLinkLocalUnicast():
		if a == netip.AddrFrom4([4]byte{169, 254, 169, 254}) {
			return "the cloud metadata address"
		}
		return "a link-local address"
	case a.IsUnspecified():
		return "an unspecified address"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	for _, p := range refusedPrefixes {
		if p.Contains(a) {
			return "a reserved or translated address (" + p.String() + ")"
		}
	}
	return ""
}

// Check refuses a URL by its text alone, without any network access: the
// scheme, credentials, and a host that is an IP literal in a refused range
// or a name for this machine. A URL it passes may still be refused by the
// Client once its name is resolved.
func Check(raw string, o Options) error {
	refuse := func(why string) error { return &RefusedError{URL: redact(raw), Reason: why} }
	u, err := url.Parse(raw)
	if err != nil {
		return refuse("not a URL: " + err.Error())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !o.AllowHTTP {
			return refuse("only https links are allowed; use https:// (or allow http in the configuration)")
		}
	default:
		return refuse("only https links are allowed, not " + strconv.Quote(u.Scheme+":"))
	}
	if u.User != nil {
		return refuse("credentials in the URL; use a link that needs none")
	}
	host := u.Hostname()
	if host == "" {
		return refuse("no host")
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		if why := AddrRefused(a); why != "" {
			return refuse("the host is " + why)
		}
		return nil
	}
	lh := strings.ToLower(strings.TrimSuffix(host, "."))
	if lh == "localhost" || strings.HasSuffix(lh, ".localhost") || strings.HasSuffix(lh, ".local") || strings.HasSuffix(lh, ".internal") {
		return refuse("the host " + strconv.Quote(host) + " names a local or internal machine")
	}
	if !strings.Contains(lh, ".") {
		return refuse("the host " + strconv.Quote(host) + " is not a public domain name")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return refuse("bad port " + strconv.Quote(p))
		}
	}
	return nil
}

// redact drops a URL's query and credentials for messages: signed links
// carry secrets there.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return strconv.Quote(raw)
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// NewClient returns an HTTP client that only connects to addresses Check
// and AddrRefused allow, follows at most MaxRedirects redirects (each
// checked) and uses no proxy.
func NewClient(o Options) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	res := o.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	d := &net.Dialer{Timeout: o.Timeout, Control: controlAddr}
	dial := o.dial
	if dial == nil {
		dial = d.DialContext
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			ips, err := res.LookupNetIP(ctx, "ip", host)
			if err != nil {
				return nil, err
			}
			var last error
			for _, ip := range ips {
				if why := AddrRefused(ip); why != "" {
					last = &RefusedError{URL: host, Reason: host + " resolves to " + ip.Unmap().String() + ", " + why}
					continue
				}
				c, err := dial(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
				if err == nil {
					return c, nil
				}
				last = err
			}
			if last == nil {
				last = fmt.Errorf("%s has no address", host)
			}
			return nil, last
		},
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return &RefusedError{URL: redact(via[0].URL.String()), Reason: fmt.Sprintf("more than %d redirects", MaxRedirects)}
			}
			if err := Check(req.URL.String(), o); err != nil {
				var re *RefusedError
				errors.As(err, &re)
				return &RefusedError{URL: redact(via[0].URL.String()), Reason: "it redirects to " + re.URL + ": " + re.Reason}
			}
			return nil
		},
	}
}

// controlAddr is the dialer's last word: whatever resolved the name, the
// socket never connects to a refused address.
func controlAddr(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{URL: address, Reason: "not an IP address"}
	}
	if why := AddrRefused(ap.Addr()); why != "" {
		return &RefusedError{URL: address, Reason: why}
	}
	return nil
}
