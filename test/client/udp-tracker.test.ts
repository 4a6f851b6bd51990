// The UDP tracker client (BEP 15, BEP 41) against a scripted tracker written here: a dgram
// socket on loopback that decodes requests and builds replies with the shared codec
// (protocol/udp/codec.ts), and can drop, delay or forge replies on purpose.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import Client from '../../src/index.js'
import type { TrackerWarning, ScrapeData, UpdateData } from '../../src/index.js'
import {
  decodeUdpRequest, encodeAnnounceResponse, encodeConnectResponse, encodeError, encodeScrapeResponse,
  type UdpRequest
} from '../../src/protocol/udp/codec.js'
import { compactAddr } from '../../src/protocol/common/address.js'
import { binaryToHex, hexToBinary } from '../../src/protocol/common/binary.js'
import { EVENT_COMPLETED, EVENT_STARTED, type PeerEntry } from '../../src/protocol/common/types.js'
import { cleanups, record, testClient } from '../helpers/client-harness.js'
import type { ClientArgs } from '../helpers/client-harness.js'

const HASH_HEX = '80ff00' + '2526282b203d' + '7f80c328fefe414243444546'.slice(0, 22)
const HASH = hexToBinary(HASH_HEX)!
const PEER_HEX = '2d5454303030312d' + 'c3a9000102fe' + 'ff8081828384'
const PEER = hexToBinary(PEER_HEX)!
// UDP timeouts long enough that a loaded machine never retransmits by accident; the tests about
// retransmission set short ones (RETX).
const SHORT = { request: 3000, udp: 1000, udpRetransmits: 3, retryMin: 40, retryMax: 200, destroyGrace: 100 }
const RETX = { ...SHORT, udp: 60 }

interface Got {
  req: UdpRequest
  rinfo: dgram.RemoteInfo
  at: number
}

/** What the script does with one decoded request: reply (bytes), or null to drop it. */
type Script = (got: Got, n: number, t: FakeUdpTracker) => Uint8Array | null | Array<Uint8Array>

class FakeUdpTracker {
  readonly got: Got[] = []
  /** Connection ids issued, newest last. */
  readonly issued: Uint8Array[] = []
  readonly socket: dgram.Socket
  private waiters: Array<{ n: number, resolve: () => void }> = []

  constructor (private readonly family: 4 | 6, public script: Script) {
    this.socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4')
    this.socket.on('message', (msg, rinfo) => {
      const d = decodeUdpRequest(new Uint8Array(msg))
      if (!d.ok) return
      const got = { req: d.value, rinfo, at: Date.now() }
      this.got.push(got)
      const out = this.script(got, this.got.length, this)
      for (const packet of out === null ? [] : Array.isArray(out) ? out : [out]) this.socket.send(packet, rinfo.port, rinfo.address)
      this.waiters = this.waiters.filter(w => {
        if (this.got.length >= w.n) { w.resolve(); return false }
        return true
      })
    })
  }

  async listen (): Promise<this> {
    this.socket.bind(0, this.family === 6 ? '::1' : '127.0.0.1')
    await once(this.socket, 'listening')
    return this
  }

  url (path = ''): string {
    const a = this.socket.address()
    return `udp://${this.family === 6 ? `[${a.address}]` : a.address}:${a.port}${path}`
  }

  /** A connect reply with a fresh connection id. */
  connect (got: Got): Uint8Array {
    const id = new Uint8Array(randomBytes(8))
    this.issued.push(id)
    return encodeConnectResponse(got.req.transactionId, id)
  }

  /** The default script: connect, announce with `peers`, scrape with counts from the hash bytes. */
  answer (got: Got, peers: PeerEntry[] = [], counts = { seeders: 2, leechers: 3 }): Uint8Array {
    const r = got.req
    if (r.action === 'connect') return this.connect(got)
    if (r.action === 'announce') return encodeAnnounceResponse(r.transactionId, 1800, counts.leechers, counts.seeders, peers)
    return encodeScrapeResponse(r.transactionId, r.infoHashes.map(h => ({
      infoHash: h, complete: h.charCodeAt(0), incomplete: h.charCodeAt(1), downloaded: 7
    })))
  }

