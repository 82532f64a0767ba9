-- Search as you type: 1-, 2- and 3..6-character prefixes of real names (Chinese and Latin).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local reqs = {}
function init(args)
  B.seed()
  for _, q in ipairs(B.lines("search.txt")) do
    reqs[#reqs + 1] = B.get("/api/v1/search?q=" .. B.urlencode(q) .. "&limit=10")
  end
end
function request() return reqs[math.random(#reqs)] end
