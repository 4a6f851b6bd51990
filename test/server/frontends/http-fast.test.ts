/**
 * The plain-HTTP fast path over real loopback sockets: the same answers as node:http gave
 * (a tracker whose fast path is off — a user 'request' listener turns it off — is the
 * reference), pipelining in order, split packets, hand-off to node:http on the same connection
 * (stats, metrics, health, admin, WebSocket upgrade, malformed and smuggling requests),
 * timeouts, a client vanishing, backpressure and drain.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import { Server } from '../../../src/server/server.js'
import type { ServerOptions } from '../../../src/server/server.js'
import { HTTP_FAST_MAX_PIPELINED } from '../../../src/constants.js'
import { id20, REPLY_TIMEOUT_MS, UDP_BACKEND, withTimeout } from '../../helpers/tracker-clients.js'

const PASSKEY = 'abcdefghijklmnop0123'

interface Running { server: Server, port: number, warnings: Error[], close: () => Promise<void> }

/** A tracker on 127.0.0.1; `reference`: with the fast path off (a user 'request' listener). */
async function start (opts: ServerOptions = {}, reference = false): Promise<Running> {
  const server = new Server({ udp: false, udpBackend: UDP_BACKEND, ...opts })
  // Registered before the tracker's own handler: node:http then serves everything.
  if (reference) server.http!.on('request', () => {})
  const warnings: Error[] = []
  server.on('warning', (err: Error) => { warnings.push(err) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.http!.address() as net.AddressInfo).port
  return { server, port, warnings, close: () => withTimeout(new Promise<void>(resolve => server.close(() => resolve())), REPLY_TIMEOUT_MS, 'close') }
}

function pct (b: string): string {
  return Buffer.from(b, 'latin1').toString('hex').replace(/../g, '%$&')
}

function announcePath (n: number, extra = ''): string {
  return `/announce?info_hash=${pct(id20(1000 + (n % 3)))}&peer_id=${pct(id20(n, 'P'))}&port=${6000 + n}&left=${n % 2}&compact=1${extra}`
}

function get (path: string, headers = '', method = 'GET'): string {
  return `${method} ${path} HTTP/1.1\r\nHost: t\r\nUser-Agent: test/1.0\r\n${headers}\r\n`
}

interface Resp { status: number, headers: Map<string, string>, head: string, body: Buffer }

/** A raw client connection that reads responses as they come (Content-Length, chunked or none). */
class Raw {
  readonly socket: net.Socket
  private buf = Buffer.alloc(0)
  closed = false
  private waiters: Array<() => void> = []
  constructor (port: number) {
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.on('data', d => { this.buf = Buffer.concat([this.buf, d]); this.wake() })
    this.socket.on('close', () => { this.closed = true; this.wake() })
    this.socket.on('error', () => {})
  }

  private wake (): void { for (const w of this.waiters.splice(0)) w() }
  private async more (what: string): Promise<void> {
    await withTimeout(new Promise<void>(resolve => this.waiters.push(resolve)), REPLY_TIMEOUT_MS, what)
  }

  async connected (): Promise<this> { if (this.socket.connecting) await once(this.socket, 'connect'); return this }
  write (data: string | Buffer): void { this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data) }

  /** The next response; `noBody` for an answer to HEAD. */
  async response (noBody = false): Promise<Resp> {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n')
      if (end !== -1) {
        const head = this.buf.subarray(0, end).toString('latin1')
        const lines = head.split('\r\n')
        const status = Number(lines[0].split(' ')[1])
        const headers = new Map(lines.slice(1).map(l => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
        let pos = end + 4
        let body: Buffer | null = null
        if (noBody || status === 101) {
          body = Buffer.alloc(0)
        } else if (headers.has('content-length')) {
          const n = Number(headers.get('content-length'))
          if (this.buf.length >= pos + n) { body = this.buf.subarray(pos, pos + n); pos += n }
        } else if (headers.get('transfer-encoding') === 'chunked') {
          const parts: Buffer[] = []
          let p = pos
          for (;;) {
            const eol = this.buf.indexOf('\r\n', p)
            if (eol === -1) break
            const size = parseInt(this.buf.subarray(p, eol).toString('latin1'), 16)
            if (this.buf.length < eol + 2 + size + 2) break
            parts.push(this.buf.subarray(eol + 2, eol + 2 + size))
            p = eol + 2 + size + 2
            if (size === 0) { body = Buffer.concat(parts); pos = p; break }
          }
        } else if (this.closed) {
          body = this.buf.subarray(pos); pos = this.buf.length
        }
        if (body !== null) {
          this.buf = this.buf.subarray(pos)
          return { status, headers, head, body: Buffer.from(body) }
        }
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf.toString('latin1'))}`)
      await this.more('response')
    }
  }

  async closedByServer (): Promise<void> { while (!this.closed) await this.more('close') }
  get unread (): number { return this.buf.length }
  destroy (): void { this.socket.destroy() }
}

/** Status line and headers without Date and the framing (Content-Length / chunked). */
function comparable (r: Resp): string {
  return r.head.split('\r\n').filter(l => !/^(date|content-length|transfer-encoding):/i.test(l)).join('\n')
}

/** `req` sent on a new connection to each server: both responses (the same status, head and body checked). */
async function askBoth (fast: Running, ref: Running, req: string, noBody: boolean): Promise<[Resp, Resp]> {
  const a = await new Raw(fast.port).connected()
  const b = await new Raw(ref.port).connected()
  try {
    a.write(req); b.write(req)
    const ra = await a.response(noBody)
    const rb = await b.response(noBody)
    assert.equal(comparable(ra), comparable(rb), req)
    assert.deepEqual(ra.body, rb.body, req)
    return [ra, rb]
  } finally { a.destroy(); b.destroy() }
}

describe('HTTP fast path: the answers node:http gave', () => {
  let fast: Running
  let ref: Running
  before(async () => {
    const opts: ServerOptions = { metrics: true }
    fast = await start(opts)
    ref = await start(opts, true)
  })
  after(async () => { await fast.close(); await ref.close() })

  it('announce, scrape, failures, HEAD: same status, headers and bodies; exact header bytes', async () => {
    const requests: Array<[string, boolean]> = [
      [get(announcePath(1)), false],
      [get(announcePath(2)), false],
      [get(announcePath(3, '&no_peer_id=1&numwant=2')), false],
      [get(`/scrape?info_hash=${pct(id20(1000))}&info_hash=${pct(id20(1001))}`), false],
      [get('/scrape'), false],
      [get('/announce?info_hash=short'), false],
      [get('/announce?info_hash=%zz'), false],
      [get(announcePath(4), '', 'HEAD'), true],
      [get(announcePath(5), 'X-Forwarded-For: 9.9.9.9\r\n'), false]
    ]
    for (const [req, noBody] of requests) {
      const [ra] = await askBoth(fast, ref, req, noBody)
      if (!noBody) assert.equal(ra.headers.get('content-length'), String(ra.body.length))
      assert.match(ra.head, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/plain; charset=ISO-8859-1\r\nAccess-Control-Allow-Origin: \*\r\nCache-Control: no-store\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5/)
    }
    // The same requests counted the same way on both.
    assert.deepEqual(fast.server.getStatsDocument().requests, ref.server.getStatsDocument().requests)
  })

  it('Connection: close: answered with Connection: close, then the server closes', async () => {
    const c = await new Raw(fast.port).connected()
    c.write(get(announcePath(6), 'Connection: close\r\n') + get(announcePath(7)))
    const r = await c.response()
    assert.equal(r.headers.get('connection'), 'close')
    assert.equal(r.headers.has('keep-alive'), false)
    assert.match(r.body.toString('latin1'), /^d8:completei/)
    await c.closedByServer()
    // The request after the close one was never answered.
    assert.equal(c.unread, 0)
  })

  it('requests that are not the fast form get node:http\'s own answers, also after a fast request', async () => {
    const odd = [
      'POST /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc',
      `GET ${announcePath(8)} HTTP/1.0\r\n\r\n`,
      `GET ${announcePath(8)} HTTP/1.1\r\n\r\n`,
      'GET /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      'GET /announce HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n',
      'GET /announce HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n',
      'GET /announce HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n 2\r\n\r\n',
      'GET http://t/announce HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET /stats.json HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n',
      `GET /announce?${'a'.repeat(20000)} HTTP/1.1\r\nHost: t\r\n\r\n`
    ]
    for (const tail of odd) {
      const out: string[] = []
      for (const t of [fast, ref]) {
        const c = await new Raw(t.port).connected()
        c.write(get(announcePath(9)))
        const first = await c.response()
        assert.equal(first.status, 200)
        c.write(tail)
        let r: Resp | undefined
        try { r = await c.response() } catch { r = undefined }
        let text = r === undefined ? 'closed without answer' : comparable(r) + '\n' + (tail.includes('/stats') || tail.includes('/metrics') || tail.includes('/health') ? '' : r.body.toString('latin1'))
        if (r !== undefined && r.headers.get('connection') === 'close') { await c.closedByServer(); text += '\n(closed)' }
        out.push(text)
        c.destroy()
      }
      assert.equal(out[0], out[1], JSON.stringify(tail.slice(0, 80)))
    }
  })

  it('a malformed request fires the same warning as with node:http alone', async () => {
    const before = [fast.warnings.length, ref.warnings.length]
    for (const t of [fast, ref]) {
      const c = await new Raw(t.port).connected()
      c.write('GET /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n')
      await c.closedByServer()
    }
    const fw = fast.warnings.slice(before[0]).map(e => (e as NodeJS.ErrnoException).code)
    const rw = ref.warnings.slice(before[1]).map(e => (e as NodeJS.ErrnoException).code)
    assert.deepEqual(fw, rw)
    assert.equal(fw.length, 1)
  })
})

describe('HTTP fast path: the server\'s httpHeaders (how worker threads name themselves)', () => {
  let fast: Running
  let ref: Running
  const headers = { 'X-Tracker-Worker': '2', 'X-Other': 'a b' }
  before(async () => {
    fast = await start({ httpHeaders: headers })
    ref = await start({ httpHeaders: headers }, true)
  })
  after(async () => { await fast.close(); await ref.close() })

  it('come first, in order, on fast answers and on node:http\'s (the same head as node:http writes)', async () => {
    for (const [req, noBody] of [[get(announcePath(21)), false], [get(`/scrape?info_hash=${pct(id20(1000))}`), false], [get(announcePath(22), '', 'HEAD'), true]] as const) {
      const [ra] = await askBoth(fast, ref, req, noBody)
      assert.match(ra.head, /^HTTP\/1\.1 200 OK\r\nX-Tracker-Worker: 2\r\nX-Other: a b\r\nContent-Type: text\/plain; charset=ISO-8859-1\r\nAccess-Control-Allow-Origin: \*\r\nCache-Control: no-store\r\nDate: /)
    }
    // A route the fast path hands to node:http, on the fast server.
    const c = await new Raw(fast.port).connected()
    c.write(get('/stats.json'))
    const r = await c.response()
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-tracker-worker'), '2')
    assert.equal(r.headers.get('x-other'), 'a b')
    c.destroy()
  })

  it('a name or value node:http refuses throws at construction', () => {
    assert.throws(() => new Server({ udp: false, httpHeaders: { 'Bad Name': 'x' } }), { code: 'ERR_INVALID_HTTP_TOKEN' })
    assert.throws(() => new Server({ udp: false, httpHeaders: { 'X-Ok': 'split\r\nSet-Cookie: a=b' } }), { code: 'ERR_INVALID_CHAR' })
  })
})

describe('HTTP fast path: connections', () => {
  let t: Running
  before(async () => { t = await start({ private: { keys: [PASSKEY], adminToken: 'tok-' + 'x'.repeat(20) } }) })
  after(async () => { await t.close() })

  it('pipelined requests are answered in order, in the passkey forms too', async () => {
    const c = await new Raw(t.port).connected()
    const paths = [
      announcePath(10).replace('/announce', `/announce/${PASSKEY}`),
      `/${PASSKEY}/scrape?info_hash=${pct(id20(1000))}`,
      announcePath(11).replace('/announce', `/${PASSKEY}/announce`),
      announcePath(12),
      `/scrape/${PASSKEY}`
    ]
    c.write(paths.map(p => get(p)).join(''))
    const bodies = []
    for (let i = 0; i < paths.length; i++) bodies.push((await c.response()).body.toString('latin1'))
    assert.match(bodies[0], /^d8:completei\d+e10:incompletei\d+e8:intervali/)
    assert.match(bodies[1], /^d5:filesd20:/)
    assert.match(bodies[2], /^d8:completei/)
    const required = 'this tracker is private: announce with your passkey in the URL (/announce/<passkey>)'
    assert.equal(bodies[3], `d14:failure reason${required.length}:${required}e`)
    assert.match(bodies[4], /^d5:files/)
    c.destroy()
  })

  it('one byte at a time: the same answer', async () => {
    const c = await new Raw(t.port).connected()
    c.socket.setNoDelay(true)
    const req = Buffer.from(get(announcePath(13).replace('/announce', `/announce/${PASSKEY}`)), 'latin1')
    for (const b of req) {
      c.write(Buffer.from([b]))
      await new Promise(resolve => setImmediate(resolve))
    }
    const r = await c.response()
    assert.equal(r.status, 200)
    assert.match(r.body.toString('latin1'), /^d8:completei\d+e10:incompletei\d+e8:intervali/)
    c.destroy()
  })

  it('a long head in 7-byte pieces, then a pipelined one in the same pieces: both answered', async () => {
    const c = await new Raw(t.port).connected()
    c.socket.setNoDelay(true)
    const one = get(`/scrape/${PASSKEY}?info_hash=${pct(id20(1000))}`, `X-Pad: ${'p'.repeat(3000)}\r\n`)
    const req = Buffer.from(one + get(`/scrape/${PASSKEY}`), 'latin1')
    for (let i = 0; i < req.length; i += 7) {
      c.write(req.subarray(i, i + 7))
      await new Promise(resolve => setImmediate(resolve))
    }
    assert.match((await c.response()).body.toString('latin1'), /^d5:filesd20:/)
    assert.match((await c.response()).body.toString('latin1'), /^d5:filesd/)
    c.destroy()
  })

  it('a head that turns bad after arriving in pieces goes to node:http (400)', async () => {
    const c = await new Raw(t.port).connected()
    c.socket.setNoDelay(true)
    for (const piece of ['GET /scrape HTTP/1.1\r\nHo', 'st: t\r\nX-A: a', '\x00b\r\n\r\n']) {
      c.write(piece)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    const r = await c.response()
    assert.equal(r.status, 400)
    await c.closedByServer()
  })

  it('the admin API keeps its paths (node:http), after a fast request', async () => {
    const c = await new Raw(t.port).connected()
    c.write(get(announcePath(14).replace('/announce', `/announce/${PASSKEY}`)))
    assert.equal((await c.response()).status, 200)
    c.write(get('/admin/keys', `Authorization: Bearer tok-${'x'.repeat(20)}\r\n`))
    const r = await c.response()
    assert.equal(r.status, 200)
    assert.ok(JSON.parse(r.body.toString()).keys !== undefined)
    c.destroy()
  })

  it('pipelining past HTTP_FAST_MAX_PIPELINED and a client that does not read: all answered, in order', async () => {
    const c = await new Raw(t.port).connected()
    const n = HTTP_FAST_MAX_PIPELINED * 40
    c.socket.pause()
    const reqs: string[] = []
    for (let i = 0; i < n; i++) reqs.push(get(`/scrape/${PASSKEY}?info_hash=${pct(id20(5000 + i))}`))
    c.write(reqs.join(''))
    await new Promise(resolve => setTimeout(resolve, 100))
    c.socket.resume()
    for (let i = 0; i < n; i++) {
      const r = await c.response()
      assert.ok(r.body.includes(Buffer.from(id20(5000 + i), 'latin1')), `response ${i} for its own request`)
    }
    c.destroy()
  })

  it('large answers to a client that does not read (write backpressure): all answered, in order', async () => {
    // A swarm of 200 peers, so each non-compact answer is ~12 KB.
    const ih = pct(id20(4242))
    const fill = await new Raw(t.port).connected()
    const n = 200
    fill.write(Array.from({ length: n }, (_, i) => get(`/announce/${PASSKEY}?info_hash=${ih}&peer_id=${pct(id20(i, 'F'))}&port=${10000 + i}&left=1&compact=1&numwant=0`)).join(''))
    for (let i = 0; i < n; i++) await fill.response()
    fill.destroy()
    const c = await new Raw(t.port).connected()
    c.socket.pause()
    const reqs = 400
    c.write(Array.from({ length: reqs }, (_, i) => get(`/announce/${PASSKEY}?info_hash=${ih}&peer_id=${pct(id20(i % n, 'F'))}&port=${10000 + (i % n)}&left=1&compact=0&numwant=200`)).join(''))
    await new Promise(resolve => setTimeout(resolve, 200))
    c.socket.resume()
    for (let i = 0; i < reqs; i++) {
      const body = (await c.response()).body.toString('latin1')
      // Every peer but the asker: 199 dicts, each with its port.
      assert.equal(body.match(/4:porti\d+e/g)?.length, n - 1, `answer ${i}`)
      assert.equal(body.includes(`4:porti${10000 + (i % n)}e`), false, `answer ${i} is for its own asker`)
    }
    c.destroy()
  })

  it('a client that vanishes mid-request or mid-response leaves the server working', async () => {
    const a = await new Raw(t.port).connected()
    a.write('GET /announce?info_hash=')
    await new Promise(resolve => setTimeout(resolve, 20))
    a.destroy()
    const b = await new Raw(t.port).connected()
    b.write(Array.from({ length: 200 }, (_, i) => get(`/scrape/${PASSKEY}?info_hash=${pct(id20(i))}`)).join(''))
    b.destroy()
    const c = await new Raw(t.port).connected()
    c.write(get(`/scrape/${PASSKEY}`))
    assert.equal((await c.response()).status, 200)
    c.destroy()
    // Every connection is gone from the server's count once closed.
    const counted = async (): Promise<number> => await new Promise(resolve => t.server.http!.getConnections((_e, n) => resolve(n)))
    for (let i = 0; i < 100 && await counted() > 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
    assert.equal(await counted(), 0)
  })

  it('a client that half-closes after a partial request gets node:http\'s refusal', async () => {
    const before = t.warnings.length
    const c = await new Raw(t.port).connected()
    c.write('GET /announce HTTP/1.1\r\nHost: t\r\n')
    c.socket.end()
    await c.closedByServer()
    assert.deepEqual(t.warnings.slice(before).map(e => (e as NodeJS.ErrnoException).code), ['HPE_INVALID_EOF_STATE'])
  })

  it('a client that half-closes after a whole request still gets its answer', async () => {
    const c = await new Raw(t.port).connected()
    c.write(get(`/scrape/${PASSKEY}`))
    c.socket.end()
    const r = await c.response()
    assert.equal(r.status, 200)
    assert.match(r.body.toString('latin1'), /^d5:files/)
    await c.closedByServer()
  })
})

describe('HTTP fast path: trustProxy and rate limits', () => {
  it('X-Forwarded-For: the last entry, only from a trusted proxy; over the rate limit: RATE_LIMITED', async () => {
    const opts: ServerOptions = { trustProxy: ['127.0.0.1'], rateLimit: { http: { rate: 1, burst: 3 } } }
    const fast = await start(opts)
    const ref = await start(opts, true)
    try {
      const ih = id20(3131)
      const bodies: string[][] = []
      for (const t of [fast, ref]) {
        const c = await new Raw(t.port).connected()
        const b: string[] = []
        // Forged first entries, the proxy's own last one; then the same client (9.8.7.6) again
        // until its bucket (burst 3) is empty.
        for (let i = 0; i < 5; i++) {
          c.write(get(`/announce?info_hash=${pct(ih)}&peer_id=${pct(id20(i, 'X'))}&port=${7000 + i}&left=1`, 'X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Forwarded-For: 9.8.7.6\r\n'))
          b.push((await c.response()).body.toString('latin1'))
        }
        bodies.push(b)
        c.destroy()
        const peers = [...t.server.torrents[Buffer.from(ih, 'latin1').toString('hex')]!.peers.values()].map(p => `${p.ip}:${p.port}`).sort()
        assert.deepEqual(peers, ['9.8.7.6:7000', '9.8.7.6:7001', '9.8.7.6:7002'])
      }
      const limited = 'too many requests'
      assert.equal(bodies[0].filter(b => b.includes(limited)).length, 2)
      assert.deepEqual(bodies[0].map(b => b.replace(/i\d+e/g, 'iNe')), bodies[1].map(b => b.replace(/i\d+e/g, 'iNe')))
    } finally { await fast.close(); await ref.close() }
  })
})

describe('HTTP fast path: node:http options it does not implement turn it off', () => {
  it('maxHeaderSize below the fast limit: a long head gets node:http\'s 431', async () => {
    const t = await start({ http: { maxHeaderSize: 1024 } })
    try {
      const c = await new Raw(t.port).connected()
      c.write(get(announcePath(50), `X-Pad: ${'p'.repeat(2000)}\r\n`))
      assert.equal((await c.response()).status, 431)
      await c.closedByServer()
    } finally { await t.close() }
  })

  it('a user \'request\' listener added later sees the tracker\'s requests', async () => {
    const t = await start()
    try {
      const seen: string[] = []
      t.server.http!.on('request', (req: { url?: string }) => { seen.push(req.url ?? '') })
      const c = await new Raw(t.port).connected()
      c.write(get(announcePath(51)))
      assert.match((await c.response()).body.toString('latin1'), /^d8:completei/)
      assert.deepEqual(seen, [announcePath(51)])
      c.destroy()
    } finally { await t.close() }
  })
})

describe('HTTP fast path: WebSocket upgrade and async filter', () => {
  it('a WebSocket upgrade after a fast request on the same connection', async () => {
    const t = await start()
    try {
      const c = await new Raw(t.port).connected()
      c.write(get(announcePath(20)))
      assert.equal((await c.response()).status, 200)
      const key = Buffer.from('0123456789abcdef').toString('base64')
      c.write(`GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`)
      const r = await c.response()
      assert.equal(r.status, 101)
      assert.equal(r.headers.get('sec-websocket-accept'), createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64'))
      // A WebTorrent announce over the upgraded socket is answered.
      const msg = Buffer.from(JSON.stringify({ action: 'announce', info_hash: id20(77), peer_id: id20(78), numwant: 0, uploaded: 0, downloaded: 0, left: 0, event: 'started', offers: [] }), 'utf8')
      const mask = Buffer.from([1, 2, 3, 4])
      const header = msg.length < 126 ? Buffer.from([0x81, 0x80 | msg.length]) : Buffer.from([0x81, 0x80 | 126, msg.length >> 8, msg.length & 0xff])
      c.write(Buffer.concat([header, mask, Buffer.from(msg.map((b, i) => b ^ mask[i % 4]))]))
      const frame = await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ws reply')), REPLY_TIMEOUT_MS)
        c.socket.on('data', d => { clearTimeout(timer); resolve(d) })
      })
      assert.equal(frame[0], 0x81)
      const text = frame.subarray(frame[1] === 126 ? 4 : 2).toString('utf8')
      assert.equal(JSON.parse(text).action, 'announce')
      assert.ok(Number.isInteger(JSON.parse(text).interval))
      c.destroy()
    } finally { await t.close() }
  })

  it('an async filter: pipelined answers stay in order; it sees the headers node:http would give', async () => {
    const seen: Array<Record<string, unknown>> = []
    const filter = (_ih: string, params: { headers?: Record<string, unknown>, port: number }, cb: (err: Error | null) => void): void => {
      seen.push({ ...params.headers })
      // The first request waits longest, so later ones finish first.
      setTimeout(() => cb(params.port === 6030 ? new Error('refused by filter') : null), params.port === 6030 ? 60 : 5)
    }
    const fast = await start({ filter })
    const ref = await start({ filter }, true)
    try {
      const reqs = [30, 31, 32].map(n => get(announcePath(n), 'X-Dup: a\r\nX-Dup: b\r\nCookie: c=1\r\nCookie: d=2\r\n')).join('')
      const bodies: string[][] = []
      for (const t of [fast, ref]) {
        const c = await new Raw(t.port).connected()
        c.write(reqs)
        const b: string[] = []
        for (let i = 0; i < 3; i++) b.push((await c.response()).body.toString('latin1'))
        bodies.push(b)
        c.destroy()
      }
      assert.match(bodies[0][0], /^d14:failure reason\d+:refused by filtere$/)
      assert.match(bodies[0][1], /^d8:completei/)
      assert.deepEqual(bodies[0].map(b => b.replace(/i\d+e/g, 'iNe')), bodies[1].map(b => b.replace(/i\d+e/g, 'iNe')))
      assert.equal(seen.length, 6)
      assert.deepEqual(seen.slice(0, 3), seen.slice(3))
      assert.deepEqual(seen[0], { host: 't', 'user-agent': 'test/1.0', 'x-dup': 'a, b', cookie: 'c=1; d=2' })
    } finally { await fast.close(); await ref.close() }
  })
})

describe('HTTP fast path: timeouts and drain', () => {
  it('a head slower than headersTimeout gets 408 and a warning (slowloris)', async () => {
    const t = await start({ http: { headersTimeout: 300, requestTimeout: 1000 } })
    try {
      const c = await new Raw(t.port).connected()
      c.write('GET /announce HTTP/1.1\r\nHost: t\r\n')
      const r = await c.response()
      assert.equal(r.status, 408)
      await c.closedByServer()
      assert.deepEqual(t.warnings.map(e => (e as NodeJS.ErrnoException).code), ['ERR_HTTP_REQUEST_TIMEOUT'])
    } finally { await t.close() }
  })

  it('an idle keep-alive connection closes after keepAliveTimeout', async () => {
    const t = await start()
    t.server.http!.keepAliveTimeout = 200
    try {
      const c = await new Raw(t.port).connected()
      c.write(get(announcePath(40)))
      const r = await c.response()
      assert.equal(r.headers.get('keep-alive'), 'timeout=0')
      await c.closedByServer()
    } finally { await t.close() }
  })

  it('drain: an idle fast connection is closed, the server drains', async () => {
    const t = await start()
    const c = await new Raw(t.port).connected()
    c.write(get(announcePath(41)))
    assert.equal((await c.response()).status, 200)
    const drained = new Promise<void>(resolve => t.server.drain(() => resolve()))
    await c.closedByServer()
    await withTimeout(drained, REPLY_TIMEOUT_MS, 'drain')
  })

  it('drain: a request in flight is answered with Connection: close', async () => {
    let release: (() => void) | undefined
    const t = await start({ filter: (_ih: string, _p: unknown, cb: (err: Error | null) => void) => { release = () => cb(null) } })
    const c = await new Raw(t.port).connected()
    c.write(get(announcePath(42)))
    while (release === undefined) await new Promise(resolve => setTimeout(resolve, 5))
    const drained = new Promise<void>(resolve => t.server.drain(() => resolve()))
    await new Promise(resolve => setTimeout(resolve, 50))
    release()
    const r = await c.response()
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('connection'), 'close')
    assert.match(r.body.toString('latin1'), /^d8:completei/)
    await c.closedByServer()
    await withTimeout(drained, REPLY_TIMEOUT_MS, 'drain')
  })
})
