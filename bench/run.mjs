// Side-by-side tracker benchmark: our tracker (dist/), the reference npm package and opentracker
// (when /usr/bin/opentracker exists), each pinned to one CPU, the C load generators on another.
// Prints one markdown table and writes bench/out/results.md and bench/out/results.json.
//
//   node bench/run.mjs [--runs 3] [--duration 4] [--warmup 1] [--trackers ours,reference,opentracker]
//                      [--scenarios udp4-announce,...] [--quick] [--help]
//
// See bench/README.md for what is measured and how to read the table.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs'
import { cpus } from 'node:os'
import net from 'node:net'
import dgram from 'node:dgram'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = join(BENCH, '..')
const OUT = join(BENCH, 'out')
const OPENTRACKER = '/usr/bin/opentracker'

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const SCENARIOS = [
  { id: 'ws-announce', label: 'WS announce (5 offers each, answers relayed)', needs: 'ws' },
  { id: 'udp4-announce', label: 'UDP announce, IPv4', needs: 'udp4' },
  { id: 'udp4-scrape', label: 'UDP scrape, IPv4 (1 hash)', needs: 'udp4' },
  { id: 'udp6-announce', label: 'UDP announce, IPv6', needs: 'udp6' },
  { id: 'udp6-scrape', label: 'UDP scrape, IPv6 (1 hash)', needs: 'udp6' },
  { id: 'http-keepalive', label: 'HTTP announce, keep-alive', needs: 'http' },
  { id: 'http-close', label: 'HTTP announce, `Connection: close`', needs: 'http' }
]
const TRACKERS = ['ours', 'ours-dgram', 'ours-w2', 'reference', 'reference-nostats', 'opentracker']
/**
 * ours-w2: `--workers 2` (WorkerPool). Its two threads may use both CPUs, the generator's too:
 * on a two-CPU machine they compete with the generator, so compare CPU µs per response with
 * `ours` (one thread) and read its throughput with that caveat.
 */
const WORKER_TRACKERS = { 'ours-w2': 2 }

const HELP = `usage: node bench/run.mjs [options]
  --runs N            measurements per scenario and tracker, each on a fresh tracker process;
                      the table shows medians (default 3)
  --duration S        seconds per measurement (default 3)
  --warmup S          seconds of load before each measurement (default 2)
  --ws-warmup S       the same for ws-announce, after its join stage: Node trackers take ~10 s
                      to settle under this load (default 10)
  --trackers LIST     of ${TRACKERS.join(', ')}
                      (default: ours,reference,opentracker — opentracker when installed;
                      reference-nostats is the reference with /stats off, HTTP scenarios only;
                      ours-w2 is ours with --workers 2, on every CPU: it shares the generator's)
  --scenarios LIST    of ${SCENARIOS.map(s => s.id).join(', ')} (default: all)
  --torrents T        torrents in the data set (default 10000)
  --peers P           peers per torrent (default 10)
  --ws-torrents T     torrents (= WebSocket clients) for ws-announce (default: --torrents)
  --udp-sockets N     simulated UDP clients (source ports) (default 8)
  --udp-window N      outstanding requests per UDP client (default 16)
  --http-conns N      concurrent HTTP connections (default 64)
  --ws-window N       outstanding WS announces (default 64)
  --ws-offers N       offers per WS announce (default 5)
  --server-core N     CPU the tracker is pinned to (default 1)
  --gen-core N        CPU the load generator is pinned to (default 0)
  --quiet-wait S      before each measurement wait up to S seconds until other processes use
                      at most --max-other of a CPU on the two CPUs (default 60; 0.15)
  --max-interference F  a measurement during which the tracker or the generator spent more than
                      F of the time waiting for its CPU (other processes running) is repeated,
                      at most --retries times (default 0.08; 2)
  --retries N
  --quick             --runs 1 --duration 2 --warmup 0.5 --ws-warmup 1 (a smoke run)
  --out DIR           (default bench/out)
  --from-json FILE    print the table of an earlier results.json again (no measuring)`

