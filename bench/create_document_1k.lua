-- create_document_1k.lua: POST /documents/create_document with 1 KiB of content and a new
-- record id each time (case 2). Ids: BENCH_ID_BASE + thread * 1e9 + n, so that every wrk run
-- (warm-up included) and every thread makes ids of its own; a reused id would be a 409 error.
-- BENCH_BODY_FILE holds the 1 KiB of content (JSON-safe text).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local content = bench_read_file(os.getenv("BENCH_BODY_FILE"))
local base = bench_env_number("BENCH_ID_BASE")
local n = 0

function request()
   n = n + 1
   local id = base + tid * 1e9 + n
   return wrk.format("POST", "/documents/create_document",
                     bench_headers({ ["Content-Type"] = "application/json" }),
                     string.format('{"record_id":%.0f,"content":"%s"}', id, content))
end
