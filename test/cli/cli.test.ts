/**
 * The `bittorrent-tracker` command: spawns the built `dist/cli/bin.js` (`npm test` builds first).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import { existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { availableParallelism, endianness } from 'node:os'
import { fileURLToPath } from 'node:url'
import {
  hex, httpAnnounce, httpGet, id20, udpClient, withTimeout, wsClient, REPLY_TIMEOUT_MS, UDP_BACKEND
} from '../helpers/tracker-clients.js'
import { nativeStatus } from '../../src/server/native/loader.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = `${ROOT}dist/cli/bin.js`
const VERSION = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version
const HAS_PROC_NET = existsSync('/proc/net/tcp6') && existsSync('/proc/net/udp6')
/** SIGINT/SIGTERM must end the process before bin.ts's 5 s fallback exit would (loaded machines: margin). */
const PROMPT_EXIT_MS = 4000
/** Node startup plus binding, on a busy machine. */
const START_MS = 15_000
/** Processes started at once: enough to overlap Node's startup, few enough not to starve a small machine. */
const CONCURRENCY = 3
/**
 * With no --workers the CLI runs one worker per core; with the native addon each worker binds its
 * own sockets (SO_REUSEPORT), and the default '::' HTTP host becomes an IPv6 plus an IPv4 listener.
 */
const DEFAULT_WORKERS = availableParallelism()
const REUSEPORT = DEFAULT_WORKERS > 1 && nativeStatus().available
/** Each address once per worker in SO_REUSEPORT mode, sorted as boundAt sorts. */
const perWorker = (addrs: string[]): string[] => (REUSEPORT ? addrs.flatMap(a => Array<string>(DEFAULT_WORKERS).fill(a)) : addrs).sort()
const LOOPBACK = ['--http-hostname', '127.0.0.1', '--udp-hostname', '127.0.0.1', '--udp6-hostname', '::1']

/** The help text of the seed README, line by line (compared with whitespace runs folded). */
const SEED_HELP = [
  'bittorrent-tracker - Start a bittorrent tracker server',
  'Usage:',
  'bittorrent-tracker [OPTIONS]',
  'If no --http, --udp, or --ws option is supplied, all tracker types will be started.',
  'Options:',
  '-p, --port [number]  change the port [default: 8000]',
  '--trust-proxy    trust \'x-forwarded-for\' header from reverse proxy',
  '--interval       client announce interval (ms) [default: 600000]',
  '--http           enable http server',
  '--udp            enable udp server',
  '--ws             enable websocket server',
  '-q, --quiet          only show error output',
  '-s, --silent         show no output',
  '-v, --version        print the current version',
  'Please report bugs!  https://github.com/feross/bittorrent-tracker/issues'
]

const fold = (s: string): string => s.trim().replace(/\s+/g, ' ')

interface Exit { code: number | null, signal: NodeJS.Signals | null }

/** Every process started, so none outlives the file. */
const running = new Set<Cli>()

class Cli {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<Exit>
  private readonly changed = new Set<() => void>()

  constructor (args: string[], env?: Record<string, string>) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => { this.stdout += s; this.notify() })
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s; this.notify() })
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => {
      running.delete(this)
      this.notify()
      resolve({ code, signal })
    }))
    running.add(this)
  }

  private notify (): void { for (const f of this.changed) f() }

  /** Waits until stdout holds `n` complete lines (rejects on exit or timeout). */
  lines (n: number): Promise<string[]> {
    return withTimeout(new Promise<string[]>((resolve, reject) => {
      const check = (): void => {
        const lines = this.stdout.split('\n')
        if (lines.length > n) { this.changed.delete(check); resolve(lines.slice(0, n)) } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.changed.delete(check)
          reject(new Error(`exited (${String(this.child.exitCode)}) with stdout ${JSON.stringify(this.stdout)} stderr ${JSON.stringify(this.stderr)}`))
        }
      }
      this.changed.add(check)
      check()
    }), START_MS, `${n} lines of output; got ${JSON.stringify(this.stdout)}`)
  }

  /** Sends `signal` and resolves the exit with how long it took. */
  async stop (signal: NodeJS.Signals): Promise<Exit & { ms: number }> {
    const t0 = Date.now()
    this.child.kill(signal)
    const e = await withTimeout(this.exited, 8000, `exit after ${signal}`)
    return { ...e, ms: Date.now() - t0 }
  }

  kill (): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

