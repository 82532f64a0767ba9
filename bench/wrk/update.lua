-- Durable update: PATCH /api/v1/accounts/{id} of one plain field (payment_terms, a value of its
-- own each time, so that every request writes), answered after its commit (synchronous=FULL),
-- ids sampled by rapport-gen. No If-Match: wrk does not keep each record's version.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local ids = {}
local n = 0
function init(args)
  B.seed()
  ids = B.lines("account_ids.txt")
end
function request()
  n = n + 1
  local headers = { ["Content-Type"] = "application/json" }
  for k, v in pairs(wrk.headers) do headers[k] = v end
  local body = '{"payment_terms":"net ' .. (thread_no or 0) .. "-" .. n .. "-" ..
               math.random(1000000) .. '"}'
  return wrk.format("PATCH", "/api/v1/accounts/" .. ids[math.random(#ids)], headers, body)
end
