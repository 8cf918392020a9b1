-- traffik: puts back the state the Rust transition leaves after a script disagreed with it
-- (which the exact-range checks exist to prevent), only if the key still holds what the client
-- read just before, so a decision that landed in between is never overwritten.
--
-- KEYS[1]  the state key
-- ARGV[1]  '1' if the key held a value when read, '0' if it was absent
-- ARGV[2]  that value
-- ARGV[3]  the state to store, or '' to delete the key
-- ARGV[4]  its ttl in milliseconds
--
-- Replies 1 when it wrote, 0 when the key had changed.
local current = redis.call('GET', KEYS[1])
if (ARGV[1] == '1' and current ~= ARGV[2]) or (ARGV[1] == '0' and current) then
  return 0
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