  async requests (n: number): Promise<void> {
    if (this.got.length >= n) return
    await new Promise<void>(resolve => this.waiters.push({ n, resolve }))
  }

  actions (): string[] {
    return this.got.map(g => g.req.action)
  }

  close (): void {
    this.socket.close()
  }
}


async function tracker (script: Script, family: 4 | 6 = 4): Promise<FakeUdpTracker> {
  const t = await new FakeUdpTracker(family, script).listen()
  cleanups.push(() => t.close())
  return t
}

function client (opts: ClientArgs): Client {
  return testClient({ infoHash: HASH_HEX, peerId: PEER_HEX, port: 6881, timeouts: SHORT }, opts)
}

const signal = (): AbortSignal => AbortSignal.timeout(5000)

function announceOf (g: Got): Extract<UdpRequest, { action: 'announce' }> {
  assert.equal(g.req.action, 'announce')
  return g.req as Extract<UdpRequest, { action: 'announce' }>
}

describe('UDP tracker: requests', () => {
  it('connects, then announces every field with the URL path and query as BEP 41 URL data', async () => {
    const peers = [{ peerId: '', addr: compactAddr('10.0.0.1', 6881)! }, { peerId: '', addr: compactAddr('10.0.0.2', 65535)! }]
    const t = await tracker((g, _n, tr) => tr.answer(g, peers))
    const url = t.url('/announce?passkey=abc%20d&x=1')
    const c = client({ announce: url })
    const got = record<string>(c, 'peer')
    c.start({ uploaded: 5, downloaded: 6, left: 7, numwant: 9 })
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: url, infoHash: HASH_HEX, complete: 2, incomplete: 3 })
    assert.deepEqual(got, ['10.0.0.1:6881', '10.0.0.2:65535'])
    assert.deepEqual(t.actions(), ['connect', 'announce'])
    const a = announceOf(t.got[1])
    assert.deepEqual(a.connectionId, t.issued[0])
    assert.equal(a.urlData, '/announce?passkey=abc%20d&x=1')
    assert.deepEqual(a.request, {
      infoHash: HASH, peerId: PEER, port: 6881, uploaded: 5, downloaded: 6, left: 7,
      event: EVENT_STARTED, numwant: 9, compact: true, noPeerId: true, key: '0'
    })
  })

  it('sends unknown `left` as the largest u64, and no URL data when the URL has no path', async () => {
    const t = await tracker((g, _n, tr) => tr.answer(g))
    const c = client({ announce: t.url() })
    c.start()
    await once(c, 'update', { signal: signal() })
    const a = announceOf(t.got[1])
    assert.equal(a.request.left, Number.MAX_SAFE_INTEGER) // u64 0xFFFF… read back clamped
    assert.equal(a.request.numwant, 50)
    assert.equal(a.urlData, '')
  })

  it('reuses the connection id for later requests within a minute', async () => {
    const t = await tracker((g, _n, tr) => tr.answer(g))
    const c = client({ announce: t.url() })
    c.start()
    await once(c, 'update', { signal: signal() })
    c.complete()
    await once(c, 'update', { signal: signal() })
    c.scrape()
    await once(c, 'scrape', { signal: signal() })
    assert.deepEqual(t.actions(), ['connect', 'announce', 'announce', 'scrape'])
    assert.equal(t.issued.length, 1)
    for (const g of t.got.slice(1)) assert.deepEqual((g.req as { connectionId: Uint8Array }).connectionId, t.issued[0])
    assert.equal(announceOf(t.got[2]).request.event, EVENT_COMPLETED)
    assert.equal(announceOf(t.got[2]).request.left, 0)
  })

  it('connects again once the connection id is a minute old', async () => {
    const t = await tracker((g, _n, tr) => tr.answer(g))
    const c = client({ announce: t.url() })
    c.start()
    await once(c, 'update', { signal: signal() })
    const realNow = Date.now
    let shift = 59_000
    Date.now = () => realNow() + shift
    cleanups.push(() => { Date.now = realNow })
    c.update()
    await once(c, 'update', { signal: signal() })
    shift = 60_001
    c.update()
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(t.actions(), ['connect', 'announce', 'announce', 'connect', 'announce'])
    assert.deepEqual(announceOf(t.got[2]).connectionId, t.issued[0])
    assert.deepEqual(announceOf(t.got[4]).connectionId, t.issued[1])
  })

  it('scrapes many hashes in packets of at most 74, mapping answers by position', async () => {
    const hashes = Array.from({ length: 80 }, (_, i) => String.fromCharCode(i + 1, 200 - i) + HASH.slice(2))
    const t = await tracker((g, _n, tr) => tr.answer(g))
    const c = client({ announce: t.url() })
    const got = record<ScrapeData>(c, 'scrape')
    c.scrape({ infoHash: hashes.map(h => Buffer.from(h, 'latin1')) })
    while (got.length < 80) await once(c, 'scrape', { signal: signal() })
    const scrapes = t.got.filter(g => g.req.action === 'scrape').map(g => (g.req as { infoHashes: string[] }).infoHashes)
    assert.deepEqual(scrapes.map(s => s.length).sort((a, b) => a - b), [6, 74])
    assert.deepEqual(got.sort((a, b) => a.infoHash < b.infoHash ? -1 : 1), hashes.map((h, i) => ({
      announce: t.url(), infoHash: binaryToHex(h), complete: i + 1, incomplete: 200 - i, downloaded: 7
    })))
  })
})

