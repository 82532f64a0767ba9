-- Phone lookup (screen pop) through the list filter `phones contains DIGITS` until the dedicated
-- endpoint of issue #4 exists. DIGITS are runs of >= 7 digits of numbers as stored.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local reqs = {}
function init(args)
  B.seed()
  for _, digits in ipairs(B.lines("phones.txt")) do
    local filter = '{"field":"phones","op":"contains","value":"' .. digits .. '"}'
    reqs[#reqs + 1] = B.get("/api/v1/accounts?filter=" .. B.urlencode(filter) .. "&limit=10")
  end
end
function request() return reqs[math.random(#reqs)] end
