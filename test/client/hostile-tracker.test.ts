// A real Client against hostile, broken and slow trackers built here on loopback: raw TCP
// servers that write any bytes they like as an HTTP answer, UDP sockets that forge replies, and a
// raw `ws` server. Whatever a tracker sends, the app sees only 'warning' events (never a throw,
// never 'error'), no tracker can hold a socket or a timer past its request or past destroy(),
// and nothing can make the client re-announce in a tight loop.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import dgram from 'node:dgram'
import zlib from 'node:zlib'
import { createHash } from 'node:crypto'
import { WebSocketServer, type WebSocket as WsSocket } from 'ws'
import { once } from 'node:events'
import Client from '../../src/index.js'
import type { ScrapeData, TrackerWarning, UpdateData } from '../../src/index.js'
import { cleanups, record, testClient } from '../helpers/client-harness.js'
import type { ClientArgs } from '../helpers/client-harness.js'

const HASH_HEX = 'aa'.repeat(20)
const PEER_HEX = 'bb'.repeat(20)
/** Failed announces are retried only after a minute: each test sees exactly its first request. */
const SLOW_RETRY = { request: 3000, udp: 1000, udpRetransmits: 2, retryMin: 60_000, retryMax: 60_000, destroyGrace: 100 }


const signal = (ms = 5000): AbortSignal => AbortSignal.timeout(ms)

