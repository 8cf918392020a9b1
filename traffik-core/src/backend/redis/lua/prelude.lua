-- traffik: the part every decision script shares (prepended to each one).
--
-- KEYS[1]  the state key
-- ARGV[1]  now in milliseconds, or '' to read Redis TIME (production: one clock for a fleet)
-- ARGV[2]  the hit's cost
-- ARGV[3]  the strategy's state version
-- ARGV[4…] the strategy's parameters
--
-- The state is stored as the Rust codec writes it: `[version,{…}]`, integers only, with a
-- millisecond expiry (PX) at the moment it stops meaning anything. Each script mirrors its
-- strategy's Rust `apply` and replies {now, the state it read (or nil), 1 if admitted else 0};
-- the client derives the full decision from the state it read with the same `apply`.
local key = KEYS[1]
local now
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local cost = tonumber(ARGV[2])
local version = tonumber(ARGV[3])
local stored = redis.call('GET', key)

-- The decoded state, or nil when absent, unreadable or of another version.
local function load()
  if not stored then
    return nil
  end
  local ok, value = pcall(cjson.decode, stored)
  if ok and type(value) == 'table' and value[1] == version and type(value[2]) == 'table' then
    return value[2]
  end
  return nil
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

-- Stores the state `json` until `expires_at`, or deletes the key when it means nothing.
local function save(json, expires_at)
  if json == nil or expires_at <= now then
    redis.call('DEL', key)
  else
    redis.call('SET', key, '[' .. ARGV[3] .. ',' .. json .. ']', 'PX', int(expires_at - now))
  end
end

local function reply(admitted)
  return {now, stored, admitted and 1 or 0}
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

