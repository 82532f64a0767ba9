-- Shared by every scenario script: data files written by rapport-gen (BENCH_DIR, its bench/
-- folder), the bearer token, URL encoding, and the done() hook that prints one JSON line
--   BENCH_RESULT {"requests":…,"rps":…,"p50_ms":…,"p99_ms":…,"errors":…,"non2xx":…}
-- With BENCH_CHECK=1 (the smoke test) a response() hook also counts non-2xx answers and empty
-- result lists exactly; without it wrk's own count (status >= 400) is reported, which keeps the
-- client cheap on a machine it shares with the server.
local M = {}

M.dir = os.getenv("BENCH_DIR") or "bench/data/small/bench"
M.check = os.getenv("BENCH_CHECK") == "1"

function M.lines(name)
  local out = {}
  local f = assert(io.open(M.dir .. "/" .. name, "r"), "cannot read " .. M.dir .. "/" .. name)
  for line in f:lines() do
    if line ~= "" then out[#out + 1] = line end
  end
  f:close()
  assert(#out > 0, M.dir .. "/" .. name .. " is empty")
  return out
end

function M.urlencode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function M.json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

local token = M.lines("token")[1]
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/json"

-- GET requests pre-formatted once per thread; request() picks one at random.
function M.get(path)
  return wrk.format("GET", path)
end

local threads = {}
function setup(thread)
  thread:set("thread_no", #threads + 1)
  threads[#threads + 1] = thread
end

function M.seed()
  math.randomseed(os.time() * 1000 + (thread_no or 0))
end

non2xx, empty, checked, first_bad = 0, 0, 0, ""

-- Whether a 2xx answer counts as an empty result (BENCH_CHECK=1); a script may replace it.
function M.is_empty(body)
  return body == nil or body == "" or body:find('"items":%[%]') or body:find('"matches":%[%]')
end

if M.check then
  function response(status, headers, body)
    checked = checked + 1
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_bad == "" then first_bad = status .. " " .. (body or ""):sub(1, 200) end
    elseif M.is_empty(body) then
      empty = empty + 1
      if first_bad == "" then first_bad = "empty: " .. (body or ""):sub(1, 200) end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local n2, em, ck, bad = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    n2 = n2 + (t:get("non2xx") or 0)
    em = em + (t:get("empty") or 0)
    ck = ck + (t:get("checked") or 0)
    if bad == "" then bad = t:get("first_bad") or "" end
  end
  local secs = summary.duration / 1e6
  local function ms(us) return string.format("%.3f", us / 1000) end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%s,"p90_ms":%s,"p99_ms":%s,' ..
    '"max_ms":%s,"mean_ms":%s,"errors":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"status_errors":%d,"non2xx":%d,"empty":%d,"checked":%d,' ..
    '"exact":%s,"first_bad":%s}\n',
    summary.requests, secs, summary.requests / secs, ms(latency:percentile(50)),
    ms(latency:percentile(90)), ms(latency:percentile(99)), ms(latency.max), ms(latency.mean),
    e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout, e.status,
    M.check and n2 or e.status, em, ck, M.check and "true" or "false", M.json_string(bad)))
end

return M
