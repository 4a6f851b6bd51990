/**
 * Lua scripts of the Redis store. Each runs atomically on the keys of ONE swarm (all tagged
 * `{<hex info hash>}`) plus the two global keys (counters, swarm registry).
 *
 * KEYS (every script): 1 peers hash (key → record), 2 expiry zset (HTTP/UDP peers by lastSeen),
 * 3 downloaded counter, 4..9 peer-key sets by kind * 2 + seeder, 10 global counters hash
 * (t torrents, r retired, p peers, s seeders, l leechers), 11 registry set of swarms with peers.
 *
 * A peer record is struct '>BBddB' (kind, seeder, conn, lastSeen, peer id length), then the
 * peer id, then the compact address: the JS side decodes it with fixed offsets.
 */

const COMMON = `
local P, T, D, N, R = KEYS[1], KEYS[2], KEYS[3], KEYS[10], KEYS[11]
local ih = ARGV[1]
local function set (k, s) return KEYS[4 + k * 2 + s] end
local function counts ()
  local c = redis.call('SCARD', KEYS[5]) + redis.call('SCARD', KEYS[7]) + redis.call('SCARD', KEYS[9])
  local i = redis.call('SCARD', KEYS[4]) + redis.call('SCARD', KEYS[6]) + redis.call('SCARD', KEYS[8])
  return c, i
end
local function downloaded () return tonumber(redis.call('GET', D) or '0') end
-- Removes one peer; the swarm leaves the registry with its last peer (its counter stays).
local function drop (key, rec)
  local k, s = struct.unpack('>BB', rec)
  redis.call('HDEL', P, key)
  redis.call('SREM', set(k, s), key)
  if k ~= 2 then redis.call('ZREM', T, key) end
  redis.call('HINCRBY', N, 'p', -1)
  redis.call('HINCRBY', N, s == 1 and 's' or 'l', -1)
  if redis.call('HLEN', P) == 0 then
    redis.call('HINCRBY', N, 't', -1)
    redis.call('SREM', R, ih)
    if downloaded() > 0 then redis.call('HINCRBY', N, 'r', 1) end
  end
end
`

/**
 * ARGV: 1 info hash, 2 key, 3 peer id, 4 addr, 5 kind, 6 conn, 7 event, 8 seeder (0/1),
 * 9 numwant, 10 want bits, 11 now, 12 random seed.
 * Returns { complete, incomplete, downloaded, record... } (picked peers' records).
 */
