package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/media"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/preflight"
)

// offlineNote is what dispatch and run print when --offline skips the
// preflight.
const offlineNote = "preflight skipped (--offline): channel, template and parameters were not checked against OneRoute"

// offlineUsage is the help of --offline, a flag of dispatch and run.
const offlineUsage = "skip the preflight: do not check the channel, template and parameters against OneRoute"

// checkSpec is the preflight of dispatch and run: the spec's channel,
// from number, template and parameter count checked against the OneRoute
// account, before anything is enqueued. A wrong spec is bad input (exit 2)
// naming its lines; a OneRoute that cannot be asked is a runtime error.
// With offline it only says it skipped. client may be nil: one is built
// from cfg. With FANOUT_MEDIA_PROBE, the spec's fixed media links are
// probed first (probeMedia), offline or not.
func checkSpec(ctx context.Context, e *env, cfg config.Config, client *oneroute.Client, spec campaigns.Spec, offline bool) error {
	if cfg.Dispatch.MediaProbe {
		if err := probeMedia(ctx, spec, media.NewClient(media.Options{}), media.Options{}); err != nil {
			return &inputError{fmt.Errorf("a media link of the spec was refused; nothing was enqueued:\n%w", err)}
		}
	}
	if offline {
		fmt.Fprintln(e.stderr, offlineNote)
		return nil
	}
	if spec.Channel == campaigns.ChannelPush {
		// A push names a widget, and OneRoute lists no widgets: there is
		// nothing to check, so no API key is needed for it.
		return nil
	}
	if client == nil {
		if err := cfg.RequireAPIKey(); err != nil {
			return &inputError{fmt.Errorf("%w (the preflight checks the spec's channel and template against OneRoute; --offline skips it)", err)}
		}
		c, err := newOneRoute(cfg.OneRoute)
		if err != nil {
			return &inputError{err}
		}
		client = c
	}
	err := preflight.Check(ctx, spec, client)
	switch {
	case err == nil:
		return nil
	case preflight.IsFinding(err):
		return &inputError{fmt.Errorf("the spec does not match the OneRoute account; nothing was enqueued:\n%w", err)}
	default:
		return fmt.Errorf("%w (nothing was enqueued; --offline dispatches without the check)", err)
	}
}

