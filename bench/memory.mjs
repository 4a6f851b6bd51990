// Memory probe: bytes per peer of our in-memory store at 100k, 1M and 10M peers, with 100 peers
// per torrent and with 1 peer per torrent; and, for context, the reference package's Server at
// 100k peers. Each point runs in a fresh `node --expose-gc` process (bench/memory-point.mjs):
// heap used + array buffers after a full GC, minus the same before the first announce, divided by
// the number of peers (and RSS the same way). At the `--latency-at` sizes it then times 200,000
// announces while the expiry sweep runs. Prints markdown tables and writes bench/out/memory.md and
// memory.json.
//
//   node bench/memory.mjs [--ours 100000,1000000,10000000] [--reference 100000] [--shapes 100,1]
//                         [--latency-at 10000000] [--latency-announces 200000]
//                         [--timeout 900] [--heap-mb auto]
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = dirname(fileURLToPath(import.meta.url))
const OUT = join(BENCH, 'out')

function list (v) { return v.split(',').filter(Boolean).map(Number) }
const opts = { ours: [1e5, 1e6, 1e7], reference: [1e5], shapes: [100, 1], latencyAt: [1e7], latencyAnnounces: 200000, timeout: 900, heapMb: null }
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]
  const v = () => process.argv[++i]
  if (a === '--ours') opts.ours = list(v())
  else if (a === '--reference') opts.reference = list(v())
  else if (a === '--shapes') opts.shapes = list(v())
  else if (a === '--latency-at') opts.latencyAt = list(v())
  else if (a === '--latency-announces') opts.latencyAnnounces = Number(v())
  else if (a === '--timeout') opts.timeout = Number(v())
  else if (a === '--heap-mb') opts.heapMb = Number(v())
  else if (a === '--help' || a === '-h') {
    console.log('usage: node bench/memory.mjs [--ours N,N,...] [--reference N,...] [--shapes 100,1] [--latency-at N,...] [--latency-announces M] [--timeout SECONDS_PER_POINT] [--heap-mb MB]')
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
  if (store === 'ours' && opts.latencyAt.includes(peers)) args.push('--latency', String(opts.latencyAnnounces))
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
  '| store | peers | peers per torrent | torrents | bytes per peer (heap + array buffers) | RSS per peer | heap + array buffers | RSS | fill time |',
  '|---|---|---|---|---|---|---|---|---|'
]
for (const r of results) {
  const torrents = Math.ceil(r.peers / r.perTorrent)
  if (r.failed) {
    lines.push(`| ${r.store} | ${fmt(r.peers)} | ${r.perTorrent} | ${fmt(torrents)} | not measured: ${r.failed} | | | | |`)
    continue
  }
  lines.push(`| ${r.store === 'ours' ? 'ours (MemoryStore)' : 'reference Server'} | ${fmt(r.peers)} | ${r.perTorrent} | ${fmt(torrents)} | ${r.bytesPerPeer.toFixed(0)} | ${r.rssPerPeer.toFixed(0)} | ${(r.bytes / 2 ** 20).toFixed(1)} MiB | ${(r.rss / 2 ** 20).toFixed(0)} MiB | ${r.fillSeconds.toFixed(1)} s |`)
}
const lat = results.filter(r => r.latency !== undefined)
const latLines = lat.length === 0
  ? []
  : [
      '',
      'Announce latency while expiry runs (all peers past their TTL; one sweep step of the server\'s budget every 2,000 announces; each announce a random known peer, numwant 50; µs of the store call):',
      '',
      '| peers | peers per torrent | announces | p50 | p99 | p99.9 | max | sweep steps | sweep step p50 | sweep step max |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...lat.map(r => {
        const l = r.latency
        const us = x => x.toFixed(1)
        return `| ${fmt(r.peers)} | ${r.perTorrent} | ${fmt(l.announces)} | ${us(l.announceUs.p50)} | ${us(l.announceUs.p99)} | ${us(l.announceUs.p999)} | ${us(l.announceUs.max)} | ${l.sweepSteps} × ${fmt(l.sweepBudget)} peers | ${us(l.sweepStepUs.p50)} | ${us(l.sweepStepUs.max)} |`
      })
    ]
const md = [
  `Memory per peer, Node ${process.version}: heap used + array buffers after a full GC minus the same before the first announce, divided by the peers (RSS per peer: the same with the process's RSS); one fresh process per row. IPv4 peers, 10% seeders, distinct addresses; ours driven through MemoryStore.announce, the reference through Server._onAnnounce.`,
  '',
  ...lines,
  ...latLines,
  ''
].join('\n')
console.log('\n' + md)
mkdirSync(OUT, { recursive: true })
writeFileSync(join(OUT, 'memory.md'), md)
writeFileSync(join(OUT, 'memory.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2) + '\n')
process.stderr.write(`wrote ${join(OUT, 'memory.md')} and memory.json\n`)
