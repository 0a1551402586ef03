-- KEYS[1]: campaign hash fanout:{id}; KEYS[2]: failure reasons (unused
-- here); KEYS[3..]: ledger buckets fanout:{id}:l:<n>
-- ARGV[1..]: triples (index into KEYS of the row's bucket, row, reason)
-- Settles rows whose recipient opted out as skipped ("x" .. reason, cut to
-- 60 bytes like record.lua), when the row is pending or claimed (by any
-- attempt: its owner's stamp then fails, so the row is never sent). A row
-- whose request started (sending, or claimed with a since: taken over from
-- a vanished sender, to be reconciled) or that is final is left alone. Each
-- settled row bumps skipped and opted_out. Nothing changes unless the
-- campaign is dispatching, running or sent. Returns the rows settled.
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'running' and st ~= 'dispatching' and st ~= 'sent' then return 0 end
local n = 0
for i = 1, #ARGV, 3 do
  local key = KEYS[tonumber(ARGV[i])]
  local row = ARGV[i + 1]
  local v = redis.call('HGET', key, row)
  local s, since = nil, nil
  if v then
    local _t, _tok
    s, _t, _tok, since = owner(v)
  end
  if not v or (s == 'c' and not since) then
    redis.call('HSET', key, row, string.sub('x' .. ARGV[i + 2], 1, 60))
    n = n + 1
  end
end
if n > 0 then
  local now = now_ms()
  redis.call('HINCRBY', KEYS[1], 'skipped', n)
  redis.call('HINCRBY', KEYS[1], 'opted_out', n)
  redis.call('HSET', KEYS[1], 'updated_at', now, 'settled_at', now)
  redis.call('HSETNX', KEYS[1], 'started_at', now)
  maybe_complete(KEYS[1], now)
end
return n