/** Runs to completion (for --help and friends). */
async function runToEnd (args: string[]): Promise<Exit & { stdout: string, stderr: string }> {
  const c = new Cli(args)
  try {
    const e = await withTimeout(c.exited, START_MS, `bittorrent-tracker ${args.join(' ')}`)
    return { ...e, stdout: c.stdout, stderr: c.stderr }
  } finally { c.kill() }
}

/** The line after the listening lines naming the UDP backend (tests run where the addon is built). */
const UDP_BACKEND_LINE = UDP_BACKEND === 'native' ? 'udp: native recvmmsg/sendmmsg' : 'udp: dgram (disabled by BITTORRENT_TRACKER_NATIVE=0)'

/** The port of a "… server listening on PORT" line. */
function portOf (line: string): number {
  const m = /^(http|udp|ws) server listening on (\d+)$/.exec(line)
  assert.ok(m !== null, `not a listening line: ${JSON.stringify(line)}`)
  return Number(m[2])
}

/** Whether `port` is free right now on TCP 127.0.0.1 and UDP 127.0.0.1 and ::1 (0: any port). */
async function portFree (port: number): Promise<number | false> {
  const tcp = net.createServer()
  const listening = await new Promise<boolean>(resolve => {
    tcp.once('error', () => resolve(false))
    tcp.listen(port, '127.0.0.1', () => resolve(true))
  })
  if (!listening) return false
  const p = (tcp.address() as net.AddressInfo).port
  const u4 = dgram.createSocket('udp4')
  const u6 = dgram.createSocket({ type: 'udp6', ipv6Only: true })
  const bind = (s: dgram.Socket, host: string): Promise<boolean> => new Promise(resolve => {
    s.once('error', () => resolve(false))
    s.bind(p, host, () => resolve(true))
  })
  const ok = await bind(u4, '127.0.0.1') && await bind(u6, '::1')
  for (const s of [u4, u6]) { try { s.close() } catch { /* not bound */ } }
  await new Promise(resolve => tcp.close(resolve))
  return ok ? p : false
}

/** A port free right now (for runs that print nothing). */
async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const p = await portFree(0)
    if (p !== false) return p
  }
  throw new Error('no free port found')
}

function pct (b: string): string {
  return Buffer.from(b, 'latin1').toString('hex').replace(/../g, '%$&')
}

/** Sockets of this network namespace bound to `port`, from /proc/net (Linux). */
function boundAt (port: number): { tcp: string[], udp: string[] } {
  const le = endianness() === 'LE'
  const word = (h: string): string[] => {
    const bytes = h.match(/../g)!
    return le ? bytes.reverse() : bytes
  }
  const ip = (h: string): string => {
    if (h.length === 8) return word(h).map(b => parseInt(b, 16)).join('.')
    const bytes = [0, 8, 16, 24].flatMap(i => word(h.slice(i, i + 8)))
    const groups = Array.from({ length: 8 }, (_, i) => parseInt(bytes[2 * i] + bytes[2 * i + 1], 16).toString(16))
    const text = groups.join(':')
    return text === '0:0:0:0:0:0:0:0' ? '::' : text === '0:0:0:0:0:0:0:1' ? '::1' : text
  }
  const read = (file: string, listenOnly: boolean): string[] => readFileSync(file, 'utf8').split('\n').slice(1).flatMap(line => {
    const f = line.trim().split(/\s+/)
    if (f.length < 4) return []
    const [addr, p] = f[1].split(':')
    if (parseInt(p, 16) !== port || (listenOnly && f[3] !== '0A')) return []
    return [ip(addr)]
  })
  return {
    tcp: [...read('/proc/net/tcp', true), ...read('/proc/net/tcp6', true)].sort(),
    udp: [...read('/proc/net/udp', false), ...read('/proc/net/udp6', false)].sort()
  }
}

before(() => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (\`npm test\` does)`)
})

after(() => {
  for (const c of running) c.kill()
})

