-- Several-word search queries (the search-words scenario) derived at run time from a data set's bench files (search.txt,
-- phones.txt, cities.txt), so that the bench sends what a call-centre agent types
-- without a change to the generator (whose code is the cached data set's key):
--   a surname's pinyin and part of a phone number   "zhang 138", "liu 5678"
--   a Latin name word and part of a phone number    "Emma 3326", "Wilson 5532"
--   a Chinese surname and a given name's character  "王 芳", "欧阳 娜"
--   a Chinese company's name and its city           "华禾 成都"
-- The digits are the start (3 or 4 digits) or the end (4) of a sampled number's digit run, paired
-- with a name at random: mostly few matches, the dearer case. Deterministic (its own generator),
-- so every run and every wrk thread sends the same queries.
local M = {}

-- Common surnames and their pinyin (search finds a Chinese name by its pinyin too).
local pinyin = {
  ["王"] = "wang", ["李"] = "li", ["张"] = "zhang", ["刘"] = "liu", ["陈"] = "chen",
  ["杨"] = "yang", ["赵"] = "zhao", ["黄"] = "huang", ["周"] = "zhou", ["吴"] = "wu",
  ["徐"] = "xu", ["孙"] = "sun", ["胡"] = "hu", ["朱"] = "zhu", ["高"] = "gao", ["林"] = "lin",
  ["何"] = "he", ["郭"] = "guo", ["马"] = "ma", ["罗"] = "luo", ["欧阳"] = "ouyang",
  ["司马"] = "sima",
}

-- The characters (code points) of a UTF-8 string.
local function chars(s)
  local out = {}
  for c in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do out[#out + 1] = c end
  return out
end

local function cjk(c) return #c == 3 and c:byte(1) >= 0xE4 and c:byte(1) <= 0xE9 end

-- How many derived queries make `share` of all when added to `n` others.
function M.share_of(n, share) return math.floor(n * share / (1 - share) + 0.5) end

function M.several_words(B, prefixes, count)
  local seed = 15
  local function rand(k) -- 1..k (a 31-bit linear congruential generator)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return math.floor(seed / 65536) % k + 1
  end
  local surnames, latin, companies = {}, {}, {}
  local cities = B.lines("cities.txt")
  local seen = {}
  for _, q in ipairs(prefixes) do
    if not seen[q] then
      seen[q] = true
      local cs = chars(q)
      local two = (cs[1] or "") .. (cs[2] or "")
      if #cs >= 2 and cjk(cs[1]) then
        local city
        for _, c in ipairs(cities) do
          if q:sub(1, #c) == c then city = c end
        end
        if city and #cs >= #chars(city) + 2 then
          -- 成都华禾电子 → "华禾 成都"
          local core = chars(q:sub(#city + 1))
          companies[#companies + 1] = core[1] .. core[2] .. " " .. city
        elseif pinyin[two] and #cs >= 3 then
          surnames[#surnames + 1] = {two, cs[3]}
        elseif pinyin[cs[1]] and #cs <= 3 then
          surnames[#surnames + 1] = {cs[1], cs[2]}
        end
      elseif q:match("^%a%a+ %a") then
        latin[#latin + 1] = q:match("^(%a+)")
      end
    end
  end
  local digits = {}
  for _, p in ipairs(B.lines("phones.txt")) do
    if #p >= 7 then digits[#digits + 1] = p end
  end
  local function part()
    local d = digits[rand(#digits)]
    local r = rand(3)
    if r == 1 then return d:sub(1, 3) elseif r == 2 then return d:sub(1, 4) end
    return d:sub(-4)
  end
  local out = {}
  -- In turn: pinyin + digits, Chinese surname + given character, pinyin + digits, Latin word +
  -- digits, Chinese surname + given character, company + city (a third name and number, a third
  -- Chinese names, the rest Latin names with numbers and companies with their cities).
  local kinds = {"pinyin", "han", "pinyin", "latin", "han", "company"}
  local k, before = 0, -1
  while #out < count do
    k = k % #kinds + 1
    if k == 1 then
      if before == #out then break end -- a whole round added nothing: nothing to derive from
      before = #out
    end
    local kind = kinds[k]
    if kind == "pinyin" and #surnames > 0 and #digits > 0 then
      out[#out + 1] = pinyin[surnames[rand(#surnames)][1]] .. " " .. part()
    elseif kind == "han" and #surnames > 0 then
      local s = surnames[rand(#surnames)]
      out[#out + 1] = s[1] .. " " .. s[2]
    elseif kind == "latin" and #latin > 0 and #digits > 0 then
      out[#out + 1] = latin[rand(#latin)] .. " " .. part()
    elseif kind == "company" and #companies > 0 then
      out[#out + 1] = companies[rand(#companies)]
    end
  end
  return out
end

return M
