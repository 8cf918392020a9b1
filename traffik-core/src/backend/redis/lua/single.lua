-- traffik: one decision (after clock.lua, before a strategy's transition).
--
-- KEYS[1]  the state key
-- ARGV[1]  now in milliseconds, or '' to read Redis TIME
-- ARGV[2]  the hit's cost
-- ARGV[3]  the strategy's state version
-- ARGV[4…] the strategy's parameters
-- last     the caller's deadline (ms, its wall clock): past it, the script changes nothing
--
-- The state is stored as the Rust codec writes it: `[version,{…}]`, integers only, with a
-- millisecond expiry (PX) at the moment it stops meaning anything. Each transition mirrors its
-- strategy's Rust `apply` and replies {now, the state it read (or nil), 1 if admitted else 0,
-- the key's value after it ('' when absent)}; the client derives the full decision from the
-- state it read with the same `apply`, and repairs the key from the value after it if the two
-- ever disagree.
if past_deadline() then
  return deadline_passed()
end
local key = KEYS[1]
local cost = tonumber(ARGV[2])
local version = tonumber(ARGV[3])
local stored = redis.call('GET', key)

local function load()
  return decode(stored, version)
end

local after = stored or ''

local function save(json, expires_at)
  after = store(key, ARGV[3], json, expires_at)
end

local function reply(admitted)
  return {now, stored, admitted and 1 or 0, after}
end
