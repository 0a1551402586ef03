-- KEYS[1]: campaign hash; KEYS[2]: failure reasons hash; KEYS[3..]: ledger
--   buckets, then provider-id index buckets (fanout:{id}:x:<n>)
-- ARGV[1]: mode; ARGV[2]: the attempt's token (mode "send"); ARGV[3]: the
--   index entries' time to live (ms)
--   "send":    from claimed or sending by this token to accepted/failed/unknown/
--              skipped, or "" to release the claim (back to pending)
--   "dlr":     from accepted to delivered/undelivered/dlr-expired/read, and
--              from delivered to read (a WhatsApp message read after its
--              delivery report)
--   "skip":    from pending or claimed (by anyone: its owner's stamp then
--              fails, so it is never sent) to skipped
--   "abandon": a task that asynq gave up on: pending or claimed to the new
--              value, sending (maybe sent) to unknown
-- ARGV[4..]: quadruples (ledger bucket index in KEYS, row, new value, index
--   bucket index in KEYS or 0)
-- Each applied transition bumps the counter of the new state in this same
-- script (one HINCRBY per counter per call), so counters count each recipient once however often a task or a
-- command is retried; failed and unknown ones also count their reason (at
-- most 50 distinct reasons, then "other"). Values are cut to 60 bytes in the
-- ledger. A row accepted in mode "send" of a campaign with delivery reports
-- (dlr = 1) is added to the provider-id index (field = provider id, value =
-- row; the key's expiry set to ARGV[3]); a row named in mode "dlr" leaves it
-- (settled now or before), so the index holds exactly the rows awaiting a report. Returns the
-- number of transitions applied.
local counter = {a = 'sent', f = 'failed', u = 'unknown', x = 'skipped',
  d = 'delivered', n = 'undelivered', e = 'dlr_expired', r = 'read'}
local mode = ARGV[1]
local ttl = tonumber(ARGV[3])
local applied = 0
local dlr = nil -- the campaign tracks delivery reports; read when first needed
local expiring = {} -- index keys whose expiry this call already set
local inc = {} -- counter -> increment, written once per counter at the end
local get, set, flush = view(4, 4)
for i = 4, #ARGV, 4 do
  local k = ARGV[i]
  local row = ARGV[i + 1]
  local nv = ARGV[i + 2]
  local xi = tonumber(ARGV[i + 3])
  local v = get(k, row)
  local cur, tok = '', ''
  if v then
    local _t
    cur, _t, tok = owner(v)
  end
  local ok = false
  if mode == 'send' then ok = (cur == 'c' or cur == 's') and tok == ARGV[2]
  elseif mode == 'dlr' then ok = (cur == 'a') or (cur == 'd' and string.sub(nv, 1, 1) == 'r')
  elseif mode == 'skip' then ok = (cur == '' or cur == 'c')
  elseif mode == 'abandon' then
    ok = (cur == '' or cur == 'c' or cur == 's')
    if cur == 's' then nv = 'u' .. string.sub(nv, 2) end
  end
  if ok then
    if nv == '' then
      set(k, row, false)
    else
      local st = string.sub(nv, 1, 1)
      set(k, row, string.sub(nv, 1, 60))
      local c = counter[st]
      if c then inc[c] = (inc[c] or 0) + 1 end
      -- read implies delivered: count it there too when no delivery
      -- report came first (read is a subset of delivered)
      if st == 'r' and cur == 'a' then inc.delivered = (inc.delivered or 0) + 1 end
      if st == 'f' or st == 'u' then
        local why = string.sub(nv, 2, 200)
        if redis.call('HEXISTS', KEYS[2], why) == 0 and redis.call('HLEN', KEYS[2]) >= 50 then why = 'other reasons' end
        redis.call('HINCRBY', KEYS[2], why, 1)
      end
      if xi > 0 then
        if mode == 'send' and st == 'a' then
          if dlr == nil then dlr = redis.call('HGET', KEYS[1], 'dlr') == '1' end
          if dlr then
            redis.call('HSET', KEYS[xi], string.sub(nv, 2), row)
            if not expiring[xi] then
              redis.call('PEXPIRE', KEYS[xi], ttl)
              expiring[xi] = true
            end
          end
        end
      end
    end
    applied = applied + 1
  end
  if mode == 'dlr' and xi > 0 then
    -- settled now or before: either way no longer awaited
    redis.call('HDEL', KEYS[xi], string.sub(nv, 2))
  end
end
flush()
for c, n in pairs(inc) do redis.call('HINCRBY', KEYS[1], c, n) end
if applied > 0 then
  local now = now_ms()
  if mode ~= 'dlr' then
    redis.call('HSET', KEYS[1], 'updated_at', now, 'settled_at', now)
    redis.call('HSETNX', KEYS[1], 'started_at', now)
  else
    redis.call('HSET', KEYS[1], 'updated_at', now)
  end
  maybe_complete(KEYS[1], now)
end
return applied
