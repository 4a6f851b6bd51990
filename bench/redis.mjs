// The Redis store under load: UDP and HTTP announces against our tracker with the in-memory store
// (1 instance), and with one shared redis-server behind 1 and 2 instances. Each instance gets its
// own load generator; the swarms are shared, so the rows carry the same work.
//
//   node bench/redis.mjs [--duration 3] [--warmup 1] [--torrents 10000] [--peers 10]
//
// Placement on a 2-CPU machine: the server side (trackers and redis-server) on CPU 1, the
// generators on CPU 0 (they poll busily: a redis-server beside them starves). Two instances and
// Redis therefore share one CPU: the rows show what Redis and sharing cost, not scaling (on a
// larger machine give every instance and Redis their own cores). Every run is bounded.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = join(BENCH, '..')
const OUT = join(BENCH, 'out')
const REDIS = '/usr/bin/redis-server'
const TRACKER_CPU = '1'
const GEN_CPU = '0'

const o = { duration: 3, warmup: 1, torrents: 10000, peers: 10 }
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '')
  if (!(k in o)) { console.error(`usage: node bench/redis.mjs [--duration S] [--warmup S] [--torrents T] [--peers P]`); process.exit(2) }
  o[k] = Number(process.argv[i + 1])
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const log = (...a) => process.stderr.write(a.join(' ') + '\n')
const children = new Set()
function kill (child) { if (child.exitCode === null && child.signalCode === null) { try { process.kill(child.pid, 'SIGKILL') } catch {} } }
process.on('exit', () => { for (const c of children) kill(c) })
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1))

function start (cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT })
  children.add(child)
  child.once('exit', () => children.delete(child))
  child.out = ''
  child.stdout.on('data', d => { child.out += d })
  child.stderr.on('data', d => { child.out += d })
  return child
}

function run (cmd, args, timeoutMs) {
  return new Promise(resolve => {
    const child = start(cmd, args)
    const timer = setTimeout(() => kill(child), timeoutMs)
    child.once('exit', code => { clearTimeout(timer); resolve({ code, out: child.out }) })
  })
}

async function waitFor (child, re, ms) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const m = re.exec(child.out)
    if (m !== null) return m
    if (child.exitCode !== null) break
    await sleep(20)
  }
  throw new Error(`not started: ${child.out}`)
}

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds (pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ')
    return (Number(v[11]) + Number(v[12])) / 100
  } catch { return NaN }
}

function buildGenerators () {
  mkdirSync(OUT, { recursive: true })
  for (const g of ['udp', 'http']) {
    const src = join(BENCH, 'gen', `${g}.c`)
    const bin = join(OUT, g)
    if (existsSync(bin) && statSync(bin).mtimeMs > statSync(src).mtimeMs) continue
    const r = spawnSync(process.env.CC || 'gcc', ['-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`building ${src} failed: ${r.stderr}`)
  }
}

async function setup (store, instances) {
  let redis = null
  let dir = null
  const extra = []
  if (store === 'redis') {
    dir = mkdtempSync(join(tmpdir(), 'bench-redis-'))
    const port = await freePort()
    redis = start('taskset', ['-c', TRACKER_CPU, REDIS, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir])
    await waitFor(redis, /Ready to accept connections/, 10000)
    extra.push('--redis', `redis://127.0.0.1:${port}`, '--udp-secret', randomBytes(32).toString('hex'))
  }
  const trackers = []
  for (let i = 0; i < instances; i++) {
    const t = start('taskset', ['-c', TRACKER_CPU, process.execPath, join(BENCH, 'tracker.mjs'), 'ours', '--no-stats', ...extra])
    const m = await waitFor(t, /^(\{.*\})$/m, 30000)
    t.ports = JSON.parse(m[1])
    trackers.push(t)
  }
  // Fill the swarms once (every peer announces), through the first instance.
  const r = await run('taskset', ['-c', GEN_CPU, join(OUT, 'udp'), '--host', '127.0.0.1', '--port', String(trackers[0].ports.udp4),
    '--full-pass', '--windows', '0', '--warmup', '0', '--warmup-max', '300', '--torrents', String(o.torrents), '--peers', String(o.peers)], 330000)
  if (r.code !== 0) throw new Error(`populate failed: ${r.out}`)
  return { redis, trackers, dir }
}

async function measure (scenario, env) {
  const redisCpu0 = env.redis !== null ? cpuSeconds(env.redis.pid) : NaN
  const t0 = Date.now()
  const runs = env.trackers.map(t => {
    const common = ['--pid', String(t.pid), '--torrents', String(o.torrents), '--peers', String(o.peers), '--warmup', String(o.warmup), '--duration', String(o.duration), '--windows', '1']
    const args = scenario === 'udp'
      ? [join(OUT, 'udp'), '--host', '127.0.0.1', '--port', String(t.ports.udp4), '--mode', 'announce', ...common]
      : [join(OUT, 'http'), '--host', '127.0.0.1', '--port', String(t.ports.http), '--keepalive', '--conns', '64', ...common]
    return run('taskset', ['-c', GEN_CPU, ...args], (o.warmup + o.duration + 60) * 1000)
  })
  const results = await Promise.all(runs)
  const wall = (Date.now() - t0) / 1000
  const redisCpu = env.redis !== null ? (cpuSeconds(env.redis.pid) - redisCpu0) / wall : NaN
  let responses = 0
  let seconds = 0
  let cpu = 0
  let errors = 0
  for (const r of results) {
    const line = r.out.split('\n').find(l => l.startsWith('{'))
    if (r.code !== 0 || line === undefined) throw new Error(`generator failed: ${r.out}`)
    const w = JSON.parse(line)
    responses += w.responses
    seconds = Math.max(seconds, w.seconds)
    cpu += w.server_cpu_s
    errors += w.errors + w.timeouts
  }
  return { rate: responses / seconds, cpuUs: cpu / responses * 1e6, redisCpu, errors }
}

async function teardown (env) {
  for (const t of env.trackers) kill(t)
  if (env.redis !== null) kill(env.redis)
  await sleep(300)
  if (env.dir !== null) rmSync(env.dir, { recursive: true, force: true })
}

buildGenerators()
const CONFIGS = [['memory', 1], ['redis', 1], ['redis', 2]]
const rows = []
for (const scenario of ['udp', 'http']) {
  for (const [store, n] of CONFIGS) {
    log(`${scenario} announce, ${store}, ${n} instance(s)…`)
    const env = await setup(store, n)
    try {
      const m = await measure(scenario, env)
      rows.push({ scenario, store, n, ...m })
      log(`  ${Math.round(m.rate)}/s`)
    } finally { await teardown(env) }
  }
}
const fmt = n => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—'
const lines = [
  `| announce (${o.torrents.toLocaleString('en-US')} torrents × ${o.peers} peers, ${o.duration} s) | store | instances | announces/s | tracker CPU per announce | redis-server CPU | errors + timeouts |`,
  '|---|---|---|---|---|---|---|',
  ...rows.map(r => `| ${r.scenario === 'udp' ? 'UDP, IPv4' : 'HTTP, keep-alive'} | ${r.store} | ${r.n} | ${fmt(r.rate)} | ${fmt(r.cpuUs)} µs | ${Number.isFinite(r.redisCpu) ? `${Math.round(r.redisCpu * 100)}% of a CPU` : '—'} | ${r.errors} |`)
]
const md = lines.join('\n') + '\n'
writeFileSync(join(OUT, 'results-redis.md'), md)
console.log(md)
