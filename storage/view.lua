-- view: shared by the ledger scripts. Concatenated in Go ahead of a
-- script; no KEYS, no ARGV of its own.
-- view(first, stride) reads the ledger values of the rows a script names in
-- ARGV (from index first, stride apart: ARGV[i] the index into KEYS of the
-- row's bucket, ARGV[i + 1] the row) with one HMGET per bucket instead of
-- one HGET per row; a task's rows share one or two buckets. It returns
-- get(k, row), the value (false when pending), and set(k, row, v), which
-- changes it (v false: deletes it) for later gets; flush() then writes
-- every change with one HSET and one HDEL per bucket. A row named twice
-- sees its own earlier change, as with one HGET and HSET per row.
local function view(first, stride)
  local vals, order = {}, {}
  for i = first, #ARGV, stride do
    local k = ARGV[i]
    local g = vals[k]
    if not g then
      g = {fields = {}}
      vals[k] = g
      order[#order + 1] = k
    end
    g.fields[#g.fields + 1] = ARGV[i + 1]
  end
  for _, k in ipairs(order) do
    local g = vals[k]
    local r = redis.call('HMGET', KEYS[tonumber(k)], unpack(g.fields))
    local cur = {}
    for j, f in ipairs(g.fields) do cur[f] = r[j] end
    g.cur, g.changed, g.fields = cur, {}, nil
  end
  local function get(k, row) return vals[k].cur[row] end
  local function set(k, row, v)
    local g = vals[k]
    g.cur[row] = v
    g.changed[row] = true
  end
  local function flush()
    for _, k in ipairs(order) do
      local g = vals[k]
      local sets, dels = {}, {}
      for row in pairs(g.changed) do
        local v = g.cur[row]
        if v then
          sets[#sets + 1] = row
          sets[#sets + 1] = v
        else
          dels[#dels + 1] = row
        end
      end
      if #sets > 0 then redis.call('HSET', KEYS[tonumber(k)], unpack(sets)) end
      if #dels > 0 then redis.call('HDEL', KEYS[tonumber(k)], unpack(dels)) end
    end
  end
  return get, set, flush
end
