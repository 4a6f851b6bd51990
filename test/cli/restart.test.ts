/**
 * Restarts without loss, with real processes: the built CLI (`dist/cli/bin.js`, `npm test` builds
 * first) with --state-file, real SIGTERM / SIGKILL, real HTTP, UDP and WebSocket clients.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SHUTDOWN_TIMEOUT_MS } from '../../src/constants.js'
import { ERRORS } from '../../src/errors.js'
import { encodeAnnounceQuery, decodeAnnounceResponse } from '../../src/protocol/http/announce.js'
import { encodeScrapeQuery, decodeScrapeResponse } from '../../src/protocol/http/scrape.js'
import { decodeState } from '../../src/server/persist/state-file.js'
import { CLI_START_MS, CliProcess, killAllCli, runCli } from '../helpers/cli-process.js'
import { httpGet, id20, udpClient, waitFor, withTimeout, REPLY_TIMEOUT_MS } from '../helpers/tracker-clients.js'

const LOOPBACK = ['-p', '0', '--http-hostname', '127.0.0.1', '--udp-hostname', '127.0.0.1', '--udp6-hostname', '::1']
const IH1 = id20(11)
const IH2 = id20(12)
const KEY = 'PassKey0123456789'
const TOKEN = 'admin-token-for-tests'

const dirs: string[] = []

/** The CLI with the restart tests' two waits: all three listening lines, and a drain-long exit. */
class Cli extends CliProcess {
  /** The HTTP port, once the three listening lines are out. */
  async started (): Promise<number> {
    await this.rawLines(3)
    return await this.port('http')
  }
}

/** A stop may drain for up to SHUTDOWN_TIMEOUT_MS. */
const STOP_MS = SHUTDOWN_TIMEOUT_MS + 5000

