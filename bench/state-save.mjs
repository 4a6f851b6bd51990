// State-file save: how long the event loop stalls while the in-memory store is saved, and how
// long the save takes. Fills a MemoryStore with `--torrents` × `--per-torrent` IPv4 peers, then
// saves it `--runs` times per mode, alternating the modes:
//   sliced  dumpStateSliced (what the server does): built in ~5 ms slices, written with async I/O
//   sync    dumpState + writeStateFile: the whole file built in one go (the server before slicing;
//           the only mode of a build without dumpStateSliced)
// While a save runs, a setImmediate ping measures the longest gap between event-loop turns, and
// perf_hooks.monitorEventLoopDelay (1 ms resolution) how late a timer fires (p99, max).
//
//   node bench/state-save.mjs [--torrents 1000000] [--per-torrent 1] [--runs 3]
//                             [--modes sliced,sync] [--dist DIR] [--dir DIR]
//   npm run bench:state-save -- --torrents 10000 --per-torrent 100
//
// `--dist` loads another build (e.g. /work/main/dist for the numbers before slicing). Run it under
// the shared bench lock with nothing else on the machine: it times things.
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const opts = { torrents: 1_000_000, perTorrent: 1, runs: 3, modes: ['sliced', 'sync'], dist: join(ROOT, 'dist'), dir: null }
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]
  const v = () => process.argv[++i]
  if (a === '--torrents') opts.torrents = Number(v())
  else if (a === '--per-torrent') opts.perTorrent = Number(v())
  else if (a === '--runs') opts.runs = Number(v())
  else if (a === '--modes') opts.modes = v().split(',').filter(Boolean)
  else if (a === '--dist') opts.dist = resolve(v())
  else if (a === '--dir') opts.dir = resolve(v())
  else if (a === '--help' || a === '-h') {
    console.log('usage: node bench/state-save.mjs [--torrents N] [--per-torrent K] [--runs R] [--modes sliced,sync] [--dist DIR] [--dir DIR]')
    process.exit(0)
  } else { console.error(`unknown option ${a}`); process.exit(2) }
}
for (const m of opts.modes) if (m !== 'sliced' && m !== 'sync') { console.error(`unknown mode ${m}`); process.exit(2) }

const load = p => import(pathToFileURL(join(opts.dist, p)).href)
const { MemoryStore } = await load('server/store/memory/memory-store.js')
const persist = await load('server/persist/state-file.js')
const { EVENT_STARTED } = await load('protocol/common/types.js')
const { KIND_V4, WANT_V4 } = await load('server/store/store.js')
if (opts.modes.includes('sliced') && persist.dumpStateSliced === undefined) {
  console.error(`${opts.dist} has no dumpStateSliced: use --modes sync`)
  process.exit(2)
}

// The same peers as bench/memory-point.mjs: distinct hashes, ids and addresses, 1 in 10 a seeder.
const scratch = Buffer.alloc(46)
const store = new MemoryStore({ peerTtl: 3600 })
const a = { infoHash: '', key: '', peerId: '', addr: '', kind: KIND_V4, conn: 0, event: EVENT_STARTED, seeder: false, numwant: 0, want: WANT_V4 }
const now = Math.floor(Date.now() / 1000)
const peers = opts.torrents * opts.perTorrent
const t0 = performance.now()
for (let i = 0; i < peers; i++) {
  const t = i % opts.torrents
  scratch.writeUInt32BE(0x62656e63, 0); scratch.writeUInt32BE(t >>> 0, 4); scratch.writeUInt32BE(Math.imul(t, 2654435761) >>> 0, 8)
  scratch.writeUInt32BE(0x686d656d, 12); scratch.writeUInt32BE((t * 7) >>> 0, 16)
  scratch.write('-qB4630-', 20, 'latin1'); scratch.writeUInt32BE(i >>> 0, 28); scratch.writeUInt32BE(Math.imul(i, 40503) >>> 0, 32)
  scratch.writeUInt32BE(0x70656572, 36)
  scratch.writeUInt32BE((0x0a000000 + i) >>> 0, 40); scratch.writeUInt16BE(6881, 44)
  a.infoHash = scratch.latin1Slice(0, 20)
  a.peerId = scratch.latin1Slice(20, 40)
  a.addr = a.key = scratch.latin1Slice(40, 46)
  a.seeder = i % 10 === 0
  store.announce(a, now)
}
console.log(`# ${opts.torrents} torrents × ${opts.perTorrent} peers (${store.counts.peers} peers), filled in ${((performance.now() - t0) / 1000).toFixed(1)} s; dist ${opts.dist}`)

const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'bt-state-save-'))
const file = join(dir, 'state.bin')

async function once (mode) {
  let longest = 0
  let turns = 0
  let last = performance.now()
  let pinging = true
  const ping = () => {
    const t = performance.now()
    longest = Math.max(longest, t - last)
    turns++
    last = t
    if (pinging) setImmediate(ping)
  }
  const eld = monitorEventLoopDelay({ resolution: 1 })
  eld.enable()
  setImmediate(ping)
  await new Promise(resolve => setImmediate(resolve))
  const start = performance.now()
  if (mode === 'sliced') await persist.dumpStateSliced(store, undefined, undefined, Date.now(), file)
  else await persist.writeStateFile(file, persist.dumpState(store, undefined, undefined, Date.now()))
  const total = performance.now() - start
  pinging = false
  eld.disable()
  await new Promise(resolve => setImmediate(resolve))
  return {
    mode,
    totalMs: total,
    pingMaxMs: longest,
    turns,
    eldMaxMs: eld.max / 1e6,
    eldP99Ms: eld.percentile(99) / 1e6,
    bytes: statSync(file).size
  }
}

const results = []
try {
  for (let r = 0; r < opts.runs; r++) {
    // Alternate which mode goes first, so neither always follows the other's garbage.
    const order = r % 2 === 0 ? opts.modes : [...opts.modes].reverse()
    for (const mode of order) {
      const x = await once(mode)
      results.push(x)
      console.log(`${mode.padEnd(6)} run ${r + 1}: save ${x.totalMs.toFixed(0)} ms, longest stall ${x.pingMaxMs.toFixed(1)} ms (${x.turns} turns; timer delay max ${x.eldMaxMs.toFixed(1)} ms, p99 ${x.eldP99Ms.toFixed(1)} ms), ${x.bytes} bytes`)
    }
  }
} finally {
  if (opts.dir === null) rmSync(dir, { recursive: true, force: true })
}

const median = v => { const s = [...v].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] }
const range = v => `${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)}`
console.log('\n| mode | save ms (median, range) | longest stall ms | timer delay p99 ms | timer delay max ms |')
console.log('|---|---|---|---|---|')
for (const mode of opts.modes) {
  const rs = results.filter(x => x.mode === mode)
  const col = k => `${median(rs.map(x => x[k])).toFixed(1)} (${range(rs.map(x => x[k]))})`
  console.log(`| ${mode} | ${col('totalMs')} | ${col('pingMaxMs')} | ${col('eldP99Ms')} | ${col('eldMaxMs')} |`)
}
