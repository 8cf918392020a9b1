-- traffik: the clock and the integer helpers every decision script shares (first in each).
--
-- ARGV[1] is now in milliseconds, or '' to read Redis TIME (production: one clock for a fleet).
-- Every quantity is an integer kept below 2^53, where Lua's doubles are exact.
local now
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = tonumber(ARGV[1])
end

-- Whether the caller's deadline has passed: the last argument of a decision or refund, in ms on
-- the caller's wall clock, compared with Redis's own clock (the caller's `now` may be a test's
-- manual clock). A script that runs after it (Redis was stalled or paused and the caller has
-- given up) must change nothing.
local function past_deadline()
  local deadline = tonumber(ARGV[#ARGV])
  if not deadline then
    return false
  end
  local wall = now
  if ARGV[1] ~= '' then
    local time = redis.call('TIME')
    wall = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  end
  return wall > deadline
end

local function deadline_passed()
  return redis.error_reply('DEADLINE the caller gave up before this script ran; nothing changed')
end

-- floor(a / b) for integers (b > 0), exact while |a| < 2^53.
local function idiv(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  while r < 0 do
    q = q - 1
    r = r + b
  end
  while r >= b do
    q = q + 1
    r = r - b
  end
  return q
end

-- ceil(a / b) for integers (b > 0).
local function ceil_div(a, b)
  return -idiv(-a, b)
end

local function int(n)
  return string.format('%d', n)
end

-- Re-expresses `scaled` written at `from` scaled units per unit in `per_unit`, rounding up
-- (amounts owed) or down (amounts available): never in the client's favour.
local function rescale(scaled, from, per_unit, round_up)
  if from == per_unit or from == 0 then
    return scaled
  end
  if round_up then
    return ceil_div(scaled * per_unit, from)
  end
  return idiv(scaled * per_unit, from)
end

-- ceil(scaled / per_ms) milliseconds, 0 for nothing to gain.
local function ms_to_gain(scaled, per_ms)
  if scaled <= 0 then
    return 0
  end
  return ceil_div(scaled, per_ms)
end

-- Decodes a stored `[version,{…}]` state: the table, or nil when absent, unreadable or of
-- another version.
local function decode(stored, version)
  if not stored then
    return nil
  end
  local ok, value = pcall(cjson.decode, stored)
  if ok and type(value) == 'table' and value[1] == version and type(value[2]) == 'table' then
    return value[2]
  end
  return nil
end

-- Stores the state `json` under `key` with `version` until `expires_at`, or deletes the key
-- when it means nothing. Returns the key's value now ('' when deleted).
local function store(key, version, json, expires_at)
  if json == nil or expires_at <= now then
    redis.call('DEL', key)
    return ''
  end
  local value = '[' .. version .. ',' .. json .. ']'
  redis.call('SET', key, value, 'PX', int(expires_at - now))
  return value
end
