package campaigns

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fanoutdev/fanout/media"
)

// The template language of a spec is Go's text/template, restricted to what
// message personalisation needs, so that what a spec says is what is sent
// and no template can loop, recurse or grow without bound:
//
//   - fields: {{.first_name}}, {{index . "first name"}}, {{$.first_name}};
//   - conditionals: {{if}}, {{else}}, {{with}}, and eq, ne, lt, le, gt, ge,
//     and, or, not, len;
//   - formatting: default, upper, lower, title, trim and printf (with a
//     literal format and widths of at most MaxPrintfWidth).
//
// range, template, define, block, break, continue, call, html, js,
// urlquery, print, println and slice are refused when the spec is loaded,
// with the spec's line. Every template form that reads a field renders per
// recipient; a template without any action is one shared text.
//
// An HTML email body (Spec.HTML) is vetted the same way, then rendered by
// html/template: each value is escaped for the context it lands in (text,
// attribute, URL, script), so a recipient's name cannot inject markup or
// links. Subjects and every other text render with text/template.

// Limits on templates and what they render.
const (
	// MaxTemplateBytes caps one template's source (the message, subject or
	// one WhatsApp parameter); an email body may be MaxEmailBytes.
	MaxTemplateBytes = 64 << 10
	// MaxTemplateActions caps the actions ({{...}}) in one template.
	MaxTemplateActions = 2000
	// MaxPrintfWidth caps a width or precision in a printf format.
	MaxPrintfWidth = 1000
	// MaxSMSSegments caps a rendered SMS: 10 segments is 1,530 GSM-7
	// characters or 670 UCS-2 characters.
	MaxSMSSegments = 10
	// MaxEmailBytes caps a rendered email body (and its template).
	MaxEmailBytes = 256 << 10
	// MaxSubjectBytes caps a rendered email subject (RFC 5322's line limit).
	MaxSubjectBytes = 998
	// MaxParamChars caps one rendered WhatsApp template parameter (Meta's
	// limit for a template body is 1,024 characters).
	MaxParamChars = 1024
	// MaxRenderTime is how long rendering one recipient's content may take
	// when the spec is checked; a slower template is refused.
	MaxRenderTime = 100 * time.Millisecond
)

// ErrEmptyContent reports content that rendered empty for a recipient: an
// empty message is never sent.
var ErrEmptyContent = errors.New("renders empty")

// allowedFuncs are the functions a template may call.
var allowedFuncs = map[string]bool{
	"index": true, "default": true, "upper": true, "lower": true, "title": true, "trim": true, "printf": true,
	"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true, "and": true, "or": true, "not": true, "len": true,
}

// funcs are fanout's own template functions. index replaces the builtin
// so that a missing field is an error, as {{.field}} is.
var funcs = template.FuncMap{
	"index": func(fields map[string]string, key string) (string, error) {
		v, ok := fields[key]
		if !ok {
			return "", fmt.Errorf("missing field %q", key)
		}
		return v, nil
	},
	"default": func(def, v string) string {
		if strings.TrimSpace(v) == "" {
			return def
		}
		return v
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"trim":  strings.TrimSpace,
	"title": title,
}

// title upper-cases the first letter of each word and lower-cases the rest.
func title(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	start := true
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'':
			if start {
				b.WriteRune(unicode.ToTitle(r))
			} else {
				b.WriteRune(unicode.ToLower(r))
			}
			start = false
		default:
			b.WriteRune(r)
			start = true
		}
	}
	return b.String()
}

// Renderer renders a spec's per-recipient content. Build it once with
// Spec.Compile and share it; it is safe for concurrent use.
type Renderer struct {
	channel  Channel
	url      executor // a push notification's url
	message  executor
	subject  executor
	params   []executor
	header   executor   // a template's header URL or text
	media    bool       // header renders a media URL, checked per recipient
	buttons  []executor // a template's button values
	fields   []string   // every field the templates refer to, sorted
	personal bool       // some template has an action
	shared   Content    // the content when not personal
}

// executor is a compiled template: text/template's, or html/template's
// for an HTML email body.
type executor interface {
	Execute(w io.Writer, data any) error
	Name() string
}

// part is one template of a spec: where it is and whether it is HTML.
type part struct {
	key, name, text string
	html            bool
}

