-- KEYS: provider-id index buckets of one campaign (fanout:{id}:x:<n>)
-- ARGV: pairs (bucket index in KEYS, provider message id)
-- Returns, per pair, the row the id maps to, or -1 when the campaign does
-- not await it. One script instead of one HMGET per bucket: a page of
-- 1,000 ids touches ~640 of the 1,024 buckets.
local out = {}
for i = 1, #ARGV, 2 do
  local v = redis.call('HGET', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
  out[#out + 1] = tonumber(v) or -1
end
return out