/** `p`, or a rejection naming `what` after `ms`: a hang fails the test instead of stalling it. */
async function within<T> (p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms) })
  try {
    return await Promise.race([p, limit])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves once `cond()` holds (polled), or fails after 5 s naming `what`. */
async function until (cond: () => boolean, what: string): Promise<void> {
  await within(new Promise<void>(resolve => {
    const poll = setInterval(() => { if (cond()) { clearInterval(poll); resolve() } }, 10)
  }), what)
}

function client (opts: ClientArgs): Client {
  const c = testClient({ infoHash: HASH_HEX, peerId: PEER_HEX, port: 6881, timeouts: SLOW_RETRY }, opts)
  c.on('error', (err: Error) => assert.fail(`'error' event: ${err.message}`))
  return c
}

// ---------------------------------------------------------------------------------------------
// HTTP: a TCP server that answers each request with whatever bytes the test writes

type RawHandler = (sock: net.Socket, n: number) => void

/** Resolves when `s` has closed (events.once would reject on the 'error' of a reset first). */
const closed = async (s: net.Socket): Promise<void> => await new Promise(resolve => { if (s.destroyed) resolve(); else s.on('close', () => resolve()) })

class RawHttpTracker {
  /** Sockets the tracker has open now. */
  readonly open = new Set<net.Socket>()
  /** The socket of each request, in order. */
  readonly sockets: net.Socket[] = []
  /** The request line of each request, in order. */
  readonly lines: string[] = []
  requests = 0
  private readonly server: net.Server
  constructor (handler: RawHandler) {
    this.server = net.createServer(sock => {
      this.open.add(sock)
      sock.on('close', () => this.open.delete(sock))
      sock.on('error', () => {})
      let head = ''
      const onData = (d: Buffer): void => {
        head += d.toString('latin1')
        if (!head.includes('\r\n\r\n')) return
        sock.off('data', onData)
        this.sockets.push(sock)
        this.lines.push(head.slice(0, head.indexOf('\r\n')))
        handler(sock, ++this.requests)
      }
      sock.on('data', onData)
    })
  }

  async listen (): Promise<this> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    return this
  }

  get url (): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}/announce`
  }


  async close (): Promise<void> {
    for (const s of this.open) s.destroy()
    await new Promise(resolve => this.server.close(resolve))
  }
}

async function rawHttp (handler: RawHandler): Promise<RawHttpTracker> {
  const t = await new RawHttpTracker(handler).listen()
  cleanups.push(() => t.close())
  return t
}

function head (status: number, headers: Record<string, string | number>): Buffer {
  return Buffer.from(`HTTP/1.1 ${status} X\r\n` + Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n', 'latin1')
}

/** Answer with `body` (latin1 text or bytes) and close. */
function answer (body: string | Buffer, status = 200, headers: Record<string, string | number> = {}): RawHandler {
  const b = typeof body === 'string' ? Buffer.from(body, 'latin1') : body
  return sock => sock.end(Buffer.concat([head(status, { 'content-length': b.length, ...headers }), b]))
}

describe('hostile HTTP tracker', () => {
  it('a body declared larger than the cap is refused unread and its connection closed (not left to the tracker)', async () => {
    const t = await rawHttp(sock => {
      sock.write(head(200, { 'content-length': 100 * 1024 * 1024 }))
      sock.write(Buffer.alloc(64 * 1024))
      // ...and never more, never closing
    })
    const c = client({ announce: t.url })
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, `tracker request failed: tracker response of 104857600 bytes is too large (${t.url})`)
    assert.equal((w as TrackerWarning).announce, t.url)
    // Closed by the client: the tracker never closes it.
    await within(closed(t.sockets[0]), 'the client closes the connection')
    assert.equal(t.requests, 1)
  })
})

/** Start a client on `t`; its first warning, after checking nothing else came with it. */
async function firstWarning (t: RawHttpTracker): Promise<TrackerWarning> {
  const c = client({ announce: t.url })
  const updates = record<UpdateData>(c, 'update')
  const peers = record<string>(c, 'peer')
  c.start()
  const [w] = await once(c, 'warning', { signal: signal() })
  assert.deepEqual([updates, peers], [[], []])
  assert.equal(w.announce, t.url)
  return w
}

describe('hostile HTTP tracker: bad answers are one warning each, never an update', () => {
  const deep = 'l'.repeat(10_000) + 'e'.repeat(10_000)
  const cases: Array<[string, RawHandler, string]> = [
    ['HTML instead of bencode', answer('<html>hi</html>'), 'invalid announce response: malformed packet: bencode: expected a value at byte 0'],
    ['truncated bencode', answer('d8:intervali1800e5:peers'), 'invalid announce response: malformed packet: bencode: unexpected end of input at byte 24'],
    ['lists nested 10,000 deep', answer(deep), 'invalid announce response: malformed packet: bencode: nesting too deep at byte 32'],
    ['a `failure reason` that is an integer', answer('d14:failure reasoni5ee'), 'invalid announce response: malformed packet: failure reason is not a string'],
    ['a `failure reason` that is a list', answer('d14:failure reasonl4:nopee8:intervali60ee'), 'invalid announce response: malformed packet: failure reason is not a string'],
    ['compact peers of 7 bytes', answer('d8:intervali1800e5:peers7:abcdefge'), 'invalid announce response: malformed packet: compact peers length is not a multiple of 6'],
    ['compact peers6 of 5 bytes', answer('d8:intervali1800e6:peers65:abcdee'), 'invalid announce response: malformed packet: compact peers6 length is not a multiple of 18'],
    ['HTTP 500 with a text body', answer('Internal Server Error', 500), 'tracker answered HTTP 500']
  ]
  for (const [name, handler, message] of cases) {
    it(name, async () => {
      const t = await rawHttp(handler)
      const w = await firstWarning(t)
      assert.equal(w.message, `${message} (${t.url})`)
      assert.equal(t.requests, 1)
    })
  }
})

describe('hostile HTTP tracker: broken transfers are one warning each, and the connection is closed', () => {
  const cases: Array<[string, RawHandler, RegExp]> = [
    ['a redirect loop (302 to itself)', sock => sock.end(head(302, { location: '/announce', 'content-length': 0 })), /^tracker request failed: redirect count exceeded/],
    ['a redirect to a non-HTTP scheme', sock => sock.end(head(301, { location: 'ftp://127.0.0.1/x', 'content-length': 0 })), /^tracker request failed: URL scheme must be a HTTP\(S\) scheme/],
    ['a redirect to a port nothing listens on', sock => sock.end(head(307, { location: 'http://127.0.0.1:1/announce', 'content-length': 0 })), /^tracker request failed: (ECONNREFUSED|bad port)/],
    ['closed in the middle of the body', sock => { sock.write(head(200, { 'content-length': 100 })); sock.end('d8:inter') }, /^tracker request failed: UND_ERR_SOCKET other side closed/],
    ['a malformed chunk size', sock => { sock.write(head(200, { 'transfer-encoding': 'chunked' })); sock.end('5\r\nd8:in\r\nZZ\r\n') }, /^tracker request failed: HPE_INVALID_CHUNK_SIZE /],
    ['gzip Content-Encoding over bytes that are not gzip', answer('not gzip at all', 200, { 'content-encoding': 'gzip' }), /^tracker request failed: Z_DATA_ERROR /],
    ['a gzip body that inflates to 100 MB: capped at 1 MiB', (() => {
      const bomb = zlib.gzipSync(Buffer.alloc(100 * 1024 * 1024))
      // Sent, then the connection is left open: only the client's cap ends the transfer.
      return (sock: net.Socket) => sock.write(Buffer.concat([head(200, { 'content-encoding': 'gzip', 'content-length': bomb.length }), bomb]))
    })(), /^tracker request failed: tracker response over 1048576 bytes \(/],
    ['1.5 MiB chunked, never ending: capped at 1 MiB', sock => {
      sock.write(head(200, { 'transfer-encoding': 'chunked' }))
      for (let i = 0; i < 24; i++) sock.write(`10000\r\n${'A'.repeat(65536)}\r\n`)
    }, /^tracker request failed: tracker response over 1048576 bytes \(/]
  ]
  for (const [name, handler, pattern] of cases) {
    it(name, async () => {
      const t = await rawHttp(handler)
      const w = await firstWarning(t)
      assert.match(w.message, pattern)
      assert.ok(w.message.endsWith(` (${t.url})`), w.message)
      await within(Promise.all(t.sockets.map(closed)), 'every request connection closed')
    })
  }

  it('a tracker that accepts and never answers: the request times out, its connection is closed', async () => {
    const t = await rawHttp(() => { /* silence */ })
    const c = client({ announce: t.url, timeouts: { ...SLOW_RETRY, request: 200 } })
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, `tracker did not answer within 200 ms (${t.url})`)
    await within(closed(t.sockets[0]), 'the client closes the timed-out connection')
    assert.equal(t.requests, 1)
  })

  it('a body dripped a byte at a time is cut off by the same request timeout', async () => {
    const t = await rawHttp(sock => {
      sock.write(head(200, { 'content-length': 1000 }))
      const drip = setInterval(() => { if (sock.destroyed) clearInterval(drip); else sock.write('d') }, 20)
    })
    const c = client({ announce: t.url, timeouts: { ...SLOW_RETRY, request: 300 } })
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, `tracker did not answer within 300 ms (${t.url})`)
    await within(closed(t.sockets[0]), 'the client closes the dripping connection')
  })
})

describe('hostile HTTP tracker: intervals', () => {
  it('`interval: 1` is raised to the floor (60 s by default; 1.5 s here): no re-announce sooner', async () => {
    const at: number[] = []
    const t = await rawHttp(sock => { at.push(Date.now()); answer('d8:intervali1e12:min intervali0ee')(sock, 0) })
    const c = client({ announce: t.url, timeouts: { ...SLOW_RETRY, intervalFloor: 1500 } })
    c.start()
    await until(() => at.length >= 2, 'a re-announce')
    assert.ok(at[1] - at[0] >= 1500, `re-announced after ${at[1] - at[0]} ms`)
  })

  it('interval 0, negative, a string, or 10^15 s: one announce, then the default 30 min (no spin, no timer overflow)', async () => {
    const bodies = ['d8:intervali0ee', 'd8:intervali-5e12:min intervali-1ee', 'd8:interval2:10e', 'd8:intervali1000000000000000e12:min intervali1000000000000000ee']
    const trackers = await Promise.all(bodies.map(async b => await rawHttp(answer(b))))
    const clients = trackers.map(t => client({ announce: t.url }))
    const updates = clients.map(c => record<UpdateData>(c, 'update'))
    const warnings = clients.map(c => record<TrackerWarning>(c, 'warning'))
    for (const c of clients) c.start()
    await Promise.all(clients.map(async c => await once(c, 'update', { signal: signal() })))
    // Absence over a while: a spinning client would have sent dozens by now.
    await new Promise(resolve => setTimeout(resolve, 1200))
    assert.deepEqual(trackers.map(t => t.requests), [1, 1, 1, 1])
    assert.deepEqual(updates.map(u => u.length), [1, 1, 1, 1])
    assert.deepEqual(warnings.map(w => w.length), [0, 0, 0, 0])
  })
})

/** `count` compact IPv4 peers cycling through `distinct` addresses 10.0.x.y:1000+. */
function compactPeers (count: number, distinct: number): Buffer {
  const b = Buffer.alloc(count * 6)
  for (let i = 0; i < count; i++) {
    b.writeUInt32BE(0x0a000000 + (i % distinct), i * 6)
    b.writeUInt16BE(1000, i * 6 + 4)
  }
  return b
}

describe('hostile tracker ids', () => {
  it('HTTP: a 2,000-character tracker id is not echoed (one warning); one of 1,024 is', async () => {
    const long = 'x'.repeat(2000)
    const ok = 'y'.repeat(1024)
    const t = await rawHttp((sock, n) => answer(`d8:intervali1800e10:tracker id${n === 1 ? `${long.length}:${long}` : `${ok.length}:${ok}`}e`)(sock, n))
    const c = client({ announce: t.url })
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    await once(c, 'update', { signal: signal() })
    c.update()
    await once(c, 'update', { signal: signal() })
    c.update()
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(warnings.map(w => w.message), [`tracker id of 2000 characters ignored (the limit is 1024) (${t.url})`])
    assert.deepEqual(t.lines.map(l => /[?&]trackerid=([^& ]*)/.exec(l)?.[1]), [undefined, undefined, ok])
  })

  it('WebSocket: the same limit', async () => {
    const t = await rawWs((ws, _n, self) => ws.on('message', () => {
      // (the frame being answered is already in self.frames)
      const id = 'x'.repeat(self.frames.length === 1 ? 2000 : 1024)
      ws.send(JSON.stringify({ action: 'announce', info_hash: HASH_BIN, interval: 120, 'tracker id': id, complete: 0, incomplete: 0 }))
    }))
    const c = client({ announce: t.url })
    const warnings = trackerWarnings(c)
    c.start()
    await once(c, 'update', { signal: signal() })
    c.update()
    await once(c, 'update', { signal: signal() })
    c.update()
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(warnings, [`tracker id of 2000 characters ignored (the limit is 1024) (${t.url})`])
    assert.deepEqual(t.frames.map(f => (f.trackerid as string | undefined)?.length), [undefined, undefined, 1024])
  })
})

describe('hostile HTTP tracker: dict peers of every wrong type', () => {
  it('only well-formed entries become peers; the rest are skipped without a warning', async () => {
    const entries = [
      'd2:ipi167772160e4:porti1000ee', // ip as an integer
      'd2:ip8:10.0.0.14:port5:12345e', // port as a string
      'd2:ip8:10.0.0.24:porti65536ee',
      'd2:ip8:10.0.0.34:porti-1ee',
      'd2:ip8:10.0.0.44:porti0ee',
      'd2:ip9:localhost4:porti1000ee', // a host name (no compact form)
      'd2:ip9:10.0.0.5\x004:porti1000ee', // a NUL inside
      'd2:ip8:10.0.0.6e', // no port
      'i5e', // not a dict
      'l8:10.0.0.7i1000ee', // a list
      'd2:ip14:::ffff:1.2.3.44:porti1ee', // IPv4-mapped: reported as IPv4
      'd2:ip8:10.0.0.84:porti65535e7:peer idi1ee' // good, with a peer id of the wrong type
    ]
    const t = await rawHttp(answer(`d8:intervali1800e5:peersl${entries.join('')}ee`))
    const c = client({ announce: t.url })
    const peers = record<string>(c, 'peer')
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(peers, ['1.2.3.4:1', '10.0.0.8:65535'])
    assert.deepEqual(warnings, [])
  })
})

describe('hostile HTTP tracker: peer floods', () => {
  it('a 1 MiB answer of 174,000 peers (7,000 distinct) gives 1,000 distinct peer events and one warning', async () => {
    const n = Math.floor((1024 * 1024 - 64) / 6)
    const t = await rawHttp(answer(Buffer.concat([Buffer.from(`d8:intervali1800e5:peers${n * 6}:`), compactPeers(n, 7000), Buffer.from('e')])))
    const c = client({ announce: t.url })
    const peers = record<string>(c, 'peer')
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: t.url, infoHash: HASH_HEX, complete: 0, incomplete: 0 })
    assert.equal(peers.length, 1000)
    assert.equal(new Set(peers).size, 1000)
    assert.deepEqual(peers.slice(0, 2), ['10.0.0.0:1000', '10.0.0.1:1000'])
    assert.equal(peers[999], '10.0.3.231:1000')
    assert.deepEqual(warnings.map(w => w.message), [`tracker sent 7000 peers; only the first 1000 are used (${t.url})`])
  })

  it('the same peer 500 times is one peer event, without a warning', async () => {
    const t = await rawHttp(answer(Buffer.concat([Buffer.from('d8:intervali1800e5:peers3000:'), compactPeers(500, 1), Buffer.from('e')])))
    const c = client({ announce: t.url })
    const peers = record<string>(c, 'peer')
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(peers, ['10.0.0.0:1000'])
    assert.deepEqual(warnings, [])
  })
})

// ---------------------------------------------------------------------------------------------
// WebSocket: a raw `ws` server that sends whatever the test says (no WebRTC here: the clients
// announce without offers, which is all these cases need)

const HASH_BIN = Buffer.from(HASH_HEX, 'hex').toString('latin1')
const NO_WEBRTC = /^No WebRTC implementation/

class RawWsTracker {
  readonly wss: WebSocketServer
  readonly conns: WsSocket[] = []
  /** Frames received, parsed, in order. */
  readonly frames: Array<Record<string, unknown>> = []
  constructor (onConn: (ws: WsSocket, n: number, t: RawWsTracker) => void) {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    this.wss.on('connection', ws => {
      this.conns.push(ws)
      ws.on('error', () => {})
      ws.on('message', d => { try { this.frames.push(JSON.parse(String(d))) } catch {} })
      onConn(ws, this.conns.length, this)
    })
  }

  async listen (): Promise<this> {
    if (this.wss.address() === null) await once(this.wss, 'listening')
    return this
  }

  get url (): string {
    return `ws://127.0.0.1:${(this.wss.address() as net.AddressInfo).port}`
  }

  async close (): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate()
    await new Promise(resolve => this.wss.close(resolve))
  }
}

