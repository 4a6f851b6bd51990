/**
 * The `bittorrent-tracker` command: spawns the built `dist/cli/bin.js` (`npm test` builds first).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { endianness } from 'node:os'
import { fileURLToPath } from 'node:url'
import {
  hex, httpAnnounce, httpGet, id20, udpClient, withTimeout, wsClient, REPLY_TIMEOUT_MS, UDP_BACKEND_LINE
} from '../helpers/tracker-clients.js'
import { BIN, CLI_START_MS, CliProcess, killAllCli, runCli } from '../helpers/cli-process.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const VERSION = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version
const HAS_PROC_NET = existsSync('/proc/net/tcp6') && existsSync('/proc/net/udp6')
/** SIGINT/SIGTERM must end an idle tracker well before bin.ts's SHUTDOWN_TIMEOUT_MS (10 s) forced exit (loaded machines: margin). */
const PROMPT_EXIT_MS = 4000
/** Processes started at once: enough to overlap Node's startup, few enough not to starve a small machine. */
const CONCURRENCY = 3
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

/** The command with cli.test's own log checks: every stdout line is a full pino line. */
class Cli extends CliProcess {
  constructor (args: string[], env?: Record<string, string>) {
    super(args, { ...process.env, ...env })
  }

  /** The `msg` of the first `n` log lines on stdout (JSON lines; each must be an `info` line). */
  async lines (n: number): Promise<string[]> {
    return (await this.rawLines(n)).map(l => {
      const o = logLine(l)
      assert.equal(o.level, 'info', l)
      return o.msg
    })
  }

  /** Every complete stdout line so far, parsed and checked. */
  checkedLogs (): LogLine[] {
    return this.stdout.split('\n').slice(0, -1).map(logLine)
  }
}

interface LogLine { level: string, time: string, pid: number, msg: string, [field: string]: unknown }

/** One pino JSON line; every line has these fields. */
function logLine (line: string): LogLine {
  const o = JSON.parse(line) as LogLine
  assert.equal(typeof o.level, 'string', line)
  assert.equal(typeof o.msg, 'string', line)
  assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line)
  assert.equal(typeof o.pid, 'number', line)
  return o
}

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

after(killAllCli)

