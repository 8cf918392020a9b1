#!lua flags=no-writes
-- traffik: reads a key's state and the clock in one read-only call (stat and check).
-- KEYS[1] the state key; ARGV[1] now in milliseconds, or '' to read Redis TIME.
local now
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
return {now, redis.call('GET', KEYS[1])}
