-- traffik: the clock (first in every script that decides or reads).
--
-- ARGV[1] is now in milliseconds (the estimate of Redis's clock, or the caller's), or '' to read
-- Redis TIME. Every quantity is an integer kept below 2^53, where Lua's doubles are exact.
local now
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
