// One point of the memory probe, in its own process (run by bench/memory.mjs with --expose-gc):
// fills a store with `--peers N` synthetic IPv4 peers, `--per-torrent K` to a torrent, and prints
// one JSON line: heap used + array buffers after a full GC, minus the same before the first
// announce (and RSS, the same way). With `--latency M` (ours only) it then times M announces
// (numwant 50, random known peers) while the expiry sweep runs, as the server's timer would run it.
//
//   node --expose-gc bench/memory-point.mjs --store ours|reference --peers N --per-torrent K [--latency M]
//
// ours: the built MemoryStore (dist/server/store/memory/memory-store.js), driven directly with
// the announces the UDP frontend would make: binary (latin1) strings for the info hash, peer id
// and compact address, each a fresh string as if decoded from a packet (the info hash string of a
// torrent is made once, when it first appears — later announces' copies are garbage).
// reference: bittorrent-tracker's Server with no transports, through `_onAnnounce` with the
// params its UDP parser makes (hex ids, "ip:port" address), one announce at a time because its
// swarm lookup is asynchronous.
//
// Peer i is in torrent i % T (arrival interleaved over the torrents), has address 10.0.0.0 + i,
// port 6881, and is a seeder when i % 10 == 0.
import { pathToFileURL, fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

function arg (name, fallback) {
  const i = process.argv.indexOf(name)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback
}
const which = arg('--store', 'ours')
const peers = Number(arg('--peers', '100000'))
const perTorrent = Number(arg('--per-torrent', '100'))
const latencyAnnounces = Number(arg('--latency', '0'))
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
if (!(peers > 0) || !(perTorrent > 0)) throw new Error('bad --peers / --per-torrent')
const torrents = Math.ceil(peers / perTorrent)

function fullGc () {
  for (let i = 0; i < 4; i++) globalThis.gc()
}
function used () {
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss }
}

const scratch = Buffer.alloc(64)

/**
 * Announce latency while expiry runs. The store was filled at t = 1000 with peerTtl 1200; the
 * clock is now past the TTL, so every peer not announcing again is stale and the sweep removes
 * it. As the server does, the sweep advances by SWEEP_BUDGET peers per step; here one step every
 * `every` announces (far more often than the server's once a second, to catch announces next to
 * steps). Each announce refreshes (or re-adds) a random peer of the fill, numwant 50.
 */
async function timeAnnounces (store, n) {
  const { EVENT_NONE } = await import(pathToFileURL(join(ROOT, 'dist', 'protocol', 'common', 'types.js')).href)
  const { KIND_V4, WANT_V4 } = await import(pathToFileURL(join(ROOT, 'dist', 'server', 'store', 'store.js')).href)
  const { SWEEP_BUDGET } = await import(pathToFileURL(join(ROOT, 'dist', 'constants.js')).href)
  const every = 2000
  const now = 1000 + 1200 + 1
  const a = { infoHash: '', key: '', peerId: '', addr: '', kind: KIND_V4, conn: 0, event: EVENT_NONE, seeder: false, numwant: 50, want: WANT_V4 }
  const times = new Float64Array(n)
  const steps = []
  let sink = 0
  let passDone = false
  let seed = 12345
  const rand = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed }
  for (let k = 0; k < n; k++) {
    if (k % every === 0) {
      const s0 = process.hrtime.bigint()
      passDone = store.sweep(now, SWEEP_BUDGET) || passDone
      steps.push(Number(process.hrtime.bigint() - s0) / 1e3)
    }
    const i = rand() % peers
    writeHash(i % torrents); writePeerId(i); writeAddr(i)
    a.infoHash = scratch.latin1Slice(0, 20)
    a.peerId = scratch.latin1Slice(20, 40)
    a.addr = a.key = scratch.latin1Slice(40, 46)
    a.seeder = i % 10 === 0
    const t0 = process.hrtime.bigint()
    const r = store.announce(a, now)
    times[k] = Number(process.hrtime.bigint() - t0) / 1e3
    sink += r.peers.length
  }
  times.sort()
  steps.sort((x, y) => x - y)
  const q = (arr, p) => arr[Math.min(arr.length - 1, Math.floor(arr.length * p))]
  return {
    announces: n,
    announceUs: { p50: q(times, 0.5), p99: q(times, 0.99), p999: q(times, 0.999), max: times[n - 1] },
    sweepSteps: steps.length,
    sweepBudget: SWEEP_BUDGET,
    sweepStepUs: { p50: q(steps, 0.5), p99: q(steps, 0.99), max: steps[steps.length - 1] },
    peersAfter: store.counts.peers,
    passDone,
    meanPeersReturned: sink / n
  }
}
/** 20 bytes for torrent t (distinct per t) into scratch[0..20). */
function writeHash (t) {
  scratch.writeUInt32BE(0x62656e63, 0)
  scratch.writeUInt32BE(t >>> 0, 4)
  scratch.writeUInt32BE(Math.imul(t, 2654435761) >>> 0, 8)
  scratch.writeUInt32BE(0x686d656d, 12)
  scratch.writeUInt32BE((t * 7) >>> 0, 16)
}
/** 20 bytes for peer i into scratch[20..40). */
function writePeerId (i) {
  scratch.write('-qB4630-', 20, 'latin1')
  scratch.writeUInt32BE(i >>> 0, 28)
  scratch.writeUInt32BE(Math.imul(i, 40503) >>> 0, 32)
  scratch.writeUInt32BE(0x70656572, 36)
}
/** Compact address of peer i into scratch[40..46). */
function writeAddr (i) {
  scratch.writeUInt32BE((0x0a000000 + i) >>> 0, 40)
  scratch.writeUInt16BE(6881, 44)
}

