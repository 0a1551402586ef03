-- KEYS[1]: campaign hash
-- ARGV[1]: "pause", "resume" or "cancel"; ARGV[2]: reason
-- pause:  dispatching or running -> paused
-- resume: paused -> running (dispatching while the file is still expanding)
-- cancel: dispatching, running or paused -> cancelled
-- Completed and cancelled campaigns never change. Returns {state, changed}.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing', 0} end
local now = now_ms()
local to = nil
if ARGV[1] == 'pause' and (st == 'dispatching' or st == 'running') then to = 'paused'
elseif ARGV[1] == 'resume' and st == 'paused' then
  to = 'dispatching'
  if redis.call('HGET', KEYS[1], 'dispatched') == '1' then to = 'running' end
elseif ARGV[1] == 'cancel' and (st == 'dispatching' or st == 'running' or st == 'paused') then to = 'cancelled'
end
if not to then return {st, 0} end
redis.call('HSET', KEYS[1], 'state', to, 'reason', ARGV[2], 'updated_at', now)
if to == 'cancelled' then redis.call('HSET', KEYS[1], 'finished_at', now) end
if to == 'running' then maybe_complete(KEYS[1], now) end
return {redis.call('HGET', KEYS[1], 'state'), 1}
