-- get_1k.lua: GET /documents/{BENCH_DOC_ID} of a 1 KiB text document (case 1).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = string.format("/documents/%d", bench_env_number("BENCH_DOC_ID"))
