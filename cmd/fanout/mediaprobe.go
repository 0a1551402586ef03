package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/media"
	"github.com/fanoutdev/fanout/worker"
)

// probeMedia asks each fixed media link of the spec (a template header's
// url, a whatsapp_session media_url) for its content type and size with a
// HEAD request (media.Probe through client) and refuses the spec when one
// is unreachable or WhatsApp would not take it, naming the spec line. Run
// by dispatch and run before anything is enqueued when FANOUT_MEDIA_PROBE
// is true. Links templated per recipient are checked (media.Check) as
// each row renders.
func probeMedia(ctx context.Context, spec campaigns.Spec, client *http.Client, o media.Options) error {
	type link struct {
		key, url string
		kind     media.Kind
	}
	var links []link
	if t, key := spec.SessionTemplate(), "template"; t != nil {
		if spec.Channel == campaigns.ChannelWhatsAppSession {
			key = "fallback_template"
		}
		if u := t.FixedMediaURL(); u != "" {
			links = append(links, link{key + ".header", u, media.Kind(t.Header.Type)})
		}
	}
	if spec.Channel == campaigns.ChannelWhatsAppSession && spec.MediaURL != "" {
		links = append(links, link{"media_url", spec.MediaURL, media.Kind(strings.ToLower(worker.AttachmentType(spec.MediaURL)))})
	}
	var errs campaigns.SpecErrors
	for _, l := range links {
		if _, err := media.Probe(ctx, client, l.url, l.kind, o); err != nil {
			var re *media.RefusedError
			if errors.As(err, &re) {
				errs = append(errs, spec.Errorf(l.key, "%s: %v (FANOUT_MEDIA_PROBE is on): use a link WhatsApp can fetch", l.key, err))
			} else {
				errs = append(errs, spec.Errorf(l.key, "%s: %v: the link could not be checked (FANOUT_MEDIA_PROBE is on)", l.key, err))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