// Compile parses the spec's templates and checks them against the
// restricted language. Errors are *SpecError located at the spec's key.
func (s Spec) Compile() (*Renderer, error) {
	r := &Renderer{channel: s.Channel}
	seen := map[string]bool{}
	compile := func(p part) (executor, error) {
		if p.text == "" {
			return nil, nil
		}
		t, fields, personal, err := compileOne(p)
		if err != nil {
			return nil, s.Errorf(p.key, "%s: %v", p.name, err)
		}
		for _, f := range fields {
			seen[f] = true
		}
		r.personal = r.personal || personal
		return t, nil
	}
	var err error
	if r.message, err = compile(part{key: "message", name: "message", text: s.Message, html: s.HTML()}); err != nil {
		return nil, err
	}
	if r.subject, err = compile(part{key: "subject", name: "subject", text: s.Subject}); err != nil {
		return nil, err
	}
	if s.Channel == ChannelPush {
		// A push's title renders as the subject does; its url on its own.
		if r.subject, err = compile(part{key: "title", name: "title", text: s.Title}); err != nil {
			return nil, err
		}
		if r.url, err = compile(part{key: "url", name: "url", text: s.URL}); err != nil {
			return nil, err
		}
	}
	if tpl, key := s.paramsTemplate(); tpl != nil {
		for i, p := range tpl.Parameters {
			name := fmt.Sprintf("%s.parameters[%d]", key, i)
			if p == "" {
				return nil, s.Errorf(key, "%s is empty: WhatsApp refuses an empty parameter", name)
			}
			t, err := compile(part{key: key, name: name, text: p})
			if err != nil {
				return nil, err
			}
			r.params = append(r.params, t)
		}
		if h := tpl.Header; h != nil {
			if r.header, err = compile(part{key: key + ".header", name: key + ".header", text: h.value()}); err != nil {
				return nil, err
			}
			r.media = h.IsMedia()
		}
		for i, b := range tpl.Buttons {
			name := fmt.Sprintf("%s.buttons[%d]", key, i)
			t, err := compile(part{key: key + ".buttons", name: name, text: b.Value()})
			if err != nil {
				return nil, err
			}
			if t == nil {
				return nil, s.Errorf(key+".buttons", "%s is empty: WhatsApp refuses an empty button value", name)
			}
			r.buttons = append(r.buttons, t)
		}
	}
	for f := range seen {
		r.fields = append(r.fields, f)
	}
	slices.Sort(r.fields)
	if err := r.check(s); err != nil {
		return nil, err
	}
	return r, nil
}

// check renders the templates once against a record whose fields are all
// empty: an error there (a type mismatch, a bad printf) would refuse every
// recipient, so it refuses the spec. Shared text is rendered here, once.
func (r *Renderer) check(s Spec) error {
	empty := make(map[string]string, len(r.fields))
	for _, f := range r.fields {
		empty[f] = ""
	}
	start := time.Now()
	c, err := r.render(empty)
	if err != nil && !errors.Is(err, ErrEmptyContent) && !(r.personal && errors.Is(err, media.ErrRefused)) {
		return s.Errorf(r.key(err), "the template fails for every recipient: %v", err)
	}
	if d := time.Since(start); d > MaxRenderTime {
		return s.Errorf(r.key(nil), "the template takes %s to render one recipient (at most %s): simplify it", d.Round(time.Millisecond), MaxRenderTime)
	}
	if !r.personal {
		if err != nil {
			return s.Errorf(r.key(err), "%v", err)
		}
		r.shared = c
	}
	return nil
}

// key is the spec key a render error belongs to.
func (r *Renderer) key(err error) string {
	var re *RenderError
	if errors.As(err, &re) {
		return re.Key
	}
	if r.channel == ChannelWhatsAppTemplate || r.channel == ChannelWhatsAppCampaign {
		return "template"
	}
	return "message"
}

