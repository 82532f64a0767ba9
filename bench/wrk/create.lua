-- Durable create: POST /api/v1/accounts, each answered after its commit (synchronous=FULL).
-- BENCH_IDEMPOTENCY=1: each request carries an Idempotency-Key of its own.
-- BENCH_RANDOM_PHONES=1: each phone number random, as real ones are (by default they count up,
-- so the search index's rows of their digit suffixes land next to each other; see bench/README,
-- "The durable create path", session 13).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local cities = { "北京", "上海", "Shenzhen", "Hangzhou" }
local n = 0
local idempotency = os.getenv("BENCH_IDEMPOTENCY") == "1"
local random_phones = os.getenv("BENCH_RANDOM_PHONES") == "1"
function B.create_request()
  n = n + 1
  local tag = (thread_no or 0) .. "-" .. n .. "-" .. math.random(1000000)
  local phone = random_phones and
                  string.format("(021) %04d-%04d", math.random(2000, 9999), math.random(0, 9999)) or
                  string.format("(021) 5555-%04d", n % 10000)
  local body = '{"name":"压测客户 Bench ' .. tag .. '","kind":"company","city":"' ..
               cities[n % #cities + 1] .. '","phones":[{"value":"' .. phone ..
               '","label":"office"}],' ..
               '"emails":["bench' .. n .. '@example.com"],"tier":"B",' ..
               '"address":{"street":"南京西路1号","city":"上海","country":"CN"}}'
  local headers = { ["Content-Type"] = "application/json" }
  for k, v in pairs(wrk.headers) do headers[k] = v end
  if idempotency then headers["Idempotency-Key"] = "bench-" .. tag end
  return wrk.format("POST", "/api/v1/accounts", headers, body)
end
function init(args) B.seed() end
function request() return B.create_request() end
-- Shared with mixed.lua through a global: a script that returns a value leaves it on the stack
-- of wrk's main Lua state, where wrk's done() summary expects its own table.
BENCH = B
