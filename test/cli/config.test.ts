/**
 * The command with --config, environment variables, --print-config, log levels and access lists:
 * real child processes of the built `dist/cli/bin.js`, real files, real signals.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, CLI_START_MS, CliProcess, killAllCli, runCli } from '../helpers/cli-process.js'
import type { CliLog } from '../helpers/cli-process.js'
import { httpAnnounce, httpGet, id20, hex, udpClient, wsClient, UDP_BACKEND_LINE } from '../helpers/tracker-clients.js'

const LOOPBACK = ['--http-hostname', '127.0.0.1', '--udp-hostname', '127.0.0.1', '--udp6-hostname', '::1']
const TORRENT_REFUSED = 'torrent not allowed on this tracker'

const dir = mkdtempSync(join(tmpdir(), 'bt-cli-config-'))
let n = 0
function write (name: string, text: string): string {
  const p = join(dir, `${n++}-${name}`)
  writeFileSync(p, text)
  return p
}

/** Environment without any BITTORRENT_TRACKER_* of the test runner's own, plus `extra`. */
function env (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BITTORRENT_TRACKER_')) e[k] = v
  return { ...e, ...extra }
}

/** The command with a clean environment (none of the runner's BITTORRENT_TRACKER_*) plus `extraEnv`. */
class Tracker extends CliProcess {
  constructor (args: string[], extraEnv: Record<string, string> = {}) {
    super(args, env(extraEnv))
  }

  /** The port of the first listening line, whatever its transport. */
  async listenPort (): Promise<number> {
    const l = await this.waitLog(l => l.transport !== undefined, 'a listening line')
    return l.port as number
  }
}

async function runToEnd (args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const { code, stdout, stderr } = await runCli(args, env(extraEnv))
  return { code, stdout, stderr }
}

