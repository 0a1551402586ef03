package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/recipients"
)

// exitOTPRefused is fanout otp verify's answer to a code OneRoute refused
// (wrong, expired, already used, or an unknown key): the check ran and said
// no, which a script must tell apart from a failure to ask (exitError).
const exitOTPRefused = 3

// otpRefusedError is a verification OneRoute answered with a refusal.
type otpRefusedError struct{ err error }

func (e *otpRefusedError) Error() string { return e.err.Error() }
func (e *otpRefusedError) Unwrap() error { return e.err }

// cmdOTP sends and verifies one-time passwords: the transactional messages
// that teams send beside campaigns, through the same client, configuration
// and redaction.
func cmdOTP(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stdout, `Usage: fanout otp templates|send|verify [flags]

One-time passwords through OneRoute, beside campaigns:

  fanout otp templates                 list the OneOTP templates (--json)
  fanout otp send --template ID --to +2348031234567 [--channels sms,whatsapp]
                                       OneRoute makes a code, sends it and
                                       prints the key that verifies it
  fanout otp send --to +2348031234567 --message "Your code is 4821"
                                       send your own OTP text through
                                       OneRoute's OTP SMS route (no channel)
  fanout otp verify --key KEY --code 4821 --to +2348031234567
                                       exit 0 when the code matches, 3 when
                                       OneRoute refuses it (wrong, expired,
                                       used, unknown key)

Settings: ONEROUTE_API_KEY and ONEROUTE_BASE_URL as for the other commands.
Run 'fanout otp <command> --help' for its flags.
`)
		if len(args) == 0 {
			return &usageError{"want templates, send or verify"}
		}
		return nil
	}
	switch args[0] {
	case "templates":
		return otpTemplates(ctx, e, args[1:])
	case "send":
		return otpSend(ctx, e, args[1:])
	case "verify":
		return otpVerify(ctx, e, args[1:])
	}
	return &usageError{fmt.Sprintf("unknown otp command %q: want templates, send or verify", args[0])}
}

func otpClient(e *env, cfgFile string) (*oneroute.Client, error) {
	cfg, err := loadConfig(e, cfgFile)
	if err != nil {
		return nil, err
	}
	if cfg.OneRoute.APIKey.Reveal() == "" {
		return nil, &inputError{errors.New("no OneRoute API key: set ONEROUTE_API_KEY (or ONEROUTE_API_KEY_FILE)")}
	}
	return newOneRoute(cfg.OneRoute)
}