function parseArgs (argv) {
  const o = {
    runs: 3, duration: 3, warmup: 2, wsWarmup: 10, trackers: null, scenarios: SCENARIOS.map(s => s.id),
    torrents: 10000, peers: 10, wsTorrents: null, udpSockets: 8, udpWindow: 16, httpConns: 64,
    wsWindow: 64, wsOffers: 5, serverCore: 1, genCore: 0, quietWait: 60, maxOther: 0.15, maxInterference: 0.08, retries: 2,
    out: OUT
  }
  const num = (name, v) => {
    const n = Number(v)
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} needs a non-negative number`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const v = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i] }
    switch (a) {
      case '--help': case '-h': console.log(HELP); process.exit(0); break
      case '--runs': o.runs = Math.max(1, Math.floor(num(a, v()))); break
      case '--duration': o.duration = num(a, v()); break
      case '--warmup': o.warmup = num(a, v()); break
      case '--ws-warmup': o.wsWarmup = num(a, v()); break
      case '--trackers': o.trackers = v().split(',').filter(Boolean); break
      case '--scenarios': o.scenarios = v().split(',').filter(Boolean); break
      case '--torrents': o.torrents = Math.floor(num(a, v())); break
      case '--peers': o.peers = Math.floor(num(a, v())); break
      case '--ws-torrents': o.wsTorrents = Math.floor(num(a, v())); break
      case '--udp-sockets': o.udpSockets = Math.floor(num(a, v())); break
      case '--udp-window': o.udpWindow = Math.floor(num(a, v())); break
      case '--http-conns': o.httpConns = Math.floor(num(a, v())); break
      case '--ws-window': o.wsWindow = Math.floor(num(a, v())); break
      case '--ws-offers': o.wsOffers = Math.floor(num(a, v())); break
      case '--server-core': o.serverCore = Math.floor(num(a, v())); break
      case '--gen-core': o.genCore = Math.floor(num(a, v())); break
      case '--quiet-wait': o.quietWait = num(a, v()); break
      case '--max-other': o.maxOther = num(a, v()); break
      case '--max-interference': o.maxInterference = num(a, v()); break
      case '--retries': o.retries = Math.floor(num(a, v())); break
      case '--quick': o.runs = 1; o.duration = 2; o.warmup = 0.5; o.wsWarmup = 1; break
      case '--out': o.out = v(); break
      case '--from-json': o.fromJson = v(); break
      default: throw new Error(`unknown option ${a}\n${HELP}`)
    }
  }
  for (const s of o.scenarios) if (!SCENARIOS.some(x => x.id === s)) throw new Error(`unknown scenario ${s}`)
  if (o.trackers === null) o.trackers = ['ours', 'reference', ...(existsSync(OPENTRACKER) ? ['opentracker'] : [])]
  for (const t of o.trackers) if (!TRACKERS.includes(t)) throw new Error(`unknown tracker ${t}`)
  if (o.wsTorrents === null) o.wsTorrents = o.torrents
  if (o.torrents < 1 || o.peers < 1 || o.duration <= 0) throw new Error('bad --torrents/--peers/--duration')
  if (o.wsTorrents % o.peers !== 0) throw new Error('--ws-torrents must be a multiple of --peers')
  return o
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const log = (...a) => process.stderr.write(a.join(' ') + '\n')

/** Children we started, by PID, so an interrupted run ends exactly those. */
const children = new Set()
function track (child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of children) { try { process.kill(c.pid, 'SIGKILL') } catch {} }
    process.exit(130)
  })
}

function median (xs) {
  const v = xs.filter(x => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const m = v.length >> 1
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2
}

/** Busy jiffies (all but idle and iowait) and total jiffies of the given CPUs. */
function coreJiffies (cores) {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n')
  let busy = 0
  let total = 0
  for (const c of cores) {
    const line = lines.find(l => l.startsWith(`cpu${c} `))
    if (line === undefined) continue
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number)
    const t = v.reduce((a, b) => a + b, 0)
    total += t
    busy += t - v[3] - v[4]
  }
  return { busy, total }
}

/** Waits until the bench CPUs are (nearly) idle — other people's work would skew the numbers. */
async function waitQuiet (opts, cores) {
  const start = Date.now()
  let load = 0
  for (;;) {
    const a = coreJiffies(cores)
    await sleep(500)
    const b = coreJiffies(cores)
    load = b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) * cores.length : 0
    if (load <= opts.maxOther) return { waited: (Date.now() - start) / 1000, load }
    if (Date.now() - start > opts.quietWait * 1000) return { waited: (Date.now() - start) / 1000, load, gaveUp: true }
  }
}

function run (cmd, args, { timeoutMs = 600000, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }))
    let out = ''
    let err = ''
    child.stdout.on('data', d => { out += d })
    child.stderr.on('data', d => { err += d })
    const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL') } catch {} }, timeoutMs)
    child.on('error', e => { clearTimeout(timer); reject(e) })
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err }) })
    if (input !== undefined) child.stdin.end(input)
    else child.stdin.end()
  })
}

// ---------------------------------------------------------------------------------------------
// Generators: built here with the machine's C compiler
// ---------------------------------------------------------------------------------------------

function buildGenerators (outDir) {
  mkdirSync(outDir, { recursive: true })
  const cc = process.env.CC || 'gcc'
  const common = join(BENCH, 'gen', 'common.h')
  for (const g of ['udp', 'http', 'ws']) {
    const src = join(BENCH, 'gen', `${g}.c`)
    const bin = join(outDir, g)
    const fresh = existsSync(bin) && statSync(bin).mtimeMs > Math.max(statSync(src).mtimeMs, statSync(common).mtimeMs)
    if (fresh) continue
    const r = spawnSync(cc, ['-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`building bench/gen/${g}.c with ${cc} failed:\n${r.stderr || r.error}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Trackers
// ---------------------------------------------------------------------------------------------

/** Ports free for both TCP and UDP on 127.0.0.1 (opentracker takes one for both). */
async function freePort () {
  for (let i = 0; i < 50; i++) {
    const s = net.createServer()
    await new Promise((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve) })
    const port = s.address().port
    await new Promise(resolve => s.close(resolve))
    const u = dgram.createSocket('udp4')
    const ok = await new Promise(resolve => { u.once('error', () => resolve(false)); u.bind(port, '127.0.0.1', () => resolve(true)) })
    await new Promise(resolve => { try { u.close(resolve) } catch { resolve() } })
    if (ok) return port
  }
  throw new Error('no free port')
}

