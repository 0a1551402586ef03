package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// apiErrorBody is every API error: {"error": "..."}.
type apiErrorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiErrorBody{Error: msg})
}

// campaignList is GET /api/campaigns.
type campaignList struct {
	Campaigns []campaigns.Progress `json:"campaigns"`
}

// GET /api/campaigns?limit=N: newest first, at most limit (default 100, 0: all).
func (s *Server) apiList(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a whole number, 0 for all", v))
			return
		}
		limit = n
	}
	list, err := s.progressList(r, limit)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, campaignList{Campaigns: list})
}

// progressList reads the newest campaigns' progress.
func (s *Server) progressList(r *http.Request, limit int) ([]campaigns.Progress, error) {
	ids, err := s.o.Store.List(r.Context(), limit)
	if err != nil {
		return nil, err
	}
	return s.progressOf(r.Context(), ids)
}

// readers is how many campaigns the list reads from Redis at once.
const readers = 8

// progressOf reads the campaigns' progress, readers at a time, in the
// order of ids; campaigns deleted since they were listed are left out.
func (s *Server) progressOf(ctx context.Context, ids []string) ([]campaigns.Progress, error) {
	ps := make([]campaigns.Progress, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, readers)
	var wg sync.WaitGroup
	for i, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ps[i], errs[i] = s.o.Store.Progress(ctx, id)
		}()
	}
	wg.Wait()
	out := ps[:0]
	for i, p := range ps {
		switch {
		case errors.Is(errs[i], storage.ErrNotFound):
			continue // deleted since it was listed
		case errs[i] != nil:
			return nil, errs[i]
		}
		out = append(out, p)
	}
	return out, nil
}

// GET /api/campaigns/{id}: the object of fanout status --json.
func (s *Server) apiGet(w http.ResponseWriter, r *http.Request) {
	p, err := s.o.Store.Progress(r.Context(), r.PathValue("id"))
	if errors.Is(err, storage.ErrNotFound) {
		apiError(w, http.StatusNotFound, fmt.Sprintf("no campaign %q", r.PathValue("id")))
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// controlRequest is the optional body of POST /api/campaigns/{id}/{action}.
type controlRequest struct {
	Reason string `json:"reason"`
}

// POST /api/campaigns/{id}/pause|resume|cancel: the status object after.
func (s *Server) apiControl(w http.ResponseWriter, r *http.Request) {
	var req controlRequest
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	if r.ContentLength != 0 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			apiError(w, bodyErrorCode(err), "body: want {\"reason\": \"...\"}: "+err.Error())
			return
		}
	}
	id := r.PathValue("id")
	code, msg := s.control(r, id, r.PathValue("action"), req.Reason)
	if code != http.StatusOK {
		apiError(w, code, msg)
		return
	}
	s.apiGet(w, r)
}

// control runs pause, resume or cancel through the same storage calls as
// the command line, and returns the HTTP status and, on error, why.
func (s *Server) control(r *http.Request, id, action, reason string) (int, string) {
	if reason == "" {
		reason = "by an operator"
		if user, _, ok := r.BasicAuth(); ok {
			reason = "by " + user + " from the monitor"
		}
	}
	var st campaigns.State
	var err error
	switch action {
	case "pause":
		st, err = s.o.Store.Pause(r.Context(), id, reason)
	case "resume":
		st, err = s.o.Store.Resume(r.Context(), id, reason)
	case "cancel":
		st, err = s.o.Store.Cancel(r.Context(), id, reason)
	default:
		return http.StatusNotFound, fmt.Sprintf("unknown action %q: use pause, resume or cancel", action)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound, fmt.Sprintf("no campaign %q", id)
	case errors.Is(err, storage.ErrTransition):
		return http.StatusConflict, fmt.Sprintf("cannot %s campaign %s: it is %s", action, id, st)
	case err != nil:
		s.o.Logger.Error().Err(err).Str("campaign", id).Str("action", action).Msg("control from the monitor")
		return http.StatusInternalServerError, "could not " + action + " the campaign: " + err.Error()
	}
	s.o.Logger.Info().Str("campaign", id).Str("action", action).Str("state", string(st)).Msg("campaign changed from the monitor")
	return http.StatusOK, ""
}

// submitResponse is POST /api/campaigns's answer.
type submitResponse struct {
	ID     string `json:"id"`
	Result any    `json:"result,omitempty"`
}