async function rawWs (onConn: (ws: WsSocket, n: number, t: RawWsTracker) => void): Promise<RawWsTracker> {
  const t = await new RawWsTracker(onConn).listen()
  cleanups.push(() => t.close())
  return t
}

/** Warnings other than the one about announcing without WebRTC. */
function trackerWarnings (c: Client): string[] {
  const out: string[] = []
  c.on('warning', (w: Error) => { if (!NO_WEBRTC.test(w.message)) out.push(w.message) })
  return out
}

describe('hostile WebSocket tracker', () => {
  it('junk frames are one warning each; a good reply after them still counts', async () => {
    const t = await rawWs(ws => {
      ws.send('not json')
      ws.send(Buffer.from([1, 2, 3]))
      ws.send('[]')
      ws.send('null')
      ws.send(JSON.stringify({ action: 'announce', info_hash: 5 }))
      ws.send(JSON.stringify({ action: 'announce', info_hash: HASH_BIN, interval: 'soon' }))
      ws.send(JSON.stringify({ action: 'announce', info_hash: HASH_BIN, offer: { type: 'offer' }, offer_id: 'o'.repeat(20), peer_id: 'p'.repeat(20) }))
      ws.send(JSON.stringify({ action: 'announce', info_hash: HASH_BIN, offer: { type: 'offer', sdp: 'v=0' }, offer_id: 'o'.repeat(20), peer_id: 'short' }))
      ws.send(JSON.stringify({ action: 'announce', 'failure reason': 5 }))
      ws.send(JSON.stringify({ action: 'dance' }))
      // Another torrent's reply: not ours, silently ignored.
      ws.send(JSON.stringify({ action: 'announce', info_hash: 'z'.repeat(20), complete: 99, incomplete: 99 }))
      ws.send(JSON.stringify({ action: 'announce', info_hash: HASH_BIN, complete: 4, incomplete: 5 }))
    })
    const c = client({ announce: t.url })
    const warnings = trackerWarnings(c)
    c.start()
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: t.url, infoHash: HASH_HEX, complete: 4, incomplete: 5 })
    assert.deepEqual(warnings, [
      'Invalid WebSocket tracker message: invalid JSON',
      'WebSocket tracker sent a binary message',
      'Invalid WebSocket tracker message: invalid JSON',
      'Invalid WebSocket tracker message: invalid JSON',
      'Invalid WebSocket tracker message: invalid info_hash',
      'Invalid WebSocket tracker message: invalid numeric parameter: interval',
      'Invalid WebSocket tracker message: invalid offer: offer sdp is not a string',
      'Invalid WebSocket tracker message: invalid peer_id',
      'Invalid WebSocket tracker message: invalid JSON: failure reason is not a string',
      'Invalid WebSocket tracker message: invalid action'
    ].map(m => `${m} (${t.url})`))
    assert.equal(t.conns.length, 1)
  })

  it('a scrape answered with the whole database gives only the torrent asked for, once', async () => {
    const t = await rawWs(ws => ws.on('message', d => {
      const m = JSON.parse(String(d)) as { action: string }
      if (m.action !== 'scrape') return
      const files: Record<string, unknown> = {}
      for (let i = 0; i < 5000; i++) files[String(i).padStart(20, 'x')] = { complete: 1, incomplete: 1, downloaded: 1 }
      files[HASH_BIN] = { complete: 7, incomplete: 8, downloaded: 9 }
      ws.send(JSON.stringify({ action: 'scrape', files }))
    }))
    const c = client({ announce: t.url })
    const scrapes = record<ScrapeData>(c, 'scrape')
    c.scrape()
    await once(c, 'scrape', { signal: signal() })
    // A second scrape round-trips after the first answer: no more events came from the first.
    c.scrape()
    await once(c, 'scrape', { signal: signal() })
    const mine = { announce: t.url, infoHash: HASH_HEX, complete: 7, incomplete: 8, downloaded: 9 }
    assert.deepEqual(scrapes, [mine, mine])
  })

  it('a tracker that accepts and drops every connection is retried with a growing back-off, and not after destroy', async () => {
    const at: number[] = []
    const t = await rawWs(ws => { at.push(Date.now()); ws.terminate() })
    const c = client({ announce: t.url, timeouts: { ...SLOW_RETRY, retryMin: 100, retryMax: 800 } })
    const warnings = trackerWarnings(c)
    c.start()
    await until(() => at.length >= 5, '5 connections')
    await new Promise<void>(resolve => c.destroy(() => resolve()))
    const gaps = at.slice(1).map((v, i) => v - at[i])
    // Equal jitter: attempt k waits at least half of min(100 · 2^k, 800), so the 4th gap is ≥ 400 ms
    // (with a back-off restarted on every open it stayed under 100 ms).
    assert.ok(gaps[3] >= 400, `gaps ${gaps.join(', ')} ms`)
    assert.ok(gaps[2] >= 200, `gaps ${gaps.join(', ')} ms`)
    assert.equal(warnings[0], `WebSocket tracker: connection closed (code 1006) (${t.url})`)
    const n = t.conns.length
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.equal(t.conns.length, n, 'no reconnect after destroy')
  })

  it('`interval: 1` over WebSocket is raised to the floor too (1.2 s here): no re-announce sooner', async () => {
    const at: number[] = []
    const t = await rawWs(ws => ws.on('message', () => {
      at.push(Date.now())
      ws.send(JSON.stringify({ action: 'announce', info_hash: HASH_BIN, interval: 1, complete: 1, incomplete: 0 }))
    }))
    const c = client({ announce: t.url, timeouts: { ...SLOW_RETRY, intervalFloor: 1200 } })
    c.start()
    await until(() => at.length >= 2, 'a re-announce')
    assert.ok(at[1] - at[0] >= 1200, `re-announced after ${at[1] - at[0]} ms`)
  })
})

