package monitor

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// Campaigns is what the monitor needs of *storage.Store: the same calls as
// fanout list, status, pause, resume and cancel.
type Campaigns interface {
	List(ctx context.Context, limit int) ([]string, error)
	Progress(ctx context.Context, id string) (campaigns.Progress, error)
	Spec(ctx context.Context, id string) (campaigns.Spec, error)
	Pause(ctx context.Context, id, reason string) (campaigns.State, error)
	Resume(ctx context.Context, id, reason string) (campaigns.State, error)
	Cancel(ctx context.Context, id, reason string) (campaigns.State, error)
}

var _ Campaigns = (*storage.Store)(nil)

// Submission is a campaign posted to POST /api/campaigns: a spec and the
// path of its uploaded recipient file, saved by the monitor in a temporary
// file that is removed after SubmitFunc returns.
type Submission struct {
	// Spec is the spec file's bytes, SpecName its name (for errors).
	Spec     []byte
	SpecName string
	// RecipientsPath is the uploaded recipient file; its extension is the
	// uploaded file's (.csv, .json, .ndjson, .tsv) or none.
	RecipientsPath string
	// ID, when set, replaces the spec's id (like dispatch --id).
	ID string
}

// SubmitFunc dispatches a submission the way fanout dispatch --detach
// does, and returns the campaign id and a result to show as JSON. Errors
// that are the submitter's fault wrap ErrBadInput (400) or
// storage.ErrSpecConflict (409).
type SubmitFunc func(ctx context.Context, s Submission) (id string, result any, err error)

// ErrBadInput marks a SubmitFunc error caused by the request.
var ErrBadInput = errors.New("bad input")

// Options configure a Server. Store is required; every other field may be
// left zero.
type Options struct {
	// Store holds the campaigns.
	Store Campaigns
	// Auth decides who may do what.
	Auth Auth
	// AsynqUI serves the Asynq web UI for operators at /monitoring/, and
	// AsynqUIReadOnly the same UI without its buttons for viewers; nil: no
	// UI (404).
	AsynqUI, AsynqUIReadOnly http.Handler
	// Metrics serves /metrics; nil: 404.
	Metrics http.Handler
	// Ready answers /readyz; nil: always ready.
	Ready http.Handler
	// Submit handles POST /api/campaigns; nil: 501.
	Submit SubmitFunc
	// MaxUpload caps the body of POST /api/campaigns in bytes; default
	// DefaultMaxUpload.
	MaxUpload int64
	// History charts counters over time; nil: a new one, which the
	// dashboard fills as pages are viewed (run History.Run to sample in the
	// background).
	History *History
	// DefaultRate is the configured per-sender limit, shown for campaigns
	// without a rate of their own.
	DefaultRate campaigns.Rate
	// Refresh is how often the dashboard pages reload; default 5s.
	Refresh time.Duration
	// PageSize is how many campaigns the list page shows; default 50.
	PageSize int
	// Logger logs refused and failed requests.
	Logger zerolog.Logger
}

// DefaultMaxUpload caps a submitted campaign (spec and recipient file).
const DefaultMaxUpload = 100 << 20

// maxControlBody caps the body of the small POSTs (pause, resume, cancel).
const maxControlBody = 64 << 10

// Server is the monitor's HTTP handler: dashboard, JSON API, metrics,
// health and the Asynq UI, behind authentication. It is safe for
// concurrent use.
type Server struct {
	o       Options
	handler http.Handler
	pages   *pages
}

// New returns the monitor's handler.
func New(o Options) *Server {
	if o.MaxUpload <= 0 {
		o.MaxUpload = DefaultMaxUpload
	}
	if o.History == nil {
		o.History = NewHistory()
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.PageSize <= 0 {
		o.PageSize = 50
	}
	s := &Server{o: o, pages: loadPages()}
	s.handler = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	open := http.NewServeMux()
	open.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if s.o.Ready != nil {
		open.Handle("GET /readyz", s.o.Ready)
	} else {
		open.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.listPage)
	mux.HandleFunc("GET /campaigns/{id}", s.campaignPage)
	mux.HandleFunc("POST /campaigns/{id}/{action}", s.controlForm)
	mux.HandleFunc("GET /api/campaigns", s.apiList)
	mux.HandleFunc("GET /api/campaigns/{id}", s.apiGet)
	mux.HandleFunc("POST /api/campaigns", s.apiSubmit)
	mux.HandleFunc("POST /api/campaigns/{id}/{action}", s.apiControl)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "no such API route: "+r.Method+" "+r.URL.Path+"; see docs/monitoring.md")
	})
	if s.o.Metrics != nil {
		mux.Handle("GET /metrics", s.o.Metrics)
	}
	if s.o.AsynqUI != nil {
		mux.Handle("/monitoring/", s.asynqUI())
		mux.Handle("GET /monitoring", http.RedirectHandler("/monitoring/", http.StatusMovedPermanently))
	}

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refuse(w, r, http.StatusForbidden, "cross-origin request refused: state-changing requests must come from the monitor's own pages or from a script without an Origin header")
	}))
	authed := s.authenticate(csrf.Handler(mux))

	root := http.NewServeMux()
	root.Handle("GET /healthz", open)
	root.Handle("GET /readyz", open)
	root.Handle("/", authed)
	return securityHeaders(root)
}

// asynqUI picks the operators' or the viewers' Asynq UI.
func (s *Server) asynqUI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := s.o.AsynqUI
		if roleFrom(r) < RoleOperator && s.o.AsynqUIReadOnly != nil {
			h = s.o.AsynqUIReadOnly
		}
		h.ServeHTTP(w, r)
	})
}

type roleKey struct{}

func roleFrom(r *http.Request) Role {
	role, _ := r.Context().Value(roleKey{}).(Role)
	return role
}

// authenticate answers 401 without valid credentials and 403 to a viewer's
// state-changing request, and passes the role on in the context.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := s.o.Auth.RoleOf(r)
		if role == RoleNone {
			w.Header().Set("WWW-Authenticate", `Basic realm="fanout monitor", charset="UTF-8"`)
			s.refuse(w, r, http.StatusUnauthorized, "authentication required: log in with the credentials of FANOUT_MONITOR_AUTH or FANOUT_MONITOR_READONLY_AUTH")
			return
		}
		if role < RoleOperator && !safeMethod(r.Method) {
			why := "read-only user: you may look but not change anything"
			if s.o.Auth.ReadOnly {
				why = "the monitor is read-only (FANOUT_MONITOR_READONLY): nothing can be changed here"
			}
			s.refuse(w, r, http.StatusForbidden, why)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// refuse answers an error as JSON under /api/ and /monitoring/api/, as text
// elsewhere, and logs it at debug level.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.o.Logger.Debug().Int("status", code).Str("method", r.Method).Str("path", r.URL.Path).Msg(msg)
	if strings.Contains(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "json") {
		apiError(w, code, msg)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	w.Write([]byte(msg + "\n"))
}

// securityHeaders keeps the pages out of frames and stops content sniffing.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
