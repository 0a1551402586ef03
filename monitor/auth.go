package monitor

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
)

// Role is what an authenticated request may do.
type Role int

// Roles, from least to most.
const (
	// RoleNone: no or wrong credentials (401).
	RoleNone Role = iota
	// RoleViewer sees everything and changes nothing (a state-changing
	// request answers 403).
	RoleViewer
	// RoleOperator may also pause, resume, cancel and submit campaigns, and
	// use the Asynq UI's buttons (unless the monitor is read-only).
	RoleOperator
)

// Credentials are a user name and password for HTTP basic auth.
type Credentials struct {
	User, Password string
}

// ParseCredentials reads "user:password". The password may hold ':'.
func ParseCredentials(s string) (Credentials, error) {
	user, pass, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || user == "" || pass == "" {
		return Credentials{}, errors.New(`want "user:password" with both parts non-empty`)
	}
	return Credentials{User: user, Password: pass}, nil
}

// Auth decides who may do what. With neither Operator nor Viewer set,
// every request is an operator's (or a viewer's when ReadOnly): that is
// only allowed on a loopback address (see CheckListen).
type Auth struct {
	// Operator may change things; nil: no operator login.
	Operator *Credentials
	// Viewer may only look; nil: no read-only login.
	Viewer *Credentials
	// Token, when set, is a bearer token with the operator's rights, for
	// scripts and other services ("Authorization: Bearer <token>").
	Token string
	// ReadOnly makes everyone a viewer, operators included.
	ReadOnly bool
}

// Enabled reports whether any credentials are configured.
func (a Auth) Enabled() bool { return a.Operator != nil || a.Viewer != nil || a.Token != "" }

// digest hashes a value so that constant-time comparison does not depend
// on lengths.
func digest(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// matches compares user and password in constant time, both always.
func (c *Credentials) matches(user, pass string) bool {
	if c == nil {
		return false
	}
	u := subtle.ConstantTimeCompare(digest(user), digest(c.User))
	p := subtle.ConstantTimeCompare(digest(pass), digest(c.Password))
	return u&p == 1
}

// RoleOf returns the role of a request's credentials.
func (a Auth) RoleOf(r *http.Request) Role {
	top := RoleOperator
	if a.ReadOnly {
		top = RoleViewer
	}
	if !a.Enabled() {
		return top
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		if a.Token != "" && subtle.ConstantTimeCompare(digest(strings.TrimSpace(h[7:])), digest(a.Token)) == 1 {
			return top
		}
		return RoleNone
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return RoleNone
	}
	// Both are compared whatever the first gives, so timing tells nothing.
	op := a.Operator.matches(user, pass)
	view := a.Viewer.matches(user, pass)
	switch {
	case op:
		return top
	case view:
		return RoleViewer
	}
	return RoleNone
}

// ErrInsecureListen is returned by CheckListen for a non-loopback address
// without credentials.
var ErrInsecureListen = errors.New("refusing to serve the monitor without authentication on a non-loopback address: set FANOUT_MONITOR_AUTH=user:password (and FANOUT_MONITOR_READONLY_AUTH for viewers, FANOUT_MONITOR_TOKEN for scripts), listen on 127.0.0.1, or pass --insecure")

// CheckListen refuses to listen on addr without credentials unless it is a
// loopback address ("127.0.0.1:8080", "[::1]:8080", "localhost:8080").
// An empty host ("":8080") listens on every interface.
func CheckListen(addr string, a Auth, insecure bool) error {
	if a.Enabled() || insecure || Loopback(addr) {
		return nil
	}
	return ErrInsecureListen
}

// Loopback reports whether addr's host is a loopback address.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