// compileOne parses one template and vets its tree; an HTML part is then
// parsed again by html/template, which escapes what it renders.
func compileOne(p part) (executor, []string, bool, error) {
	limit := MaxTemplateBytes
	if p.key == "message" {
		limit = max(limit, MaxEmailBytes)
	}
	if len(p.text) > limit {
		return nil, nil, false, fmt.Errorf("the template is %d bytes, over the %d-byte cap", len(p.text), limit)
	}
	if !utf8.ValidString(p.text) {
		return nil, nil, false, errors.New("the template is not valid UTF-8")
	}
	if i := strings.IndexFunc(p.text, isBidiControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(p.text[i:])
		return nil, nil, false, fmt.Errorf("the template holds the invisible direction control %U at byte %d, which makes the text display differently from what is sent: remove it", r, i)
	}
	t, err := template.New(p.name).Option("missingkey=error").Funcs(funcs).Parse(p.text)
	if err != nil {
		return nil, nil, false, fmt.Errorf("not a valid template: %s", strings.TrimPrefix(err.Error(), "template: "))
	}
	if len(t.Templates()) > 1 {
		return nil, nil, false, errors.New("{{define}} and {{block}} are not allowed: write the text in place")
	}
	v := &vet{tree: t.Tree}
	v.list(t.Root, true)
	if v.err != nil {
		return nil, nil, false, v.err
	}
	if v.actions > MaxTemplateActions {
		return nil, nil, false, fmt.Errorf("the template has %d actions, over the cap of %d", v.actions, MaxTemplateActions)
	}
	if p.html {
		// The same text, so the same tree as the one just vetted.
		h, err := htmltemplate.New(p.name).Option("missingkey=error").Funcs(htmltemplate.FuncMap(funcs)).Parse(p.text)
		if err != nil {
			return nil, nil, false, fmt.Errorf("not a valid HTML template: %s", strings.TrimPrefix(err.Error(), "html/template: "))
		}
		return h, v.fields, v.actions > 0, nil
	}
	return t, v.fields, v.actions > 0, nil
}

// vet walks a template tree, refusing what the restricted language does not
// allow and listing the recipient fields it reads. root says whether dot is
// the recipient's record (outside {{with}}) or one field's text (inside).
type vet struct {
	tree    *parse.Tree
	fields  []string
	actions int
	err     error
}

func (v *vet) fail(n parse.Node, format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("%s: %s", v.where(n), fmt.Sprintf(format, args...))
	}
}

// where says where a node is in its template: "line 1, column 12". It
// does not quote the template, so no error repeats a spec's content.
func (v *vet) where(n parse.Node) string {
	loc, _ := v.tree.ErrorContext(n) // "name:line:col"
	parts := strings.Split(loc, ":")
	if len(parts) < 3 {
		return "in the template"
	}
	return fmt.Sprintf("line %s, column %s of the template", parts[len(parts)-2], parts[len(parts)-1])
}

func (v *vet) list(l *parse.ListNode, root bool) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		v.node(n, root)
	}
}

func (v *vet) node(n parse.Node, root bool) {
	switch n := n.(type) {
	case *parse.TextNode, *parse.CommentNode:
	case *parse.ActionNode:
		v.actions++
		v.pipe(n.Pipe, root)
	case *parse.IfNode:
		v.actions++
		v.pipe(n.Pipe, root)
		v.list(n.List, root)
		v.list(n.ElseList, root)
	case *parse.WithNode:
		v.actions++
		v.pipe(n.Pipe, root)
		// Inside, dot is the value the pipe gave: one field's text, unless
		// the pipe is the record itself.
		v.list(n.List, root && isRecord(n.Pipe))
		v.list(n.ElseList, root)
	case *parse.RangeNode:
		v.fail(n, "{{range}} is not allowed: a message template cannot loop")
	case *parse.TemplateNode:
		v.fail(n, "{{template}} is not allowed: write the text in place")
	case *parse.BreakNode, *parse.ContinueNode:
		v.fail(n, "{{break}} and {{continue}} are not allowed")
	default:
		v.fail(n, "this action is not allowed in a message template")
	}
}

// isRecord reports whether a pipe is just the record: {{with .}} or {{with $}}.
func isRecord(p *parse.PipeNode) bool {
	return p != nil && len(p.Cmds) == 1 && len(p.Cmds[0].Args) == 1 && isRecordArg(p.Cmds[0].Args[0])
}

func (v *vet) pipe(p *parse.PipeNode, root bool) {
	if p == nil {
		return
	}
	for _, c := range p.Cmds {
		v.command(c, root)
	}
}

