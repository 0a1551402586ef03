package media

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
)

// Kind is the kind of media a link is sent as.
type Kind string

// Media kinds, as OneRoute's attachment types name them (lowercase).
const (
	Image    Kind = "image"
	Video    Kind = "video"
	Document Kind = "document"
	Audio    Kind = "audio"
)

// Limits are WhatsApp's (Cloud API) accepted content types and maximum
// sizes per kind of media; OneRoute does not document its own, so these are
// the platform's.
var Limits = map[Kind]struct {
	Types []string
	Max   int64
}{
	Image:    {[]string{"image/jpeg", "image/png"}, 5 << 20},
	Video:    {[]string{"video/mp4", "video/3gpp"}, 16 << 20},
	Audio:    {[]string{"audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg"}, 16 << 20},
	Document: {[]string{"application/pdf", "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/vnd.ms-powerpoint", "application/vnd.openxmlformats-officedocument.presentationml.presentation", "text/plain"}, 100 << 20},
}

// Info is what a probe learnt of a link.
type Info struct {
	ContentType string
	Size        int64 // -1 when the server did not say
}

// Probe checks a link with Check, then asks for it with a HEAD request
// through NewClient(o) and checks its content type and size against the
// kind's Limits. The body is never fetched. A server that refuses HEAD (405
// or 501) passes with the type and size unknown (Size -1).
func Probe(ctx context.Context, c *http.Client, raw string, kind Kind, o Options) (Info, error) {
	if err := Check(raw, o); err != nil {
		return Info{}, err
	}
	lim, ok := Limits[kind]
	if !ok {
		return Info{}, fmt.Errorf("unknown media kind %q: use image, video, document or audio", kind)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, raw, nil)
	if err != nil {
		return Info{}, &RefusedError{URL: redact(raw), Reason: err.Error()}
	}
	req.Header.Set("User-Agent", "fanout-media-check/1")
	resp, err := c.Do(req)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return Info{}, re
		}
		return Info{}, fmt.Errorf("media URL %s: %w", redact(raw), err)
	}
	resp.Body.Close()
	info := Info{Size: resp.ContentLength}
	switch {
	case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		return Info{Size: -1}, nil
	case resp.StatusCode >= 300:
		return info, &RefusedError{URL: redact(raw), Reason: fmt.Sprintf("the server answered %s; check the link works without a login", resp.Status)}
	}
	info.ContentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !slices.Contains(lim.Types, strings.ToLower(info.ContentType)) {
		return info, &RefusedError{URL: redact(raw), Reason: fmt.Sprintf("content type %q is not a WhatsApp %s type (%s)", info.ContentType, kind, strings.Join(lim.Types, ", "))}
	}
	if info.Size > lim.Max {
		return info, &RefusedError{URL: redact(raw), Reason: fmt.Sprintf("%d bytes is over WhatsApp's %d MiB limit for %s", info.Size, lim.Max>>20, kind)}
	}
	return info, nil
}