// catalogClient parses the flags of channels and templates and builds
// the OneRoute client they read from.
func catalogClient(e *env, fs *flag.FlagSet, cfgFile *string, args []string, want string) ([]string, *oneroute.Client, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if want == "" && len(pos) > 1 {
		return nil, nil, &usageError{fmt.Sprintf("unexpected argument %q: want at most one medium (sms, whatsapp or email)", pos[1])}
	}
	if want != "" {
		if err := checkArgs(pos, want); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := loadConfig(e, *cfgFile)
	if err != nil {
		return nil, nil, err
	}
	if err := cfg.RequireAPIKey(); err != nil {
		return nil, nil, &inputError{err}
	}
	c, err := newOneRoute(cfg.OneRoute)
	if err != nil {
		return nil, nil, &inputError{err}
	}
	return pos, c, nil
}

// channelJSON is one line of channels --json.
type channelJSON struct {
	ID     string `json:"id"`
	Medium string `json:"medium"`
	Sender string `json:"sender"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

func cmdChannels(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "channels", "[sms|whatsapp|email] [--json]", `
Lists the OneRoute account's channels a campaign spec can name: the
channel_id of an sms or email spec, the from number of a whatsapp_template
spec. With a medium, only its channels. Reads ONEROUTE_BASE_URL with
ONEROUTE_API_KEY.

Exit codes: 0 listed, 1 OneRoute could not be asked, 2 bad input.`)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print a JSON array for scripts instead of a table")
	pos, client, err := catalogClient(e, fs, cfgFile, args, "")
	if err != nil {
		return err
	}
	media := preflight.Media
	if len(pos) == 1 {
		m := strings.ToLower(pos[0])
		if m != oneroute.MediumSMS && m != oneroute.MediumWhatsApp && m != oneroute.MediumEmail {
			return &usageError{fmt.Sprintf("medium %q: use sms, whatsapp or email", pos[0])}
		}
		media = []string{m}
	}
	out := []channelJSON{}
	for _, m := range media {
		list, err := client.FetchChannels(ctx, m)
		if err != nil {
			return err
		}
		for _, ch := range list {
			out = append(out, channelJSON{ID: ch.ID, Medium: m, Sender: preflight.Sender(ch), Name: ch.Name, Status: ch.Status})
		}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEDIUM\tID\tSENDER\tNAME\tSTATUS")
	for _, c := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Medium, c.ID, c.Sender, c.Name, c.Status)
	}
	return tw.Flush()
}

// templateJSON is one line of templates --json.
type templateJSON struct {
	Name       string `json:"name"`
	Language   string `json:"language"`
	Status     string `json:"status"`
	Category   string `json:"category,omitempty"`
	Parameters int    `json:"parameters"`
	Buttons    int    `json:"buttons"`
	Body       string `json:"body"`
}

func cmdTemplates(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "templates", "CHANNEL [--json]", `
Lists a WhatsApp channel's templates: the template.name, template.language
and number of template.parameters a whatsapp_template spec can give, and
whether each is approved (only approved ones can be sent; a spec cannot
give button values, so one with BUTTONS above 0 cannot be sent either). CHANNEL is the
channel id or its WhatsApp number (the spec's from). Reads
ONEROUTE_BASE_URL with ONEROUTE_API_KEY.

Exit codes: 0 listed, 1 OneRoute could not be asked, 2 bad input.`)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print a JSON array for scripts instead of a table")
	pos, client, err := catalogClient(e, fs, cfgFile, args, "one WhatsApp channel id or number")
	if err != nil {
		return err
	}
	id, err := whatsAppChannelID(ctx, client, pos[0])
	if err != nil {
		return err
	}
	list, err := client.FetchTemplates(ctx, id)
	if err != nil {
		return err
	}
	out := make([]templateJSON, len(list))
	for i, t := range list {
		out[i] = templateJSON{Name: t.Name, Language: t.Locale, Status: t.Status, Category: t.Category, Parameters: t.Placeholders(), Buttons: t.ButtonValues(), Body: t.Body}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLANGUAGE\tSTATUS\tPARAMETERS\tBUTTONS\tCATEGORY")
	for _, t := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", t.Name, t.Language, t.Status, t.Parameters, t.Buttons, t.Category)
	}
	return tw.Flush()
}

// whatsAppChannelID turns what templates was given, a channel id or a
// WhatsApp number, into the channel id; an unknown one is bad input that
// lists the WhatsApp channels.
func whatsAppChannelID(ctx context.Context, client *oneroute.Client, arg string) (string, error) {
	list, err := client.FetchChannels(ctx, oneroute.MediumWhatsApp)
	if err != nil {
		return "", err
	}
	var names []string
	for _, ch := range list {
		if ch.ID == arg || (ch.Phone != nil && oneroute.Phone(*ch.Phone) == oneroute.Phone(arg)) {
			return ch.ID, nil
		}
		names = append(names, preflight.Describe(ch))
	}
	if len(names) == 0 {
		return "", &inputError{fmt.Errorf("%s is not a WhatsApp channel: this account has none (see: fanout channels)", arg)}
	}
	return "", &inputError{fmt.Errorf("%s is not a WhatsApp channel of this account: use one of %s", arg, strings.Join(names, ", "))}
}

// submitPreflight is the preflight of a campaign posted to the monitor
// (POST /api/campaigns), when the monitor has an API key to ask OneRoute
// with; without one it is skipped and the workers' sends are the check.
func submitPreflight(ctx context.Context, cfg config.Config, spec campaigns.Spec) error {
	if cfg.RequireAPIKey() != nil {
		return nil
	}
	client, err := newOneRoute(cfg.OneRoute)
	if err != nil {
		return err
	}
	return preflight.Check(ctx, spec, client)
}
