-- The ceiling: GET /healthz, answered on the I/O thread without touching anything.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local B = dofile(dir .. "common.lua")
wrk.path = "/healthz"