// Each test has its own process (and port 0 or a fresh free port): they run side by side.
describe('CLI: flags that print and exit', { concurrency: CONCURRENCY }, () => {
  for (const flag of ['--help', '-h']) {
    it(`${flag} prints the seed's help, every seed option line included, and exits 0`, async () => {
      const r = await runCli([flag])
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
      const r = await runCli([flag])
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
    [['--stats-token'], '--stats-token needs a value'],
    [['--stats-token='], 'invalid stats-token (a non-empty string): '],
    [['--stats-allow', ' , '], 'invalid stats-allow (a list of strings of 1 to 64 characters):  , '],
    [['--stats-allow', '10.0.0.0/8,10.0.0.0/33'], 'invalid address range: 10.0.0.0/33'],
    [['--metrics=no'], 'unknown option: --metrics=no'],
    [['--redis', 'localhost:6379'], 'invalid redis (a redis:// URL): localhost:6379'],
    [['--redis'], '--redis needs a value'],
    [['--udp-secret', 'abcd'], 'invalid udp-secret (hex, at least 16 bytes (32 characters)): abcd'],
    [['--udp-secret', 'x'.repeat(32)], `invalid udp-secret (hex, at least 16 bytes (32 characters)): ${'x'.repeat(32)}`],
    [['--udp-backend', 'fast'], 'invalid udp-backend (one of auto, native, dgram): fast']
  ]
  for (const [args, message] of bad) {
    it(`${args.join(' ')} exits 2 with "${message}"`, async () => {
      const r = await runCli(args)
      assert.equal(r.code, 2)
      assert.equal(r.stdout, '')
      assert.equal(r.stderr.split('\n')[0], `bittorrent-tracker: ${message}`)
      assert.ok(r.stderr.includes('Usage:'), 'usage follows the error')
    })
  }
})

describe('CLI: running tracker', { concurrency: CONCURRENCY }, () => {
  it('with -p 0 prints three lines with the same real port and the UDP backend, binds the documented defaults, and serves HTTP, UDP and WS', async () => {
    // No jitter, so the interval is exact (the default ±10% is tested in test/cli/edge.test.ts).
    const cli = new Cli(['-p', '0', '--interval', '120000', '--interval-jitter', '0'])
    const lines = await cli.lines(4)
    const port = portOf(lines[0])
    assert.ok(port > 0)
    assert.deepEqual(lines, [`http server listening on ${port}`, `udp server listening on ${port}`, `ws server listening on ${port}`, UDP_BACKEND_LINE])
    // The fields beside the text: which transport, where.
    assert.deepEqual(cli.checkedLogs().slice(0, 3).map(l => [l.transport, l.address, l.port, l.pid]), [
      ['http', '::', port, cli.child.pid], ['udp', '0.0.0.0', port, cli.child.pid], ['ws', '::', port, cli.child.pid]
    ])
    if (HAS_PROC_NET) {
      // HELP: http '::', udp '0.0.0.0', udp6 '::'.
      assert.deepEqual(boundAt(port), { tcp: ['::'], udp: ['0.0.0.0', '::'] })
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
    // A bad request is a logged warning (not quiet), not an exit.
    await httpGet(`http://127.0.0.1:${port}`, '/announce?port=0')
    await withTimeout(new Promise<void>(resolve => {
      const check = (): void => { if (cli.stdout.split('\n').length > 5) resolve(); else setTimeout(check, 10) }
      check()
    }), REPLY_TIMEOUT_MS, 'warning line')
    const warning = cli.checkedLogs()[4]
    assert.equal(warning.level, 'warn')
    assert.equal(warning.code, 'INVALID_PORT')
    assert.equal(warning.msg, 'invalid port')
    const e = await cli.timedStop('SIGINT')
    assert.equal(e.code, 0)
    assert.ok(e.ms < PROMPT_EXIT_MS, `SIGINT took ${e.ms} ms`)
    assert.equal(cli.stderr, '')
  })

  it('--http-hostname / --udp-hostname / --udp6-hostname bind exactly there', async () => {
    const cli = new Cli(['-p', '0', ...LOOPBACK])
    const lines = await cli.lines(3)
    const port = portOf(lines[0])
    assert.deepEqual(lines.map(portOf), [port, port, port])
    if (HAS_PROC_NET) assert.deepEqual(boundAt(port), { tcp: ['127.0.0.1'], udp: ['127.0.0.1', '::1'] })
    // Not on the IPv6 loopback for HTTP …
    await assert.rejects(httpGet(`http://[::1]:${port}`, '/stats.json'), /ECONNREFUSED/)
    // … while both UDP families answer.
    for (const family of [4, 6] as const) {
      const u = await udpClient(family, port)
      try { assert.equal((await u.connect()).length, 8) } finally { u.close() }
    }
    const e = await cli.timedStop('SIGTERM')
    assert.equal(e.code, 0)
    assert.ok(e.ms < PROMPT_EXIT_MS, `SIGTERM took ${e.ms} ms`)
  })

  it('serves /metrics by default; --no-metrics turns it off', async () => {
    const on = new Cli(['-p', '0', ...LOOPBACK])
    const port = portOf((await on.lines(3))[0])
    const m = await httpGet(`http://127.0.0.1:${port}`, '/metrics')
    assert.equal(m.status, 200)
    assert.match(m.body.toString(), /^tracker_requests_total\{protocol="http",action="announce",result="ok"\} 0$/m)
    assert.equal((await httpGet(`http://127.0.0.1:${port}`, '/health')).status, 200)
    assert.equal((await on.stop('SIGTERM')).code, 0)
    const off = new Cli(['-p', '0', '--no-metrics', ...LOOPBACK])
    const port2 = portOf((await off.lines(3))[0])
    assert.equal((await httpGet(`http://127.0.0.1:${port2}`, '/metrics')).status, 404)
    assert.equal((await off.stop('SIGTERM')).code, 0)
  })

  it('--stats-token and --stats-allow guard /stats.json and /metrics', async () => {
    const cli = new Cli(['-p', '0', ...LOOPBACK, '--stats-token', 'k3y', '--stats-allow', '127.0.0.0/8', '--stats-allow=::1'])
    const base = `http://127.0.0.1:${portOf((await cli.lines(3))[0])}`
    assert.equal((await httpGet(base, '/stats.json')).status, 401)
    assert.equal((await httpGet(base, '/metrics', { Authorization: 'Bearer nope' })).status, 401)
    assert.equal((await httpGet(base, '/metrics', { Authorization: 'Bearer k3y' })).status, 200)
    assert.equal((await httpGet(base, '/stats.json?token=k3y')).status, 200)
    assert.equal((await cli.stop('SIGTERM')).code, 0)
    const narrow = new Cli(['-p', '0', ...LOOPBACK, '--stats-allow', '10.0.0.0/8'])
    const base2 = `http://127.0.0.1:${portOf((await narrow.lines(3))[0])}`
    assert.equal((await httpGet(base2, '/stats.json')).status, 403)
    assert.equal((await narrow.stop('SIGTERM')).code, 0)
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
    assert.deepEqual(cli.checkedLogs().map(l => [l.level, l.msg]), [['info', `http server listening on ${port}`], ['info', 'shutting down']])
    assert.equal(cli.checkedLogs()[1].signal, 'SIGINT')
  })

  it('--udp --ws prints those two lines; /announce is then 404', async () => {
    const cli = new Cli(['-p', '0', '--udp', '--ws', ...LOOPBACK])
    const lines = await cli.lines(3)
    const port = portOf(lines[0])
    assert.deepEqual(lines, [`udp server listening on ${port}`, `ws server listening on ${port}`, UDP_BACKEND_LINE])
    assert.equal((await httpGet(`http://127.0.0.1:${port}`, `/announce?info_hash=${hex(id20(1))}`)).status, 404)
    const e = await cli.stop('SIGTERM')
    assert.equal(e.code, 0)
    assert.deepEqual(cli.checkedLogs().map(l => l.msg), [`udp server listening on ${port}`, `ws server listening on ${port}`, UDP_BACKEND_LINE, 'shutting down'])
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
      const e = await withTimeout(c.exited, CLI_START_MS, 'exit')
      assert.equal(e.code, 1)
      assert.equal(c.stdout, '')
      const line = logLine(c.stderr.trim())
      assert.deepEqual([line.level, line.msg], ['fatal', "udpBackend 'native' is not available: disabled by BITTORRENT_TRACKER_NATIVE=0"])
    } finally { c.kill() }
  })

  for (const flag of ['-q', '--quiet', '-s', '--silent']) {
    it(`${flag} prints nothing on start nor for warnings; SIGINT exits 0 promptly`, async () => {
      const port = await freePort()
      const cli = new Cli([flag, '-p', String(port), ...LOOPBACK])
      try {
        // No output to wait on: poll until the tracker answers (bounded, and not after it exited:
        // another process may have taken the port between freePort() and the tracker's bind).
        let up = false
        const started = Date.now()
        while (!up && Date.now() - started < CLI_START_MS && cli.child.exitCode === null) {
          up = await httpGet(`http://127.0.0.1:${port}`, '/stats.json').then(r => r.status === 200, () => false)
          if (!up) await new Promise(resolve => setTimeout(resolve, 30))
        }
        assert.ok(up, `tracker never answered on ${port}; exit code ${String(cli.child.exitCode)}, stderr ${JSON.stringify(cli.stderr)}`)
        await httpGet(`http://127.0.0.1:${port}`, '/announce?port=0')
        const e = await cli.timedStop('SIGINT')
        assert.equal(e.code, 0)
        assert.ok(e.ms < PROMPT_EXIT_MS, `SIGINT took ${e.ms} ms`)
        assert.equal(cli.stdout, '')
        assert.equal(cli.stderr, '')
      } finally { cli.kill() }
    })
  }

  it('--no-stats turns /stats off', async () => {
    const cli = new Cli(['-p', '0', '--http', '--no-stats', ...LOOPBACK])
    const port = portOf((await cli.lines(1))[0])
    assert.equal((await httpGet(`http://127.0.0.1:${port}`, '/stats.json')).status, 404)
    assert.equal((await cli.stop('SIGTERM')).code, 0)
  })

  it('exits 1 with a fatal JSON log line on stderr when the port is taken', async () => {
    // It only holds the port: a connection it gets (from anywhere) is dropped, so close() cannot wait on one.
    const blocker = net.createServer(socket => socket.destroy())
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const r = await runCli(['-p', String(port), '--http', '--http-hostname', '127.0.0.1'])
      assert.equal(r.code, 1)
      assert.equal(r.stdout, '')
      const lines = r.stderr.split('\n')
      assert.equal(lines.length, 2, r.stderr)
      const fatal = logLine(lines[0])
      assert.equal(fatal.level, 'fatal')
      assert.equal(fatal.code, 'EADDRINUSE')
      assert.match(fatal.msg, /EADDRINUSE/)
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
      const e = await cli.timedStop('SIGTERM')
      assert.equal(e.code, 0)
      assert.ok(e.ms < PROMPT_EXIT_MS, `SIGTERM took ${e.ms} ms`)
      await withTimeout(w.closed, REPLY_TIMEOUT_MS, 'ws closed')
    } finally { sock.destroy(); await w.close() }
  })
})
