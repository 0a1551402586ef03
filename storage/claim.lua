-- KEYS[1]: campaign hash fanout:{id}; KEYS[2]: failure reasons fanout:{id}:why
-- (unused here); KEYS[3..]: ledger buckets fanout:{id}:l:<n>
-- ARGV[1]: a claim or request older than this many ms is stale
-- ARGV[2]: this attempt's token
-- ARGV[3..]: pairs (index into KEYS of the row's bucket, row)
-- Returns {state, code...} with one code per row:
--   "0" claimed by this attempt: pending before, or claimed by this very
--       attempt already (a retried call), or claimed by an attempt that
--       vanished before starting any request (nothing can have been sent)
--   "1" already final: skip it
--   "a:<id>" already accepted with provider id <id>, delivery not final yet
--   "2" another attempt owns it and may still be working: try later
--   "3:<since>" a request started at <since> and its attempt vanished: the
--       claim is taken over; reconcile with the provider before any resend
-- When the campaign is not dispatching, running or sent, nothing is claimed
-- and the reply is {state}. A sent campaign answers as running: all its rows
-- are final, so nothing is claimed, but a retried task still learns the
-- provider ids of accepted rows whose delivery reports it must poll.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st == 'sent' then st = 'running' end
if st ~= 'running' and st ~= 'dispatching' then return {st} end
local now = now_ms()
local stale = tonumber(ARGV[1])
local tok = ARGV[2]
local mine = 'c' .. now .. ':' .. tok
local out = {st}
local get, set, flush = view(3, 2)
for i = 3, #ARGV, 2 do
  local k = ARGV[i]
  local row = ARGV[i + 1]
  local v = get(k, row)
  if not v then
    set(k, row, mine)
    out[#out + 1] = '0'
  else
    local s, t, owner_tok, since = owner(v)
    if s == 'a' then
      out[#out + 1] = 'a:' .. string.sub(v, 2)
    elseif s ~= 'c' and s ~= 's' then
      out[#out + 1] = '1'
    elseif owner_tok == tok then
      if s == 'c' then out[#out + 1] = '0' else out[#out + 1] = '2' end
    elseif now - (tonumber(t) or 0) < stale then
      out[#out + 1] = '2'
    elseif s == 'c' and not since then
      set(k, row, mine)
      out[#out + 1] = '0'
    else
      since = since or t or '0'
      set(k, row, mine .. ':' .. since)
      out[#out + 1] = '3:' .. since
    end
  end
end
flush()
return out