// Each test has its own process (and port 0 or a fresh free port): they run side by side.
describe('CLI: flags that print and exit', { concurrency: CONCURRENCY }, () => {
  for (const flag of ['--help', '-h']) {
    it(`${flag} prints the seed's help, every seed option line included, and exits 0`, async () => {
      const r = await runToEnd([flag])
      assert.equal(r.code, 0)
      assert.equal(r.stderr, '')
      const lines = r.stdout.split('\n').map(fold).filter(l => l !== '')
      let at = -1
      for (const seedLine of SEED_HELP) {
        const i = lines.indexOf(fold(seedLine))
        assert.ok(i >= 0, `help lacks the seed line ${JSON.stringify(seedLine)}`)
        assert.ok(i > at, `seed line out of order: ${JSON.stringify(seedLine)}`)
        at = i
      }
    })
  }

  for (const flag of ['--version', '-v']) {
    it(`${flag} prints package.json's version`, async () => {
      const r = await runToEnd([flag])
      assert.deepEqual(r, { code: 0, signal: null, stdout: `${VERSION}\n`, stderr: '' })
    })
  }

  const bad: Array<[string[], string]> = [
    [['--bogus'], 'unknown option: --bogus'],
    [['-x'], 'unknown option: -x'],
    [['-p', 'abc'], 'invalid port: abc'],
    [['-p', '65536'], 'invalid port: 65536'],
    [['--port'], '--port needs a value'],
    [['--interval', 'soon'], 'invalid interval (ms, at least 1000): soon'],
    [['--http=yes'], 'unknown option: --http=yes'],
    [['--udp-backend', 'fast'], 'invalid udp backend (auto, native or dgram): fast']
  ]
  for (const [args, message] of bad) {
    it(`${args.join(' ')} exits 2 with "${message}"`, async () => {
      const r = await runToEnd(args)
      assert.equal(r.code, 2)
      assert.equal(r.stdout, '')
      assert.equal(r.stderr.split('\n')[0], `bittorrent-tracker: ${message}`)
      assert.ok(r.stderr.includes('Usage:'), 'usage follows the error')
    })
  }
})