/** A TCP server that completes the WebSocket handshake by hand (`accept` overrides the key's answer), then calls `after`. */
async function rawWsFrames (after: (s: net.Socket) => void, accept?: string): Promise<{ url: string, sockets: net.Socket[] }> {
  const sockets: net.Socket[] = []
  const srv = net.createServer(s => {
    sockets.push(s)
    s.on('error', () => {})
    let head = ''
    const onData = (d: Buffer): void => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      s.off('data', onData)
      s.resume()
      const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? ''
      const answer = accept ?? createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${answer}\r\n\r\n`)
      after(s)
    }
    s.on('data', onData)
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  cleanups.push(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); srv.close(() => resolve()) }))
  return { url: `ws://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, sockets }
}

describe('hostile WebSocket tracker: broken frames close the connection with one warning', () => {
  const frame = (...bytes: number[]) => (s: net.Socket) => { s.write(Buffer.from(bytes)) }
  const cases: Array<[string, (s: net.Socket) => void, string, string?]> = [
    ['a close frame with code 999', frame(0x88, 0x02, 0x03, 0xe7), 'Invalid WebSocket frame: invalid status code 999'],
    ['a close frame with the reserved code 1005', frame(0x88, 0x02, 0x03, 0xed), 'Invalid WebSocket frame: invalid status code 1005'],
    ['a close frame of 1 byte', frame(0x88, 0x01, 0x03), 'Invalid WebSocket frame: invalid payload length 1'],
    ['a close reason that is not UTF-8', frame(0x88, 0x04, 0x03, 0xe8, 0xff, 0xfe), 'Invalid WebSocket frame: invalid UTF-8 sequence'],
    ['a text frame that is not UTF-8', frame(0x81, 0x02, 0xff, 0xfe), 'Invalid WebSocket frame: invalid UTF-8 sequence'],
    ['reserved bits set', frame(0xc1, 0x01, 0x41), 'Invalid WebSocket frame: RSV1 must be clear'],
    ['a masked frame from the server', frame(0x81, 0x81, 1, 2, 3, 4, 0x41), 'Invalid WebSocket frame: MASK must be clear'],
    ['a continuation with nothing to continue', frame(0x80, 0x01, 0x41), 'Invalid WebSocket frame: invalid opcode 0'],
    ['a frame header announcing 2^53 bytes', frame(0x81, 0x7f, 0x00, 0x20, 0, 0, 0, 0, 0, 0), 'Unsupported WebSocket frame: payload length > 2^53 - 1'],
    ['a 2 MiB text frame (over the 1 MiB cap)', s => {
      const h = Buffer.from([0x81, 0x7f, 0, 0, 0, 0, 0, 0x20, 0, 0])
      s.write(Buffer.concat([h, Buffer.alloc(2 * 1024 * 1024, 0x41)]))
    }, 'Max payload size exceeded'],
    ['a handshake answered with the wrong Sec-WebSocket-Accept', () => {}, 'Invalid Sec-WebSocket-Accept header', 'AAAA']
  ]
  for (const [name, after, message, accept] of cases) {
    it(name, async () => {
      const t = await rawWsFrames(after, accept)
      const c = client({ announce: t.url })
      const warnings = trackerWarnings(c)
      c.start()
      await until(() => warnings.length >= 1, 'a warning')
      assert.equal(warnings[0], `WebSocket tracker: ${message} (${t.url})`)
      await within(closed(t.sockets[0]), 'the connection closed')
    })
  }
})

// ---------------------------------------------------------------------------------------------
// UDP: a socket that answers each packet with whatever the test builds (BEP 15 framing by hand)

function u32s (...v: number[]): Buffer {
  const b = Buffer.alloc(v.length * 4)
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, i * 4))
  return b
}
const CONNECTION_ID = Buffer.from('0102030405060708', 'hex')
/** The transaction id of a request (connect, announce, scrape all carry it at byte 12). */
const tidOf = (m: Buffer): number => m.readUInt32BE(12)
const isConnect = (m: Buffer): boolean => m.length === 16 && m.readUInt32BE(8) === 0
const connectReply = (m: Buffer): Buffer => Buffer.concat([u32s(0, tidOf(m)), CONNECTION_ID])

