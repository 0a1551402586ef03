-- KEYS[1]: campaign hash; KEYS[2]: failure reasons hash; KEYS[3..]: ledger buckets
-- ARGV[1]: mode; ARGV[2]: the attempt's token (mode "send")
--   "send":    from claimed or sending by this token to accepted/failed/unknown/
--              skipped, or "" to release the claim (back to pending)
--   "dlr":     from accepted to delivered/undelivered/dlr-expired
--   "skip":    from pending or claimed (by anyone: its owner's stamp then
--              fails, so it is never sent) to skipped
--   "abandon": a task that asynq gave up on: pending or claimed to the new
--              value, sending (maybe sent) to unknown
-- ARGV[3..]: triples (bucket index in KEYS, row, new value)
-- Each applied transition bumps the counter of the new state in this same
-- script, so counters count each recipient once however often a task or a
-- command is retried; failed and unknown ones also count their reason (at
-- most 50 distinct reasons, then "other"). Values are cut to 60 bytes in the
-- ledger. Returns the number of transitions applied.
local counter = {a = 'sent', f = 'failed', u = 'unknown', x = 'skipped',
  d = 'delivered', n = 'undelivered', e = 'dlr_expired'}
local mode = ARGV[1]
local applied = 0
for i = 3, #ARGV, 3 do
  local key = KEYS[tonumber(ARGV[i])]
  local row = ARGV[i + 1]
  local nv = ARGV[i + 2]
  local v = redis.call('HGET', key, row)
  local cur, tok = '', ''
  if v then
    local _t
    cur, _t, tok = owner(v)
  end
  local ok = false
  if mode == 'send' then ok = (cur == 'c' or cur == 's') and tok == ARGV[2]
  elseif mode == 'dlr' then ok = (cur == 'a')
  elseif mode == 'skip' then ok = (cur == '' or cur == 'c')
  elseif mode == 'abandon' then
    ok = (cur == '' or cur == 'c' or cur == 's')
    if cur == 's' then nv = 'u' .. string.sub(nv, 2) end
  end
  if ok then
    if nv == '' then
      redis.call('HDEL', key, row)
    else
      local st = string.sub(nv, 1, 1)
      redis.call('HSET', key, row, string.sub(nv, 1, 60))
      local c = counter[st]
      if c then redis.call('HINCRBY', KEYS[1], c, 1) end
      if st == 'f' or st == 'u' then
        local why = string.sub(nv, 2, 200)
        if redis.call('HEXISTS', KEYS[2], why) == 0 and redis.call('HLEN', KEYS[2]) >= 50 then why = 'other reasons' end
        redis.call('HINCRBY', KEYS[2], why, 1)
      end
    end
    applied = applied + 1
  end
end
if applied > 0 then
  local now = now_ms()
  redis.call('HSET', KEYS[1], 'updated_at', now)
  if mode ~= 'dlr' then
    redis.call('HSET', KEYS[1], 'settled_at', now)
    redis.call('HSETNX', KEYS[1], 'started_at', now)
  end
  maybe_complete(KEYS[1], now)
end
return applied
