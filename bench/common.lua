-- common.lua: shared part of the wrk scripts of bench/ (loaded by each of them with dofile).
-- Sets the Basic credentials, counts 2xx and non-2xx answers per thread, and prints one
-- machine-readable line from done() that bench/run.sh parses:
--   BENCH requests=N duration_us=D ok=N non2xx=N sock_errors=N p50_us=N p99_us=N mean_us=X max_us=N bytes=N
-- Environment: BENCH_AUTH (the whole Authorization header value, optional).

local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
   wrk.headers["Authorization"] = auth
end

-- Per-thread state (each wrk thread has its own Lua state); tid is set by setup().
tid = 0
ok2xx = 0
non2xx = 0

local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok2xx = ok2xx + 1
   else
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local ok, bad = 0, 0
   local e = summary.errors
   if response == nil then
      -- A script without response(): wrk counts answers of status >= 400 itself.
      bad = e.status
      ok = summary.requests - bad
   else
      for _, t in ipairs(threads) do
         ok = ok + t:get("ok2xx")
         bad = bad + t:get("non2xx")
      end
   end
   local sock = e.connect + e.read + e.write + e.timeout
   io.write(string.format(
      "BENCH requests=%d duration_us=%d ok=%d non2xx=%d sock_errors=%d p50_us=%d p99_us=%d mean_us=%.1f max_us=%d bytes=%d\n",
      summary.requests, summary.duration, ok, bad, sock,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max, summary.bytes))
end

-- bench_read_file(path): the whole file (used for request bodies).
function bench_read_file(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

-- bench_env_number(name): a required numeric environment variable.
function bench_env_number(name)
   local v = tonumber(os.getenv(name) or "")
   assert(v ~= nil, name .. " must be set to a number")
   return v
end

-- bench_headers(extra): a new table of wrk.headers (Host, Authorization) plus extra.
-- wrk.format() uses only the table it is given and writes Content-Length into it, so
-- every request with a body of its own needs a fresh table.
function bench_headers(extra)
   local h = {}
   for k, v in pairs(wrk.headers) do h[k] = v end
   for k, v in pairs(extra or {}) do h[k] = v end
   return h
end
