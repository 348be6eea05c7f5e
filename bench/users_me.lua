-- users_me.lua: GET /users/me (case 3).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/users/me"
