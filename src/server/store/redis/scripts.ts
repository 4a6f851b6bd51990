/**
 * Lua scripts of the Redis store. Each runs atomically on the keys of ONE swarm (all tagged
 * `{<hex info hash>}`) plus the two global keys (counters, swarm registry).
 *
 * KEYS (every script): 1 peers hash (key → record), 2 expiry zset (HTTP/UDP peers by lastSeen),
 * 3 downloaded counter, 4..9 dense arrays of peer keys by kind * 2 + seeder, 10 global counters
 * hash (t torrents, r retired, p peers, s seeders, l leechers), 11 registry set of swarms with
 * peers.
 *
 * A dense array is a hash from position (1…n) to peer key; each record holds its position, and
 * removal moves the last entry into the hole. So uniform random picking is index sampling, as in
 * the memory store (SRANDMEMBER is not uniform: Redis picks a random bucket, then an entry).
 *
 * A peer record is struct '>BBddI4B' (kind, seeder, conn, lastSeen, position, peer id length),
 * then the peer id, then the compact address: the JS side decodes it with fixed offsets.
 */

const COMMON = `
local P, T, D, N, R = KEYS[1], KEYS[2], KEYS[3], KEYS[10], KEYS[11]
local ih = ARGV[1]
local function arr (k, s) return KEYS[4 + k * 2 + s] end
-- A WebSocket peer's record held by a connection of another instance than conn's (the high bits
-- of a connection number): each instance binds peer ids among its own sockets only.
local function heldElsewhere (rec, conn)
  local k, _, oc = struct.unpack('>BBd', rec)
  return k == 2 and conn ~= 0 and math.floor(oc / 4294967296) ~= math.floor(conn / 4294967296)
end
local function counts ()
  local c = redis.call('HLEN', KEYS[5]) + redis.call('HLEN', KEYS[7]) + redis.call('HLEN', KEYS[9])
  local i = redis.call('HLEN', KEYS[4]) + redis.call('HLEN', KEYS[6]) + redis.call('HLEN', KEYS[8])
  return c, i
end
local function withPos (rec, pos) return rec:sub(1, 18) .. struct.pack('>I4', pos) .. rec:sub(23) end
-- Appends key to an array; returns its position.
local function push (a, key)
  local n = redis.call('HLEN', a) + 1
  redis.call('HSET', a, n, key)
  return n
end
-- Removes position pos from an array: the last entry moves into the hole (its record follows).
local function cut (a, pos)
  local last = redis.call('HLEN', a)
  if pos ~= last then
    local moved = redis.call('HGET', a, last)
    redis.call('HSET', a, pos, moved)
    redis.call('HSET', P, moved, withPos(redis.call('HGET', P, moved), pos))
  end
  redis.call('HDEL', a, last)
end
local function downloaded () return tonumber(redis.call('GET', D) or '0') end
-- Removes one peer; the swarm leaves the registry with its last peer (its counter stays).
local function drop (key, rec)
  local k, s, _, _, pos = struct.unpack('>BBddI4', rec)
  redis.call('HDEL', P, key)
  cut(arr(k, s), pos)
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
 * Returns { complete, incomplete, downloaded, record... } (picked peers' records), or { -1 }
 * when a WebSocket connection of another instance holds this WS peer (nothing changed).
 */
export const ANNOUNCE_LUA = COMMON + `
local key, peerId, addr = ARGV[2], ARGV[3], ARGV[4]
local kind, conn, event = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local seeder, numwant, want, now = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local old = redis.call('HGET', P, key)
if old and kind == 2 and heldElsewhere(old, conn) then return { -1 } end
local pos
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
  pos = push(arr(kind, seeder), key)
  redis.call('HINCRBY', N, 'p', 1)
  redis.call('HINCRBY', N, seeder == 1 and 's' or 'l', 1)
  -- A peer that joins already complete through a completed event did download it.
  if seeder == 1 and event == 1 then redis.call('INCR', D) end
else
  local k, s, _, _, p = struct.unpack('>BBddI4', old)
  kind = k -- an identity keeps its kind
  pos = p
  if s ~= seeder then
    cut(arr(kind, s), pos)
    pos = push(arr(kind, seeder), key)
    redis.call('HINCRBY', N, 's', seeder == 1 and 1 or -1)
    redis.call('HINCRBY', N, 'l', seeder == 1 and -1 or 1)
    if seeder == 1 and event == 1 then redis.call('INCR', D) end
  end
end
redis.call('HSET', P, key, struct.pack('>BBddI4B', kind, seeder, conn, now, pos, #peerId) .. peerId .. addr)
if kind ~= 2 then redis.call('ZADD', T, now, key) end
local c, i = counts()
local out = { c, i, downloaded() }
if numwant <= 0 then return out end

-- Candidates: the virtual concatenation of the wanted arrays (wanted kinds; leechers, and
-- seeders unless the asker is one), without the asker.
math.randomseed(tonumber(ARGV[12]))
local src, size = {}, {}
local total, selfAt = 0, -1
for k = 0, 2 do
  if want % (2 ^ (k + 1)) >= 2 ^ k then
    for s = 0, 1 - seeder do
      local a = arr(k, s)
      local n = redis.call('HLEN', a)
      if n > 0 then
        if k == kind and s == seeder then selfAt = total + pos - 1 end
        src[#src + 1] = a; size[#src] = n
        total = total + n
      end
    end
  end
end
local others = selfAt < 0 and total or total - 1
-- Candidate index (0-based, self skipped) → peer key.
local function at (idx)
  if selfAt >= 0 and idx >= selfAt then idx = idx + 1 end
  for i = 1, #src do
    if idx < size[i] then return redis.call('HGET', src[i], idx + 1) end
    idx = idx - size[i]
  end
end
local keys = {}
if others <= numwant then
  for idx = 0, others - 1 do keys[#keys + 1] = at(idx) end
else
  -- Floyd's sampling: numwant distinct indices, each set equally likely.
  local chosen = {}
  for j = others - numwant, others - 1 do
    local t = math.random(j + 1) - 1
    local idx = chosen[t] and j or t
    chosen[idx] = true
    keys[#keys + 1] = at(idx)
  end
end
if #keys > 0 then
  local recs = redis.call('HMGET', P, unpack(keys))
  for j = 1, #recs do out[#out + 1] = recs[j] end
end
return out
`

/**
 * ARGV: 1 info hash, 2 key, 3 (optional) the closing connection: a WS peer another instance's
 * connection holds stays. Returns 1 when the peer was there (and removed).
 */
export const REMOVE_LUA = COMMON + `
local rec = redis.call('HGET', P, ARGV[2])
if not rec then return 0 end
if ARGV[3] and heldElsewhere(rec, tonumber(ARGV[3])) then return 0 end
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
    for _, key in ipairs(redis.call('HVALS', sk)) do
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
