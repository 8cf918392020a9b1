-- traffik: one refund (after clock.lua, deadline.lua and the functions it calls, before a
-- strategy's refund).
--
-- KEYS[1]  the state key
-- ARGV[1]  now in milliseconds, or '' to read Redis TIME
-- ARGV[2]  the charge's cost
-- ARGV[3]  the strategy's state version
-- ARGV[4]  milliseconds from the charge to now, on the caller's clock
-- ARGV[5]  how many milliseconds the charge's time may be off by: 0 on the caller's clock; on
--          Redis TIME the command timeout (the charge ran some time after the caller read its
--          clock, at most a command timeout, which is all `at` can tell); on the fleet clock
--          the estimate's uncertainty and drift at both ends (a few ms)
-- ARGV[6…] the strategy's parameters, as for its decision
-- last     the caller's deadline (ms, Redis's clock), or '+<ms>' to keep keys that much longer,
--          or '' (deadline.lua)
--
-- Each refund mirrors its strategy's Rust `refund` on the charge's time (`at`: now minus the
-- elapsed milliseconds, so the charge lands on the clock the decision read) and replies 1 when
-- it returned units, 0 when the charge had lapsed (nothing is written then).
local key = KEYS[1]
local cost = tonumber(ARGV[2])
local at = math.max(now - tonumber(ARGV[4]), 0)
local slack = tonumber(ARGV[5])
local state = decode(redis.call('GET', key), ARGV[3])
if not state then
  return 0
end

local function save(json, expires_at)
  store(key, json and ('[' .. ARGV[3] .. ',' .. json .. ']'), expires_at)
end
