// Memory probe: bytes per peer of our in-memory store at 100k, 1M and 10M peers, with 100 peers
// per torrent and with 1 peer per torrent; and, for context, the reference package's Server at
// 100k peers. Each point runs in a fresh `node --expose-gc` process (bench/memory-point.mjs):
// heap used + external after a full GC, minus the same before the first announce, divided by the
// number of peers. Prints a markdown table and writes bench/out/memory.md and memory.json.
//
//   node bench/memory.mjs [--ours 100000,1000000,10000000] [--reference 100000] [--shapes 100,1]
//                         [--timeout 900] [--heap-mb auto]
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = dirname(fileURLToPath(import.meta.url))
const OUT = join(BENCH, 'out')

function list (v) { return v.split(',').filter(Boolean).map(Number) }
const opts = { ours: [1e5, 1e6, 1e7], reference: [1e5], shapes: [100, 1], timeout: 900, heapMb: null }
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]
  const v = () => process.argv[++i]
  if (a === '--ours') opts.ours = list(v())
  else if (a === '--reference') opts.reference = list(v())
  else if (a === '--shapes') opts.shapes = list(v())
  else if (a === '--timeout') opts.timeout = Number(v())
  else if (a === '--heap-mb') opts.heapMb = Number(v())
  else if (a === '--help' || a === '-h') {
    console.log('usage: node bench/memory.mjs [--ours N,N,...] [--reference N,...] [--shapes 100,1] [--timeout SECONDS_PER_POINT] [--heap-mb MB]')
    process.exit(0)
  } else { console.error(`unknown option ${a}`); process.exit(2) }
}
if (!existsSync(join(BENCH, '..', 'dist', 'server', 'store', 'memory', 'memory-store.js'))) {
  console.error('dist/ is missing: run `npm run build` first (npm run bench:memory does)')
  process.exit(1)
}

/** Old-space limit for a point: generous for big points, but leaving the machine some memory. */
function heapFor (peers) {
  if (opts.heapMb) return opts.heapMb
  const machineMb = Math.floor(totalmem() / 2 ** 20)
  const want = peers >= 5e6 ? 20000 : peers >= 5e5 ? 6000 : 2000
  return Math.min(want, Math.floor(machineMb * 0.8))
}

const children = new Set()
process.on('SIGINT', () => { for (const c of children) { try { process.kill(c.pid, 'SIGKILL') } catch {} } process.exit(130) })

function point (store, peers, perTorrent) {
  const heap = heapFor(peers)
  const args = ['--expose-gc', `--max-old-space-size=${heap}`, join(BENCH, 'memory-point.mjs'), '--store', store, '--peers', String(peers), '--per-torrent', String(perTorrent)]
  return new Promise(resolve => {
    const t0 = Date.now()
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let out = ''
    let err = ''
    let timedOut = false
    child.stdout.on('data', d => { out += d })
    child.stderr.on('data', d => { err += d })
    const timer = setTimeout(() => { timedOut = true; try { process.kill(child.pid, 'SIGKILL') } catch {} }, opts.timeout * 1000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      children.delete(child)
      const seconds = (Date.now() - t0) / 1000
      const line = out.split('\n').find(l => l.startsWith('{'))
      if (code === 0 && line !== undefined) return resolve({ ...JSON.parse(line), wallSeconds: seconds, heapLimitMb: heap })
      const why = timedOut
        ? `did not finish within ${opts.timeout} s`
        : /heap out of memory|Reached heap limit/i.test(err)
          ? `ran out of heap (--max-old-space-size=${heap})`
          : `exited ${code ?? signal}: ${err.trim().split('\n').slice(-2).join(' / ')}`
      resolve({ store, peers, perTorrent, failed: why, wallSeconds: seconds, heapLimitMb: heap })
    })
  })
}

const points = []
for (const shape of opts.shapes) for (const n of opts.ours) points.push(['ours', n, shape])
for (const shape of opts.shapes) for (const n of opts.reference) points.push(['reference', n, shape])

const results = []
for (const [store, n, shape] of points) {
  process.stderr.write(`memory: ${store}, ${n.toLocaleString('en-US')} peers, ${shape} per torrent ... `)
  const r = await point(store, n, shape)
  results.push(r)
  process.stderr.write(r.failed ? `${r.failed}\n` : `${r.bytesPerPeer.toFixed(1)} bytes/peer (${r.wallSeconds.toFixed(0)} s)\n`)
}

const fmt = n => n.toLocaleString('en-US')
const lines = [
  '| store | peers | peers per torrent | torrents | bytes per peer | heap + external | RSS | fill time |',
  '|---|---|---|---|---|---|---|---|'
]
for (const r of results) {
  const torrents = Math.ceil(r.peers / r.perTorrent)
  if (r.failed) {
    lines.push(`| ${r.store} | ${fmt(r.peers)} | ${r.perTorrent} | ${fmt(torrents)} | not measured: ${r.failed} | | | |`)
    continue
  }
  lines.push(`| ${r.store === 'ours' ? 'ours (MemoryStore)' : 'reference Server'} | ${fmt(r.peers)} | ${r.perTorrent} | ${fmt(torrents)} | ${r.bytesPerPeer.toFixed(0)} | ${(r.bytes / 2 ** 20).toFixed(1)} MiB | ${(r.rss / 2 ** 20).toFixed(0)} MiB | ${r.fillSeconds.toFixed(1)} s |`)
}
const md = [
  `Memory per peer, Node ${process.version}: heap used + external after a full GC minus the same before the first announce, divided by the peers; one fresh process per row. IPv4 peers, 10% seeders, distinct addresses; ours driven through MemoryStore.announce, the reference through Server._onAnnounce. RSS is the whole process, for context.`,
  '',
  ...lines,
  ''
].join('\n')
console.log('\n' + md)
mkdirSync(OUT, { recursive: true })
writeFileSync(join(OUT, 'memory.md'), md)
writeFileSync(join(OUT, 'memory.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2) + '\n')
process.stderr.write(`wrote ${join(OUT, 'memory.md')} and memory.json\n`)