func otpTemplates(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "otp templates", "[flags]", `
Lists the account's OneOTP templates: the ids 'fanout otp send --template'
takes, with their language, status and body ({{otp}}, {{minutes}} and
{{firm}} are filled in by OneRoute).`)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print a JSON array of templates (OneRoute's fields)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	c, err := otpClient(e, *cfgFile)
	if err != nil {
		return err
	}
	ts, err := c.FetchOTPTemplates(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if ts == nil {
			ts = []oneroute.OTPTemplate{}
		}
		return json.NewEncoder(e.stdout).Encode(ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tLOCALE\tSTATUS\tBODY")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Locale, t.Status, oneLine(t.Body, 60))
	}
	return tw.Flush()
}

// oneLine shortens s to one line of at most n runes for a table.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// otpSent is fanout otp send's JSON output. Field names are a contract.
type otpSent struct {
	// Key verifies the code (OneOTP only); keep it server side.
	Key string `json:"key,omitempty"`
	// Sent has one entry per medium used: its message id or a note.
	Sent []oneroute.OTPDelivery `json:"sent"`
	// Errors has one entry per medium that failed.
	Errors []oneroute.OTPFailure `json:"errors"`
}

func otpSend(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "otp send", "[flags]", `
Sends a one-time password. With --template, OneRoute's OneOTP makes the code,
sends it through --channels and returns a key; keep the key (your server,
not the customer's browser) and check what the customer types with
'fanout otp verify'. With --message instead, your own text (the code in it)
goes as an SMS through OneRoute's OTP route, which needs no channel; you
check that code yourself.

Numbers without a country code are read in --region. The key and message
ids are printed on standard output (--json for scripts); nothing of the
API key ever is.`)
	cfgFile := configFlag(fs)
	template := fs.String("template", "", "OneOTP template `ID` ('fanout otp templates' lists them)")
	channels := fs.String("channels", "sms", "`media` for OneOTP, comma-separated: sms, whatsapp, email, ussd")
	to := fs.String("to", "", "the customer's phone `number` (sms, whatsapp, ussd, --message)")
	email := fs.String("email", "", "the customer's email `address` (email)")
	region := fs.String("region", "NG", "`ISO code` of the country for numbers without a country code")
	length := fs.Int("length", 0, "digits in the code (OneRoute's default: 4)")
	minutes := fs.Int("minutes", 0, "minutes the code stays valid (OneRoute's default: 5)")
	letters := fs.Bool("letters", false, "allow lower-case letters in the code")
	message := fs.String("message", "", "send this `text` through the OTP SMS route instead of OneOTP")
	asJSON := fs.Bool("json", false, "print the result as JSON: key, sent, errors")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	phone := ""
	if *to != "" {
		if phone, err = recipients.NormalizePhone(*to, strings.ToUpper(*region)); err != nil {
			return &usageError{fmt.Sprintf("--to: %v", err)}
		}
	}
	if *email != "" {
		if *email, err = recipients.NormalizeEmail(*email); err != nil {
			return &usageError{fmt.Sprintf("--email: %v", err)}
		}
	}
	var out otpSent
	switch {
	case *message != "" && *template != "":
		return &usageError{"--message and --template exclude each other: OneOTP makes its own text from the template"}
	case *message != "":
		if phone == "" {
			return &usageError{"--message needs --to, the number to text"}
		}
		c, err := otpClient(e, *cfgFile)
		if err != nil {
			return err
		}
		res, err := c.SendOTPSMS(ctx, oneroute.OTPSMSRequest{Message: *message, Recipients: []string{phone}})
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Accepted() {
				out.Sent = append(out.Sent, oneroute.OTPDelivery{Medium: oneroute.OTPSMS, Data: r.Response})
			} else {
				out.Errors = append(out.Errors, oneroute.OTPFailure{Medium: oneroute.OTPSMS, Error: r.Response})
			}
		}
	case *template == "":
		return &usageError{"want --template ID (OneOTP) or --message TEXT (OTP SMS route)"}
	default:
		req := oneroute.OTPRequest{TemplateID: *template, PhoneNumber: phone, Email: *email}
		for _, ch := range strings.Split(*channels, ",") {
			ch = strings.ToUpper(strings.TrimSpace(ch))
			switch ch {
			case oneroute.OTPSMS, oneroute.OTPWhatsApp, oneroute.OTPUSSD:
				if phone == "" {
					return &usageError{fmt.Sprintf("--channels %s needs --to, the customer's phone number", strings.ToLower(ch))}
				}
			case oneroute.OTPEmail, "EMAILS":
				if *email == "" {
					return &usageError{"--channels email needs --email, the customer's address"}
				}
				ch = oneroute.OTPEmail
			default:
				return &usageError{fmt.Sprintf("--channels: unknown medium %q: want sms, whatsapp, email or ussd", strings.ToLower(ch))}
			}
			req.Channels = append(req.Channels, ch)
		}
		if *length < 0 || *length > 12 || *minutes < 0 {
			return &usageError{"--length wants 1 to 12 and --minutes a positive number"}
		}
		if *length > 0 || *minutes > 0 || *letters {
			req.Options = &oneroute.OTPOptions{Length: *length, Minutes: *minutes}
			if *letters {
				req.Options.Alphabets = letters
			}
		}
		c, err := otpClient(e, *cfgFile)
		if err != nil {
			return err
		}
		sent, err := c.SendOTP(ctx, req)
		if err != nil {
			return err
		}
		out = otpSent{Key: sent.Key, Sent: sent.Data, Errors: sent.Errors}
	}
	if out.Sent == nil {
		out.Sent = []oneroute.OTPDelivery{}
	}
	if out.Errors == nil {
		out.Errors = []oneroute.OTPFailure{}
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return err
		}
	} else {
		if out.Key != "" {
			fmt.Fprintf(e.stdout, "key %s\n", out.Key)
		}
		for _, d := range out.Sent {
			fmt.Fprintf(e.stdout, "sent by %s: %s\n", strings.ToLower(d.Medium), d.Data)
		}
		for _, f := range out.Errors {
			fmt.Fprintf(e.stdout, "not sent by %s: %s\n", strings.ToLower(f.Medium), f.Error)
		}
	}
	if len(out.Sent) == 0 {
		return errors.New("the code was sent through no medium (see the errors above)")
	}
	return nil
}

