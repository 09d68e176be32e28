-- One fleet sync of one service's shared retry budget (same rules as
-- `sync_budget` in src/fleet/rules.rs).
-- KEYS[1] budget hash. ARGV: deposits, returned, retry_ratio,
--   floor_per_window, window_ms, bucket_ms, ttl_ms, deadline_ms
-- Returns {deposits, withdrawals, granted, now} over the window; a sync run
-- after deadline_ms (Redis time; 0: none) changes nothing and returns
-- {'late', now}: its worker gave up on it and sends the same counts again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[8])
if deadline > 0 and now > deadline then return { 'late', now } end
local bucket_ms = tonumber(ARGV[6])
local bucket = math.floor(now / bucket_ms)
local oldest = bucket - math.floor(tonumber(ARGV[5]) / bucket_ms) + 1
local deposits_in, returned = tonumber(ARGV[1]), tonumber(ARGV[2])
if deposits_in > 0 then redis.call('HINCRBY', KEYS[1], string.format('%d:d', bucket), deposits_in) end
if returned > 0 then redis.call('HINCRBY', KEYS[1], string.format('%d:w', bucket), -returned) end
local deposits, withdrawals = 0, 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local b, kind = string.match(all[i], '^(%d+):(%a)$')
  local n = tonumber(all[i + 1])
  if b == nil or tonumber(b) < oldest then
    redis.call('HDEL', KEYS[1], all[i])
  elseif kind == 'd' then deposits = deposits + n
  else withdrawals = withdrawals + n end
end
if withdrawals < 0 then withdrawals = 0 end
local allowed = math.floor(deposits * tonumber(ARGV[3])) + tonumber(ARGV[4])
local available = allowed - withdrawals
local granted = 0
if available > 0 then granted = math.ceil(available / 2) end
if granted > 0 then
  redis.call('HINCRBY', KEYS[1], string.format('%d:w', bucket), granted)
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return { deposits, withdrawals + granted, granted, now }
