-- get_1m.lua: GET /documents/{BENCH_DOC_ID}/content of a 1 MiB binary document (case 4, read).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = string.format("/documents/%d/content", bench_env_number("BENCH_DOC_ID"))
-- No response() callback: with one, wrk copies every 1 MiB body into a Lua string, and that
-- copy cost wrk most of a core (wrk, nginx, the API and MariaDB share the machine's cores).
-- wrk still counts answers of status >= 400 (see done() in common.lua).
response = nil