before(() => { assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first`) })
after(() => {
  killAllCli()
  rmSync(dir, { recursive: true, force: true })
})

describe('CLI configuration', { concurrency: 3 }, () => {
  it('a TOML file configures the running tracker', async () => {
    const f = write('tracker.toml', `port = 0
httpHostname = "127.0.0.1"
udpHostname = "127.0.0.1"
udp6Hostname = "::1"
interval = 120_000
intervalJitter = 0
ws = false
maxNumwant = 1
`)
    const t = new Tracker(['--config', f])
    const port = await t.listenPort()
    assert.deepEqual(await t.waitLog(l => l.msg === 'configuration file read', 'config line'), (t.logs().find(l => l.msg === 'configuration file read')))
    assert.equal(t.logs()[0].file, f)
    await t.waitLog(l => l.transport === 'udp', 'udp line')
    await t.waitLog(l => l.msg === UDP_BACKEND_LINE, 'udp backend line')
    assert.deepEqual(t.logs().map(l => l.msg), ['configuration file read', `http server listening on ${port}`, `udp server listening on ${port}`, UDP_BACKEND_LINE])
    const ih = id20(1)
    await httpAnnounce(`http://127.0.0.1:${port}`, { infoHash: ih, peerId: id20(2), port: 6881 })
    await httpAnnounce(`http://127.0.0.1:${port}`, { infoHash: ih, peerId: id20(3), port: 6882 })
    const r = await httpAnnounce(`http://127.0.0.1:${port}`, { infoHash: ih, peerId: id20(4), port: 6883, numwant: 50 })
    assert.equal(r.interval, 120)
    assert.equal(r.peers.length, 1) // maxNumwant = 1
    await assert.rejects(wsClient(`ws://127.0.0.1:${port}`), /404/)
    assert.equal((await t.stop()).code, 0)
  })

  it('environment overrides the file, flags override both (seen with --print-config=json)', async () => {
    const f = write('tracker.json', JSON.stringify({ port: 1000, interval: 5000, maxNumwant: 7, logLevel: 'debug', clientDeny: ['-XL'] }))
    const r = await runToEnd(['--config', f, '-p', '3000', '--print-config=json', '-q'], {
      BITTORRENT_TRACKER_PORT: '2000', BITTORRENT_TRACKER_INTERVAL: '6000', BITTORRENT_TRACKER_WS: 'false'
    })
    assert.equal(r.code, 0)
    assert.equal(r.stderr, '')
    assert.deepEqual(JSON.parse(r.stdout), {
      port: 3000, httpHostname: '::', udpHostname: '0.0.0.0', udp6Hostname: '::', trustProxy: false, interval: 6000,
      http: true, udp: true, ws: false, stats: true, metrics: true, statsAllow: [], trustProxyFrom: [],
      rateLimitHttp: '50/s:500', rateLimitUdp: '100/s:1000', rateLimitWs: '50/s:500', rateLimit: true, udpBadIdLimit: 20,
      intervalJitter: 10, fullScrape: false, workers: 1, udpBackend: 'auto', acceptClientIp: false, maxNumwant: 7, fullScrapeLimit: 1000,
      wsMaxOffers: 20, wsMaxSwarms: 100, clientAllow: [], clientDeny: ['-XL'], private: false, stateInterval: 60000, logLevel: 'error'
    })
  })

  it('--print-config prints TOML and exits 0 without binding', async () => {
    const r = await runToEnd(['--print-config', '--http', '--allowlist', '/srv/allow.txt', '--udp-secret', '00'.repeat(16), '-p', '1'])
    assert.equal(r.code, 0)
    assert.equal(r.stderr, '')
    assert.equal(r.stdout, `port = 1
httpHostname = "::"
udpHostname = "0.0.0.0"
udp6Hostname = "::"
trustProxy = false
interval = 600000
http = true
udp = false
ws = false
stats = true
metrics = true
statsAllow = []
trustProxyFrom = []
rateLimitHttp = "50/s:500"
rateLimitUdp = "100/s:1000"
rateLimitWs = "50/s:500"
rateLimit = true
udpBadIdLimit = 20
intervalJitter = 10
fullScrape = false
workers = 1
udpBackend = "auto"
acceptClientIp = false
maxNumwant = 200
fullScrapeLimit = 1000
wsMaxOffers = 20
wsMaxSwarms = 100
udpSecret = "(redacted)"
allowlist = "/srv/allow.txt"
clientAllow = []
clientDeny = []
private = false
stateInterval = 60000
logLevel = "info"
`)
  })

  const badFile = write('bad.toml', 'port = 1\nhttp = "yes"\n')
  const unknownKey = write('unknown.toml', 'prot = 1\n')
  const broken = write('broken.toml', 'port = 1\n[[\n')
  const badList = write('allow.txt', `${hex(id20(1))}\nzzz\n`)
  const missing = join(dir, 'missing.toml')
  const cases: Array<[string, string[], Record<string, string>, string]> = [
    ['a bad value', ['--config', badFile], {}, `config file ${badFile}: invalid http: expected true or false, got "yes"`],
    ['an unknown key', ['--config', unknownKey], {}, `config file ${unknownKey}: unknown key "prot"`],
    ['an unparsable file (line and column)', ['--config', broken], {}, `config file ${broken}, line 2, column 3: Invalid TOML document: illegal character in key`],
    ['a missing file', ['--config', missing], {}, `config file ${missing}: ENOENT: no such file or directory, open '${missing}'`],
    ['a missing file named by the environment', [], { BITTORRENT_TRACKER_CONFIG: missing }, `config file ${missing}: ENOENT: no such file or directory, open '${missing}'`],
    ['an unknown environment variable', [], { BITTORRENT_TRACKER_PROT: '1' }, 'unknown environment variable BITTORRENT_TRACKER_PROT'],
    ['a bad environment value', [], { BITTORRENT_TRACKER_LOG_LEVEL: 'loud' },
      'environment variable BITTORRENT_TRACKER_LOG_LEVEL: invalid logLevel: expected one of trace, debug, info, warn, error, fatal, silent, got "loud"'],
    ['allowlist with denylist', ['--allowlist', '/a', '--denylist', '/b'], {}, 'allowlist and denylist are mutually exclusive'],
    ['a bad access list', ['--allowlist', badList], {}, `access list ${badList}, line 2: not an info hash (40 hex or 32 base32 characters): "zzz"`]
  ]
  for (const [what, args, extraEnv, message] of cases) {
    it(`${what}: exit 2, "${message.replace(dir, 'DIR')}", nothing bound`, async () => {
      const r = await runToEnd([...args, '-p', '0', ...LOOPBACK], extraEnv)
      assert.equal(r.code, 2)
      assert.equal(r.stdout, '')
      assert.equal(r.stderr, `bittorrent-tracker: ${message}\n`)
    })
  }
})

