-- wrk script: a client that composes by itself, making the three calls one
-- after the other on its keep-alive connection (/orders, then /users, then
-- /products).  Run with one connection per thread (-t N -c N): each
-- thread's Lua state then follows one connection, so the time of each
-- triple is measured exactly (LuaJIT ffi clock_gettime).  Prints one JSON
-- line counted in client requests (triples).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } pt_timespec;
int clock_gettime(int clk, pt_timespec *tp);
]]
local ts = ffi.new("pt_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local paths = { "/orders/42", "/users/7", "/products?order=42" }
local step, started = 0, 0
lat, n, bad = {}, 0, 0

request = function()
  step = step % 3 + 1
  if step == 1 then started = now_us() end
  return wrk.format("GET", paths[step])
end

response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
  if step == 3 then
    n = n + 1
    lat[n] = now_us() - started
  end
end

local threads = {}
setup = function(thread) table.insert(threads, thread) end

done = function(summary, latency, requests)
  local all = {}
  local errors = 0
  for _, t in ipairs(threads) do
    local l = t:get("lat")
    for i = 1, t:get("n") do all[#all + 1] = l[i] end
    errors = errors + t:get("bad")
  end
  table.sort(all)
  local function pct(p)
    if #all == 0 then return 0 end
    return all[math.max(1, math.ceil(#all * p / 100))] / 1000
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "rps": %.1f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "errors": %d}\n',
    #all, #all / secs, pct(50), pct(90), pct(99), errors + summary.errors.status))
end
