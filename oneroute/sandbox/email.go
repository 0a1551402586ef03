package sandbox

import (
	"net/http"
	"strconv"
	"strings"
)

type emailRequest struct {
	Subject     *string  `json:"subject"`
	Message     *string  `json:"message"`
	Recipients  []string `json:"recipients"`
	CC          []string `json:"cc"`
	BCC         []string `json:"bcc"`
	ReplyTo     string   `json:"replyTo"`
	Attachments []struct {
		URL  *string `json:"url"`
		Name *string `json:"name"`
	} `json:"attachments"`
	// Identifiers name the messages in the logs, one per recipient
	// (guessed: oneroute-api.md 4.2 documents no such field).
	Identifiers []string `json:"identifiers"`
}

func validEmail(a string) bool {
	at := strings.LastIndexByte(a, '@')
	return at > 0 && at < len(a)-1 && !strings.ContainsAny(a, " \t\r\n,;<>") && strings.Contains(a[at:], ".")
}

func (s *Server) sendEmail(w http.ResponseWriter, r *http.Request) {
	ch, found := channelByID(r.PathValue("id"))
	if !found || ch.Medium != "EMAIL" {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	var q emailRequest
	if !decode(w, r, &q) {
		return
	}
	switch {
	case q.Subject == nil:
		fail(w, 400, required("subject"))
		return
	case *q.Subject == "":
		fail(w, 400, notEmpty("subject"))
		return
	case q.Message == nil:
		fail(w, 400, required("message"))
		return
	case *q.Message == "":
		fail(w, 400, notEmpty("message"))
		return
	case q.Recipients == nil:
		fail(w, 400, required("recipients"))
		return
	case len(q.Recipients) == 0:
		fail(w, 400, `"recipients" must contain at least 1 items`)
		return
	case len(q.Recipients) > 1000:
		fail(w, 400, `"recipients" must contain less than or equal to 1000 items`)
		return
	case q.Identifiers != nil && len(q.Identifiers) != len(q.Recipients):
		fail(w, 400, `"identifiers" must contain one item per recipient`)
		return
	case q.ReplyTo != "" && !validEmail(q.ReplyTo):
		fail(w, 400, `"replyTo" must be a valid email`)
		return
	}
	for _, list := range [][]string{q.CC, q.BCC} {
		for _, a := range list {
			if !validEmail(a) {
				fail(w, 400, strconv.Quote(a)+" must be a valid email")
				return
			}
		}
	}
	for _, a := range q.Attachments {
		if a.URL == nil || *a.URL == "" {
			fail(w, 400, required("url"))
			return
		}
		if a.Name == nil || *a.Name == "" {
			fail(w, 400, required("name"))
			return
		}
	}
	st := s.state()
	now := s.opts.Now()
	out := make([]result, len(q.Recipients))
	rows := make([]*logRow, 0, len(q.Recipients))
	for i, to := range q.Recipients {
		if !validEmail(to) {
			out[i] = result{Status: "failed", Response: "Invalid email address"}
			continue
		}
		to = strings.ToLower(to)
		s.recordMessage(st, mediumEmail, to, *q.Subject+"\x00"+*q.Message)
		row := &logRow{id: newUUID(), medium: logEmail, from: EmailAddress, to: to, template: *q.Subject, created: now, processAt: now,
			wamid: "sg-" + newUUID(), outcome: outcomeOf(to)}
		if row.outcome == outRead {
			row.outcome = outDelivered // emails are delivered, never read
		}
		if q.Identifiers != nil {
			row.identifier = q.Identifiers[i]
		}
		rows = append(rows, row)
		out[i] = result{Status: "success", Response: row.wamid}
	}
	st.wa.add(nil, rows)
	s.scheduleRowHooks(rows, 0)
	ok(w, "Email sent successfully", out)
}
