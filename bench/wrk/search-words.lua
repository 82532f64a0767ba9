-- Search as you type with several words: what a call-centre agent types ("zhang 138", "王 芳",
-- "Emma 5678", "华禾 成都"), derived from the data set's bench files (several_words.lua) — as
-- many queries as would be 15% of a mix with search.txt's prefixes. A scenario of its own, so
-- that `search` (one key) stays comparable across sessions and each has its own p99.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local W = dofile(dir .. "several_words.lua")
local reqs = {}
-- A name paired with another record's number rightly finds nothing: with BENCH_CHECK=1 an answer
-- counts as empty only when it is not a search answer at all.
function B.is_empty(body) return body == nil or not body:find('"items":%[') end
function init(args)
  B.seed()
  local prefixes = B.lines("search.txt")
  for _, q in ipairs(W.several_words(B, prefixes, W.share_of(#prefixes, 0.15))) do
    reqs[#reqs + 1] = B.get("/api/v1/search?q=" .. B.urlencode(q) .. "&limit=10")
  end
end
function request() return reqs[math.random(#reqs)] end
