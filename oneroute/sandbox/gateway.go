package sandbox

import (
	"math/rand/v2"
	"net/http"
)

// gatewayError answers an accepted send as a gateway in front of the API
// does when its upstream was too slow: 502 Bad Gateway or 504 Gateway
// Timeout, with the gateway's HTML page instead of the API's JSON. The
// messages were accepted (and count as such in Stats); the client cannot
// tell, which is the point of the fault.
func gatewayError(w http.ResponseWriter) {
	status, text := http.StatusGatewayTimeout, "504 Gateway Time-out"
	if rand.IntN(2) == 0 {
		status, text = http.StatusBadGateway, "502 Bad Gateway"
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("<html><head><title>" + text + "</title></head><body><center><h1>" + text + "</h1></center><hr><center>nginx</center></body></html>\n"))
}