describe('CLI log levels', { concurrency: 3 }, () => {
  it('--log-level warn: no start-up lines, warnings as JSON on stdout', async () => {
    // No start-up line to read the port from: take a free one and poll until it answers.
    const port = await freePort()
    const u = new Tracker(['-p', String(port), '--http', '--log-level', 'warn', ...LOOPBACK])
    assert.ok(await answers(port), `never answered: ${u.stderr}`)
    await httpGet(`http://127.0.0.1:${port}`, '/announce?port=0')
    const w = await u.waitLog(l => l.level === 'warn', 'warn line')
    assert.deepEqual([w.msg, w.code], ['invalid port', 'INVALID_PORT'])
    assert.equal((await u.stop()).code, 0)
    assert.deepEqual(u.logs().map(l => l.level), ['warn'])
    assert.equal(u.stderr, '')
  })

  it('BITTORRENT_TRACKER_LOG_LEVEL=error is -q: only the fatal line, on stderr', async () => {
    const blocker = new Tracker(['-p', '0', '--http', ...LOOPBACK])
    const port = await blocker.listenPort()
    try {
      const r = await runToEnd(['-p', String(port), '--http', ...LOOPBACK], { BITTORRENT_TRACKER_LOG_LEVEL: 'error' })
      assert.equal(r.code, 1)
      assert.equal(r.stdout, '')
      const lines = r.stderr.split('\n')
      assert.equal(lines.length, 2)
      const fatal = JSON.parse(lines[0]) as CliLog
      assert.deepEqual([fatal.level, fatal.code], ['fatal', 'EADDRINUSE'])
      // -s / silent: not even that.
      const s = await runToEnd(['-p', String(port), '--http', '-s', ...LOOPBACK])
      assert.deepEqual(s, { code: 1, stdout: '', stderr: '' })
      const l = await runToEnd(['-p', String(port), '--http', '--log-level', 'silent', ...LOOPBACK])
      assert.deepEqual(l, { code: 1, stdout: '', stderr: '' })
    } finally { assert.equal((await blocker.stop()).code, 0) }
  })

  it('--log-level debug keeps the info lines', async () => {
    const t = new Tracker(['-p', '0', '--udp', '--log-level', 'debug', ...LOOPBACK])
    const port = await t.listenPort()
    await t.waitLog(l => l.msg === UDP_BACKEND_LINE, 'udp backend line')
    assert.deepEqual(t.logs().map(l => [l.level, l.msg]), [['info', `udp server listening on ${port}`], ['info', UDP_BACKEND_LINE]])
    assert.equal((await t.stop()).code, 0)
  })
})

