-- retry: moves failed recipients back to pending for fanout retry-failed.
-- KEYS[1]: campaign hash; KEYS[2]: failure reasons hash; KEYS[3]: retried
--   rows hash (row -> times reset); KEYS[4]: batch copies hash; KEYS[5..]:
--   ledger buckets
-- ARGV[1]: the retry round; ARGV[2]: "1" for the round's first call (the
--   campaign's retries must be round - 1), "0" for a later chunk of the same
--   round (retries must be round); ARGV[3]: how many copy keys follow;
--   ARGV[4 .. 3+ARGV[3]]: the copy keys (fields of KEYS[4]) of this chunk's
--   batch tasks, saved before this call; then pairs (ledger bucket index in
--   KEYS, row)
-- Only a failed row (ledger value "f<reason>") is reset: its entry is
-- deleted (pending), failed is decremented, its reason's count too (the
-- reasons hash keeps up to 200 bytes of a reason, the ledger 59: the first
-- field the ledger's reason starts is taken, then "other reasons"), and
-- KEYS[3] counts it. Accepted, unknown, skipped or in-flight rows are never
-- touched, so nothing sent can be sent again. When at least one row is
-- reset the campaign's retries becomes ARGV[1], its state running, and
-- finished_at and sent_at are cleared (and the reason, unless it is paused:
-- a paused campaign stays paused); maybe_complete then moves it on when the
-- rows are final again.
-- A later chunk of a round changes the state the same way (the first may
-- have reset nothing).
-- Refused, changing nothing: a missing campaign {'missing'}; a state other
-- than running, sent, completed or paused {'state', state}; a round that
-- is not next (another retry-failed ran meanwhile) {'round', retries}; a
-- copy key missing (the auditor dropped it) {'copies', key}.
-- Returns {'ok', reset count, retries, state}.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st ~= 'running' and st ~= 'sent' and st ~= 'completed' and st ~= 'paused' then return {'state', st} end
local retries = tonumber(redis.call('HGET', KEYS[1], 'retries') or '0')
local want = tonumber(ARGV[1])
if ARGV[2] == '1' then want = want - 1 end
if retries ~= want then return {'round', tostring(retries)} end
local ncopies = tonumber(ARGV[3])
for i = 4, 3 + ncopies do
  if redis.call('HEXISTS', KEYS[4], ARGV[i]) == 0 then return {'copies', ARGV[i]} end
end
local why_fields = nil
local n = 0
for i = 4 + ncopies, #ARGV, 2 do
  local key = KEYS[tonumber(ARGV[i])]
  local row = ARGV[i + 1]
  local v = redis.call('HGET', key, row)
  if v and string.sub(v, 1, 1) == 'f' then
    redis.call('HDEL', key, row)
    redis.call('HINCRBY', KEYS[3], row, 1)
    n = n + 1
    local reason = string.sub(v, 2)
    local field = nil
    if redis.call('HEXISTS', KEYS[2], reason) == 1 then
      field = reason
    else
      if why_fields == nil then why_fields = redis.call('HKEYS', KEYS[2]) end
      for _, f in ipairs(why_fields) do
        if string.sub(f, 1, #reason) == reason then field = f break end
      end
      if field == nil and redis.call('HEXISTS', KEYS[2], 'other reasons') == 1 then field = 'other reasons' end
    end
    if field then
      if redis.call('HINCRBY', KEYS[2], field, -1) <= 0 then
        redis.call('HDEL', KEYS[2], field)
        why_fields = nil
      end
    end
  end
end
if n > 0 or ARGV[2] == '0' then
  local now = now_ms()
  redis.call('HINCRBY', KEYS[1], 'failed', -n)
  redis.call('HSET', KEYS[1], 'retries', ARGV[1], 'updated_at', now)
  if st ~= 'paused' then redis.call('HSET', KEYS[1], 'state', 'running') end
  redis.call('HDEL', KEYS[1], 'finished_at', 'sent_at')
  if st ~= 'paused' then redis.call('HDEL', KEYS[1], 'reason') end
  -- a later chunk that found nothing left to reset (the round's rows are
  -- final again already) must not leave the campaign running
  maybe_complete(KEYS[1], now)
  st = redis.call('HGET', KEYS[1], 'state')
  return {'ok', tostring(n), ARGV[1], st}
end
return {'ok', '0', tostring(retries), st}
