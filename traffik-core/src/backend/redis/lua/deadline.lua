-- traffik: the caller's deadline (after clock.lua, in every script that writes). The last
-- argument is one of:
--   a number  the deadline, in ms on Redis's clock as the caller estimates it: a script that
--             runs after it (Redis was stalled or paused and the caller has given up) changes
--             nothing. It is compared with Redis's own TIME (`now` may be a test's manual clock).
--   '+<ms>'   no deadline (the fleet clock: checking one needs TIME), and every key written is
--             kept that much longer than its state means anything (`keep`). `now` was read when
--             the call was sent, so a call may run later than its `now` (queued behind others,
--             up to the command timeout): the key must still be there for it, or it would decide
--             on an absent state and move the schedule back.
--   ''        neither.
local keep = 0
local last = ARGV[#ARGV]
if string.byte(last) == 43 then
  keep = tonumber(string.sub(last, 2))
else
  local deadline = tonumber(last)
  if deadline then
    local wall = now
    if ARGV[1] ~= '' then
      local time = redis.call('TIME')
      wall = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    end
    if wall > deadline then
      return redis.error_reply('DEADLINE the caller gave up before this script ran; nothing changed')
    end
  end
end
