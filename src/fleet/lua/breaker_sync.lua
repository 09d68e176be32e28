-- One fleet sync of one service's shared breaker (see src/fleet/rules.rs,
-- whose `sync_breaker` is the same rules for the in-process backend).
-- KEYS[1] state hash, KEYS[2] window hash.
-- ARGV: instance, intent, calls, failures, slow, min_calls, failure_rate,
--       slow_rate, open_base_ms, open_cap_ms, window_ms, bucket_ms,
--       lease_ms, ttl_ms, force_ms, deadline_ms
-- Returns {state, gen, remaining_ms, owner_is_me, calls, failures, slow, now}.
-- A sync that runs after deadline_ms (Redis time; 0: none) was given up by
-- its worker, which will send its counts and intent again: it changes
-- nothing and returns {'late', now}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[16])
if deadline > 0 and now > deadline then return { 'late', now } end
local me, intent = ARGV[1], ARGV[2]
local s = redis.call('HMGET', KEYS[1], 'state', 'gen', 'open_until', 'reopenings', 'owner', 'lease_until')
local state = s[1] or 'closed'
local gen = tonumber(s[2] or '0')
local open_until = tonumber(s[3] or '0')
local reopenings = tonumber(s[4] or '0')
local owner = s[5] or ''
local lease_until = tonumber(s[6] or '0')
local base, cap = tonumber(ARGV[9]), tonumber(ARGV[10])
local changed = false

local function open(r)
  local d = base * (2 ^ math.min(r, 30))
  if d > cap then d = cap end
  state, reopenings, open_until, owner, lease_until = 'open', r, now + d, '', 0
  gen = gen + 1
  changed = true
  redis.call('DEL', KEYS[2])
end

local function close()
  state, reopenings, open_until, owner, lease_until = 'closed', 0, 0, '', 0
  gen = gen + 1
  changed = true
  redis.call('DEL', KEYS[2])
end

if intent == 'trip' then
  if state == 'closed' then
    open(0)
    -- A trip published late keeps the open period its worker has left.
    local left = tonumber(ARGV[15])
    if left > 0 then open_until = now + math.min(left, cap) end
  end
elseif intent == 'probe_failed' then
  if state == 'half_open' and owner == me then open(reopenings + 1) end
elseif intent == 'probes_succeeded' then
  if state == 'half_open' and owner == me then close() end
elseif intent == 'claim' then
  if (state == 'open' and now >= open_until) or (state == 'half_open' and now >= lease_until) then
    state, owner, lease_until = 'half_open', me, now + tonumber(ARGV[13])
    gen = gen + 1
    changed = true
  end
elseif intent == 'recovered' then
  if (state == 'open' and now >= open_until)
      or (state == 'half_open' and (owner == me or now >= lease_until)) then
    close()
  end
elseif intent == 'force_open' then
  state, open_until, owner, lease_until = 'open', now + tonumber(ARGV[15]), '', 0
  gen = gen + 1
  changed = true
elseif intent == 'force_closed' then
  if state ~= 'closed' then close() end
end

local calls, failures, slow = 0, 0, 0
if state == 'closed' then
  local bucket_ms = tonumber(ARGV[12])
  local bucket = math.floor(now / bucket_ms)
  local oldest = bucket - math.floor(tonumber(ARGV[11]) / bucket_ms) + 1
  local deltas = { c = tonumber(ARGV[3]), f = tonumber(ARGV[4]), s = tonumber(ARGV[5]) }
  for kind, n in pairs(deltas) do
    if n > 0 then redis.call('HINCRBY', KEYS[2], string.format('%d:%s', bucket, kind), n) end
  end
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local b, kind = string.match(all[i], '^(%d+):(%a)$')
    local n = tonumber(all[i + 1])
    if b == nil or tonumber(b) < oldest then
      redis.call('HDEL', KEYS[2], all[i])
    elseif kind == 'c' then calls = calls + n
    elseif kind == 'f' then failures = failures + n
    else slow = slow + n end
  end
  if #all > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[14]) end
  if calls > 0 and calls >= tonumber(ARGV[6])
      and (failures / calls >= tonumber(ARGV[7]) or slow / calls >= tonumber(ARGV[8])) then
    open(0)
  end
end

if changed then
  redis.call('HSET', KEYS[1], 'state', state, 'gen', string.format('%d', gen),
    'open_until', string.format('%d', open_until), 'reopenings', string.format('%d', reopenings),
    'owner', owner, 'lease_until', string.format('%d', lease_until))
end
if changed or s[1] then redis.call('PEXPIRE', KEYS[1], ARGV[14]) end

local remaining = 0
if state == 'open' then remaining = open_until - now
elseif state == 'half_open' then remaining = lease_until - now end
if remaining < 0 then remaining = 0 end
return { state, gen, math.floor(remaining), (owner == me) and 1 or 0, calls, failures, slow, now }
