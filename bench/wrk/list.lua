-- List 50 accounts, filtered (city = X) and sorted (newest first by created_at).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local reqs = {}
function init(args)
  B.seed()
  for _, city in ipairs(B.lines("cities.txt")) do
    local filter = '{"field":"city","op":"=","value":' .. B.json_string(city) .. '}'
    reqs[#reqs + 1] = B.get("/api/v1/accounts?filter=" .. B.urlencode(filter) ..
                            "&sort=-created_at&limit=50")
  end
end
function request() return reqs[math.random(#reqs)] end