async function waitTcp (port, child, deadline) {
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false
    const up = await new Promise(resolve => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (up) return true
    await sleep(50)
  }
  return false
}

let opentrackerV6 = null

/** Does this opentracker build listen on IPv6? (Debian's says "V4 Tracker is V4 only!".) */
async function probeOpentrackerV6 (outDir) {
  if (opentrackerV6 !== null) return opentrackerV6
  const dir = join(outDir, 'opentracker-probe')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'ot.conf'), `listen.udp [::1]:${await freePort()}\ntracker.rootdir ${dir}\n`)
  const r = await run('timeout', ['2', OPENTRACKER, '-f', join(dir, 'ot.conf')], { timeoutMs: 5000 })
  opentrackerV6 = !/V4 only/i.test(r.out + r.err) && r.code === 124
  rmSync(dir, { recursive: true, force: true })
  return opentrackerV6
}

async function startTracker (name, opts, genBin) {
  if (name === 'opentracker') {
    const dir = join(opts.out, 'opentracker')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    chmodSync(dir, 0o755) // it chroots here and drops to an unprivileged user
    // The Debian build only serves whitelisted torrents: list the data set's info hashes.
    const hashes = await run(genBin.udp, ['--print-hashes', String(Math.max(opts.torrents, opts.wsTorrents))])
    writeFileSync(join(dir, 'whitelist.txt'), hashes.out, { mode: 0o644 })
    const port = await freePort()
    const v6 = await probeOpentrackerV6(opts.out)
    const lines = [`listen.tcp_udp 127.0.0.1:${port}`, `tracker.rootdir ${dir}`, 'access.whitelist ./whitelist.txt']
    if (v6) lines.push(`listen.udp [::1]:${port}`)
    writeFileSync(join(dir, 'ot.conf'), lines.join('\n') + '\n', { mode: 0o644 })
    const child = track(spawn('taskset', ['-c', String(opts.serverCore), OPENTRACKER, '-f', join(dir, 'ot.conf')], { stdio: ['ignore', 'pipe', 'pipe'] }))
    let output = ''
    child.stdout.on('data', d => { output += d })
    child.stderr.on('data', d => { output += d })
    if (!await waitTcp(port, child, Date.now() + 10000)) {
      try { process.kill(child.pid, 'SIGKILL') } catch {}
      throw new Error(`opentracker did not start: ${output}`)
    }
    return {
      name, child, pid: child.pid, ports: { http: port, udp4: port, udp6: v6 ? port : null },
      can: new Set(['udp4', 'http', ...(v6 ? ['udp6'] : [])]),
      events: () => null,
      output: () => output
    }
  }
  const which = name.startsWith('ours') ? 'ours' : 'reference'
  const workers = WORKER_TRACKERS[name]
  const args = [join(BENCH, 'tracker.mjs'), which, ...(name === 'reference-nostats' ? ['--no-stats'] : []), ...(workers !== undefined ? ['--workers', String(workers)] : [])]
  // ours: the native batched UDP addon (built by npm install); ours-dgram: the node:dgram fallback.
  // ours-w2 uses SO_REUSEPORT through the addon (its workers choose their UDP backend).
  if (which === 'ours' && workers === undefined) args.push('--udp-backend', name === 'ours' ? 'native' : 'dgram')
  const cpus = workers !== undefined ? `${opts.serverCore},${opts.genCore}` : String(opts.serverCore)
  const child = track(spawn('taskset', ['-c', cpus, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT }))
  let out = ''
  let err = ''
  child.stderr.on('data', d => { err += d })
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s: ${err}`)), 30000)
    child.stdout.on('data', d => {
      out += d
      const nl = out.indexOf('\n')
      if (nl >= 0) { clearTimeout(timer); resolve(JSON.parse(out.slice(0, nl))) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`${name} exited (${code}): ${err}`)) })
  })
  const can = name === 'reference-nostats' ? ['http'] : name === 'ours-dgram' ? ['udp4', 'udp6'] : ['udp4', 'udp6', 'http', 'ws']
  return {
    name, child, pid: child.pid, ports: { http: ready.http, udp4: ready.udp4, udp6: ready.udp6 },
    can: new Set(can.filter(c => c === 'ws' ? ready.http !== null : ready[c] !== null)),
    events: () => {
      const line = err.split('\n').find(l => l.startsWith('{"events"'))
      return line ? JSON.parse(line).events : null
    },
    output: () => err
  }
}

async function stopTracker (t) {
  if (t.child.exitCode !== null || t.child.signalCode !== null) return
  const exited = new Promise(resolve => t.child.once('exit', resolve))
  try { process.kill(t.pid, 'SIGTERM') } catch {}
  const timer = setTimeout(() => { try { process.kill(t.pid, 'SIGKILL') } catch {} }, 3000)
  await exited
  clearTimeout(timer)
  await sleep(100) // let stderr drain
}

// ---------------------------------------------------------------------------------------------
// One measurement
// ---------------------------------------------------------------------------------------------

function genArgs (scenario, tracker, opts) {
  const common = ['--pid', String(tracker.pid), '--peers', String(opts.peers), '--warmup', String(opts.warmup),
    '--duration', String(opts.duration), '--windows', '1', '--server-core', String(opts.serverCore), '--gen-core', String(opts.genCore)]
  const p = tracker.ports
  switch (scenario) {
    case 'udp4-announce': return ['udp', ['--host', '127.0.0.1', '--port', String(p.udp4), '--mode', 'announce', '--torrents', String(opts.torrents), '--sockets', String(opts.udpSockets), '--window', String(opts.udpWindow), ...common]]
    case 'udp4-scrape': return ['udp', ['--host', '127.0.0.1', '--port', String(p.udp4), '--mode', 'scrape', '--torrents', String(opts.torrents), '--sockets', String(opts.udpSockets), '--window', String(opts.udpWindow), ...common]]
    // The IPv6 peers are a separate set: warm-up announces each of them once first.
    case 'udp6-announce': return ['udp', ['--host', '::1', '--port', String(p.udp6), '--mode', 'announce', '--full-pass', '--torrents', String(opts.torrents), '--sockets', String(opts.udpSockets), '--window', String(opts.udpWindow), ...common]]
    case 'udp6-scrape': return ['udp', ['--host', '::1', '--port', String(p.udp6), '--mode', 'scrape', '--torrents', String(opts.torrents), '--sockets', String(opts.udpSockets), '--window', String(opts.udpWindow), ...common]]
    case 'http-keepalive': return ['http', ['--host', '127.0.0.1', '--port', String(p.http), '--keepalive', '--torrents', String(opts.torrents), '--conns', String(opts.httpConns), ...common]]
    case 'http-close': return ['http', ['--host', '127.0.0.1', '--port', String(p.http), '--close', '--torrents', String(opts.torrents), '--conns', String(opts.httpConns), ...common]]
    case 'ws-announce': return ['ws', ['--host', '127.0.0.1', '--port', String(p.http), '--torrents', String(opts.wsTorrents), '--window', String(opts.wsWindow), '--offers', String(opts.wsOffers), '--warmup-max', '300', ...common, '--warmup', String(opts.wsWarmup)]]
  }
  throw new Error(scenario)
}

/** Fills the IPv4 swarms (every peer announces once) so HTTP and UDP runs meet full swarms. */
async function populate (tracker, opts, genBin) {
  if (!tracker.can.has('udp4')) return null
  const t0 = Date.now()
  const r = await run('taskset', ['-c', String(opts.genCore), genBin.udp, '--host', '127.0.0.1', '--port', String(tracker.ports.udp4),
    '--full-pass', '--windows', '0', '--warmup', '0', '--warmup-max', '300', '--torrents', String(opts.torrents), '--peers', String(opts.peers),
    '--sockets', String(opts.udpSockets), '--window', String(opts.udpWindow)], { timeoutMs: 330000 })
  if (r.code !== 0) throw new Error(`populating ${tracker.name} failed: ${r.err}`)
  return (Date.now() - t0) / 1000
}

async function measure (scenario, tracker, opts, genBin) {
  const [gen, args] = genArgs(scenario, tracker, opts)
  const cores = [opts.serverCore, opts.genCore]
  let best = null
  for (let attempt = 0; ; attempt++) {
    const quiet = await waitQuiet(opts, cores)
    const r = await run('taskset', ['-c', String(opts.genCore), genBin[gen], ...args], { timeoutMs: (opts.warmup + opts.duration + 360) * 1000 })
    const line = r.out.split('\n').find(l => l.startsWith('{'))
    if (r.code !== 0 || line === undefined) {
      return { failed: true, reason: `${gen} generator exited ${r.code ?? r.signal}: ${r.err.trim().split('\n').slice(-3).join(' / ')}` }
    }
    const w = JSON.parse(line)
    const secs = w.seconds
    // Interference: time the tracker's main thread or the generator was ready to run but had to
    // wait for its CPU while something else used it (precise, from the scheduler's run_delay).
    // The tracker's own helper threads (GC, libuv pool) share its CPU; the time they ran is not
    // counted as interference.
    const helperCpu = Math.max(0, w.server_cpu_s - w.server_main_run_s)
    // ours-w2's workers run on the generator's CPU by design: the generator waiting for them is
    // not interference from other processes, so only the tracker side counts there (and that is
    // the pool's idle main thread: other processes disturbing ours-w2 go unnoticed — read its
    // rows with the spread of the runs).
    const shared = WORKER_TRACKERS[tracker.name] !== undefined
    const other = (Math.max(0, w.server_main_wait_s - helperCpu) + (shared ? 0 : w.gen_wait_s)) / secs
    const m = {
      ...w,
      attempt,
      quietWait: quiet.waited,
      quietGaveUp: quiet.gaveUp === true,
      other,
      serverCpuShare: w.server_cpu_s / secs,
      genCpuShare: w.gen_cpu_s / secs,
      cpuUsPerResponse: w.responses > 0 ? w.server_cpu_s / w.responses * 1e6 : NaN,
      perCpuSecond: w.server_cpu_s > 0 ? w.responses / w.server_cpu_s : NaN,
      genStderr: r.err.trim()
    }
    if (best === null || m.other < best.other) best = m
    if (other <= opts.maxInterference) return m
    // Out of retries: keep the least disturbed attempt.
    if (attempt >= opts.retries) return { ...best, attempts: attempt + 1 }
    log(`    the tracker or the generator waited ${(other * 100).toFixed(0)}% of the time for its CPU (other processes): repeating the measurement`)
  }
}

// ---------------------------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------------------------

const fmtInt = n => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—'
const fmtMs = us => !Number.isFinite(us) || us < 0 ? '—' : us >= 1e6 ? '> 1 s' : us < 1000 ? (us / 1000).toFixed(2) : (us / 1000).toFixed(1)
const fmtPct = x => Number.isFinite(x) ? `${Math.round(x * 100)}%` : '—'
const fmtRatio = r => Number.isFinite(r) ? `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r.toFixed(2)}×` : '—'
const SATURATED = 0.9

function summarise (results, opts) {
  // results: { [scenario]: { [tracker]: measurement[] } }
  const rows = []
  for (const s of SCENARIOS) {
    if (!opts.scenarios.includes(s.id)) continue
    const byTracker = results[s.id] ?? {}
    const sum = {}
    for (const t of opts.trackers) {
      const done = (byTracker[t] ?? []).filter(m => !m.failed && !m.skipped)
      const failed = (byTracker[t] ?? []).filter(m => m.failed)
      const skipped = (byTracker[t] ?? []).find(m => m.skipped)
      if (done.length === 0) {
        if (failed.length > 0) sum[t] = { failed: failed[0].reason }
        else if (skipped !== undefined) sum[t] = { skipped: skipped.skipped }
        continue
      }
      // Runs during which other processes took the CPU away say little about the tracker: the
      // medians use the undisturbed runs, or, if every run was disturbed, all of them (flagged).
      const clean = done.filter(m => m.other <= opts.maxInterference)
      const ms = clean.length > 0 ? clean : done
      const rates = ms.map(m => m.rate)
      sum[t] = {
        n: ms.length,
        runs: done.length,
        allDisturbed: clean.length === 0,
        rate: median(rates),
        rateMin: Math.min(...rates),
        rateMax: Math.max(...rates),
        cpuUs: median(ms.map(m => m.cpuUsPerResponse)),
        perCpuSecond: median(ms.map(m => m.perCpuSecond)),
        serverCpu: median(ms.map(m => m.serverCpuShare)),
        p50: median(ms.map(m => m.p50_us)),
        p99: median(ms.map(m => m.p99_us)),
        rssMiB: median(ms.map(m => m.server_rss_kb / 1024)),
        genCpu: median(ms.map(m => m.genCpuShare)),
        genCore: median(ms.map(m => m.gen_core_busy)),
        other: Math.max(...ms.map(m => m.other)),
        saturated: ms.some(m => m.genCpuShare >= SATURATED),
        itemsPerResponse: median(ms.map(m => m.responses > 0 ? m.items / m.responses : NaN)),
        peerBytesPerResponse: median(ms.map(m => m.peer_bytes !== undefined && m.responses > 0 ? m.peer_bytes / m.responses : NaN)),
        errors: ms.reduce((a, m) => a + m.errors + m.bad, 0),
        timeouts: ms.reduce((a, m) => a + m.timeouts, 0),
        reconnectsPerResponse: median(ms.map(m => m.responses > 0 ? m.reconnects / m.responses : NaN)),
        offersPerAnnounce: median(ms.map(m => m.offers_received !== undefined && m.responses > 0 ? m.offers_received / m.responses : NaN)),
        answersPerAnnounce: median(ms.map(m => m.answers_received !== undefined && m.responses > 0 ? m.answers_received / m.responses : NaN)),
        relayP50: median(ms.map(m => m.relay_p50_us)),
        relayP99: median(ms.map(m => m.relay_p99_us)),
        failedRuns: failed.length
      }
    }
    const ratio = other => {
      const a = sum.ours
      const b = sum[other]
      if (a === undefined || b === undefined || a.failed || b.failed || a.skipped || b.skipped) return null
      // Where a generator saturated, or every run was disturbed, throughput says little: compare
      // responses per server CPU-second instead.
      if (a.saturated || b.saturated || a.allDisturbed || b.allDisturbed) return { value: a.perCpuSecond / b.perCpuSecond, perCpu: true }
      return { value: a.rate / b.rate, perCpu: false }
    }
    // Workers: throughput and CPU per response of --workers 2 against one thread.
    const w2 = sum['ours-w2']
    const w1 = sum.ours
    const workers = w1 === undefined || w2 === undefined || w1.failed || w2.failed || w1.skipped || w2.skipped
      ? null
      : { rate: w2.rate / w1.rate, cpu: w2.cpuUs / w1.cpuUs }
    rows.push({ scenario: s, sum, vsReference: ratio('reference'), vsReferenceNoStats: ratio('reference-nostats'), vsOpentracker: ratio('opentracker'), workers })
  }
  return rows
}

const TRACKER_LABEL = {
  ours: 'ours',
  'ours-dgram': 'ours, UDP on node:dgram',
  'ours-w2': 'ours, --workers 2',
  reference: 'reference',
  'reference-nostats': 'reference, /stats off',
  opentracker: 'opentracker'
}

function renderTable (rows, opts) {
  const head = ['scenario', 'tracker', 'responses/s (min–max)', 'server CPU µs/resp', 'server CPU', 'p50 ms', 'p99 ms', 'server RSS MiB', 'generator CPU (core)', 'interference', 'ours ÷ reference', 'ours ÷ opentracker']
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`]
  for (const row of rows) {
    let first = true
    for (const t of opts.trackers) {
      const s = row.sum[t]
      if (s === undefined) continue
      const label = first ? row.scenario.label : ''
      first = false
      if (s.failed) {
        lines.push(`| ${label} | ${TRACKER_LABEL[t]} | failed: ${s.failed.replace(/\|/g, '/')} |  |  |  |  |  |  |  |  |  |`)
        continue
      }
      if (s.skipped) {
        lines.push(`| ${label} | ${TRACKER_LABEL[t]} | — (${s.skipped}) |  |  |  |  |  |  |  |  |  |`)
        continue
      }
      const sat = s.saturated ? ' **sat.**' : ''
      const rate = `${fmtInt(s.rate)}${s.n > 1 ? ` (${fmtInt(s.rateMin)}–${fmtInt(s.rateMax)})` : ''}${s.n < s.runs ? ` [${s.n} of ${s.runs} runs]` : ''}${s.allDisturbed ? ' **disturbed**' : ''}`
      const r = x => x === null ? '—' : `${fmtRatio(x.value)}${x.perCpu ? ' per CPU-s' : ''}`
      let vsRef = t === 'ours' ? r(row.vsReference) : ''
      if (t === 'ours' && row.vsReferenceNoStats !== null) vsRef += `; ${r(row.vsReferenceNoStats)} vs /stats off`
      const vsOt = t === 'ours' ? r(row.vsOpentracker) : ''
      lines.push(`| ${label} | ${TRACKER_LABEL[t]} | ${rate} | ${s.cpuUs.toFixed(1)} | ${fmtPct(s.serverCpu)} | ${fmtMs(s.p50)} | ${fmtMs(s.p99)} | ${s.rssMiB.toFixed(0)} | ${fmtPct(s.genCpu)} (${fmtPct(s.genCore)})${sat} | ${fmtPct(s.other)} | ${vsRef} | ${vsOt} |`)
    }
  }
  return lines.join('\n')
}