// otpVerified is fanout otp verify's JSON output. Field names are a contract.
type otpVerified struct {
	// Verified is true when OneRoute matched the code.
	Verified bool `json:"verified"`
	// Reason is OneRoute's refusal: mismatch, expired, used or invalid_key.
	Reason string `json:"reason,omitempty"`
	// Message is OneRoute's own words.
	Message string `json:"message"`
}

func otpVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "otp verify", "[flags]", `
Checks the code a customer typed against the key 'fanout otp send' printed.
Exit status: 0 the code matches; 3 OneRoute refused it (wrong code, expired,
already used, unknown key: see the reason); 1 OneRoute could not be asked;
2 bad usage.`)
	cfgFile := configFlag(fs)
	key := fs.String("key", "", "the `key` 'fanout otp send' printed")
	code := fs.String("code", "", "the `code` the customer typed")
	to := fs.String("to", "", "the phone `number` the code was sent to (or --email)")
	email := fs.String("email", "", "the email `address` the code was sent to")
	region := fs.String("region", "NG", "`ISO code` of the country for numbers without a country code")
	asJSON := fs.Bool("json", false, "print the result as JSON: verified, reason, message")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	if *key == "" || *code == "" || (*to == "") == (*email == "") {
		return &usageError{"want --key, --code and one of --to or --email"}
	}
	ident := *email
	if *to != "" {
		if ident, err = recipients.NormalizePhone(*to, strings.ToUpper(*region)); err != nil {
			return &usageError{fmt.Sprintf("--to: %v", err)}
		}
	}
	c, err := otpClient(e, *cfgFile)
	if err != nil {
		return err
	}
	v, err := c.VerifyOTP(ctx, oneroute.OTPVerifyRequest{Key: *key, OTP: *code, Identifier: ident})
	out := otpVerified{Verified: err == nil, Message: v.Response}
	if err != nil {
		reasons := []struct {
			err  error
			name string
		}{{oneroute.ErrOTPMismatch, "mismatch"}, {oneroute.ErrOTPExpired, "expired"}, {oneroute.ErrOTPUsed, "used"}, {oneroute.ErrOTPKeyInvalid, "invalid_key"}}
		for _, r := range reasons {
			if errors.Is(err, r.err) {
				out.Reason = r.name
			}
		}
		if out.Reason == "" {
			return err
		}
		var ae *oneroute.APIError
		if errors.As(err, &ae) {
			out.Message = ae.Message
		}
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return err
		}
	} else if out.Verified {
		fmt.Fprintf(e.stdout, "verified: %s\n", out.Message)
	} else {
		fmt.Fprintf(e.stdout, "refused (%s): %s\n", out.Reason, out.Message)
	}
	if !out.Verified {
		return &otpRefusedError{err}
	}
	return nil
}
