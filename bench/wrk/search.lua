-- Search as you type: 1-, 2- and 3..6-character prefixes of real names (Chinese and Latin),
-- and several-word queries derived from the same files (words.lua): a name word and part of a
-- phone number ("zhang 138", "Emma 5678"), a Chinese surname and a given name's character
-- ("王 芳"), a company's name and its city ("华禾 成都"), 15% of the requests.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local W = dofile(dir .. "words.lua")
local reqs = {}
function init(args)
  B.seed()
  local prefixes = B.lines("search.txt")
  local queries = {}
  for _, q in ipairs(prefixes) do queries[#queries + 1] = q end
  -- Not with BENCH_CHECK=1 (the smoke test counts an empty list as a failure): a name paired
  -- with another record's number rightly finds nothing.
  -- BENCH_SEARCH_WORDS: their share (default 0.15; 0 sends the prefixes alone, as the search
  -- scenario did until session 15).
  local share = tonumber(os.getenv("BENCH_SEARCH_WORDS") or "") or 0.15
  if not B.check and share > 0 and share < 1 then
    for _, q in ipairs(W.several_words(B, prefixes, W.share_of(#prefixes, share))) do
      queries[#queries + 1] = q
    end
  end
  for _, q in ipairs(queries) do
    reqs[#reqs + 1] = B.get("/api/v1/search?q=" .. B.urlencode(q) .. "&limit=10")
  end
end
function request() return reqs[math.random(#reqs)] end
