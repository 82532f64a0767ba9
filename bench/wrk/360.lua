-- Customer 360 page data: GET /api/v1/accounts/{id}/360 (master data, contacts, dated profile,
-- the communication timeline and open items in one answer), ids sampled by rapport-gen.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local reqs = {}
-- An account without profile entries is a full answer: empty means no account or no contacts
-- (the generator gives every account two).
function B.is_empty(body)
  return body == nil or not body:find('"account":{') or body:find('"contacts":{"items":%[%]')
end
function init(args)
  B.seed()
  for _, id in ipairs(B.lines("account_ids.txt")) do
    reqs[#reqs + 1] = B.get("/api/v1/accounts/" .. id .. "/360")
  end
end
function request() return reqs[math.random(#reqs)] end