describe('UDP tracker: answers', () => {
  it('ignores a reply with the wrong transaction id', async () => {
    const t = await tracker((g, _n, tr) => {
      if (g.req.action !== 'announce') return tr.answer(g)
      const tid = g.req.transactionId
      return [
        encodeAnnounceResponse((tid ^ 1) >>> 0, 1800, 99, 99, []), // forged: must be ignored
        encodeAnnounceResponse(tid, 1800, 4, 1, [])
      ]
    })
    const c = client({ announce: t.url() })
    const updates = record<UpdateData>(c, 'update')
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    await once(c, 'update', { signal: signal() })
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.deepEqual(updates, [{ announce: t.url(), infoHash: HASH_HEX, complete: 1, incomplete: 4 }])
    assert.deepEqual(warnings, [])
  })

  it('turns an error packet into a warning with the tracker\'s text, then backs off', async () => {
    const t = await tracker((g, n, tr) => {
      if (g.req.action === 'announce' && n === 2) return encodeError(g.req.transactionId, 'unregistered torrent ✗')
      return tr.answer(g)
    })
    const c = client({ announce: t.url() })
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, 'unregistered torrent ✗')
    assert.equal(w.announce, t.url())
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: t.url(), infoHash: HASH_HEX, complete: 2, incomplete: 3 })
    assert.deepEqual(t.actions(), ['connect', 'announce', 'announce'])
    assert.equal(announceOf(t.got[2]).request.event, EVENT_STARTED) // the unacknowledged `started` is retried
  })

  it('talks to an IPv6 tracker (udp://[::1]:port) and reads 18-byte peers', async () => {
    const peers = [{ peerId: '', addr: compactAddr('2001:db8::5', 7000)! }, { peerId: '', addr: compactAddr('::1', 6881)! }]
    const t = await tracker((g, _n, tr) => tr.answer(g, peers), 6)
    const c = client({ announce: t.url() })
    const got = record<string>(c, 'peer')
    c.start()
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: t.url(), infoHash: HASH_HEX, complete: 2, incomplete: 3 })
    assert.deepEqual(got, ['[2001:db8::5]:7000', '[::1]:6881'])
    assert.equal(t.got[0].rinfo.family, 'IPv6')
  })
})

