package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Transport times every request that goes through it, by endpoint and
// status class, in the histogram fanout_provider_request_duration_seconds.
// Wrap the transport given to oneroute.New:
//
//	hc := &http.Client{Transport: m.Transport(oneroute.NewTransport(512)), CheckRedirect: ...}
type Transport struct {
	next http.RoundTripper
	hist *prometheus.HistogramVec
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	class := "error"
	if err == nil {
		class = strconv.Itoa(resp.StatusCode/100) + "xx"
	}
	t.hist.WithLabelValues(Endpoint(r.Method, r.URL.Path), class).Observe(time.Since(start).Seconds())
	return resp, err
}

// pathWords are the path segments of OneRoute's API that name an endpoint;
// every other segment (channel ids, message ids) is an id.
var pathWords = map[string]bool{
	"api": true, "public": true, "channel": true, "channels": true, "sms": true, "email": true, "whatsapp": true,
	"dlr": true, "conversation": true, "template": true, "templates": true, "text": true, "campaign": true,
	"embed": true, "push": true, "logs": true, "oneotp": true, "send": true, "verify": true, "messages": true,
}

// Endpoint is the label of a request: its method and its path with every
// segment that is not one of the API's words replaced by {id}, so ids
// never become label values: "POST /api/public/channel/{id}/sms".
func Endpoint(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if !pathWords[s] {
			segs[i] = "{id}"
		}
	}
	if len(segs) > 6 {
		segs = append(segs[:6], "…")
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
	default:
		method = "OTHER"
	}
	return method + " /" + strings.Join(segs, "/")
}