export const ANNOUNCE_LUA = COMMON + `
local key, peerId, addr = ARGV[2], ARGV[3], ARGV[4]
local kind, conn, event = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local seeder, numwant, want, now = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local old = redis.call('HGET', P, key)
if event == 3 then
  if old then drop(key, old) end
  local c, i = counts()
  return { c, i, downloaded() }
end
if not old then
  if redis.call('HLEN', P) == 0 then
    redis.call('HINCRBY', N, 't', 1)
    redis.call('SADD', R, ih)
    if downloaded() > 0 then redis.call('HINCRBY', N, 'r', -1) end
  end
  redis.call('SADD', set(kind, seeder), key)
  redis.call('HINCRBY', N, 'p', 1)
  redis.call('HINCRBY', N, seeder == 1 and 's' or 'l', 1)
  -- A peer that joins already complete through a completed event did download it.
  if seeder == 1 and event == 1 then redis.call('INCR', D) end
else
  local k, s = struct.unpack('>BB', old)
  kind = k -- an identity keeps its kind
  if s ~= seeder then
    redis.call('SMOVE', set(kind, s), set(kind, seeder), key)
    redis.call('HINCRBY', N, 's', seeder == 1 and 1 or -1)
    redis.call('HINCRBY', N, 'l', seeder == 1 and -1 or 1)
    if seeder == 1 and event == 1 then redis.call('INCR', D) end
  end
end
redis.call('HSET', P, key, struct.pack('>BBddB', kind, seeder, conn, now, #peerId) .. peerId .. addr)
if kind ~= 2 then redis.call('ZADD', T, now, key) end
local c, i = counts()
local out = { c, i, downloaded() }
if numwant <= 0 then return out end

-- Candidate sets: wanted kinds; leechers, and seeders unless the asker is one.
math.randomseed(tonumber(ARGV[12]))
local src, size, self = {}, {}, {}
local total = 0
for k = 0, 2 do
  if want % (2 ^ (k + 1)) >= 2 ^ k then
    for s = 0, 1 - seeder do
      local sk = set(k, s)
      local n = redis.call('SCARD', sk)
      local me = (k == kind and s == seeder) and 1 or 0
      if n - me > 0 then
        src[#src + 1] = sk; size[#src] = n; self[#src] = me
        total = total + n - me
      end
    end
  end
end
-- How many from each set: draw numwant of the total without replacement (exact multivariate
-- hypergeometric), so every eligible peer is equally likely whatever set it is in.
local take = {}
for i = 1, #src do take[i] = 0 end
if total <= numwant then
  for i = 1, #src do take[i] = size[i] - self[i] end
else
  local left = {}
  for i = 1, #src do left[i] = size[i] - self[i] end
  local remaining = total
  for j = 1, numwant do
    local r = math.random(remaining)
    for i = 1, #src do
      if r <= left[i] then take[i] = take[i] + 1; left[i] = left[i] - 1; break end
      r = r - left[i]
    end
    remaining = remaining - 1
  end
end
local keys = {}
for i = 1, #src do
  local t = take[i]
  if t > 0 then
    local members
    if t + self[i] >= size[i] then members = redis.call('SMEMBERS', src[i])
    else members = redis.call('SRANDMEMBER', src[i], t + self[i]) end
    -- With the asker in this set, one extra was drawn: drop the asker, or else a random one.
    local skip = 0
    if self[i] == 1 then
      local found = false
      for _, m in ipairs(members) do if m == key then found = true end end
      if not found then skip = math.random(#members) end
    end
    for j, m in ipairs(members) do
      if m ~= key and j ~= skip then keys[#keys + 1] = m end
    end
  end
end
if #keys > 0 then
  local recs = redis.call('HMGET', P, unpack(keys))
  for j = 1, #recs do out[#out + 1] = recs[j] end
end
return out
`

/** ARGV: 1 info hash, 2 key. Returns 1 when the peer was there. */
export const REMOVE_LUA = COMMON + `
local rec = redis.call('HGET', P, ARGV[2])
if not rec then return 0 end
drop(ARGV[2], rec)
return 1
`

/**
 * ARGV: 1 info hash, 2 cutoff (peers with lastSeen < cutoff go), 3 batch size, 4 '1' to also
 * remove WebSocket peers of nodes that are gone, 5… the nodes alive.
 * Returns { peers before, removed, more stale left }.
 */
export const SWEEP_LUA = COMMON + `
local before = redis.call('HLEN', P)
local stale = redis.call('ZRANGEBYSCORE', T, '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local removed = #stale
for _, key in ipairs(stale) do
  local rec = redis.call('HGET', P, key)
  if rec then drop(key, rec) else redis.call('ZREM', T, key) end
end
local more = 0
if #stale == tonumber(ARGV[3]) and redis.call('ZCOUNT', T, '-inf', '(' .. ARGV[2]) > 0 then more = 1 end
-- A WebSocket peer lives as long as its socket; a node (instance) that died cannot remove its
-- peers, so they go when their node (high bits of conn) is not among the live ones.
if ARGV[4] == '1' then
  local live = {}
  for i = 5, #ARGV do live[tonumber(ARGV[i])] = true end
  for _, sk in ipairs({ KEYS[8], KEYS[9] }) do
    for _, key in ipairs(redis.call('SMEMBERS', sk)) do
      local rec = redis.call('HGET', P, key)
      if rec then
        local _, _, conn = struct.unpack('>BBd', rec)
        local node = math.floor(conn / 4294967296)
        if node ~= 0 and not live[node] then drop(key, rec); removed = removed + 1 end
      end
    end
  end
end
return { before, removed, more }
`

/** ARGV: 1 info hash. Returns { complete, incomplete, downloaded }. */
export const SCRAPE_LUA = COMMON + `
local c, i = counts()
return { c, i, downloaded() }
`
