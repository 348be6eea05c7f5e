-- create_account.lua: POST /users/create_account with the Basic credentials of a new account
-- each time (case 5: one Argon2id per request). Usernames: bench<BENCH_ID_BASE>t<thread>n<n>.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
   local out = {}
   for p = 1, #s, 3 do
      local a, b, c = s:byte(p, p + 2)
      local v = a * 65536 + (b or 0) * 256 + (c or 0)
      local q = {}
      for k = 3, 0, -1 do
         local d = math.floor(v / 64 ^ k) % 64
         q[#q + 1] = B64:sub(d + 1, d + 1)
      end
      if b == nil then q[3] = "=" end
      if c == nil then q[4] = "=" end
      out[#out + 1] = table.concat(q)
   end
   return table.concat(out)
end

local base = bench_env_number("BENCH_ID_BASE")
local password = "bench-password-" .. string.format("%.0f", base)
local n = 0
wrk.headers["Authorization"] = nil

function request()
   n = n + 1
   local user = string.format("bench%.0ft%dn%d", base, tid, n)
   return wrk.format("POST", "/users/create_account",
                     bench_headers({ ["Authorization"] = "Basic " .. base64(user .. ":" .. password) }),
                     "")
end
