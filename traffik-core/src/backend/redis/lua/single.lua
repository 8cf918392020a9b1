-- traffik: one decision (after clock.lua, deadline.lua, the functions it calls, and its
-- strategy's transition as `transition(stored, cost, ARGV)`).
--
-- KEYS[1]  the state key
-- ARGV[1]  now in milliseconds, or '' to read Redis TIME
-- ARGV[2]  the hit's cost
-- ARGV[3]  the strategy's state version
-- ARGV[4…] the strategy's parameters
-- last     the caller's deadline (ms, Redis's clock), or '+<ms>' to keep keys that much longer,
--          or '' (deadline.lua)
--
-- The state is stored as the Rust codec writes it: `[version,{…}]`, integers only, with a
-- millisecond expiry (PX) at the moment it stops meaning anything (and `keep` ms later). Each transition mirrors its
-- strategy's Rust `apply` on the stored text and returns whether it admits, and, when the key
-- changes, the new value (false to delete the key) and when it expires. The script replies
-- {now, the state it read (or nil), 1 if admitted else 0, the key's value after it ('' when
-- absent)}; the client derives the full decision from the state it read with the same `apply`,
-- and repairs the key from the value after it if the two ever disagree.
local key = KEYS[1]
local stored = redis.call('GET', key)
local admitted, value, expires_at = transition(stored, tonumber(ARGV[2]), ARGV)
local after = stored or ''
if value ~= nil then
  if value and expires_at > now then
    redis.call('SET', key, value, 'PX', string.format('%d', expires_at - now + keep))
    after = value
  else
    redis.call('DEL', key)
    after = ''
  end
end
return {now, stored, admitted and 1 or 0, after}
