-- ceiling.lua: the same request as get_1k.lua, sent to the ceiling nginx, whose upstream
-- answers a fixed body of the same bytes without any work.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = string.format("/documents/%d", bench_env_number("BENCH_DOC_ID"))