after(() => {
  killAllCli()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function tempDir (): string {
  const d = mkdtempSync(join(tmpdir(), 'bt-restart-'))
  dirs.push(d)
  return d
}

function base (port: number): string { return `http://127.0.0.1:${port}` }

interface Ann { ih?: string, peer: number, port: number, left?: number, event?: 0 | 1 | 2 | 3, uploaded?: number, downloaded?: number, numwant?: number }

function announceQuery (a: Ann): string {
  return encodeAnnounceQuery({
    infoHash: a.ih ?? IH1, peerId: id20(100 + a.peer), port: a.port, uploaded: a.uploaded ?? 0, downloaded: a.downloaded ?? 0,
    left: a.left ?? 1000, event: a.event, numwant: a.numwant, compact: true
  })
}

/** An HTTP announce; returns the peers as "ip:port" (sorted) and the counts. */
async function announce (port: number, a: Ann, path = '/announce'): Promise<{ peers: string[], complete: number, incomplete: number }> {
  const r = await httpGet(base(port), `${path}?${announceQuery(a)}`)
  const d = decodeAnnounceResponse(r.body)
  assert.ok(d.ok, r.body.toString('latin1'))
  assert.equal(d.value.failure, undefined)
  return { peers: d.value.peers.map(p => addrText(p.addr)).sort(), complete: d.value.complete ?? -1, incomplete: d.value.incomplete ?? -1 }
}

function addrText (addr: string): string {
  const b = Buffer.from(addr, 'latin1')
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}:${b.readUInt16BE(4)}`
}

async function scrape (port: number, hashes: string[]): Promise<Array<[number, number, number]>> {
  const r = await httpGet(base(port), `/scrape?${encodeScrapeQuery(hashes)}`)
  const d = decodeScrapeResponse(r.body)
  assert.ok(d.ok)
  return hashes.map(h => {
    const f = d.value.files.find(x => x.infoHash === h)
    return f === undefined ? [0, 0, 0] : [f.complete, f.incomplete, f.downloaded]
  })
}

/** Resolves once `port` refuses new TCP connections (the server stopped listening). */
async function refused (port: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(false) })
      s.once('error', () => resolve(true))
    })
    if (ok) return true
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return false
}

describe('CLI --state-file: restarts without loss', { concurrency: 2 }, () => {
  it('SIGTERM saves and exits 0; after a restart, announce gives the same peers and scrape the same counts', async () => {
    const file = join(tempDir(), 'state.bin')
    const a = new Cli([...LOOPBACK, '--state-file', file])
    let port = await a.started()
    try {
      await announce(port, { peer: 1, port: 7001, event: 2 })
      await announce(port, { peer: 2, port: 7002, event: 2 })
      await announce(port, { peer: 2, port: 7002, event: 1, left: 0 }) // completed: downloaded 1
      const u = await udpClient(4, port)
      try {
        const r = await u.announce({ infoHash: IH1, peerId: id20(103), port: 7003, event: 2 })
        assert.equal(r.action, 'announce')
      } finally { u.close() }
      // torrent 2: one download, then its peer left (a retired torrent)
      await announce(port, { ih: IH2, peer: 4, port: 7004, event: 1, left: 0 })
      await announce(port, { ih: IH2, peer: 4, port: 7004, event: 3, left: 0 })
      assert.deepEqual(await scrape(port, [IH1, IH2]), [[1, 2, 1], [0, 0, 1]])
      const e = await a.timedStop('SIGTERM', STOP_MS)
      assert.deepEqual([e.code, e.signal], [0, null])
      assert.ok(e.ms < SHUTDOWN_TIMEOUT_MS, `SIGTERM took ${e.ms} ms`)
    } finally { a.kill() }
    assert.deepEqual(readdirSync(join(file, '..')), ['state.bin'])
    const saved = decodeState(readFileSync(file))
    assert.deepEqual(saved.swarms.map(s => s.peers.length), [3])
    assert.deepEqual(saved.retired, [[IH2, 1]])

    const b = new Cli([...LOOPBACK, '--state-file', file])
    port = await b.started()
    try {
      assert.equal(b.stderr, '')
      assert.deepEqual(await scrape(port, [IH1, IH2]), [[1, 2, 1], [0, 0, 1]])
      const r = await announce(port, { peer: 5, port: 7005, event: 2 })
      assert.deepEqual(r, { peers: ['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003'], complete: 1, incomplete: 3 })
      const u = await udpClient(4, port)
      try {
        const ur = await u.announce({ infoHash: IH1, peerId: id20(106), port: 7006, event: 2 })
        assert.equal(ur.action, 'announce')
        assert.deepEqual(ur.action === 'announce' && ur.peers.map(p => addrText(p.addr)).sort(),
          ['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003', '127.0.0.1:7005'])
      } finally { u.close() }
      assert.equal((await b.stop('SIGINT', STOP_MS)).code, 0)
    } finally { b.kill() }
    // the second run saved too: four peers now plus the UDP one
    assert.deepEqual(decodeState(readFileSync(file)).swarms.map(s => s.peers.length), [5])
  })

  it('a request in flight at SIGTERM gets its answer; new connections are refused; its peer is saved', async () => {
    const file = join(tempDir(), 'state.bin')
    const a = new Cli([...LOOPBACK, '--state-file', file])
    const port = await a.started()
    try {
      await announce(port, { peer: 1, port: 7101, event: 2 })
      // Half a request: headers not finished.
      const sock = net.connect(port, '127.0.0.1')
      await new Promise(resolve => sock.once('connect', resolve))
      const chunks: Buffer[] = []
      sock.on('data', (c: Buffer) => chunks.push(c))
      const closed = new Promise(resolve => sock.once('close', resolve))
      sock.write(`GET /announce?${announceQuery({ peer: 2, port: 7102, event: 2 })} HTTP/1.1\r\nHost: x\r\n`)
      await new Promise(resolve => setTimeout(resolve, 100))
      a.child.kill('SIGTERM')
      assert.equal(await refused(port), true, 'the port still accepts connections after SIGTERM')
      assert.equal(a.child.exitCode, null) // still draining: our request is open
      sock.write('\r\n')
      await withTimeout(closed, REPLY_TIMEOUT_MS, 'in-flight answer and close')
      const text = Buffer.concat(chunks).toString('latin1')
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/)
      const head = text.slice(0, text.indexOf('\r\n\r\n'))
      let rest = text.slice(head.length + 4)
      let body = ''
      if (/\r\nTransfer-Encoding: chunked/i.test(head)) {
        // chunk: hex size CRLF data CRLF, until a 0-size chunk
        for (let n = parseInt(rest, 16); n > 0; n = parseInt(rest, 16)) {
          const at = rest.indexOf('\r\n') + 2
          body += rest.slice(at, at + n)
          rest = rest.slice(at + n + 2)
        }
      } else body = rest
      const d = decodeAnnounceResponse(Buffer.from(body, 'latin1'))
      assert.ok(d.ok, JSON.stringify(text))
      assert.deepEqual(d.value.peers.map(p => addrText(p.addr)), ['127.0.0.1:7101'])
      const e = await withTimeout(a.exited, SHUTDOWN_TIMEOUT_MS, 'exit')
      assert.deepEqual(e, { code: 0, signal: null })
    } finally { a.kill() }
    const saved = decodeState(readFileSync(file))
    assert.deepEqual(saved.swarms[0].peers.map(p => addrText(p.addr)).sort(), ['127.0.0.1:7101', '127.0.0.1:7102'])
  })

  it('a client that never finishes its request does not hold the shutdown: closed unanswered, state saved, exit 0', async () => {
    const file = join(tempDir(), 'state.bin')
    const a = new Cli([...LOOPBACK, '--state-file', file])
    const port = await a.started()
    try {
      await announce(port, { peer: 1, port: 7151, event: 2 })
      const sock = net.connect(port, '127.0.0.1')
      await new Promise(resolve => sock.once('connect', resolve))
      const chunks: Buffer[] = []
      sock.on('data', (c: Buffer) => chunks.push(c))
      sock.on('error', () => undefined)
      const closed = new Promise(resolve => sock.once('close', resolve))
      sock.write('GET /announce?info_hash=')
      await new Promise(resolve => setTimeout(resolve, 100))
      a.child.kill('SIGTERM')
      // DRAIN_TIMEOUT_MS later the connection is cut; the process saves and exits 0
      const e = await withTimeout(a.exited, SHUTDOWN_TIMEOUT_MS + 2000, 'exit')
      assert.deepEqual(e, { code: 0, signal: null })
      await withTimeout(closed, REPLY_TIMEOUT_MS, 'connection closed')
      assert.equal(Buffer.concat(chunks).length, 0)
    } finally { a.kill() }
    assert.deepEqual(decodeState(readFileSync(file)).swarms[0].peers.map(p => addrText(p.addr)), ['127.0.0.1:7151'])
  })

  it('SIGKILL: a restart starts from the last periodic save', async () => {
    const file = join(tempDir(), 'state.bin')
    const a = new Cli([...LOOPBACK, '--state-file', file, '--state-interval', '200'])
    let port = await a.started()
    try {
      await announce(port, { peer: 1, port: 7201, event: 2 })
      await announce(port, { peer: 2, port: 7202, event: 1, left: 0 })
      // wait for a save that holds both peers (bounded: 100 × 50 ms)
      const saved = await waitFor(() => {
        try { return decodeState(readFileSync(file)).swarms[0]?.peers.length === 2 } catch { return false }
      }, 5000, 50)
      assert.equal(saved, true)
      const e = await a.stop('SIGKILL', STOP_MS)
      assert.equal(e.signal, 'SIGKILL')
    } finally { a.kill() }
    const b = new Cli([...LOOPBACK, '--state-file', file])
    port = await b.started()
    try {
      assert.deepEqual(await scrape(port, [IH1]), [[1, 1, 1]])
      const r = await announce(port, { peer: 3, port: 7203, event: 2 })
      assert.deepEqual(r.peers, ['127.0.0.1:7201', '127.0.0.1:7202'])
    } finally { await b.stop('SIGTERM', STOP_MS); b.kill() }
  })

  for (const kind of ['garbage', 'truncated'] as const) {
    it(`a ${kind} state file: start-up goes on empty, stderr says what is wrong, the file is moved aside`, async () => {
      const dir = tempDir()
      const file = join(dir, 'state.bin')
      let expected: string
      if (kind === 'garbage') {
        writeFileSync(file, 'this is not a state file at all, just some text that is long enough for a header')
        expected = 'not a state file (bad magic)'
      } else {
        // a real file from a real run, cut short
        const a = new Cli([...LOOPBACK, '--state-file', file])
        const port = await a.started()
        try {
          await announce(port, { peer: 1, port: 7301, event: 2 })
          assert.equal((await a.stop('SIGTERM', STOP_MS)).code, 0)
        } finally { a.kill() }
        const size = statSync(file).size
        truncateSync(file, size - 10)
        expected = `truncated: header says ${size - 56} body bytes, file has ${size - 66}`
      }
      const content = readFileSync(file)
      const b = new Cli([...LOOPBACK, '--state-file', file, '--quiet'])
      try {
        // --quiet hides the listening lines; wait for the warning instead, then for the port to answer
        await waitFor(() => b.stderr.includes('\n') || b.child.exitCode !== null, CLI_START_MS, 20)
        const moved = readdirSync(dir).filter(n => n.startsWith('state.bin.corrupt-'))
        assert.equal(moved.length, 1)
        const lines = b.stderr.trim().split('\n').map(l => JSON.parse(l) as { level: string, code?: string, msg: string })
        assert.deepEqual(lines.map(l => [l.level, l.code, l.msg]), [['error', 'STATE_FILE_UNUSABLE', `state file ${file}: ${expected}; starting with an empty state (the file was moved to ${join(dir, moved[0])})`]])
        assert.deepEqual(readFileSync(join(dir, moved[0])), content)
        assert.equal(b.child.exitCode, null)
        const e = await b.stop('SIGTERM', STOP_MS)
        assert.equal(e.code, 0)
        // the shutdown wrote a fresh, valid (empty) file next to the one kept aside
        assert.deepEqual(decodeState(readFileSync(file)).swarms, [])
        assert.deepEqual(readdirSync(dir).sort(), ['state.bin', moved[0]])
      } finally { b.kill() }
    })
  }
})

describe('CLI --private: passkeys and accounting across a restart', () => {
  it('keys file + admin API; accounting and API keys survive SIGTERM and a restart', async () => {
    const dir = tempDir()
    const keys = join(dir, 'keys.txt')
    writeFileSync(keys, `# passkeys\n${KEY}\n\n`)
    const file = join(dir, 'state.bin')
    const args = [...LOOPBACK, '--private', '--keys-file', keys, '--admin-token', TOKEN, '--state-file', file]
    const adminGet = async (port: number, path: string, method = 'GET', body?: string): Promise<{ status: number, json: unknown }> =>
      await withTimeout(new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, headers: { Authorization: `Bearer ${TOKEN}` } }, res => {
          const c: Buffer[] = []
          res.on('data', (d: Buffer) => c.push(d))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(c).toString('utf8')) }))
        })
        req.on('error', reject)
        req.end(body)
      }), REPLY_TIMEOUT_MS, path)
    const a = new Cli(args)
    let port = await a.started()
    let apiKey: string
    try {
      const refusedReply = decodeAnnounceResponse((await httpGet(base(port), `/announce?${announceQuery({ peer: 1, port: 7401 })}`)).body)
      assert.ok(refusedReply.ok)
      assert.equal(refusedReply.value.failure, ERRORS.PASSKEY_REQUIRED)
      await announce(port, { peer: 1, port: 7401, event: 2 }, `/announce/${KEY}`)
      await announce(port, { peer: 1, port: 7401, uploaded: 1000, downloaded: 300 }, `/announce/${KEY}`)
      const created = await adminGet(port, '/admin/keys', 'POST', '{}')
      assert.equal(created.status, 201)
      apiKey = (created.json as { key: string }).key
      await announce(port, { peer: 2, port: 7402, event: 2, uploaded: 5, downloaded: 6 }, `/announce/${apiKey}`)
      assert.equal((await a.stop('SIGTERM', STOP_MS)).code, 0)
    } finally { a.kill() }

    const b = new Cli(args)
    port = await b.started()
    try {
      assert.deepEqual(await adminGet(port, '/admin/keys'), {
        status: 200,
        json: {
          keys: [
            { key: KEY, source: 'file', uploaded: 1000, downloaded: 300 },
            { key: apiKey, source: 'api', uploaded: 5, downloaded: 6 }
          ]
        }
      })
      // the last reported totals came back too: 1500 after 1000 adds 500, not 1500
      await announce(port, { peer: 1, port: 7401, uploaded: 1500, downloaded: 300 }, `/announce/${KEY}`)
      assert.deepEqual((await adminGet(port, `/admin/keys/${KEY}`)).json, { key: KEY, source: 'file', uploaded: 1500, downloaded: 300 })
      const r = await announce(port, { peer: 3, port: 7403, event: 2 }, `/announce/${apiKey}`)
      assert.deepEqual(r.peers, ['127.0.0.1:7401', '127.0.0.1:7402'])
    } finally { await b.stop('SIGTERM', STOP_MS); b.kill() }
  })

  it('flag and keys-file errors', async () => {
    const dir = tempDir()
    const keys = join(dir, 'keys.txt')
    writeFileSync(keys, `${KEY}\nnot a key\n`)
    const cases: Array<[string[], number, string]> = [
      [['--keys-file', keys], 2, 'bittorrent-tracker: --keys-file needs --private'],
      [['--admin-token', 'x'], 2, 'bittorrent-tracker: --admin-token needs --private'],
      [['--state-interval', '5'], 2, 'bittorrent-tracker: invalid state interval (ms, at least 100): 5'],
      [['--state-file', ''], 2, 'bittorrent-tracker: invalid state-file (a file path): '],
      [['--private', '--keys-file', keys], 1, `keys file ${keys} line 2: invalid passkey (16–64 characters of A-Z, a-z, 0-9)`],
      [['--private', '--keys-file', join(dir, 'missing.txt')], 1, `ENOENT: no such file or directory, open '${join(dir, 'missing.txt')}'`]
    ]
    for (const [args, code, line] of cases) {
      const e = await runCli([...LOOPBACK, ...args])
      assert.equal(e.code, code, args.join(' '))
      const first = e.stderr.split('\n')[0]
      // Start-up errors are plain text; a failure of the Server constructor is a fatal log line.
      assert.equal(code === 1 ? (JSON.parse(first) as { msg: string }).msg : first, line)
    }
  })
})
