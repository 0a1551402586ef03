package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// CheckFunc reports whether a dependency is ready; its error says why not.
type CheckFunc func(ctx context.Context) error

// HealthHandler serves a worker's small HTTP port: /metrics (metrics),
// /healthz (the process answers: always 200) and /readyz (200 when every
// check passes, else 503 with the failing checks). Health needs no
// authentication and shows no data.
func HealthHandler(metrics http.Handler, checks map[string]CheckFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", ReadyHandler(checks))
	return mux
}

// ReadyHandler runs every check with a 2-second deadline and answers 200
// when all pass, else 503; the body names each check's result.
func ReadyHandler(checks map[string]CheckFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		out := map[string]string{"status": "ok"}
		code := http.StatusOK
		for name, check := range checks {
			if err := check(ctx); err != nil {
				out[name] = err.Error()
				out["status"] = "not ready"
				code = http.StatusServiceUnavailable
				continue
			}
			out[name] = "ok"
		}
		writeHealth(w, code, out)
	})
}

func writeHealth(w http.ResponseWriter, code int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}