// POST /api/campaigns: multipart/form-data with a "spec" part (the YAML
// spec) and a "recipients" part (the recipient file), and an optional "id"
// field; answers 201 {"id": ..., "result": ...}.
func (s *Server) apiSubmit(w http.ResponseWriter, r *http.Request) {
	if s.o.Submit == nil {
		apiError(w, http.StatusNotImplemented, "this monitor does not take campaigns")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		apiError(w, http.StatusBadRequest, "want multipart/form-data with parts spec (the campaign YAML) and recipients (the recipient file): "+err.Error())
		return
	}
	sub, cleanup, code, err := s.readSubmission(mr)
	defer cleanup()
	if err != nil {
		apiError(w, code, err.Error())
		return
	}
	id, res, err := s.o.Submit(r.Context(), sub)
	switch {
	case errors.Is(err, ErrBadInput):
		apiError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrBadInput.Error()+": "))
		return
	case errors.Is(err, storage.ErrSpecConflict):
		apiError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		s.serverError(w, r, err)
		return
	}
	s.o.Logger.Info().Str("campaign", id).Msg("campaign submitted through the monitor")
	writeJSON(w, http.StatusCreated, submitResponse{ID: id, Result: res})
}

// readSubmission reads the multipart parts: the spec into memory (at most
// campaigns.MaxSpecBytes), the recipients into a temporary file.
func (s *Server) readSubmission(mr *multipart.Reader) (sub Submission, cleanup func(), code int, err error) {
	cleanup = func() {}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sub, cleanup, bodyErrorCode(err), fmt.Errorf("read the upload: %w", err)
		}
		switch part.FormName() {
		case "spec":
			data, err := io.ReadAll(io.LimitReader(part, campaigns.MaxSpecBytes+1))
			if err != nil {
				return sub, cleanup, bodyErrorCode(err), fmt.Errorf("read the spec: %w", err)
			}
			if len(data) > campaigns.MaxSpecBytes {
				return sub, cleanup, http.StatusRequestEntityTooLarge, fmt.Errorf("spec: over %d bytes, the cap for a campaign spec", campaigns.MaxSpecBytes)
			}
			sub.Spec, sub.SpecName = data, "spec"
			if n := filepath.Base(part.FileName()); part.FileName() != "" && n != "." && n != "/" {
				sub.SpecName = n
			}
		case "recipients":
			if sub.RecipientsPath != "" {
				return sub, cleanup, http.StatusBadRequest, errors.New("more than one recipients part")
			}
			f, err := os.CreateTemp("", "fanout-upload-*"+uploadExt(part.FileName()))
			if err != nil {
				return sub, cleanup, http.StatusInternalServerError, fmt.Errorf("store the upload: %w", err)
			}
			cleanup = func() { os.Remove(f.Name()) } //nolint:errcheck // best effort: a CreateTemp file (0600) in TMPDIR
			sub.RecipientsPath = f.Name()
			_, err = io.Copy(f, part)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return sub, cleanup, bodyErrorCode(err), fmt.Errorf("read the recipients: %w", err)
			}
		case "id":
			v, err := io.ReadAll(io.LimitReader(part, 100))
			if err != nil {
				return sub, cleanup, bodyErrorCode(err), err
			}
			sub.ID = strings.TrimSpace(string(v))
		default:
			return sub, cleanup, http.StatusBadRequest, fmt.Errorf("unknown part %q: send spec, recipients and optionally id", part.FormName())
		}
	}
	switch {
	case sub.Spec == nil:
		return sub, cleanup, http.StatusBadRequest, errors.New("missing part spec: the campaign YAML")
	case sub.RecipientsPath == "":
		return sub, cleanup, http.StatusBadRequest, errors.New("missing part recipients: the recipient file (CSV, JSON or NDJSON)")
	}
	return sub, cleanup, 0, nil
}

// uploadExt keeps the extension of an uploaded recipient file, which tells
// its format, when it is one fanout reads.
func uploadExt(name string) string {
	switch ext := strings.ToLower(filepath.Ext(name)); ext {
	case ".csv", ".tsv", ".json", ".ndjson", ".jsonl", ".txt":
		return ext
	}
	return ""
}

// bodyErrorCode is 413 for a body over the limit, else 400.
func bodyErrorCode(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.o.Logger.Error().Err(err).Str("path", r.URL.Path).Msg("monitor request failed")
	apiError(w, http.StatusInternalServerError, err.Error())
}
