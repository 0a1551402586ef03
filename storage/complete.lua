-- complete: shared by the scripts that change counters or states.
-- Concatenated in Go ahead of a script; no KEYS, no ARGV.
-- maybe_complete(c, now) moves the campaign hash c on once it is fully
-- dispatched and every recipient has a final send state:
--   to sent (sent_at = now) while delivery reports of accepted SMS are still
--   awaited, from dispatching or running; a paused campaign stays paused
--   (resume moves it on);
--   to completed (finished_at = now) once every recipient is final, delivery
--   reports included, from any state but cancelled.
-- A completed or cancelled campaign is left alone. Returns nothing.
local function maybe_complete(c, now)
  local v = redis.call('HMGET', c, 'state', 'dispatched', 'total', 'sent', 'failed', 'unknown',
    'skipped', 'delivered', 'undelivered', 'dlr_expired', 'dlr')
  if v[1] == 'completed' or v[1] == 'cancelled' or v[2] ~= '1' then return end
  local function n(x) return tonumber(x) or 0 end
  if n(v[4]) + n(v[5]) + n(v[6]) + n(v[7]) < n(v[3]) then return end
  if v[11] == '1' and n(v[8]) + n(v[9]) + n(v[10]) < n(v[4]) then
    if v[1] == 'running' or v[1] == 'dispatching' then
      redis.call('HSET', c, 'state', 'sent', 'sent_at', now)
    end
    return
  end
  redis.call('HSET', c, 'state', 'completed', 'finished_at', now)
  redis.call('HSETNX', c, 'sent_at', now)
end