type UdpScript = (m: Buffer, reply: (b: Buffer) => void, fromOther: (b: Buffer) => void) => void

/** `fromOther` sends from another socket, bound to `otherHost`. */
async function rawUdp (script: UdpScript, otherHost = '127.0.0.1'): Promise<{ url: string, packets: Buffer[] }> {
  const s = dgram.createSocket('udp4')
  const other = dgram.createSocket('udp4')
  const packets: Buffer[] = []
  s.on('message', (m, r) => {
    packets.push(m)
    script(m, b => s.send(b, r.port, r.address), b => other.send(b, r.port, r.address))
  })
  await Promise.all([new Promise<void>(resolve => s.bind(0, '127.0.0.1', resolve)), new Promise<void>(resolve => other.bind(0, otherHost, resolve))])
  cleanups.push(() => { s.close(); other.close() })
  return { url: `udp://127.0.0.1:${s.address().port}`, packets }
}

describe('hostile UDP tracker: bad replies are one warning each', () => {
  const cases: Array<[string, UdpScript, string]> = [
    ['an unknown action', (m, reply) => reply(u32s(7, tidOf(m))), 'invalid UDP reply: invalid action: 7'],
    ['a connect reply of 10 bytes', (m, reply) => reply(Buffer.concat([u32s(0, tidOf(m)), Buffer.from([1, 2])])), 'invalid UDP reply: malformed packet: connect response of 10 bytes, need 16'],
    ['an announce reply of 12 bytes', (m, reply) => reply(isConnect(m) ? connectReply(m) : u32s(1, tidOf(m), 1800)), 'invalid UDP reply: malformed packet: announce response of 12 bytes, need 20'],
    ['7 bytes of peers', (m, reply) => reply(isConnect(m) ? connectReply(m) : Buffer.concat([u32s(1, tidOf(m), 1800, 1, 2), Buffer.alloc(7)])), 'invalid UDP reply: malformed packet: 7 peer bytes is not a multiple of 6'],
    ['a connect reply to an announce', (m, reply) => reply(connectReply(m)), 'UDP reply connect to a announce'],
    ['a scrape reply to an announce', (m, reply) => reply(isConnect(m) ? connectReply(m) : u32s(2, tidOf(m), 1, 2, 3)), 'UDP reply scrape to a announce']
  ]
  for (const [name, script, message] of cases) {
    it(name, async () => {
      const t = await rawUdp(script)
      const c = client({ announce: t.url })
      const updates = record<UpdateData>(c, 'update')
      c.start()
      const [w] = await once(c, 'warning', { signal: signal() })
      assert.equal(w.message, `${message} (${t.url})`)
      assert.deepEqual(updates, [])
    })
  }

  it('an error packet with invalid UTF-8 is the tracker\'s text with U+FFFD for the bad bytes', async () => {
    const t = await rawUdp((m, reply) => reply(Buffer.concat([u32s(3, tidOf(m)), Buffer.from([0xff, 0x41, 0xc3])])))
    const c = client({ announce: t.url })
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, '\ufffdA\ufffd')
    assert.equal(w.announce, t.url)
  })

  for (const [what, host] of [['another port of the tracker\'s address', '127.0.0.1'], ['another address (127.0.0.2)', '127.0.0.2']]) {
    it(`replies from ${what} are ignored (the socket is connected)`, async () => {
      const t = await rawUdp((m, _reply, fromOther) => fromOther(isConnect(m) ? connectReply(m) : u32s(1, tidOf(m), 1800, 1, 2)), host)
      const c = client({ announce: t.url, timeouts: { ...SLOW_RETRY, udp: 100, udpRetransmits: 1 } })
      const updates = record<UpdateData>(c, 'update')
      c.start()
      const [w] = await once(c, 'warning', { signal: signal() })
      assert.equal(w.message, `tracker did not answer within 100 ms; retransmitting with BEP 15 back-off (${t.url})`)
      const [w2] = await once(c, 'warning', { signal: signal() })
      assert.equal(w2.message, `tracker did not answer after 2 tries (BEP 15 back-off) (${t.url})`)
      assert.deepEqual(updates, [])
      // Two connects, both answered from the wrong port, nothing else sent.
      assert.equal(t.packets.length, 2)
      assert.ok(t.packets.every(isConnect))
    })
  }

  it('10,000 peers in one reply: 1,000 peer events and a warning; interval 0 means the default, not a spin', async () => {
    const peers = compactPeers(10_000, 10_000)
    const t = await rawUdp((m, reply) => reply(isConnect(m) ? connectReply(m) : Buffer.concat([u32s(1, tidOf(m), 0, 5, 6), peers])))
    const c = client({ announce: t.url })
    const got = record<string>(c, 'peer')
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: t.url, infoHash: HASH_HEX, complete: 6, incomplete: 5 })
    assert.equal(got.length, 1000)
    assert.equal(got[999], '10.0.3.231:1000')
    assert.deepEqual(warnings.map(w => w.message), [`tracker sent 10000 peers; only the first 1000 are used (${t.url})`])
    await new Promise(resolve => setTimeout(resolve, 1000))
    assert.equal(t.packets.length, 2, 'connect + one announce')
  })
})

