-- traffik: INCRBY that sets the expiry when it created the key. KEYS[1], ARGV[1] amount, ARGV[2] ttl ms.
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
