package sandbox

import "net/http"

// sendPush is the Embed push notification (POST /api/public/embed/push).
func (s *Server) sendPush(w http.ResponseWriter, r *http.Request) {
	var q struct {
		WidgetID   *string `json:"widgetId"`
		CustomerID string  `json:"customerId"`
		Email      string  `json:"email"`
		Title      *string `json:"title"`
		Message    *string `json:"message"`
		URL        string  `json:"url"`
	}
	if !decode(w, r, &q) {
		return
	}
	switch {
	case q.WidgetID == nil:
		fail(w, 400, required("widgetId"))
		return
	case q.CustomerID == "" && q.Email == "":
		fail(w, 400, `"value" must contain at least one of [customerId, email]`)
		return
	case q.Email != "" && !validEmail(q.Email):
		fail(w, 400, `"email" must be a valid email`)
		return
	case q.Title == nil:
		fail(w, 400, required("title"))
		return
	case *q.Title == "":
		fail(w, 400, notEmpty("title"))
		return
	case q.Message == nil:
		fail(w, 400, required("message"))
		return
	case *q.Message == "":
		fail(w, 400, notEmpty("message"))
		return
	case *q.WidgetID != WidgetID:
		fail(w, http.StatusNotFound, "Widget not found")
		return
	}
	to := q.CustomerID
	if to == "" {
		to = q.Email
	}
	s.recordMessage(s.state(), mediumPush, to, *q.Title+"\x00"+*q.Message+"\x00"+q.URL)
	ok(w, "Notification sent", map[string]string{"id": newUUID()})
}
