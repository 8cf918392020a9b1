-- Stores `value` (a whole `[version,{…}]` state) under `key` until `expires_at` (and `keep` ms
-- more), or deletes the key when the value is false or already expired. Returns the key's value
-- now ('' when deleted).
local function store(key, value, expires_at)
  if not value or expires_at <= now then
    redis.call('DEL', key)
    return ''
  end
  redis.call('SET', key, value, 'PX', string.format('%d', expires_at - now + keep))
  return value
end
