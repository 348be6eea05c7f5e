-- put_1m.lua: PUT /documents/{id} of a 1 MiB binary body (case 4, write). Each thread cycles
-- over BENCH_SLOTS record ids of its own (BENCH_ID_BASE + thread * 1000 + slot), one per
-- connection, so documents are replaced rather than piled up, and two connections rarely
-- replace the same record at once. The requests are built once, in init().
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local reqs = {}
local nslots = 1
local i = 0

function init(args)
   local body = bench_read_file(os.getenv("BENCH_BODY_FILE"))
   local base = bench_env_number("BENCH_ID_BASE")
   nslots = bench_env_number("BENCH_SLOTS")
   for s = 1, nslots do
      reqs[s] = wrk.format("PUT", string.format("/documents/%.0f", base + tid * 1000 + s),
                           bench_headers({ ["Content-Type"] = "application/octet-stream" }),
                           body)
   end
end

function request()
   i = i % nslots + 1
   return reqs[i]
end
