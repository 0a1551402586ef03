-- KEYS[1]: campaign hash
-- ARGV[1]: "pause", "resume" or "cancel"; ARGV[2]: reason
-- pause:  dispatching, running or sent -> paused
-- resume: paused -> running (dispatching while the file is still expanding),
--         then on to sent or completed when nothing is left to send
-- cancel: dispatching, running, paused or sent -> cancelled; a sent campaign
--         then awaits its delivery reports no more
-- Completed and cancelled campaigns never change. Time spent paused adds up
-- in paused_ms (paused_at marks the pause under way), so rates leave it out.
-- The reason is kept (and shown by status) until the next change.
-- Returns {state, changed}.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing', 0} end
local now = now_ms()
local to = nil
if ARGV[1] == 'pause' and (st == 'dispatching' or st == 'running' or st == 'sent') then to = 'paused'
elseif ARGV[1] == 'resume' and st == 'paused' then
  to = 'dispatching'
  if redis.call('HGET', KEYS[1], 'dispatched') == '1' then to = 'running' end
elseif ARGV[1] == 'cancel' and (st == 'dispatching' or st == 'running' or st == 'paused' or st == 'sent') then to = 'cancelled'
end
if not to then return {st, 0} end
redis.call('HSET', KEYS[1], 'state', to, 'reason', ARGV[2], 'updated_at', now)
if to == 'paused' then
  redis.call('HSET', KEYS[1], 'paused_at', now)
else
  local since = tonumber(redis.call('HGET', KEYS[1], 'paused_at'))
  if since then
    redis.call('HINCRBY', KEYS[1], 'paused_ms', math.max(now - since, 0))
    redis.call('HDEL', KEYS[1], 'paused_at')
  end
end
if to == 'cancelled' then redis.call('HSET', KEYS[1], 'finished_at', now) end
if to == 'running' then maybe_complete(KEYS[1], now) end
return {redis.call('HGET', KEYS[1], 'state'), 1}
