/**
 * Abuse controls over real loopback sockets: per-address rate limits on HTTP, UDP and WS, the
 * ban of UDP sources that send bad connection ids, interval jitter, and trusted proxy ranges.
 * Buckets refill at 0.001/s so nothing refills during a test: every count is exact.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Server } from '../../src/server/server.js'
import { ERRORS } from '../../src/errors.js'
import { encodeAnnounceRequest, encodeConnectRequest } from '../../src/protocol/udp/codec.js'
import { decodeAnnounceResponse, encodeAnnounceQuery } from '../../src/protocol/http/announce.js'
import {
  hex, httpAnnounce, httpGet, httpScrape, id20, startServer, udpClient, wsClient
} from '../helpers/tracker-clients.js'
import type { StartedServer } from '../helpers/tracker-clients.js'
import type { ServerOptions } from '../../src/server/server.js'

const IH = id20(800)
const SLOW = 0.001

async function withServer (opts: ServerOptions, fn: (s: StartedServer) => Promise<void>): Promise<void> {
  const s = await startServer(opts)
  try { await fn(s) } finally { await s.close() }
}

const limitedWarnings = (s: StartedServer): number => s.warnings.filter(e => (e as { code?: string }).code === 'RATE_LIMITED').length

describe('rate limits', () => {
  it('HTTP: a burst, then a failure reason for announces and scrapes; other addresses unaffected', async () => {
    await withServer({ rateLimit: { http: { rate: SLOW, burst: 3 } } }, async (s) => {
      for (let i = 0; i < 3; i++) {
        const r = await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(1), port: 7000 })
        assert.equal(r.failure, undefined)
      }
      const r = await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(1), port: 7000 })
      assert.equal(r.failure, ERRORS.RATE_LIMITED)
      assert.equal(r.status, 200)
      assert.equal((await httpScrape(s.http4, [IH])).failure, ERRORS.RATE_LIMITED)
      assert.equal(limitedWarnings(s), 2)
      // ::1 is another address; /stats is not rate limited.
      assert.equal((await httpAnnounce(s.http6, { infoHash: IH, peerId: id20(2), port: 7001 })).failure, undefined)
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 200)
    })
  })

  it('HTTP behind a trusted proxy: limited per forwarded client address', async () => {
    await withServer({ trustProxy: true, rateLimit: { http: { rate: SLOW, burst: 1 } } }, async (s) => {
      const get = async (client: string): Promise<string | undefined> => {
        const q = encodeAnnounceQuery({ infoHash: IH, peerId: id20(3), port: 7002, uploaded: 0, downloaded: 0, left: 1, compact: true })
        const r = await httpGet(s.http4, `/announce?${q}`, { 'X-Forwarded-For': client })
        const d = decodeAnnounceResponse(r.body)
        assert.ok(d.ok)
        return d.value.failure
      }
      assert.equal(await get('198.51.100.1'), undefined)
      assert.equal(await get('198.51.100.1'), ERRORS.RATE_LIMITED)
      assert.equal(await get('198.51.100.2'), undefined)
      assert.equal(await get('2001:db8:0:1::5'), undefined)
      assert.equal(await get('2001:db8:0:1::6'), ERRORS.RATE_LIMITED, 'same IPv6 /64')
    })
  })

  it('UDP: packets over the limit are dropped without a reply (and without a warning each)', async () => {
    await withServer({ rateLimit: { udp: { rate: SLOW, burst: 2 } } }, async (s) => {
      const u = await udpClient(4, s.port)
      const u6 = await udpClient(6, s.port)
      try {
        const a = await u.announce({ infoHash: IH, peerId: id20(4), port: 7003 }) // connect + announce
        assert.equal(a.action, 'announce')
        const before = s.warnings.length
        assert.equal(await u.send(encodeConnectRequest(u.nextTransactionId())), undefined)
        assert.equal(await u.send(encodeConnectRequest(u.nextTransactionId())), undefined)
        assert.equal(s.warnings.length, before)
        assert.equal((await u6.announce({ infoHash: IH, peerId: id20(5), port: 7004 })).action, 'announce')
      } finally { u.close(); u6.close() }
    })
  })

  it('WS: upgrades and messages share a per-address bucket; over it a failure reason naming the torrent, or 429 for an upgrade', async () => {
    await withServer({ rateLimit: { ws: { rate: SLOW, burst: 4 } } }, async (s) => {
      const w = await wsClient(s.ws) // 1 token
      const w2 = await wsClient(s.ws) // 2
      try {
        const msg = { action: 'announce', info_hash: IH, peer_id: id20(6), numwant: 0, uploaded: 0, downloaded: 0, left: 1 }
        w.send(msg) // 3
        assert.equal((await w.next())['failure reason'], undefined)
        w.send(msg) // 4
        assert.equal((await w.next())['failure reason'], undefined)
        w.send(msg)
        assert.deepEqual(await w.next(), { action: 'announce', 'failure reason': ERRORS.RATE_LIMITED, info_hash: IH })
        w2.send({ action: 'scrape', info_hash: IH })
        assert.deepEqual(await w2.next(), { action: 'scrape', 'failure reason': ERRORS.RATE_LIMITED, info_hash: IH })
        await assert.rejects(wsClient(s.ws), /Unexpected server response: 429/)
        assert.equal(limitedWarnings(s), 3)
        // Another address is not limited.
        const w6 = await wsClient(`ws://[::1]:${s.port}`)
        await w6.close()
      } finally { await w.close(); await w2.close() }
    })
  })

  it('off by default: 300 requests from one address all succeed', async () => {
    await withServer({}, async (s) => {
      const u = await udpClient(4, s.port)
      try {
        for (let i = 0; i < 300; i++) assert.equal((await u.announce({ infoHash: IH, peerId: id20(7), port: 7005 })).action, 'announce')
      } finally { u.close() }
    })
  })

  it('bad options throw', () => {
    assert.throws(() => new Server({ rateLimit: { http: { rate: -1, burst: 1 } } }), /rate must be a positive number/)
    assert.throws(() => new Server({ rateLimit: { udp: { rate: 1, burst: 1 }, maxAddresses: 0 } }), /table size must be a positive integer/)
    assert.throws(() => new Server({ udpBadIdLimit: { max: 0, windowMs: 1, banMs: 1 } }), /max must be a positive integer/)
  })
})

describe('UDP sources of bad connection ids', () => {
  it('are ignored after `max` bad ids in the window (one warning), other addresses are not', async () => {
    await withServer({ udpBadIdLimit: { max: 3, windowMs: 60_000, banMs: 60_000 } }, async (s) => {
      const u = await udpClient(4, s.port)
      const u6 = await udpClient(6, s.port)
      try {
        await u.connect()
        const bad = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])
        const announce = (): Uint8Array => encodeAnnounceRequest({
          connectionId: bad,
          transactionId: u.nextTransactionId(),
          request: { infoHash: IH, peerId: id20(8), port: 7006, downloaded: 0, left: 1, uploaded: 0, event: 0, numwant: -1 }
        })
        assert.equal(await u.send(announce()), undefined)
        // A truncated announce with a bad id counts too.
        assert.equal(await u.send(announce().subarray(0, 40)), undefined)
        assert.equal(s.warnings.filter(e => e.message.startsWith('ignoring UDP')).length, 0)
        assert.equal(await u.send(announce()), undefined)
        assert.deepEqual(s.warnings.filter(e => e.message.startsWith('ignoring UDP')).map(e => e.message),
          ['ignoring UDP from 127.0.0.1 for a while: too many bad connection ids'])
        // Banned: even a connect gets nothing now.
        assert.equal(await u.send(encodeConnectRequest(u.nextTransactionId())), undefined)
        assert.equal((await u6.announce({ infoHash: IH, peerId: id20(9), port: 7007 })).action, 'announce')
      } finally { u.close(); u6.close() }
    })
  })

  it('off by default: bad ids are dropped but the source may still connect', async () => {
    await withServer({}, async (s) => {
      const u = await udpClient(4, s.port)
      try {
        const bad = Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9])
        for (let i = 0; i < 50; i++) {
          u.fire(encodeAnnounceRequest({
            connectionId: bad,
            transactionId: u.nextTransactionId(),
            request: { infoHash: IH, peerId: id20(10), port: 7008, downloaded: 0, left: 1, uploaded: 0, event: 0, numwant: -1 }
          }))
        }
        assert.deepEqual(await u.drain(), [])
        assert.equal((await u.announce({ infoHash: IH, peerId: id20(10), port: 7008 })).action, 'announce')
      } finally { u.close() }
    })
  })
})

describe('interval jitter', () => {
  const N = 60
  it('spreads HTTP, UDP and WS intervals within ±10% (never all equal); exact without jitter', async () => {
    await withServer({ interval: 600_000, intervalJitter: 0.1 }, async (s) => {
      const http: number[] = []
      const udp: number[] = []
      const ws: number[] = []
      const u = await udpClient(4, s.port)
      const w = await wsClient(s.ws)
      try {
        for (let i = 0; i < N; i++) {
          http.push((await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(11), port: 7009 })).interval!)
          const a = await u.announce({ infoHash: IH, peerId: id20(12), port: 7010 })
          assert.ok(a.action === 'announce')
          udp.push(a.interval)
          w.send({ action: 'announce', info_hash: IH, peer_id: id20(13), numwant: 0, uploaded: 0, downloaded: 0, left: 1 })
          ws.push((await w.next()).interval as number)
        }
      } finally { u.close(); await w.close() }
      for (const [name, values, lo, hi] of [['http', http, 540, 660], ['udp', udp, 540, 660], ['ws', ws, 108, 132]] as const) {
        assert.equal(values.length, N)
        for (const v of values) assert.ok(Number.isInteger(v) && v >= lo && v <= hi, `${name} interval ${v} outside ${lo}..${hi}`)
        assert.ok(new Set(values).size > 1, `${name}: all ${N} intervals equal (${values[0]})`)
      }
    })
    await withServer({ interval: 600_000 }, async (s) => {
      for (let i = 0; i < 10; i++) assert.equal((await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(14), port: 7011 })).interval, 600)
    })
  })

  it('refuses a jitter outside 0..0.5', () => {
    assert.throws(() => new Server({ intervalJitter: 0.6 }), /^RangeError: intervalJitter must be between 0 and 0.5$/)
    assert.throws(() => new Server({ intervalJitter: -0.1 }), /intervalJitter must be between/)
    assert.throws(() => new Server({ intervalJitter: Number.NaN }), /intervalJitter must be between/)
  })
})

describe('trustProxy as a list of proxies', () => {
  const announceVia = async (s: StartedServer, base: string, peer: number, port: number): Promise<void> => {
    const q = encodeAnnounceQuery({ infoHash: IH, peerId: id20(peer), port, uploaded: 0, downloaded: 0, left: 1, compact: true })
    const r = decodeAnnounceResponse((await httpGet(base, `/announce?${q}`, { 'X-Forwarded-For': '203.0.113.50, 198.51.100.9' })).body)
    assert.ok(r.ok && r.value.failure === undefined)
  }
  const keys = (s: StartedServer): string[] => [...s.server.torrents[hex(IH)].peers.keys()].sort()

  it('takes X-Forwarded-For only from a listed proxy address', async () => {
    await withServer({ trustProxy: ['10.0.0.0/8'] }, async (s) => {
      await announceVia(s, s.http4, 15, 7012)
      assert.deepEqual(keys(s), ['127.0.0.1:7012'])
    })
    await withServer({ trustProxy: ['127.0.0.1/32', '::1'] }, async (s) => {
      await announceVia(s, s.http4, 15, 7012)
      await announceVia(s, s.http6, 16, 7013)
      assert.deepEqual(keys(s), ['198.51.100.9:7012', '198.51.100.9:7013'])
      // WebSocket upgrades follow the same rule.
      const w = await wsClient(s.ws, { headers: { 'X-Forwarded-For': '198.51.100.77' } })
      try {
        w.send({ action: 'announce', info_hash: IH, peer_id: id20(17), numwant: 0, uploaded: 0, downloaded: 0, left: 1 })
        await w.next()
        assert.equal(s.server.torrents[hex(IH)].peers.get(hex(id20(17)))?.ip, '198.51.100.77')
      } finally { await w.close() }
    })
  })

  it('a bad entry throws at construction', () => {
    assert.throws(() => new Server({ trustProxy: ['127.0.0.1/40'] }), /invalid prefix length in proxy list: 127.0.0.1\/40/)
  })
})