// ---------------------------------------------------------------------------------------------
// Lifecycle: destroy() in the middle of everything at once, in a child process that must then
// exit by itself (any socket or ref'd timer left would keep it alive)

describe('destroy() mid-everything', () => {
  it('mid WS handshake, during a WS reconnect wait, mid HTTP body, with an unanswered HTTP request and during a UDP retransmit wait: nothing left, no event after, the process exits', async () => {
    // A TCP server that never completes the WebSocket handshake.
    const noHandshake = net.createServer(s => { s.on('error', () => {}); s.resume() })
    noHandshake.listen(0, '127.0.0.1')
    await once(noHandshake, 'listening')
    cleanups.push(() => new Promise<void>(resolve => { noHandshake.close(() => resolve()) }))
    const hsSockets: net.Socket[] = []
    noHandshake.on('connection', s => hsSockets.push(s))
    const dropping = await rawWs(ws => ws.terminate())
    const dripping = await rawHttp(sock => {
      sock.write(head(200, { 'content-length': 1000 }))
      const drip = setInterval(() => { if (sock.destroyed) clearInterval(drip); else sock.write('d') }, 20)
    })
    const silentHttp = await rawHttp(() => {})
    const silentUdp = await rawUdp(() => {})
    const announce = [
      `ws://127.0.0.1:${(noHandshake.address() as net.AddressInfo).port}`,
      dropping.url,
      dripping.url,
      silentHttp.url.replace('/announce', '/silent/announce'),
      silentUdp.url
    ]
    const { spawn } = await import('node:child_process')
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/client-destroy-child.ts',
      JSON.stringify({ announce, waitFor: ['^WebSocket tracker: connection closed', '^tracker did not answer within 50 ms; retransmitting'] })],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, CHILD_DEBUG: '1' } })
    let out = ''
    child.stdout.on('data', d => { out += String(d) })
    // Every tracker is mid-request before the child may destroy.
    await until(() => hsSockets.length >= 1 && dropping.conns.length >= 1 && dripping.requests >= 1 && silentHttp.requests >= 1 && silentUdp.packets.length >= 2, 'the child reaches every tracker')
    child.stdin.end('go\n')
    const [code] = await within(once(child, 'exit'), 'the child exits by itself', 15_000).catch(err => { child.kill(); throw err })
    assert.equal(code, 0)
    assert.deepEqual(JSON.parse(out), { after: [], live: [] })
    // Every connection the client opened to these trackers is closed.
    await within(Promise.all([...hsSockets, ...dripping.sockets, ...silentHttp.sockets].map(closed)), 'client connections closed')
  })
})
