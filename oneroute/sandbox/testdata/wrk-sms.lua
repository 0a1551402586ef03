-- wrk script for the sandbox's Send SMS endpoint: one SMS per request, each
-- to a distinct number, so that the sandbox stores every message.
--
--   wrk -t1 -c64 -d10s -s oneroute/sandbox/testdata/wrk-sms.lua \
--     http://127.0.0.1:8765/api/public/channel/9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002/sms
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["apiKey"] = "test_wrk"

local n = 0
local base = math.random(0, 89) * 1000000

request = function()
  n = n + 1
  local body = string.format('{"message":"Hello from fanout, your code is ready","recipients":["23480%08d"]}', base + n % 1000000)
  return wrk.format(nil, nil, nil, body)
end
