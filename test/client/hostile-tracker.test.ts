// A real Client against hostile, broken and slow trackers built here on loopback: raw TCP
// servers that write any bytes they like as an HTTP answer, UDP sockets that forge replies, and a
// raw `ws` server. Whatever a tracker sends, the app sees only 'warning' events (never a throw,
// never 'error'), no tracker can hold a socket or a timer past its request or past destroy(),
// and nothing can make the client re-announce in a tight loop.
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import Client from '../../src/index.js'
import type { ClientOptions, TrackerWarning, UpdateData } from '../../src/index.js'

const HASH_HEX = 'aa'.repeat(20)
const PEER_HEX = 'bb'.repeat(20)
/** Failed announces are retried only after a minute: each test sees exactly its first request. */
const SLOW_RETRY = { request: 3000, udp: 1000, udpRetransmits: 2, retryMin: 60_000, retryMax: 60_000, destroyGrace: 100 }

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

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

function client (opts: Partial<ClientOptions> & { announce: ClientOptions['announce'] }): Client {
  const c = new Client({ infoHash: HASH_HEX, peerId: PEER_HEX, port: 6881, timeouts: SLOW_RETRY, ...opts })
  c.on('error', (err: Error) => assert.fail(`'error' event: ${err.message}`))
  cleanups.push(() => new Promise<void>(resolve => c.destroy(() => resolve())))
  return c
}

function record<T> (c: Client, event: string): T[] {
  const out: T[] = []
  c.on(event, (v: T) => out.push(v))
  return out
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