describe('UDP tracker: timeouts', () => {
  it('retransmits with BEP 15 back-off (base · 2^n), warning once', async () => {
    // The schedule is read twice: the waits the client asks setTimeout for (exact), and the gaps
    // between its sends (dgram send calls, not this in-process tracker's reads: a busy loop
    // hands over queued datagrams back to back).
    const waits: number[] = []
    const sends: number[] = []
    const realSetTimeout = globalThis.setTimeout
    globalThis.setTimeout = function (fn: () => void, ms?: number, ...rest: unknown[]) {
      if (/UdpTracker\.transmit/.test(new Error().stack ?? '') && ms !== undefined) waits.push(ms)
      return realSetTimeout(fn, ms, ...rest)
    } as typeof setTimeout
    const send = dgram.Socket.prototype.send
    dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
      const p = args[0]
      // A connect request: the protocol id 0x41727101980 and action 0.
      if (p instanceof Uint8Array && p.length === 16 && p[2] === 0x04 && p[3] === 0x17 && p[11] === 0) sends.push(performance.now())
      return (send as (...a: unknown[]) => void).apply(this, args)
    } as typeof send
    cleanups.push(() => { globalThis.setTimeout = realSetTimeout; dgram.Socket.prototype.send = send })
    const t = await tracker((g, n, tr) => n <= 3 ? null : tr.answer(g))
    const c = client({ announce: t.url(), timeouts: RETX })
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(t.actions(), ['connect', 'connect', 'connect', 'connect', 'announce'])
    // connects with n = 0, 1, 2, 3, then the announce (same request, n = 3).
    assert.deepEqual(waits, [60, 120, 240, 480, 480])
    assert.equal(sends.length, 4)
    for (let i = 1; i < 4; i++) {
      const gap = sends[i] - sends[i - 1]
      const nominal = 60 * 2 ** (i - 1)
      // Node starts a timer from the loop's cached clock, which lags real time while a busy
      // loop runs, so on a loaded machine a gap can look shorter than its wait: the exact check
      // is `waits` above; here only that the sends really were spaced out by timers.
      assert.ok(gap > 0 && gap < nominal + 1000, `retransmission ${i} after ${gap.toFixed(1)} ms, expected ${nominal}`)
    }
    assert.deepEqual(warnings.map(w => w.message), [`tracker did not answer within 60 ms; retransmitting with BEP 15 back-off (${t.url()})`])
  })

  it('drops the connection id when an announce goes unanswered, and connects again', async () => {
    const t = await tracker((g, n, tr) => n === 2 ? null : tr.answer(g))
    const c = client({ announce: t.url(), timeouts: { ...RETX, udp: 500 } })
    c.start()
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(t.actions(), ['connect', 'announce', 'connect', 'announce'])
    assert.deepEqual(announceOf(t.got[3]).connectionId, t.issued[1])
  })

  it('gives up after the last retransmission, warns, and retries later with back-off', async () => {
    const t = await tracker(() => null)
    const c = client({ announce: t.url(), timeouts: { ...SHORT, udp: 20, udpRetransmits: 2, retryMin: 30, retryMax: 30 } })
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    while (warnings.length < 2) await once(c, 'warning', { signal: signal() })
    assert.deepEqual(warnings.map(w => w.message), [
      `tracker did not answer within 20 ms; retransmitting with BEP 15 back-off (${t.url()})`,
      `tracker did not answer after 3 tries (BEP 15 back-off) (${t.url()})`
    ])
    assert.equal(t.got.length, 3)
    await t.requests(4) // the back-off retry
    assert.equal(t.got[3].req.action, 'connect')
  })

  it('warns at once when the tracker port is closed (ECONNREFUSED on the connected socket)', async () => {
    const probe = dgram.createSocket('udp4')
    probe.bind(0, '127.0.0.1')
    await once(probe, 'listening')
    const port = probe.address().port
    probe.close()
    const url = `udp://127.0.0.1:${port}`
    const c = client({ announce: url, timeouts: { ...SHORT, udp: 5000 } })
    const started = Date.now()
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, `tracker unreachable: recvmsg ECONNREFUSED (${url})`)
    assert.ok(Date.now() - started < 1000)
  })
})
