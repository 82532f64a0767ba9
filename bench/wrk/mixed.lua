-- Mixed load: 90% reads (60 by id, 15 list, 10 search, 5 phone lookup) and 10% durable creates.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "create.lua")
local B = BENCH
local reads, lists, searches, phones = {}, {}, {}, {}
function init(args)
  B.seed()
  for _, id in ipairs(B.lines("account_ids.txt")) do
    reads[#reads + 1] = B.get("/api/v1/accounts/" .. id)
  end
  for _, city in ipairs(B.lines("cities.txt")) do
    local filter = '{"field":"city","op":"=","value":' .. B.json_string(city) .. '}'
    lists[#lists + 1] = B.get("/api/v1/accounts?filter=" .. B.urlencode(filter) ..
                              "&sort=-created_at&limit=50")
  end
  for _, q in ipairs(B.lines("search.txt")) do
    searches[#searches + 1] = B.get("/api/v1/search?q=" .. B.urlencode(q) .. "&limit=10")
  end
  for _, number in ipairs(B.lines("phone_numbers.txt")) do
    phones[#phones + 1] = B.get("/api/v1/lookup/phone?number=" .. B.urlencode(number))
  end
end
function request()
  local r = math.random(100)
  if r <= 60 then return reads[math.random(#reads)] end
  if r <= 75 then return lists[math.random(#lists)] end
  if r <= 85 then return searches[math.random(#searches)] end
  if r <= 90 then return phones[math.random(#phones)] end
  return B.create_request()
end