describe('CLI: running tracker', { concurrency: CONCURRENCY }, () => {
  it('with -p 0 prints three lines with the same real port and the UDP backend, binds the documented defaults, and serves HTTP, UDP and WS', async () => {
    const cli = new Cli(['-p', '0', '--interval', '120000'])
    const lines = await cli.lines(4)
    const port = portOf(lines[0])
    assert.ok(port > 0)
    assert.deepEqual(lines, [`http server listening on ${port}`, `udp server listening on ${port}`, `ws server listening on ${port}`, UDP_BACKEND_LINE])
    if (HAS_PROC_NET) {
      // HELP: http '::', udp '0.0.0.0', udp6 '::'.
      assert.deepEqual(boundAt(port), { tcp: perWorker(REUSEPORT ? ['0.0.0.0', '::'] : ['::']), udp: perWorker(['0.0.0.0', '::']) })
    }
    const ih = id20(1)
    const r = await httpAnnounce(`http://127.0.0.1:${port}`, { infoHash: ih, peerId: id20(2), port: 6881, event: 2 })
    assert.equal(r.failure, undefined)
    assert.equal(r.interval, 120)
    assert.equal(r.incomplete, 1)
    for (const family of [4, 6] as const) {
      const u = await udpClient(family, port)
      try {
        const a = await u.announce({ infoHash: ih, peerId: id20(3 + family), port: 6890 + family, left: 0, event: 2 })
        assert.equal(a.action, 'announce')
        if (a.action === 'announce') {
          assert.equal(a.interval, 120)
          assert.equal(a.seeders, family === 4 ? 1 : 2)
          assert.equal(a.leechers, 1)
        }
      } finally { u.close() }
    }
    const w = await wsClient(`ws://127.0.0.1:${port}`)
    try {
      w.send({ action: 'scrape', info_hash: ih })
      assert.deepEqual(await w.next(), { action: 'scrape', files: { [ih]: { complete: 2, incomplete: 1, downloaded: 0 } } })
    } finally { await w.close() }
    const stats = JSON.parse((await httpGet(`http://[::1]:${port}`, '/stats.json')).body.toString()) as { peersAll: number }
    assert.equal(stats.peersAll, 3)
    // A bad request is a printed warning (not quiet), not an exit.
    await httpGet(`http://127.0.0.1:${port}`, '/announce?port=0')
    await withTimeout(new Promise<void>(resolve => {
      const check = (): void => { if (cli.stdout.includes('WARNING: ')) resolve(); else setTimeout(check, 10) }
      check()
    }), REPLY_TIMEOUT_MS, 'WARNING line')
    assert.match(cli.stdout.split('\n')[4], /^WARNING: invalid/)
    const e = await cli.stop('SIGINT')
    assert.equal(e.code, 0)
    assert.ok(e.ms < PROMPT_EXIT_MS, `SIGINT took ${e.ms} ms`)
    assert.equal(cli.stderr, '')
  })

  it('--http-hostname / --udp-hostname / --udp6-hostname bind exactly there', async () => {
    const cli = new Cli(['-p', '0', ...LOOPBACK])
    const lines = await cli.lines(3)
    const port = portOf(lines[0])
    assert.deepEqual(lines.map(portOf), [port, port, port])
    if (HAS_PROC_NET) assert.deepEqual(boundAt(port), { tcp: perWorker(['127.0.0.1']), udp: perWorker(['127.0.0.1', '::1']) })
    // Not on the IPv6 loopback for HTTP …
    await assert.rejects(httpGet(`http://[::1]:${port}`, '/stats.json'), /ECONNREFUSED/)
    // … while both UDP families answer.
    for (const family of [4, 6] as const) {
      const u = await udpClient(family, port)
      try { assert.equal((await u.connect()).length, 8) } finally { u.close() }
    }
    const e = await cli.stop('SIGTERM')
    assert.equal(e.code, 0)
    assert.ok(e.ms < PROMPT_EXIT_MS, `SIGTERM took ${e.ms} ms`)
  })

  it('without -p listens on 8000', async () => {
    assert.ok(await portFree(8000), 'port 8000 (the default) must be free for this test')
    const cli = new Cli(LOOPBACK)
    assert.deepEqual(await cli.lines(3), ['http server listening on 8000', 'udp server listening on 8000', 'ws server listening on 8000'])
    assert.equal((await cli.stop('SIGINT')).code, 0)
  })

  it('--http prints only the http line and starts only HTTP; --trust-proxy honours X-Forwarded-For', async () => {
    const cli = new Cli(['--port=0', '--http', '--trust-proxy', ...LOOPBACK])
    const [line] = await cli.lines(1)
    const port = portOf(line)
    assert.equal(line, `http server listening on ${port}`)
    const q = `info_hash=${pct(id20(1))}&peer_id=${pct(id20(3))}&port=7000`
    assert.equal((await httpGet(`http://127.0.0.1:${port}`, `/announce?${q}`, { 'X-Forwarded-For': '198.51.100.7' })).status, 200)
    const r = await httpAnnounce(`http://127.0.0.1:${port}`, { infoHash: id20(1), peerId: id20(2), port: 1 })
    assert.equal(r.incomplete, 2)
    assert.deepEqual(r.peers.map(p => Buffer.from(p.addr, 'latin1').toString('hex')), ['c6336407' + '1b58'])
    await assert.rejects(wsClient(`ws://127.0.0.1:${port}`), /404/)
    const u = await udpClient(4, port)
    try { assert.equal(await u.send(new Uint8Array(16)), undefined) } finally { u.close() }
    if (HAS_PROC_NET) assert.deepEqual(boundAt(port).udp, [])
    const e = await cli.stop('SIGINT')
    assert.equal(e.code, 0)
    assert.equal(cli.stdout, `http server listening on ${port}\n`)
  })

  it('--udp --ws prints those two lines; /announce is then 404', async () => {
    const cli = new Cli(['-p', '0', '--udp', '--ws', ...LOOPBACK])
    const lines = await cli.lines(3)
    const port = portOf(lines[0])
    assert.deepEqual(lines, [`udp server listening on ${port}`, `ws server listening on ${port}`, UDP_BACKEND_LINE])
    assert.equal((await httpGet(`http://127.0.0.1:${port}`, `/announce?info_hash=${hex(id20(1))}`)).status, 404)
    const e = await cli.stop('SIGTERM')
    assert.equal(e.code, 0)
    assert.equal(cli.stdout.split('\n').length, 4)
  })

  it('--udp-backend dgram serves UDP on node:dgram and says so', async () => {
    const cli = new Cli(['-p', '0', '--udp', '--udp-backend', 'dgram', ...LOOPBACK])
    const lines = await cli.lines(2)
    const port = portOf(lines[0])
    assert.deepEqual(lines, [`udp server listening on ${port}`, "udp: dgram (udpBackend 'dgram' chosen)"])
    for (const family of [4, 6] as const) {
      const u = await udpClient(family, port)
      try { assert.equal((await u.connect()).length, 8) } finally { u.close() }
    }
    assert.equal((await cli.stop('SIGTERM')).code, 0)
  })

  it('--udp-backend native exits 1 with the reason when the addon is disabled', async () => {
    const c = new Cli(['-p', '0', '--udp', '--udp-backend', 'native', ...LOOPBACK], { BITTORRENT_TRACKER_NATIVE: '0' })
    try {
      const e = await withTimeout(c.exited, START_MS, 'exit')
      assert.equal(e.code, 1)
      assert.equal(c.stdout, '')
      assert.equal(c.stderr, "ERROR: udpBackend 'native' is not available: disabled by BITTORRENT_TRACKER_NATIVE=0\n")
    } finally { c.kill() }
  })

  for (const flag of ['-q', '--quiet', '-s', '--silent']) {
    it(`${flag} prints nothing on start nor for warnings; SIGINT exits 0 promptly`, async () => {
      const port = await freePort()
      const cli = new Cli([flag, '-p', String(port), ...LOOPBACK])
      // No output to wait on: poll until the tracker answers (bounded).
      let up = false
      for (let i = 0; i < START_MS / 50 && !up; i++) {
        up = await httpGet(`http://127.0.0.1:${port}`, '/stats.json').then(r => r.status === 200, () => false)
        if (!up) await new Promise(resolve => setTimeout(resolve, 30))
      }
      assert.ok(up, `tracker never answered; stderr ${JSON.stringify(cli.stderr)}`)
      await httpGet(`http://127.0.0.1:${port}`, '/announce?port=0')
      const e = await cli.stop('SIGINT')
      assert.equal(e.code, 0)
      assert.ok(e.ms < PROMPT_EXIT_MS, `SIGINT took ${e.ms} ms`)
      assert.equal(cli.stdout, '')
      assert.equal(cli.stderr, '')
    })
  }

  it('--no-stats turns /stats off', async () => {
    const cli = new Cli(['-p', '0', '--http', '--no-stats', ...LOOPBACK])
    const port = portOf((await cli.lines(1))[0])
    assert.equal((await httpGet(`http://127.0.0.1:${port}`, '/stats.json')).status, 404)
    assert.equal((await cli.stop('SIGTERM')).code, 0)
  })

  it('exits 1 with an ERROR line when the port is taken', async () => {
    const blocker = net.createServer()
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const r = await runToEnd(['-p', String(port), '--http', '--http-hostname', '127.0.0.1'])
      assert.equal(r.code, 1)
      assert.equal(r.stdout, '')
      assert.match(r.stderr, /^ERROR: .*EADDRINUSE/)
    } finally { await new Promise(resolve => blocker.close(resolve)) }
  })

  it('SIGTERM with clients still connected exits 0 promptly', async () => {
    const cli = new Cli(['-p', '0', ...LOOPBACK])
    const port = portOf((await cli.lines(3))[0])
    const w = await wsClient(`ws://127.0.0.1:${port}`)
    // A kept-alive HTTP connection left open.
    const sock = net.connect(port, '127.0.0.1')
    await new Promise(resolve => sock.once('connect', resolve))
    sock.write('GET /stats.json HTTP/1.1\r\nHost: x\r\n\r\n')
    await new Promise(resolve => sock.once('data', resolve))
    sock.on('error', () => undefined)
    try {
      const e = await cli.stop('SIGTERM')
      assert.equal(e.code, 0)
      assert.ok(e.ms < PROMPT_EXIT_MS, `SIGTERM took ${e.ms} ms`)
      await withTimeout(w.closed, REPLY_TIMEOUT_MS, 'ws closed')
    } finally { sock.destroy(); await w.close() }
  })
})
