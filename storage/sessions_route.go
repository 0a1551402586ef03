package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

// Routes of a whatsapp_session campaign: each row goes out as a session
// message or as the fallback template. The route is written before the
// send, may change from session to template once (the session message was
// refused because the window closed), never back, and is counted once when
// OneRoute accepts the row.

// setRouteScript: KEYS[1] the route hash; ARGV[1] the row, ARGV[2] the
// route ("s" or "t"). Writes it unless the row already has template (or an
// accepted route); returns the row's route after the call, lower case.
var setRouteScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false or (cur == 's' and ARGV[2] == 't') then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return ARGV[2]
end
return string.lower(cur)`)

// countRoutesScript: KEYS[1] the route hash, KEYS[2] the campaign hash;
// ARGV row, route pairs. Marks each row's route accepted (upper case) and
// counts it in session_sent or template_sent, once per row whatever the
// calls. Returns how many rows it counted (0 when the campaign is gone).
var countRoutesScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local n = 0
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur ~= 'S' and cur ~= 'T' then
    local up = string.upper(ARGV[i+1])
    redis.call('HSET', KEYS[1], ARGV[i], up)
    if up == 'S' then
      redis.call('HINCRBY', KEYS[2], 'session_sent', 1)
    else
      redis.call('HINCRBY', KEYS[2], 'template_sent', 1)
    end
    n = n + 1
  end
end
return n`)

// Routes returns each row's route: campaigns.RouteSession,
// campaigns.RouteTemplate, or "" when none was written.
func (s *Store) Routes(ctx context.Context, id string, rows []int) ([]string, error) {
	out := make([]string, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	fields := make([]string, len(rows))
	for i, r := range rows {
		fields[i] = strconv.Itoa(r)
	}
	vals, err := s.rdb.HMGet(ctx, routeKey(id), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read routes of %s: %w", id, err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i] = strings.ToLower(str)
		}
	}
	return out, nil
}

// SetRoute writes the route row is about to be sent by and returns the
// route it has after the call: a row already routed to the template stays
// there.
func (s *Store) SetRoute(ctx context.Context, id string, row int, route string) (string, error) {
	got, err := setRouteScript.Run(ctx, s.rdb, []string{routeKey(id)}, row, route).Text()
	if err != nil {
		return "", fmt.Errorf("set route of %s row %d: %w", id, row, err)
	}
	return got, nil
}

// RouteCount is an accepted row and the route it went by.
type RouteCount struct {
	Row   int
	Route string
}

// CountRoutes counts accepted rows in the campaign's session_sent and
// template_sent, each row once however often it is called.
func (s *Store) CountRoutes(ctx context.Context, id string, rs []RouteCount) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 2*len(rs))
	for _, r := range rs {
		args = append(args, r.Row, r.Route)
	}
	n, err := countRoutesScript.Run(ctx, s.rdb, []string{routeKey(id), campaignKey(id)}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("count routes of %s: %w", id, err)
	}
	return n, nil
}

// sessionProgress fills the route counters of a whatsapp_session
// campaign's progress from its hash m.
func sessionProgress(m map[string]string, p *campaigns.Progress) {
	if p.Channel != campaigns.ChannelWhatsAppSession {
		return
	}
	p.SessionSent, _ = strconv.ParseInt(m["session_sent"], 10, 64)
	p.TemplateSent, _ = strconv.ParseInt(m["template_sent"], 10, 64)
	var spec struct {
		TemplatePrice float64 `json:"template_price"`
	}
	if json.Unmarshal([]byte(m["spec"]), &spec) == nil && spec.TemplatePrice > 0 {
		p.SavedEstimate = float64(p.SessionSent) * spec.TemplatePrice
	}
}

// setRoutesScript: KEYS[1] the route hash; ARGV[1] the route, ARGV[2..]
// rows. Writes the route of each row not yet accepted. Returns nothing.
var setRoutesScript = redis.NewScript(`
for i = 2, #ARGV do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur ~= 'S' and cur ~= 'T' then redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
end
return 0`)

// SetRoutes writes the route of rows about to be sent together (a row
// already accepted keeps its route).
func (s *Store) SetRoutes(ctx context.Context, id string, rows []int, route string) error {
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, 0, len(rows)+1)
	args = append(args, route)
	for _, r := range rows {
		args = append(args, r)
	}
	if err := setRoutesScript.Run(ctx, s.rdb, []string{routeKey(id)}, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("set routes of %s: %w", id, err)
	}
	return nil
}