function renderNotes (rows, opts, meta) {
  const notes = []
  for (const row of rows) {
    for (const t of opts.trackers) {
      const s = row.sum[t]
      if (s === undefined || s.failed || s.skipped) continue
      const bits = []
      if (row.scenario.id.includes('announce') && !row.scenario.id.startsWith('ws') && Number.isFinite(s.itemsPerResponse)) {
        if (row.scenario.id === 'udp6-announce' && Number.isFinite(s.peerBytesPerResponse) && Math.abs(s.peerBytesPerResponse / 18 - Math.round(s.peerBytesPerResponse / 18)) > 0.01) {
          bits.push(`${s.peerBytesPerResponse.toFixed(0)} bytes of peers per response: not whole 18-byte IPv6 entries (${(s.peerBytesPerResponse / 6).toFixed(1)} 6-byte IPv4 ones?)`)
        } else bits.push(`${s.itemsPerResponse.toFixed(1)} peers per response`)
      }
      if (row.scenario.id.startsWith('ws')) {
        bits.push(`${Number.isFinite(s.offersPerAnnounce) ? s.offersPerAnnounce.toFixed(2) : '—'} offers relayed and ${Number.isFinite(s.answersPerAnnounce) ? s.answersPerAnnounce.toFixed(2) : '—'} answers relayed back per announce`)
        if (Number.isFinite(s.relayP50)) bits.push(`offer→answer round trip p50 ${fmtMs(s.relayP50)} ms, p99 ${fmtMs(s.relayP99)} ms`)
      }
      if (row.scenario.id === 'http-keepalive' && s.reconnectsPerResponse > 0.01) bits.push(`the server closed the connection after ${fmtPct(s.reconnectsPerResponse)} of responses (reconnects included in latency)`)
      if (s.errors > 0) bits.push(`${s.errors} error/bad responses`)
      if (s.timeouts > 0) bits.push(`${s.timeouts} requests unanswered (within ${row.scenario.id.startsWith('ws') ? '5 s' : '1 s'}) over all runs`)
      if (s.failedRuns > 0) bits.push(`${s.failedRuns} run(s) failed`)
      if (s.saturated) bits.push('the generator used ≥ 90% of its CPU: a lower bound; compared per server CPU-second')
      else if (s.serverCpu < 0.9) bits.push(`the tracker used only ${fmtPct(s.serverCpu)} of its CPU`)
      if (s.allDisturbed) bits.push(`**disturbed**: in every run the tracker or the generator waited for its CPU while other processes ran (up to ${fmtPct(s.other)} of a run): these numbers are low, the ratios use CPU time`)
      else if (s.n < s.runs) bits.push(`${s.runs - s.n} of ${s.runs} runs left out: other processes took the CPU away during them`)
      if (bits.length > 0) notes.push(`- ${row.scenario.label}, ${TRACKER_LABEL[t]}: ${bits.join('; ')}.`)
    }
  }
  for (const row of rows) {
    if (row.workers === null || row.workers === undefined) continue
    notes.push(`- ${row.scenario.label}, --workers 2 ÷ one thread: ${fmtRatio(row.workers.rate)} the responses/s, ${fmtRatio(row.workers.cpu)} the CPU µs per response (the two workers share the CPUs with the generator).`)
  }
  for (const [t, ev] of Object.entries(meta.trackerEvents)) {
    if (ev !== null && (ev.warning > 0 || ev.error > 0)) notes.push(`- ${TRACKER_LABEL[t]} emitted ${ev.warning} 'warning' and ${ev.error} 'error' events over all runs (first: ${ev.firstWarning || ev.firstError}).`)
  }
  return notes.join('\n')
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

function render (results, opts, meta) {
  const rows = summarise(results, opts)
  const table = renderTable(rows, opts)
  const notes = renderNotes(rows, opts, meta)
  const header = [
    `Ours at ${meta.commit ?? 'unknown'}${meta.srcDirty ? ' with uncommitted changes in src/' : ''}. Tracker pinned to CPU ${opts.serverCore}, load generator (C, built with gcc) to CPU ${opts.genCore}; ${meta.cpus} × ${meta.cpu}, Node ${meta.node}, reference bittorrent-tracker ${meta.reference}${meta.opentracker ? `, opentracker ${meta.opentracker}` : ''}.`,
    `${opts.torrents.toLocaleString('en-US')} torrents × ${opts.peers} peers (WS: ${opts.wsTorrents.toLocaleString('en-US')} clients, each in ${opts.peers} torrents); median of ${opts.runs} run(s) of ${opts.duration} s after ${opts.warmup} s warm-up (WS: ${opts.wsWarmup} s), each run on a fresh tracker process. ${meta.date.slice(0, 10)}, ${Math.round(meta.seconds)} s in all.`,
    `Server CPU: utime+stime of the tracker process per response, and as a share of the wall time. Generator CPU: its process's share (its core's busy share in brackets). Interference: share of a run the tracker's main thread or the generator waited for its CPU while another process ran (largest over the runs used); a run above ${fmtPct(opts.maxInterference)} is repeated up to ${opts.retries} times, and runs still above it are left out of the medians ([n of N runs]) unless all are (**disturbed**). **sat.**: the generator used ≥ 90% of its CPU, so that rate is a lower bound and the ratio compares responses per server CPU-second instead.`
  ].join('\n')
  return { rows, md: `${header}\n\n${table}\n\n${notes}\n` }
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  if (opts.fromJson !== undefined) {
    const saved = JSON.parse(readFileSync(opts.fromJson, 'utf8'))
    const o = { ...opts, ...saved.meta.options, out: opts.out }
    console.log(render(saved.runs, o, saved.meta).md)
    return
  }
  const ncpu = cpus().length
  if (ncpu < 2 || Math.max(opts.serverCore, opts.genCore) >= ncpu || opts.serverCore === opts.genCore) {
    throw new Error(`needs two distinct CPUs (this machine has ${ncpu}); see --server-core/--gen-core`)
  }
  if (spawnSync('taskset', ['-V']).status !== 0) throw new Error('taskset (util-linux) is needed')
  if (opts.trackers.includes('ours') && !existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)')
  if (opts.trackers.includes('opentracker') && !existsSync(OPENTRACKER)) {
    log(`${OPENTRACKER} is not installed: skipping opentracker`)
    opts.trackers = opts.trackers.filter(t => t !== 'opentracker')
  }
  mkdirSync(opts.out, { recursive: true })
  const binDir = opts.out
  buildGenerators(binDir)
  const genBin = { udp: join(binDir, 'udp'), http: join(binDir, 'http'), ws: join(binDir, 'ws') }

  const refVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'bittorrent-tracker-reference', 'package.json'), 'utf8')).version
  const otVersion = existsSync(OPENTRACKER) ? (spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'opentracker'], { encoding: 'utf8' }).stdout || 'installed') : null
  const git = (...a) => spawnSync('git', a, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? ''
  const meta = {
    date: new Date().toISOString(),
    commit: git('rev-parse', '--short', 'HEAD') || 'unknown',
    srcDirty: git('status', '--porcelain', '--', 'src') !== '',
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: ncpu,
    reference: refVersion,
    opentracker: otVersion,
    options: { ...opts, out: undefined },
    trackerEvents: {},
    populateSeconds: {}
  }
  const results = {}
  const t0 = Date.now()
  log(`bench: trackers ${opts.trackers.join(', ')}; scenarios ${opts.scenarios.join(', ')}; ${opts.runs} run(s) of ${opts.duration} s after ${opts.warmup} s warm-up (WS ${opts.wsWarmup} s)`)
  for (let round = 0; round < opts.runs; round++) {
    for (const name of opts.trackers) {
      const scenarios = SCENARIOS.filter(s => opts.scenarios.includes(s.id)).map(s => s.id)
      log(`run ${round + 1}/${opts.runs}: ${name}`)
      const tracker = await startTracker(name, opts, genBin)
      try {
        let populated = false
        for (const sc of scenarios) {
          const need = SCENARIOS.find(s => s.id === sc).needs
          if (!tracker.can.has(need)) {
            const why = name === 'opentracker'
              ? (need === 'ws' ? 'no WebSocket tracker' : need === 'udp6' ? 'IPv4-only build' : `no ${need}`)
              : name === 'reference-nostats' ? 'HTTP scenarios only' : `no ${need}`
            ;((results[sc] ??= {})[name] ??= []).push({ round, skipped: why })
            continue
          }
          // The WS run goes first, on empty swarms; the IPv4 peers are then announced once.
          if (sc !== 'ws-announce' && !populated) {
            const secs = await populate(tracker, opts, genBin)
            ;(meta.populateSeconds[name] ??= []).push(secs)
            populated = true
          }
          const m = await measure(sc, tracker, opts, genBin)
          ;((results[sc] ??= {})[name] ??= []).push({ round, ...m })
          if (m.failed) log(`  ${sc}: FAILED ${m.reason}`)
          else log(`  ${sc}: ${fmtInt(m.rate)}/s, ${m.cpuUsPerResponse.toFixed(1)} µs CPU/resp, server CPU ${fmtPct(m.serverCpuShare)}, generator ${fmtPct(m.genCpuShare)}, other ${fmtPct(m.other)}`)
        }
      } finally {
        await stopTracker(tracker)
        const ev = tracker.events()
        if (ev !== null) {
          const acc = meta.trackerEvents[name] ??= { warning: 0, error: 0, firstWarning: '', firstError: '' }
          acc.warning += ev.warning
          acc.error += ev.error
          acc.firstWarning ||= ev.firstWarning
          acc.firstError ||= ev.firstError
        }
      }
    }
  }
  meta.seconds = (Date.now() - t0) / 1000

  const { rows, md } = render(results, opts, meta)
  console.log('\n' + md)
  writeFileSync(join(opts.out, 'results.md'), md)
  writeFileSync(join(opts.out, 'results.json'), JSON.stringify({ meta, summary: rows.map(r => ({ scenario: r.scenario.id, ...r })), runs: results }, null, 2) + '\n')
  log(`wrote ${join(opts.out, 'results.md')} and results.json`)
}

main().catch(err => {
  console.error(err?.stack ?? String(err))
  for (const c of children) { try { process.kill(c.pid, 'SIGKILL') } catch {} }
  process.exit(1)
})
