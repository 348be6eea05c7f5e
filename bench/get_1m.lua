-- get_1m.lua: GET /documents/{BENCH_DOC_ID}/content of a 1 MiB binary document (case 4, read).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = string.format("/documents/%d/content", bench_env_number("BENCH_DOC_ID"))
