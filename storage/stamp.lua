-- KEYS[1]: campaign hash; KEYS[2]: failure reasons hash (unused here);
-- KEYS[3..]: ledger buckets
-- ARGV[1]: the attempt's token; ARGV[2..]: pairs (bucket index in KEYS, row)
-- Marks rows the attempt still owns as sending, just before their request
-- starts: "c<t>:<tok>[:<since>]" becomes "s<now>:<tok>:<since or now>".
-- Returns one 1 (stamped: send it) or 0 (no longer owned: do not send) per
-- row; or {-1} when the campaign is no longer dispatching or running
-- (paused, cancelled): nothing is stamped, so a pause or cancel stops sends
-- within one request.
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'running' and st ~= 'dispatching' then return {-1} end
local now = tostring(now_ms())
local tok = ARGV[1]
local mine = 's' .. now .. ':' .. tok .. ':'
local out = {}
local get, set, flush = view(2, 2)
for i = 2, #ARGV, 2 do
  local k = ARGV[i]
  local row = ARGV[i + 1]
  local v = get(k, row)
  out[#out + 1] = 0
  if v then
    local s, _t, owner_tok, since = owner(v)
    if s == 'c' and owner_tok == tok then
      set(k, row, mine .. (since or now))
      out[#out] = 1
    end
  end
end
flush()
return out
