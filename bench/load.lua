-- wrk script for `make bench` (bench/load.py fills in the first lines).
-- Request k (k = OFFSET + thread id, stepping by THREADS) goes to user k % USERS and book
-- (k % USERS + k // USERS) % BOOKS: no (user, book) pair repeats within USERS * BOOKS
-- requests, so no reservation meets another active one (no 409). Each request carries
-- its own user's pre-minted token. RATE > 0 paces each thread on a monotonic clock
-- (LuaJIT ffi); COUNT bounds the requests.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local tokens = dofile(TOKENS)
local USERS = #tokens
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local k, last, interval, next_t

function init(args)
  k = OFFSET + tid
  last = OFFSET + COUNT
  if RATE > 0 then interval = THREADS / RATE end
  next_t = now()
end

function delay()
  if RATE <= 0 then return 0 end
  next_t = next_t + interval
  local t = now()
  if next_t < t - 0.2 then next_t = t end -- far behind: no burst to catch up
  local d = (next_t - t) * 1000
  if d < 0 then return 0 end
  return d
end

function request()
  if MODE == "books" then return wrk.format("GET", "/v1/books") end
  local u = k % USERS
  local b = (u + math.floor(k / USERS)) % BOOKS
  k = k + THREADS
  local headers = {["authorization"] = "Bearer " .. tokens[u + 1], ["content-type"] = "application/json"}
  if MODE == "echo" then
    return wrk.format("POST", "/v1/echo", headers, '{"text":"' .. BOOK_PREFIX .. b .. '"}')
  end
  return wrk.format("POST", "/v1/reservations", headers, '{"bookId":"' .. BOOK_PREFIX .. b .. '"}')
end

function response(status, headers, body)
  if k >= last then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
    '"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
