-- complete: shared by the scripts that change counters or states.
-- Concatenated in Go ahead of a script; no KEYS, no ARGV.
-- maybe_complete(c, now) moves the campaign hash c to completed (finished_at
-- = now) when it is fully dispatched and every recipient is final (for SMS
-- with delivery reports: every accepted one has a final report too). A
-- completed or cancelled campaign is left alone. Returns nothing.
local function maybe_complete(c, now)
  local v = redis.call('HMGET', c, 'state', 'dispatched', 'total', 'sent', 'failed', 'unknown',
    'skipped', 'delivered', 'undelivered', 'dlr_expired', 'dlr')
  if v[1] == 'completed' or v[1] == 'cancelled' or v[2] ~= '1' then return end
  local function n(x) return tonumber(x) or 0 end
  if n(v[4]) + n(v[5]) + n(v[6]) + n(v[7]) < n(v[3]) then return end
  if v[11] == '1' and n(v[8]) + n(v[9]) + n(v[10]) < n(v[4]) then return end
  redis.call('HSET', c, 'state', 'completed', 'finished_at', now)
end