func (v *vet) command(c *parse.CommandNode, root bool) {
	for i, a := range c.Args {
		switch a := a.(type) {
		case *parse.IdentifierNode:
			if i != 0 {
				v.fail(a, "function %s used as a value", a.Ident)
			} else if !allowedFuncs[a.Ident] {
				v.fail(a, "function %s is not allowed; use %s", a.Ident, funcList())
			} else if a.Ident == "index" {
				v.index(c, root)
			} else if a.Ident == "printf" {
				v.printf(c)
			}
		case *parse.FieldNode:
			v.field(a, a.Ident, root)
		case *parse.VariableNode:
			v.variable(a, c, i, root)
		case *parse.DotNode:
			if root && !(i == 1 && isFunc(c, "index")) {
				v.fail(a, "{{.}} here is the whole record; write a field, such as {{.first_name}}")
			}
		case *parse.PipeNode:
			v.pipe(a, root)
		case *parse.StringNode:
			if strings.IndexFunc(a.Text, isInvisible) >= 0 {
				v.fail(a, "the string holds an invisible character (zero-width or similar): retype it")
			}
		case *parse.NumberNode, *parse.BoolNode:
		case *parse.ChainNode:
			v.fail(a, "a field of a parenthesised value is not allowed")
		default:
			v.fail(a, "this value is not allowed in a message template")
		}
	}
}

// isBidiControl reports the Unicode direction overrides, embeddings and
// isolates ("Trojan Source" characters). The marks LRM and RLM are fine.
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// isInvisible reports characters that print as nothing, which make two
// field names look alike.
func isInvisible(r rune) bool {
	switch r {
	case 0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF:
		return true
	}
	return isBidiControl(r) || unicode.Is(unicode.Cc, r)
}

func isFunc(c *parse.CommandNode, name string) bool {
	id, ok := c.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == name
}

// field records a field read from the record ({{.x}} at root, {{$.x}}).
func (v *vet) field(n parse.Node, ident []string, root bool) {
	if !root {
		v.fail(n, "inside {{with}}, . is the value it tests, which has no fields: write {{$.%s}} for a recipient field", ident[0])
		return
	}
	if len(ident) > 1 {
		v.fail(n, "a recipient's field is text and has no field %s: write {{.%s}}", ident[1], ident[0])
		return
	}
	v.fields = append(v.fields, ident[0])
}

func (v *vet) variable(n *parse.VariableNode, c *parse.CommandNode, i int, root bool) {
	switch {
	case n.Ident[0] == "$" && len(n.Ident) > 1:
		v.field(n, n.Ident[1:], true)
	case n.Ident[0] == "$":
		if !(i == 1 && isFunc(c, "index")) {
			v.fail(n, "{{$}} is the whole record; write a field, such as {{$.first_name}}")
		}
	case len(n.Ident) > 1:
		v.fail(n, "variable %s holds text, which has no field %s", n.Ident[0], n.Ident[1])
	}
}

// index reads a field by name: {{index . "first name"}}. A literal name is
// a field the file must have.
func (v *vet) index(c *parse.CommandNode, root bool) {
	if len(c.Args) != 3 {
		v.fail(c, "index takes the record and one field name: {{index . \"first name\"}}")
		return
	}
	if !isRecordArg(c.Args[1]) {
		v.fail(c, "index reads a recipient's field: {{index . \"first name\"}} (or $ inside {{with}})")
		return
	}
	if _, ok := c.Args[1].(*parse.DotNode); ok && !root {
		v.fail(c, "inside {{with}}, . is not the record: write {{index $ \"name\"}}")
		return
	}
	s, ok := c.Args[2].(*parse.StringNode)
	if !ok {
		v.fail(c, "index's field name must be a literal string: {{index . \"first name\"}}")
		return
	}
	v.fields = append(v.fields, s.Text)
}

func isRecordArg(n parse.Node) bool {
	switch a := n.(type) {
	case *parse.DotNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) == 1 && a.Ident[0] == "$"
	}
	return false
}

// printfVerb finds widths and precisions in a format: %5d, %.3f, %-10s, %*d.
var printfVerb = regexp.MustCompile(`%[-+# 0]*(\*|\d*)(?:\.(\*|\d*))?`)

// printf needs a literal format with bounded widths, so its output is
// bounded by its arguments.
func (v *vet) printf(c *parse.CommandNode) {
	if len(c.Args) < 2 {
		v.fail(c, "printf needs a format: {{printf \"%%05d\" .code}}")
		return
	}
	f, ok := c.Args[1].(*parse.StringNode)
	if !ok {
		v.fail(c, "printf's format must be a literal string")
		return
	}
	for _, m := range printfVerb.FindAllStringSubmatch(f.Text, -1) {
		for _, w := range m[1:] {
			if w == "*" {
				v.fail(c, "printf widths must be written in the format, not taken from a value (*)")
				return
			}
			if n, err := strconv.Atoi(w); w != "" && (err != nil || n > MaxPrintfWidth) {
				v.fail(c, "printf width %s is over %d", w, MaxPrintfWidth)
				return
			}
		}
	}
}

