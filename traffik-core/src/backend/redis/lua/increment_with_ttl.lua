-- traffik: INCRBY that gives the key its expiry when it has none: when this created it, or when
-- it lost its TTL (a client that died between INCR and EXPIRE, an operator's PERSIST), so a
-- counter can never outlive its window for good. KEYS[1], ARGV[1] amount, ARGV[2] ttl ms.
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