describe('CLI access lists', { concurrency: 2 }, () => {
  it('SIGHUP re-reads the list (a symlinked file the watcher cannot see); a corrupt one keeps the old list', async () => {
    const listsDir = join(dir, 'real-lists')
    mkdirSync(listsDir, { recursive: true })
    const real = join(listsDir, 'allow.txt')
    const A = id20(11)
    const B = id20(12)
    writeFileSync(real, `${hex(A)}\n`)
    const link = join(dir, 'allow-link.txt')
    symlinkSync(real, link)
    const cfg = write('acl.toml', `allowlist = "${link}"\nhttpHostname = "127.0.0.1"\nudpHostname = "127.0.0.1"\nudp6Hostname = "::1"\nport = 0\n`)
    const t = new Tracker(['--config', cfg])
    const port = await t.listenPort()
    const loaded = t.logs().find(l => l.msg === 'access list loaded')
    assert.deepEqual(loaded && [loaded.file, loaded.mode, loaded.count], [link, 'allow', 1])
    const base = `http://127.0.0.1:${port}`
    assert.equal((await httpAnnounce(base, { infoHash: B, peerId: id20(1), port: 6881 })).failure, TORRENT_REFUSED)
    const u = await udpClient(4, port)
    try {
      const r = await u.announce({ infoHash: B, peerId: id20(2), port: 6882 })
      assert.deepEqual(r.action === 'error' && r.message, TORRENT_REFUSED)
      writeFileSync(real, `${hex(A)}\n${hex(B)}\n`)
      process.kill(t.child.pid!, 'SIGHUP')
      const reloaded = await t.waitLog(l => l.msg === 'access list reloaded', 'reload line')
      assert.deepEqual([reloaded.level, reloaded.file, reloaded.count, reloaded.reason], ['info', link, 2, 'SIGHUP'])
      assert.equal((await httpAnnounce(base, { infoHash: B, peerId: id20(1), port: 6881 })).failure, undefined)
      assert.equal((await u.announce({ infoHash: B, peerId: id20(2), port: 6882 })).action, 'announce')

      writeFileSync(real, `${hex(A)}\n\nnope\n`)
      process.kill(t.child.pid!, 'SIGHUP')
      const failed = await t.waitLog(l => l.level === 'error', 'reload error line')
      assert.deepEqual([failed.file, failed.line, failed.reason], [link, 3, 'SIGHUP'])
      assert.equal(failed.msg, `access list reload failed, keeping the previous list: access list ${link}, line 3: not an info hash (40 hex or 32 base32 characters): "nope"`)
      assert.equal(t.logs('stderr').length, 1)
      // A and B still served.
      assert.equal((await httpAnnounce(base, { infoHash: B, peerId: id20(3), port: 6883 })).failure, undefined)
      assert.equal((await httpAnnounce(base, { infoHash: A, peerId: id20(3), port: 6883 })).failure, undefined)
    } finally { u.close() }
    assert.equal((await t.stop()).code, 0)
  })

  it('a rewritten list file is picked up without a signal; --client-deny refuses by peer id prefix', async () => {
    const A = id20(21)
    const list = write('deny.txt', `${hex(A)}\n`)
    const t = new Tracker(['-p', '0', '--http', '--denylist', list, '--client-deny', '-XL,-SD', ...LOOPBACK])
    const port = await t.listenPort()
    const base = `http://127.0.0.1:${port}`
    assert.equal((await httpAnnounce(base, { infoHash: A, peerId: id20(1), port: 6881 })).failure, TORRENT_REFUSED)
    assert.equal((await httpAnnounce(base, { infoHash: id20(22), peerId: id20(1, '-SD0100-'), port: 6881 })).failure, 'client not allowed on this tracker')
    writeFileSync(list, '# nothing denied now\n')
    const reloaded = await t.waitLog(l => l.msg === 'access list reloaded', 'reload line')
    assert.deepEqual([reloaded.count, reloaded.reason], [0, 'change'])
    assert.equal((await httpAnnounce(base, { infoHash: A, peerId: id20(1), port: 6881 })).failure, undefined)
    assert.equal((await t.stop()).code, 0)
  })

  it('SIGHUP without an access list is logged and harmless', async () => {
    const t = new Tracker(['-p', '0', '--http', ...LOOPBACK])
    const port = await t.listenPort()
    process.kill(t.child.pid!, 'SIGHUP')
    const l = await t.waitLog(x => x.signal === 'SIGHUP', 'SIGHUP line')
    assert.equal(l.msg, 'no access list file to reload')
    assert.equal((await httpGet(`http://127.0.0.1:${port}`, '/stats.json')).status, 200)
    assert.equal((await t.stop()).code, 0)
  })
})

async function freePort (): Promise<number> {
  const net = await import('node:net')
  const s = net.createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const p = (s.address() as import('node:net').AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return p
}

/** Polls (bounded) until the tracker on `port` answers /stats.json. */
async function answers (port: number): Promise<boolean> {
  for (let i = 0; i < CLI_START_MS / 50; i++) {
    if (await httpGet(`http://127.0.0.1:${port}`, '/stats.json').then(r => r.status === 200, () => false)) return true
    await new Promise(resolve => setTimeout(resolve, 30))
  }
  return false
}