func funcList() string {
	names := make([]string, 0, len(allowedFuncs))
	for n := range allowedFuncs {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Fields lists the recipient fields the templates refer to by name.
func (r *Renderer) Fields() []string { return r.fields }

// Personalised reports whether the content may differ between recipients:
// some template has an action.
func (r *Renderer) Personalised() bool { return r.personal }

// Shared returns the content every recipient gets when the campaign is not
// personalised.
func (r *Renderer) Shared() Content { return r.shared }

// Content is one recipient's rendered content.
type Content struct {
	Text    string   `json:"t,omitempty"`
	URL     string   `json:"u,omitempty"` // a push notification's link (Subject is its title)
	Subject string   `json:"s,omitempty"`
	Params  []string `json:"p,omitempty"`
	// Header is a WhatsApp template's header: its media URL or text.
	Header string `json:"h,omitempty"`
	// Buttons are a WhatsApp template's button values, in order.
	Buttons []string `json:"b,omitempty"`
}

// RenderError is a template that cannot render for one recipient: a
// missing field, a type mismatch, content that is empty or over its cap.
// Key is the spec key of the template.
type RenderError struct {
	Key  string
	Name string
	Err  error
}

func (e *RenderError) Error() string { return e.Name + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *RenderError) Unwrap() error { return e.Err }

// capWriter fails a write that takes the output past max bytes, which
// stops text/template (and html/template) at once.
type capWriter struct {
	b   strings.Builder
	max int
}

var errTooLong = errors.New("too long")

func (w *capWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.max {
		return 0, errTooLong
	}
	return w.b.Write(p)
}

// Render renders the content for one recipient's fields. Content that is
// empty or over the channel's cap is a *RenderError, never a send.
func (r *Renderer) Render(fields map[string]string) (Content, error) {
	if !r.personal {
		return r.shared, nil
	}
	return r.render(fields)
}

func (r *Renderer) render(fields map[string]string) (Content, error) {
	var c Content
	var err error
	if r.message != nil {
		if c.Text, err = r.exec(r.message, "message", fields, r.bodyLimit()); err != nil {
			return c, err
		}
	}
	if r.subject != nil {
		key := "subject"
		if r.channel == ChannelPush {
			key = "title"
		}
		if c.Subject, err = r.exec(r.subject, key, fields, MaxSubjectBytes); err != nil {
			return c, err
		}
	}
	if r.url != nil {
		if c.URL, err = r.exec(r.url, "url", fields, MaxSubjectBytes); err != nil {
			return c, err
		}
	}
	if len(r.params) > 0 {
		c.Params = make([]string, len(r.params))
		for i, t := range r.params {
			if c.Params[i], err = r.exec(t, r.paramsKey(), fields, 4*MaxParamChars); err != nil {
				return c, err
			}
			if n := utf8.RuneCountInString(c.Params[i]); n > MaxParamChars {
				return c, &RenderError{Key: r.paramsKey(), Name: t.Name(), Err: fmt.Errorf("is %d characters, over WhatsApp's %d", n, MaxParamChars)}
			}
		}
	}
	if err := r.renderTemplateParts(&c, fields); err != nil {
		return c, err
	}
	if r.channel == ChannelSMS && len(c.Text) > 670 {
		// 670 bytes are at most 670 UCS-2 units or 1,340 septets: 10
		// segments either way, so only longer texts are counted.
		if n, enc := SMSSegments(c.Text); n > MaxSMSSegments {
			return c, &RenderError{Key: "message", Name: "message", Err: fmt.Errorf("is %d %s SMS segments, over the cap of %d", n, enc, MaxSMSSegments)}
		}
	}
	return c, nil
}

func (r *Renderer) bodyLimit() int {
	if r.channel == ChannelEmail {
		return MaxEmailBytes
	}
	// An SMS is checked in segments after rendering; this only bounds the
	// work (UCS-2 runes are at most 4 bytes).
	return MaxSMSSegments * 160 * 4
}

func (r *Renderer) exec(t executor, key string, fields map[string]string, limit int) (string, error) {
	w := capWriter{max: limit}
	if err := t.Execute(&w, fields); err != nil {
		if errors.Is(err, errTooLong) {
			return "", &RenderError{Key: key, Name: t.Name(), Err: fmt.Errorf("renders over %d bytes", limit)}
		}
		return "", &RenderError{Key: key, Name: t.Name(), Err: execError(err)}
	}
	out := w.b.String()
	if strings.TrimSpace(out) == "" {
		return "", &RenderError{Key: key, Name: t.Name(), Err: ErrEmptyContent}
	}
	return out, nil
}

var (
	missingKeyRe = regexp.MustCompile(`map has no entry for key "([^"]*)"`)
	execPrefixRe = regexp.MustCompile(`^(?:html/)?template: [^:]+:\d+:\d+: executing "[^"]*" at <[^>]*>: `)
)

// execError shortens text/template's and html/template's execution errors.
func execError(err error) error {
	var he *htmltemplate.Error
	if errors.As(err, &he) {
		// An HTML template that cannot be escaped: its description may
		// end in a dump of the escaper's states.
		desc, _, _ := strings.Cut(he.Description, ": {")
		if he.Line > 0 {
			return fmt.Errorf("line %d of the HTML template: %s", he.Line, desc)
		}
		return fmt.Errorf("the HTML template: %s", desc)
	}
	if m := missingKeyRe.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("missing field %q", m[1])
	}
	msg := execPrefixRe.ReplaceAllString(err.Error(), "")
	msg = strings.TrimPrefix(msg, "error calling index: ")
	return errors.New(msg)
}

// gsm7 holds the GSM 03.38 basic character set; gsm7ext the extension
// table, whose characters take two septets.
const (
	gsm7    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7ext = "^{}\\[~]|€\f"
)

// gsmASCII classes the ASCII characters: 1 in the basic set, 2 in the
// extension table, 0 outside GSM-7.
var gsmASCII = func() (t [128]uint8) {
	for _, r := range gsm7 {
		if r < 128 {
			t[r] = 1
		}
	}
	for _, r := range gsm7ext {
		if r < 128 {
			t[r] = 2
		}
	}
	return t
}()

// SMSSegments counts the segments an SMS text takes and names its encoding:
// GSM-7 (160 septets, 153 per part when split) or UCS-2 (70 characters, 67
// per part).
func SMSSegments(text string) (int, string) {
	septets, units, ucs2 := 0, 0, false
	for _, r := range text {
		switch {
		case r < 128 && gsmASCII[r] != 0:
			septets += int(gsmASCII[r])
		case r >= 128 && strings.ContainsRune(gsm7, r):
			septets++
		case r >= 128 && strings.ContainsRune(gsm7ext, r):
			septets += 2
		default:
			ucs2 = true
		}
		units++
		if r > 0xFFFF {
			units++ // a surrogate pair
		}
	}
	if ucs2 {
		if units <= 70 {
			return 1, "UCS-2"
		}
		return (units + 66) / 67, "UCS-2"
	}
	if septets <= 160 {
		return 1, "GSM-7"
	}
	return (septets + 152) / 153, "GSM-7"
}

// renderTemplateParts renders a WhatsApp template's header and button
// values. A rendered media URL is checked like a fixed one: a recipient
// whose link points at a refused address is refused, never sent.
func (r *Renderer) renderTemplateParts(c *Content, fields map[string]string) error {
	var err error
	if r.header != nil {
		key := r.paramsKey() + ".header"
		if c.Header, err = r.exec(r.header, key, fields, 4096); err != nil {
			return err
		}
		if r.media {
			c.Header = strings.TrimSpace(c.Header)
			if err := media.Check(c.Header, media.Options{}); err != nil {
				return &RenderError{Key: key, Name: key + ".url", Err: err}
			}
		} else if n := utf8.RuneCountInString(c.Header); n > MaxParamChars {
			return &RenderError{Key: key, Name: key + ".text", Err: fmt.Errorf("is %d characters, over WhatsApp's %d", n, MaxParamChars)}
		}
	}
	if len(r.buttons) > 0 {
		c.Buttons = make([]string, len(r.buttons))
		for i, t := range r.buttons {
			if c.Buttons[i], err = r.exec(t, r.paramsKey()+".buttons", fields, 4*MaxParamChars); err != nil {
				return err
			}
			if n := utf8.RuneCountInString(c.Buttons[i]); n > MaxParamChars {
				return &RenderError{Key: r.paramsKey() + ".buttons", Name: t.Name(), Err: fmt.Errorf("is %d characters, over WhatsApp's %d", n, MaxParamChars)}
			}
		}
	}
	return nil
}