async function fillOurs () {
  const { MemoryStore } = await import(pathToFileURL(join(ROOT, 'dist', 'server', 'store', 'memory', 'memory-store.js')).href)
  const { EVENT_STARTED } = await import(pathToFileURL(join(ROOT, 'dist', 'protocol', 'common', 'types.js')).href)
  const { KIND_V4, WANT_V4 } = await import(pathToFileURL(join(ROOT, 'dist', 'server', 'store', 'store.js')).href)
  const store = new MemoryStore({ peerTtl: 1200 })
  const a = { infoHash: '', key: '', peerId: '', addr: '', kind: KIND_V4, conn: 0, event: EVENT_STARTED, seeder: false, numwant: 0, want: WANT_V4 }
  fullGc()
  const before = used()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < peers; i++) {
    const t = i % torrents
    writeHash(t)
    writePeerId(i)
    writeAddr(i)
    a.infoHash = scratch.latin1Slice(0, 20)
    a.peerId = scratch.latin1Slice(20, 40)
    a.addr = scratch.latin1Slice(40, 46)
    a.key = a.addr
    a.seeder = i % 10 === 0
    store.announce(a, 1000)
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  a.infoHash = a.peerId = a.addr = a.key = ''
  return { store, before, seconds, counts: { ...store.counts }, fill: i => { writeHash(i % torrents); writePeerId(i); writeAddr(i) } }
}

async function fillReference () {
  const { Server } = await import('bittorrent-tracker-reference')
  const server = new Server({ http: false, udp: false, ws: false, stats: false })
  server.on('warning', () => {})
  fullGc()
  const before = used()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < peers; i++) {
    const t = i % torrents
    writeHash(t)
    writePeerId(i)
    writeAddr(i)
    const ip = `${scratch[40]}.${scratch[41]}.${scratch[42]}.${scratch[43]}`
    const params = {
      type: 'udp',
      action: 1,
      info_hash: scratch.toString('hex', 0, 20),
      peer_id: scratch.toString('hex', 20, 40),
      downloaded: 0,
      left: i % 10 === 0 ? 0 : 1048576,
      uploaded: 0,
      event: 'started',
      ip,
      key: i,
      numwant: 0,
      port: 6881,
      addr: `${ip}:6881`,
      compact: 1
    }
    await new Promise((resolve, reject) => server._onAnnounce(params, err => err ? reject(err) : resolve()))
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  let n = 0
  for (const h in server.torrents) n += server.torrents[h].peers.length
  return { store: server, before, seconds, counts: { torrents: Object.keys(server.torrents).length, peers: n } }
}

const { store, before, seconds, counts } = which === 'ours' ? await fillOurs() : await fillReference()
fullGc()
const after = used()
const bytes = (after.heapUsed + after.arrayBuffers) - (before.heapUsed + before.arrayBuffers)
const latency = which === 'ours' && latencyAnnounces > 0 ? await timeAnnounces(store, latencyAnnounces) : undefined
process.stdout.write(JSON.stringify({
  store: which,
  peers,
  perTorrent,
  torrents,
  counts,
  fillSeconds: seconds,
  bytes,
  bytesPerPeer: bytes / peers,
  rssPerPeer: (after.rss - before.rss) / peers,
  latency,
  heapUsed: after.heapUsed,
  external: after.external,
  rss: after.rss,
  baseline: before
}) + '\n')
// Keep the store reachable until the measurement is taken.
if (store === null) console.log('unreachable')
