-- Phone lookup (screen pop): GET /api/v1/lookup/phone with numbers as they were written
-- ("010-6253 1234", "+86 10 62531234", "(021) 5555-0101" …); the server normalises to E.164.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local reqs = {}
function init(args)
  B.seed()
  for _, number in ipairs(B.lines("phone_numbers.txt")) do
    reqs[#reqs + 1] = B.get("/api/v1/lookup/phone?number=" .. B.urlencode(number))
  end
end
function request() return reqs[math.random(#reqs)] end
