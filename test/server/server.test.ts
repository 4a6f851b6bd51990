/**
 * The running Server over real sockets on loopback: every scenario on HTTP v4, HTTP v6, UDP v4,
 * UDP v6 and WS (one describe per transport), then transport-specific behaviour, the façade
 * (listen/close/properties/mounting), /stats, and expiry.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import http from 'node:http'
import net from 'node:net'
import { WebSocketServer } from 'ws'
import { Server } from '../../src/server/server.js'
import type { ServerOptions } from '../../src/server/server.js'
import type { RequestParams } from '../../src/server/frontends/context.js'
import { ConnectionIds } from '../../src/server/frontends/connection-id.js'
import { BatchUdpSocket } from '../../src/server/frontends/udp-batch.js'
import { bdecode } from '../../src/protocol/common/bencode.js'
import type { BDict } from '../../src/protocol/common/bencode.js'
import { compactAddr } from '../../src/protocol/common/address.js'
import {
  encodeAnnounceRequest as encodeUdpAnnounce, encodeConnectRequest, encodeScrapeRequest as encodeUdpScrape
} from '../../src/protocol/udp/codec.js'
import {
  DEFAULT_NUMWANT, MAX_UDP_PEERS, UDP_CONNECTION_ID_WINDOW_MS, WS_MAX_OFFERS, WS_MAX_PAYLOAD
} from '../../src/constants.js'
import {
  AgentPool, TRANSPORTS, closeServer, hex, httpAnnounce, httpGet, httpScrape, id20, startServer,
  udpClient, waitFor, wsClient, withTimeout, REPLY_TIMEOUT_MS, UDP_BACKEND
} from '../helpers/tracker-clients.js'
import type { Agent, StartedServer, TransportName } from '../helpers/tracker-clients.js'

/** Info hashes whose bytes include 0x00 and values ≥ 0x80 (the bencode/UTF-8 trap). */
const IH = Buffer.from('00ff80c3a9e282ac0001feed7f8081a0ffee0000', 'hex').toString('latin1')
const IH2 = Buffer.from('ff00000000000000000000000000000000000080', 'hex').toString('latin1')
const IH3 = id20(3)

/** The reference package's /stats.json fields of a document. */
function referenceFields (d: Record<string, unknown>): Record<string, unknown> {
  const keys = ['torrents', 'activeTorrents', 'peersAll', 'peersSeederOnly', 'peersLeecherOnly', 'peersSeederAndLeecher', 'peersIPv4', 'peersIPv6', 'clients']
  return Object.fromEntries(keys.map(k => [k, d[k]]))
}

async function withServer (opts: ServerOptions, fn: (s: StartedServer, pool: AgentPool) => Promise<void>): Promise<void> {
  const s = await startServer(opts)
  const pool = new AgentPool(s)
  try {
    await fn(s, pool)
  } finally {
    await pool.closeAll()
    await s.close()
  }
}

/** Distinct peers on one transport: peer ids id20(1000 + i), ports 20000 + i. */
async function agents (pool: AgentPool, t: TransportName, n: number, first = 0): Promise<Agent[]> {
  const out: Agent[] = []
  for (let i = first; i < first + n; i++) out.push(await pool.create(t, id20(1000 + i), 20000 + i))
  return out
}

function sorted (a: Iterable<string>): string[] {
  return Array.from(a).sort()
}

function keysOf (s: StartedServer | Server, ih: string): string[] {
  const t = (s instanceof Server ? s : s.server).torrents[hex(ih)]
  return t === undefined ? [] : sorted(t.peers.keys())
}

// =============================================================================================
// Scenarios run on every transport
// =============================================================================================

for (const t of TRANSPORTS) {
  const ws = t === 'WS'
  describe(`${t}: announce and scrape`, () => {
    it('counts a leecher and a seeder in the reply and in server.torrents', async () => {
      await withServer({}, async (s, pool) => {
        const [l, sd] = await agents(pool, t, 2)
        const r1 = await l.announce(IH, { event: 'started', left: 500 })
        assert.equal(r1.failure, undefined)
        assert.equal(r1.complete, 0)
        assert.equal(r1.incomplete, 1)
        assert.deepEqual(r1.peers, [])
        const r2 = await sd.announce(IH, { event: 'started', left: 0 })
        assert.equal(r2.complete, 1)
        assert.equal(r2.incomplete, 1)
        assert.deepEqual(r2.peers, [l.key])

        const view = s.server.torrents[hex(IH)]
        assert.ok(view !== undefined)
        assert.equal(view.infoHash, hex(IH))
        assert.equal(view.complete, 1)
        assert.equal(view.incomplete, 1)
        assert.deepEqual(sorted(view.peers.keys()), sorted([l.key, sd.key]))
        assert.equal(view.peers.get(l.key)?.complete, false)
        assert.equal(view.peers.get(sd.key)?.complete, true)
        assert.equal(view.peers.get(l.key)?.peerId, hex(l.peerId))
        assert.equal(view.peers.get(sd.key)?.type, ws ? 'ws' : 'http/udp')
        assert.deepEqual(Object.keys(s.server.torrents), [hex(IH)])
        // Upper-case hex finds the same swarm; an unknown one is undefined.
        assert.equal(s.server.torrents[hex(IH).toUpperCase()]?.complete, 1)
        assert.equal(s.server.torrents[hex(IH2)], undefined)
      })
    })

    it('`completed` makes a seeder whatever `left` says, and counts one download', async () => {
      await withServer({}, async (s, pool) => {
        // The reference client's complete() sends its default `left` (HTTP 16384, UDP 2^64-1, WS none).
        const [a, b] = await agents(pool, t, 2)
        assert.equal((await a.announce(IH, { event: 'started', left: 16384 })).incomplete, 1)
        const r1 = await a.announce(IH, { event: 'completed', left: 16384 })
        assert.deepEqual([r1.failure, r1.complete, r1.incomplete], [undefined, 1, 0])
        assert.equal(s.server.torrents[hex(IH)]?.peers.get(a.key)?.complete, true)
        // Completed again: still one seeder, still one download.
        const r2 = await a.announce(IH, { event: 'completed', left: 16384 })
        assert.deepEqual([r2.complete, r2.incomplete], [1, 0])
        // A peer whose first announce is `completed` comes in as a seeder, and is a download.
        const r3 = await b.announce(IH, { event: 'completed', left: 7 })
        assert.deepEqual([r3.complete, r3.incomplete], [2, 0])
        const sc = await a.scrape([IH])
        assert.deepEqual(sc.files.get(IH), { complete: 2, incomplete: 0, downloaded: 2 })
        assert.deepEqual([s.server.torrents[hex(IH)]?.complete, s.server.torrents[hex(IH)]?.incomplete, s.server.torrents[hex(IH)]?.downloaded], [2, 0, 2])
      })
    })

    it('never answers the asker with itself, and gives seeders only leechers', async () => {
      await withServer({}, async (s, pool) => {
        const [l1, l2, s1, s2] = await agents(pool, t, 4)
        await l1.announce(IH, { event: 'started' })
        await l2.announce(IH, { event: 'started' })
        await s1.announce(IH, { event: 'started', left: 0 })
        await s2.announce(IH, { event: 'started', left: 0 })
        // Everyone fits in numwant, so the answers are exact sets (bounded repeats: picks are random).
        for (let i = 0; i < 3; i++) {
          assert.deepEqual(sorted((await l1.announce(IH)).peers), sorted([l2.key, s1.key, s2.key]))
          assert.deepEqual(sorted((await s1.announce(IH, { left: 0 })).peers), sorted([l1.key, l2.key]))
          assert.deepEqual(sorted((await s2.announce(IH, { left: 0 })).peers), sorted([l1.key, l2.key]))
        }
        // A lone peer gets nobody, not itself.
        assert.deepEqual((await l1.announce(IH2, { event: 'started' })).peers, [])
        assert.deepEqual((await l1.announce(IH2)).peers, [])
        assert.equal(s.server.torrents[hex(IH)]?.complete, 2)
        assert.equal(s.server.torrents[hex(IH)]?.incomplete, 2)
      })
    })

    it('completed turns a leecher into a seeder; scrape counts every completion', async () => {
      await withServer({}, async (s, pool) => {
        const [a, b, c] = await agents(pool, t, 3)
        await a.announce(IH, { event: 'started' })
        await b.announce(IH, { event: 'started' })
        await c.announce(IH, { event: 'started' })
        const ra = await a.announce(IH, { event: 'completed', left: 0 })
        assert.equal(ra.complete, 1)
        assert.equal(ra.incomplete, 2)
        const rb = await b.announce(IH, { event: 'completed', left: 0 })
        assert.equal(rb.complete, 2)
        assert.equal(rb.incomplete, 1)
        // A repeated `completed` from a seeder is not a second download.
        await a.announce(IH, { event: 'completed', left: 0 })
        const view = s.server.torrents[hex(IH)]!
        assert.equal(view.complete, 2)
        assert.equal(view.incomplete, 1)
        assert.equal(view.downloaded, 2)
        assert.equal(view.peers.get(a.key)?.complete, true)
        assert.equal(view.peers.get(c.key)?.complete, false)
        const sc = await c.scrape([IH])
        assert.equal(sc.failure, undefined)
        assert.deepEqual(sc.files.get(IH), { complete: 2, incomplete: 1, downloaded: 2 })
      })
    })

    it('stopped removes the peer; the last one leaving drops the swarm but keeps downloaded', async () => {
      await withServer({}, async (s, pool) => {
        const [a, b] = await agents(pool, t, 2)
        await a.announce(IH, { event: 'started' })
        await b.announce(IH, { event: 'started' })
        await b.announce(IH, { event: 'completed', left: 0 })
        const r = await a.announce(IH, { event: 'stopped' })
        assert.equal(r.failure, undefined)
        assert.deepEqual(keysOf(s, IH), [b.key])
        assert.equal(s.server.torrents[hex(IH)]?.incomplete, 0)
        // b no longer gets a as a peer.
        assert.deepEqual((await b.announce(IH, { left: 0 })).peers, [])
        await b.announce(IH, { event: 'stopped', left: 0 })
        assert.deepEqual(Object.keys(s.server.torrents), [])
        assert.equal(s.server.torrents[hex(IH)], undefined)
        const sc = await a.scrape([IH])
        assert.deepEqual(sc.files.get(IH), { complete: 0, incomplete: 0, downloaded: 1 })
        // Stopping a peer that is not there changes nothing.
        const again = await a.announce(IH, { event: 'stopped' })
        assert.equal(again.failure, undefined)
        assert.deepEqual(Object.keys(s.server.torrents), [])
      })
    })

    it('scrapes info hashes holding 0x00 and bytes >= 0x80 exactly', async () => {
      await withServer({}, async (_s, pool) => {
        const [a, b] = await agents(pool, t, 2)
        await a.announce(IH, { event: 'started', left: 0 })
        await b.announce(IH2, { event: 'started' })
        const sc = await a.scrape([IH, IH2, IH3])
        assert.equal(sc.failure, undefined)
        assert.deepEqual(sorted(sc.files.keys()), sorted([IH, IH2, IH3]))
        assert.deepEqual(sc.files.get(IH), { complete: 1, incomplete: 0, downloaded: 0 })
        assert.deepEqual(sc.files.get(IH2), { complete: 0, incomplete: 1, downloaded: 0 })
        assert.deepEqual(sc.files.get(IH3), { complete: 0, incomplete: 0, downloaded: 0 })
      })
    })

    it('tells clients the interval option (HTTP also min interval; WS a fifth)', async () => {
      await withServer({ interval: 120_000 }, async (_s, pool) => {
        const [a] = await agents(pool, t, 1)
        const r = await a.announce(IH, { event: 'started' })
        assert.equal(r.interval, ws ? 24 : 120)
        assert.equal(r.minInterval, t.startsWith('HTTP') ? 60 : undefined)
      })
      await withServer({}, async (_s, pool) => {
        const [a] = await agents(pool, t, 1)
        const r = await a.announce(IH, { event: 'started' })
        assert.equal(r.interval, ws ? 120 : 600)
        assert.equal(r.minInterval, t.startsWith('HTTP') ? 300 : undefined)
      })
    })

    it("fires 'start', 'update', 'complete', 'stop' with the peer's ip:port", async () => {
      await withServer({}, async (s, pool) => {
        const [a] = await agents(pool, t, 1)
        const seen: Array<[string, string]> = []
        for (const name of ['start', 'complete', 'update', 'stop']) {
          s.server.on(name, (addr: string) => seen.push([name, addr]))
        }
        await a.announce(IH, { event: 'started' })
        await a.announce(IH)
        await a.announce(IH, { event: 'paused' })
        await a.announce(IH, { event: 'completed', left: 0 })
        await a.announce(IH, { event: 'stopped', left: 0 })
        assert.deepEqual(seen, [['start', a.addr], ['update', a.addr], ['update', a.addr], ['complete', a.addr], ['stop', a.addr]])
        assert.match(a.addr, ws ? /^127\.0\.0\.1:\d+$/ : t.endsWith('v6') ? /^\[::1\]:20000$/ : /^127\.0\.0\.1:20000$/)
      })
    })

    describe('filter', () => {
      const allowing: Array<[string, ServerOptions['filter']]> = [
        ['cb(true)', (_ih, _p, cb) => cb(true)],
        ['cb()', (_ih, _p, cb) => cb()],
        ['cb(null)', (_ih, _p, cb) => cb(null)],
        ['cb(true) later', (_ih, _p, cb) => { setImmediate(() => cb(true)) }]
      ]
      for (const [name, filter] of allowing) {
        it(`allows with ${name}`, async () => {
          await withServer({ filter }, async (s, pool) => {
            const [a] = await agents(pool, t, 1)
            const r = await a.announce(IH, { event: 'started' })
            assert.equal(r.failure, undefined)
            assert.equal(r.incomplete, 1)
            assert.deepEqual(keysOf(s, IH), [a.key])
          })
        })
      }

      const refusing: Array<[string, ServerOptions['filter'], string]> = [
        ['cb(false) with a generic reason', (_ih, _p, cb) => cb(false), 'disallowed torrent'],
        ["cb(new Error('custom')) with that reason", (_ih, _p, cb) => cb(new Error('custom')), 'custom'],
        ['a filter that throws', () => { throw new Error('boom') }, 'torrent filter failed'],
        // An async filter that throws is a filter that throws: its error text is not for clients.
        ['an async filter that throws', async () => { throw new Error('boom') }, 'torrent filter failed']
      ]
      for (const [name, filter, reason] of refusing) {
        it(`refuses with ${name}`, async () => {
          await withServer({ filter }, async (s, pool) => {
            const [a, b] = await agents(pool, t, 2)
            const before = s.warnings.length
            const r = await a.announce(IH, { event: 'started' })
            assert.equal(r.failure, reason)
            assert.deepEqual(Object.keys(s.server.torrents), [])
            assert.equal(s.server.getStats().peersAll, 0)
            // Refusals are warnings; a throwing filter's own error is one too.
            const messages = s.warnings.slice(before).map(w => w.message)
            assert.ok(messages.includes(reason), `warnings: ${JSON.stringify(messages)}`)
            if (reason === 'torrent filter failed') assert.ok(messages.includes('boom'))
            // The server keeps serving.
            assert.equal((await b.announce(IH, { event: 'started' })).failure, reason)
          })
        })
      }

      it('refuses on the wire in the protocol’s own form', async () => {
        await withServer({ filter: (_ih, _p, cb) => cb(new Error('custom')) }, async (s) => {
          if (t.startsWith('HTTP')) {
            const r = await httpGet(t === 'HTTP v6' ? s.http6 : s.http4,
              `/announce?info_hash=${encodeURIComponent('a'.repeat(20))}&peer_id=${'b'.repeat(20)}&port=1`)
            assert.equal(r.status, 200)
            assert.equal(r.body.toString('latin1'), 'd14:failure reason6:custome')
          } else if (t.startsWith('UDP')) {
            const c = await udpClient(t === 'UDP v6' ? 6 : 4, s.port)
            try {
              const cid = await c.connect()
              const raw = await c.send(encodeUdpAnnounce({
                connectionId: cid,
                transactionId: 0x01020304,
                request: { infoHash: IH, peerId: id20(1), port: 1, downloaded: 0, left: 1, uploaded: 0, event: 2, numwant: -1 }
              }), REPLY_TIMEOUT_MS)
              assert.deepEqual(raw, Buffer.from('0000000301020304' + Buffer.from('custom').toString('hex'), 'hex'))
            } finally { c.close() }
          } else {
            const c = await wsClient(s.ws)
            try {
              c.send({ action: 'announce', info_hash: IH, peer_id: id20(1), numwant: 0, uploaded: 0, downloaded: 0, left: 0 })
              assert.equal(await c.nextRaw(REPLY_TIMEOUT_MS), JSON.stringify({ action: 'announce', 'failure reason': 'custom', info_hash: IH }))
            } finally { await c.close() }
          }
        })
      })

      it('gets the request params (hex ids, type, custom params / BEP 41 url)', async () => {
        const seen: Array<[string, RequestParams]> = []
        await withServer({ filter: (ih, params, cb) => { seen.push([ih, params]); cb(true) } }, async (s, pool) => {
          const [a] = await agents(pool, t, 1)
          await a.announce(IH, {
            event: 'started', left: 77, numwant: 9, extra: { passkey: 'abc', 'x y': 'é' }, urlData: '/announce?passkey=abc'
          })
          assert.equal(seen.length, 1)
          const [ih, p] = seen[0]
          assert.equal(ih, hex(IH))
          assert.equal(p.info_hash, hex(IH))
          assert.equal(p.peer_id, hex(a.peerId))
          assert.equal(p.action, 'announce')
          assert.equal(p.event, 'started')
          assert.equal(p.left, 77)
          assert.equal(p.type, t.startsWith('HTTP') ? 'http' : t.startsWith('UDP') ? 'udp' : 'ws')
          assert.equal(p.addr, a.addr)
          assert.equal(p.ip, t.endsWith('v6') ? '::1' : '127.0.0.1')
          if (t.startsWith('HTTP')) {
            assert.equal(p.passkey, 'abc')
            assert.equal(p['x y'], 'é')
            assert.equal(p.numwant, 9)
            assert.equal(p.port, 20000)
          } else if (t.startsWith('UDP')) {
            assert.equal(p.url, '/announce?passkey=abc')
            assert.equal(p.numwant, 9)
            assert.equal(p.port, 20000)
          } else {
            // Custom fields of a WS announce are kept like HTTP custom params.
            assert.equal(p.passkey, 'abc')
            assert.equal(p['x y'], 'é')
            assert.equal(p.numwant, 9)
            assert.equal(p.offers, undefined)
          }
          void s
        })
      })
    })
  })
}

// =============================================================================================
// numwant (HTTP and UDP give peer lists; WS relays one offer per peer)
// =============================================================================================

for (const t of ['HTTP v4', 'HTTP v6', 'UDP v4', 'UDP v6'] as const) {
  describe(`${t}: numwant`, () => {
    it('defaults to 50 and is capped (UDP: one datagram of 74 peers)', async () => {
      await withServer({}, async (s, pool) => {
        const peers = await agents(pool, t, 80)
        for (const p of peers) assert.equal((await p.announce(IH, { event: 'started' })).failure, undefined)
        assert.equal(s.server.torrents[hex(IH)]?.incomplete, 80)
        const asker = peers[0]
        const byDefault = await asker.announce(IH)
        assert.equal(byDefault.peers.length, DEFAULT_NUMWANT)
        assert.equal(new Set(byDefault.peers).size, DEFAULT_NUMWANT)
        assert.ok(!byDefault.peers.includes(asker.key))
        const many = await asker.announce(IH, { numwant: 1000 })
        assert.equal(many.peers.length, t.startsWith('UDP') ? MAX_UDP_PEERS : 79)
        assert.equal(new Set(many.peers).size, many.peers.length)
        assert.ok(!many.peers.includes(asker.key))
        const few = await asker.announce(IH, { numwant: 3 })
        assert.equal(few.peers.length, 3)
        const none = await asker.announce(IH, { numwant: 0 })
        assert.deepEqual(none.peers, [])
        assert.equal(none.incomplete, 80)
      })
    })

    it('never gives more than the maxNumwant option', async () => {
      await withServer({ maxNumwant: 30 }, async (_s, pool) => {
        const peers = await agents(pool, t, 40)
        for (const p of peers) await p.announce(IH, { event: 'started' })
        assert.equal((await peers[5].announce(IH, { numwant: 1000 })).peers.length, 30)
        assert.equal((await peers[5].announce(IH)).peers.length, 30)
      })
    })
  })
}

// =============================================================================================
// HTTP specifics
// =============================================================================================

describe('HTTP specifics', () => {
  it('compact: IPv4 peers in `peers` (6 bytes), IPv6 peers in `peers6` (18 bytes), for askers of both families', async () => {
    await withServer({}, async (s, pool) => {
      const v4 = await pool.create('HTTP v4', id20(1), 6881)
      const v6 = await pool.create('HTTP v6', id20(2), 6882)
      await v4.announce(IH, { event: 'started' })
      await v6.announce(IH, { event: 'started' })
      const asker4 = await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(3), port: 6883, numwant: 50 })
      const d4 = bdecode(asker4.body)
      assert.ok(d4.ok)
      const dict4 = d4.value as BDict
      assert.deepEqual(Buffer.from(dict4.peers as Uint8Array), Buffer.from(compactAddr('127.0.0.1', 6881)!, 'latin1'))
      assert.deepEqual(Buffer.from(dict4.peers6 as Uint8Array), Buffer.from(compactAddr('::1', 6882)!, 'latin1'))
      assert.equal((dict4.peers6 as Uint8Array).length, 18)
      // An IPv6 asker: its own entry never comes back; the IPv4 peers do.
      const asker6 = await httpAnnounce(s.http6, { infoHash: IH, peerId: id20(4), port: 6884 })
      const dict6 = (bdecode(asker6.body) as { ok: true, value: BDict }).value
      assert.equal((dict6.peers as Uint8Array).length, 12) // 127.0.0.1:6881 and :6883
      assert.deepEqual(Buffer.from(dict6.peers6 as Uint8Array), Buffer.from(compactAddr('::1', 6882)!, 'latin1'))
      // The exact bytes of a compact answer.
      const lone = await httpAnnounce(s.http4, { infoHash: IH2, peerId: id20(5), port: 1 })
      assert.equal(lone.body.toString('latin1'), 'd8:completei0e10:incompletei1e8:intervali600e12:min intervali300e5:peers0:e')
    })
  })

  it('non-compact: a list of {ip, peer id, port}; no_peer_id leaves the id out', async () => {
    await withServer({}, async (s, pool) => {
      const v4 = await pool.create('HTTP v4', id20(1), 6881)
      const v6 = await pool.create('HTTP v6', id20(2), 6882)
      await v4.announce(IH, { event: 'started' })
      await v6.announce(IH, { event: 'started' })
      const r = await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(3), port: 6883, compact: false })
      const d = (bdecode(r.body) as { ok: true, value: BDict }).value
      const list = (d.peers as BDict[]).map(p => ({
        ip: Buffer.from(p.ip as Uint8Array).toString(),
        port: p.port,
        peerId: Buffer.from(p['peer id'] as Uint8Array).toString('latin1')
      })).sort((a, b) => a.port as number - (b.port as number))
      assert.deepEqual(list, [{ ip: '127.0.0.1', port: 6881, peerId: id20(1) }, { ip: '::1', port: 6882, peerId: id20(2) }])
      assert.equal(d.peers6, undefined)
      const q = `info_hash=${pct(IH)}&peer_id=${pct(id20(4))}&port=6884&compact=0&no_peer_id=1`
      const r2 = await httpGet(s.http4, `/announce?${q}`)
      const d2 = (bdecode(r2.body) as { ok: true, value: BDict }).value
      assert.equal((d2.peers as BDict[]).length, 3)
      for (const p of d2.peers as BDict[]) assert.deepEqual(Object.keys(p).sort(), ['ip', 'port'])
    })
  })

  it('scrape: `files` keys are the raw 20 bytes, byte for byte', async () => {
    await withServer({}, async (s) => {
      await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(1), port: 1, left: 0 })
      await httpAnnounce(s.http4, { infoHash: IH2, peerId: id20(1), port: 1 })
      const r = await httpScrape(s.http4, [IH2, IH])
      const entry = (ih: string, c: number, i: number): string => `20:${ih}d8:completei${c}e10:downloadedi0e10:incompletei${i}ee`
      // Sorted by raw bytes: IH (0x00…) before IH2 (0xff…).
      const expected = `d5:filesd${entry(IH, 1, 0)}${entry(IH2, 0, 1)}e5:flagsd20:min_request_intervali300eee`
      assert.deepEqual(r.body, Buffer.from(expected, 'latin1'))
      assert.equal(r.headers['content-type'], 'text/plain; charset=ISO-8859-1')
    })
  })

  it('scrape of up to 74 hashes, and a full scrape without info_hash', async () => {
    await withServer({}, async (s) => {
      await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(1), port: 1 })
      const hashes = Array.from({ length: 74 }, (_, i) => id20(500 + i))
      const r = await httpScrape(s.http4, [IH, ...hashes.slice(1)])
      assert.equal(r.files.length, 74)
      const full = await httpScrape(s.http4, [])
      assert.deepEqual(full.files, [{ infoHash: IH, complete: 0, incomplete: 1, downloaded: 0 }])
    })
  })

  it('ignores X-Forwarded-For unless trustProxy', async () => {
    for (const trustProxy of [false, true]) {
      await withServer({ trustProxy }, async (s) => {
        const q = `info_hash=${pct(IH)}&peer_id=${pct(id20(1))}&port=7000`
        await httpGet(s.http4, `/announce?${q}`, { 'X-Forwarded-For': '198.51.100.7' })
        assert.deepEqual(keysOf(s, IH), [trustProxy ? '198.51.100.7:7000' : '127.0.0.1:7000'])
      })
    }
  })
})

function pct (b: string): string {
  return Buffer.from(b, 'latin1').toString('hex').replace(/../g, '%$&')
}

// =============================================================================================
// UDP specifics
// =============================================================================================

for (const family of [4, 6] as const) {
  const t: TransportName = family === 4 ? 'UDP v4' : 'UDP v6'
  const stride = family === 4 ? 6 : 18
  describe(`${t} specifics`, () => {
    it(`answers with ${stride}-byte peers of its own family only`, async () => {
      await withServer({}, async (s, pool) => {
        const same = await agents(pool, t, 3)
        const other = await pool.create(family === 4 ? 'UDP v6' : 'UDP v4', id20(9), 9999)
        const overHttp = await pool.create(family === 4 ? 'HTTP v6' : 'HTTP v4', id20(8), 9998)
        for (const a of [...same, other, overHttp]) await a.announce(IH, { event: 'started' })
        const c = await udpClient(family, s.port)
        try {
          const r = await c.announce({ infoHash: IH, peerId: id20(7), port: 9997 })
          assert.equal(r.action, 'announce')
          assert.equal(r.raw.length, 20 + 3 * stride)
          const ip = family === 4 ? '127.0.0.1' : '::1'
          const expected = same.map((_, i) => Buffer.from(compactAddr(ip, 20000 + i)!, 'latin1').toString('hex')).sort()
          const got = Array.from({ length: 3 }, (_, i) => r.raw.subarray(20 + i * stride, 20 + (i + 1) * stride).toString('hex')).sort()
          assert.deepEqual(got, expected)
          // leechers counts every peer of the swarm, whatever its family.
          assert.equal(r.action === 'announce' && r.leechers, 6)
        } finally { c.close() }
      })
    })

    it('a connect gets exactly 16 bytes back, even for a longer request', async () => {
      await withServer({}, async (s) => {
        const c = await udpClient(family, s.port)
        try {
          const req = encodeConnectRequest(0xdeadbeef)
          const r1 = await c.send(req, REPLY_TIMEOUT_MS)
          assert.equal(r1?.length, 16)
          assert.equal(r1?.readUInt32BE(0), 0)
          assert.equal(r1?.readUInt32BE(4), 0xdeadbeef)
          const longer = Buffer.concat([req, Buffer.alloc(40)])
          const r2 = await c.send(longer, REPLY_TIMEOUT_MS)
          assert.equal(r2?.length, 16)
          // Same source, same window: the same id.
          assert.deepEqual(r2?.subarray(8), r1?.subarray(8))
        } finally { c.close() }
      })
    })

    it('an announce reply never exceeds one datagram (74 peers at most)', async () => {
      await withServer({}, async (s) => {
        const c = await udpClient(family, s.port)
        try {
          for (let i = 0; i < 90; i++) {
            const r = await c.announce({ infoHash: IH, peerId: id20(i), port: 30000 + i })
            assert.equal(r.action, 'announce')
          }
          const r = await c.announce({ infoHash: IH, peerId: id20(200), port: 31000, numwant: 0x7fffffff })
          assert.equal(r.raw.length, 20 + MAX_UDP_PEERS * stride)
          assert.ok(r.raw.length <= 1400)
        } finally { c.close() }
      })
    })

    it('drops packets with an unknown, foreign or stale connection id (no reply at all)', async () => {
      const secret = Buffer.alloc(32, 7)
      await withServer({ udpSecret: secret }, async (s) => {
        const c = await udpClient(family, s.port)
        const other = await udpClient(family, s.port)
        try {
          const ip = family === 4 ? '127.0.0.1' : '::1'
          const announce = (cid: Uint8Array, port = 1234): Uint8Array => encodeUdpAnnounce({
            connectionId: cid,
            transactionId: 42,
            request: { infoHash: IH, peerId: id20(1), port, downloaded: 0, left: 1, uploaded: 0, event: 2, numwant: -1 }
          })
          // Ids are a MAC of the source address and the time window, under the server's secret.
          const ids = new ConnectionIds({ secret })
          const stale = ids.issue(ip, Date.now() - 3 * UDP_CONNECTION_ID_WINDOW_MS)
          const foreign = ids.issue(family === 4 ? '192.0.2.1' : '2001:db8::1', Date.now())
          const warnings = s.warnings.length
          for (const p of [announce(Buffer.alloc(8, 0x55)), announce(stale), announce(foreign), encodeUdpScrape(stale, 43, [IH])]) c.fire(p)
          assert.deepEqual(await c.drain(), [])
          assert.deepEqual(Object.keys(s.server.torrents), [])
          assert.deepEqual(s.warnings.slice(warnings).map(w => w.message), Array(4).fill('malformed packet: unknown or expired connection id'))
          // An id minted with the shared secret for this address and window is accepted (udpSecret works) …
          const ok = await c.send(announce(ids.issue(ip, Date.now())), REPLY_TIMEOUT_MS)
          assert.equal(ok?.readUInt32BE(0), 1)
          // … and so is one another socket of the same address was given (libtorrent shares ids).
          const shared = await c.send(announce(await other.connect(), 1235), REPLY_TIMEOUT_MS)
          assert.equal(shared?.readUInt32BE(0), 1)
          assert.deepEqual(keysOf(s, IH), family === 4 ? ['127.0.0.1:1234', '127.0.0.1:1235'] : ['[::1]:1234', '[::1]:1235'])
        } finally { c.close(); other.close() }
      })
    })

    it('ignores the ip field by default and honours it with acceptClientIp (IPv4 requests only)', async () => {
      for (const acceptClientIp of [false, true]) {
        await withServer({ acceptClientIp }, async (s) => {
          const c = await udpClient(family, s.port)
          try {
            const r = await c.announce({ infoHash: IH, peerId: id20(1), port: 4321, ip: '198.51.100.9' })
            assert.equal(r.action, 'announce')
            const claimed = acceptClientIp && family === 4
            assert.deepEqual(keysOf(s, IH), [claimed ? '198.51.100.9:4321' : family === 4 ? '127.0.0.1:4321' : '[::1]:4321'])
          } finally { c.close() }
        })
      }
    })

    it('scrapes 74 hashes in request order', async () => {
      await withServer({}, async (s, pool) => {
        const [a, b] = await agents(pool, t, 2)
        await a.announce(IH, { event: 'started', left: 0 })
        await b.announce(IH2, { event: 'started' })
        await b.announce(IH2, { event: 'completed', left: 0 })
        await a.announce(IH2, { event: 'started' })
        const hashes = Array.from({ length: 74 }, (_, i) => id20(700 + i))
        hashes[10] = IH
        hashes[73] = IH2
        const c = await udpClient(family, s.port)
        try {
          const r = await c.scrape(hashes)
          assert.equal(r.raw.length, 8 + 74 * 12)
          assert.equal(r.action, 'scrape')
          if (r.action !== 'scrape') return
          for (let i = 0; i < 74; i++) {
            const expected = i === 10
              ? { complete: 1, downloaded: 0, incomplete: 0 }
              : i === 73 ? { complete: 1, downloaded: 1, incomplete: 1 } : { complete: 0, downloaded: 0, incomplete: 0 }
            assert.deepEqual(r.entries[i], expected, `entry ${i}`)
          }
        } finally { c.close() }
      })
    })

    it('BEP 41 URL data reaches the filter as params.url', async () => {
      const urls: unknown[] = []
      await withServer({ filter: (_ih, p, cb) => { urls.push(p.url); cb(true) } }, async (s) => {
        const c = await udpClient(family, s.port)
        try {
          const long = '/announce?' + 'k=v&'.repeat(100) // 410 bytes: two URLData options
          await c.announce({ infoHash: IH, peerId: id20(1), port: 1 }, long)
          await c.announce({ infoHash: IH, peerId: id20(1), port: 1 }, '/a?passkey=%00%ff')
          await c.announce({ infoHash: IH, peerId: id20(1), port: 1 })
          assert.deepEqual(urls, [long, '/a?passkey=%00%ff', ''])
        } finally { c.close() }
      })
    })
  })
}

// =============================================================================================
// WebSocket specifics
// =============================================================================================

describe('WS specifics', () => {
  it('relays each offer to a different peer, never the sender; at most WS_MAX_OFFERS', async () => {
    await withServer({}, async (s, pool) => {
      const peers = await agents(pool, 'WS', 25)
      for (const p of peers) await p.announce(IH, { event: 'started', offers: 0 })
      const sender = peers[0]
      const r = await sender.announce(IH, { offers: 5 })
      assert.equal(r.peers.length, 5)
      assert.equal(new Set(r.peers).size, 5)
      assert.ok(!r.peers.includes(sender.key))
      const relayed = peers.flatMap(p => pool.inbox(p)).filter(m => m.offer !== undefined)
      assert.equal(relayed.length, 5)
      for (const m of relayed) {
        assert.deepEqual(Object.keys(m).sort(), ['action', 'info_hash', 'offer', 'offer_id', 'peer_id'])
        assert.equal(m.action, 'announce')
        assert.equal(m.peer_id, sender.peerId)
        assert.equal(m.info_hash, IH)
        assert.deepEqual(m.offer, { type: 'offer', sdp: `sdp of ${String(m.offer_id)}` })
      }
      const all = await sender.announce(IH, { offers: WS_MAX_OFFERS })
      assert.equal(all.peers.length, WS_MAX_OFFERS)
      assert.equal(new Set(all.peers).size, WS_MAX_OFFERS)
      const tooMany = await sender.announce(IH, { offers: WS_MAX_OFFERS + 1 })
      assert.equal(tooMany.failure, `too many offers: more than ${WS_MAX_OFFERS}`)
      // Seeders' offers go to leechers only.
      const [s1, l1] = await agents(pool, 'WS', 2, 100)
      await s1.announce(IH2, { event: 'started', left: 0, offers: 0 })
      const s2 = (await agents(pool, 'WS', 1, 200))[0]
      await s2.announce(IH2, { event: 'started', left: 0, offers: 0 })
      await l1.announce(IH2, { event: 'started', offers: 0 })
      assert.deepEqual((await s1.announce(IH2, { left: 0, offers: 10 })).peers, [l1.key])
      assert.deepEqual(sorted((await l1.announce(IH2, { offers: 10 })).peers), sorted([s1.key, s2.key]))
      void s
    })
  })

  it('forwards an answer only for a relayed offer, only to the peer that made it, once', async () => {
    await withServer({}, async (s, pool) => {
      const [a, b, c] = await agents(pool, 'WS', 3)
      await b.announce(IH, { event: 'started', offers: 0 })
      await a.announce(IH, { event: 'started', offers: 0 })
      const r = await a.announce(IH, { offers: 1 })
      assert.equal(r.peers.length, 1)
      const receiver = r.peers[0] === b.key ? b : c
      const outsider = receiver === b ? c : b
      if (outsider === c) await c.announce(IH, { event: 'started', offers: 0 })
      const offer = pool.inbox(receiver).find(m => m.offer !== undefined)!
      const offerId = offer.offer_id as string
      const answer = (from: Agent): Record<string, unknown> => ({
        action: 'announce', info_hash: IH, peer_id: from.peerId, to_peer_id: a.peerId, offer_id: offerId,
        answer: { type: 'answer', sdp: `answer from ${hex(from.peerId)}` }
      })
      const ca = pool.wsClientOf(a)
      // An outsider cannot answer an offer it was never sent.
      pool.wsClientOf(outsider).send(answer(outsider))
      assert.deepEqual(await pool.wsClientOf(outsider).next(),
        { action: 'announce', 'failure reason': 'answer does not match an offer relayed to this peer', info_hash: IH })
      assert.deepEqual(await ca.drain(), [])
      // The receiver's answer reaches a, and nothing goes back to the receiver.
      pool.wsClientOf(receiver).send(answer(receiver))
      assert.deepEqual(await ca.next(), {
        action: 'announce', answer: { type: 'answer', sdp: `answer from ${hex(receiver.peerId)}` },
        offer_id: offerId, peer_id: receiver.peerId, info_hash: IH
      })
      assert.deepEqual(await pool.wsClientOf(receiver).drain(), [])
      // A second answer to the same offer is refused; a gets nothing more.
      pool.wsClientOf(receiver).send(answer(receiver))
      assert.equal(JSON.parse((await pool.wsClientOf(receiver).nextRaw(REPLY_TIMEOUT_MS))!)['failure reason'],
        'answer does not match an offer relayed to this peer')
      assert.deepEqual(await ca.drain(), [])
      void s
    })
  })

  it('a peer id bound to one socket cannot be used by another', async () => {
    await withServer({}, async (s, pool) => {
      const [a] = await agents(pool, 'WS', 1)
      await a.announce(IH, { event: 'started', offers: 0 })
      const thief = await wsClient(s.ws)
      try {
        for (const event of ['started', 'stopped', undefined]) {
          thief.send({ action: 'announce', info_hash: IH, peer_id: a.peerId, numwant: 0, uploaded: 0, downloaded: 0, left: 0, ...(event === undefined ? {} : { event }) })
          assert.deepEqual(await thief.next(), { action: 'announce', 'failure reason': 'peer_id is bound to another connection', info_hash: IH })
        }
        // Also in another swarm.
        thief.send({ action: 'announce', info_hash: IH2, peer_id: a.peerId, numwant: 0, uploaded: 0, downloaded: 0, left: 0 })
        assert.equal((await thief.next())['failure reason'], 'peer_id is bound to another connection')
        assert.deepEqual(keysOf(s, IH), [a.key])
        assert.equal(s.server.torrents[hex(IH)]?.incomplete, 1)
        assert.equal(s.server.torrents[hex(IH2)], undefined)
      } finally { await thief.close() }
    })
  })

  it('a closed socket leaves every swarm it joined', async () => {
    await withServer({}, async (s, pool) => {
      const [a, b] = await agents(pool, 'WS', 2)
      await a.announce(IH, { event: 'started', offers: 0 })
      await a.announce(IH2, { event: 'started', left: 0, offers: 0 })
      await b.announce(IH, { event: 'started', offers: 0 })
      assert.equal(s.server.getStats().peersAll, 2)
      await pool.wsClientOf(a).close()
      assert.ok(await waitFor(() => s.server.torrents[hex(IH)]?.incomplete === 1, 2000), 'a left IH')
      assert.deepEqual(keysOf(s, IH), [b.key])
      assert.equal(s.server.torrents[hex(IH2)], undefined)
      assert.deepEqual(Object.keys(s.server.torrents), [hex(IH)])
      assert.equal(s.server.getStats().peersAll, 1)
      // The peer id is free again for a new socket.
      const again = await wsClient(s.ws)
      try {
        again.send({ action: 'announce', info_hash: IH, peer_id: a.peerId, numwant: 0, uploaded: 0, downloaded: 0, left: 5 })
        assert.equal((await again.next()).incomplete, 2)
      } finally { await again.close() }
    })
  })

  it('closes the socket on a frame larger than WS_MAX_PAYLOAD, accepts one at the limit', async () => {
    await withServer({}, async (s) => {
      const c = await wsClient(s.ws)
      try {
        const base = JSON.stringify({ action: 'scrape', info_hash: IH, pad: '' })
        const atLimit = JSON.stringify({ action: 'scrape', info_hash: IH, pad: 'x'.repeat(WS_MAX_PAYLOAD - Buffer.byteLength(base)) })
        assert.equal(Buffer.byteLength(atLimit), WS_MAX_PAYLOAD)
        c.send(atLimit)
        assert.equal((await c.next()).action, 'scrape')
        c.send('x'.repeat(WS_MAX_PAYLOAD + 1))
        assert.equal(await withTimeout(c.closed, REPLY_TIMEOUT_MS, 'close after huge frame'), 1009)
      } finally { await c.close() }
      // The server is fine.
      const d = await wsClient(s.ws)
      try {
        d.send({ action: 'scrape', info_hash: IH })
        assert.equal((await d.next()).action, 'scrape')
      } finally { await d.close() }
    })
  })

  it('a WS peer over IPv6 is recorded at ::1 and counted as IPv6', async () => {
    await withServer({}, async (s) => {
      const c = await wsClient(`ws://[::1]:${s.port}`)
      try {
        c.send({ action: 'announce', info_hash: IH, peer_id: id20(1), numwant: 0, uploaded: 0, downloaded: 0, left: 3, event: 'started' })
        assert.equal((await c.next()).incomplete, 1)
        const peer = s.server.torrents[hex(IH)]?.peers.get(hex(id20(1)))
        assert.equal(peer?.ip, '::1')
        assert.equal(peer?.port, c.localPort)
        assert.equal(s.server.getStats().peersIPv6, 1)
        assert.equal(s.server.getStats().peersIPv4, 0)
      } finally { await c.close() }
    })
  })

  it('custom announce fields reach filter and events as sent, never over the tracker’s own params', async () => {
    const filtered: RequestParams[] = []
    await withServer({ filter: (_ih, p, cb) => { filtered.push(p); cb(true) } }, async (s) => {
      const started: Array<[string, RequestParams]> = []
      s.server.on('start', (addr: string, p: RequestParams) => { started.push([addr, p]) })
      const c = await wsClient(s.ws)
      try {
        // Raw text: JSON.stringify would drop the "__proto__" key of an object literal.
        c.send(`{"action":"announce","info_hash":${JSON.stringify(IH)},"peer_id":${JSON.stringify(id20(1))},` +
          '"numwant":1,"uploaded":0,"downloaded":0,"left":3,"event":"started",' +
          '"offers":[{"offer_id":"aaaaaaaaaaaaaaaaaaaa","offer":{"type":"offer","sdp":"s"}}],' +
          '"passkey":"k1","n":7,"flag":false,"list":[1,"x"],"ip":"6.6.6.6","type":"http","port":1,"headers":"h",' +
          '"__proto__":{"polluted":true}}')
        assert.equal((await c.next()).incomplete, 1)
        assert.equal(started.length, 1)
        const [addr, p] = started[0]
        assert.equal(filtered.length, 1)
        assert.equal(filtered[0], p)
        assert.equal(addr, `127.0.0.1:${c.localPort}`)
        assert.deepEqual([p.passkey, p.n, p.flag, p.list], ['k1', 7, false, [1, 'x']])
        // The tracker's own params win over same-named fields; signalling fields stay out.
        assert.deepEqual([p.ip, p.type, p.port, typeof p.headers], ['127.0.0.1', 'ws', c.localPort, 'object'])
        assert.equal(p.offers, undefined)
        assert.equal(Object.getPrototypeOf(p), Object.prototype)
        assert.equal((p as { polluted?: unknown }).polluted, undefined)
        assert.equal(({} as { polluted?: unknown }).polluted, undefined)
      } finally { await c.close() }
    })
  })

  it('scrape accepts one hash or a list; announce reply has the exact shape', async () => {
    await withServer({}, async (s) => {
      const c = await wsClient(s.ws)
      try {
        c.send({ action: 'announce', info_hash: IH, peer_id: id20(1), numwant: 0, uploaded: 0, downloaded: 0, left: 0, event: 'started' })
        assert.equal(await c.nextRaw(REPLY_TIMEOUT_MS), JSON.stringify({ action: 'announce', interval: 120, info_hash: IH, complete: 1, incomplete: 0 }))
        c.send({ action: 'scrape', info_hash: IH })
        assert.deepEqual(await c.next(), { action: 'scrape', files: { [IH]: { complete: 1, incomplete: 0, downloaded: 0 } } })
        c.send({ action: 'scrape', info_hash: [IH, IH2] })
        assert.deepEqual(await c.next(), {
          action: 'scrape',
          files: { [IH]: { complete: 1, incomplete: 0, downloaded: 0 }, [IH2]: { complete: 0, incomplete: 0, downloaded: 0 } }
        })
      } finally { await c.close() }
    })
  })
})

// =============================================================================================
// The Server façade
// =============================================================================================

describe('Server: listen, close, properties', () => {
  it('listen(0) gives HTTP, UDP4 and UDP6 the same port; listening flag and callback', async () => {
    const server = new Server()
    try {
      assert.equal(server.listening, false)
      await new Promise<void>(resolve => server.listen(0, 'localhost', resolve))
      assert.equal(server.listening, true)
      const port = (server.http!.address() as net.AddressInfo).port
      assert.ok(port > 0)
      assert.deepEqual(server.udp4!.address(), { address: '127.0.0.1', family: 'IPv4', port })
      assert.deepEqual(server.udp6!.address(), { address: '::1', family: 'IPv6', port })
      assert.equal(server.udp, server.udp4)
      assert.deepEqual(server.ws!.address(), server.http!.address())
      assert.throws(() => server.listen(0), /already listening/)
    } finally { await closeServer(server) }
  })

  it("emits 'listening' for listen(port, cb) and for an object hostname", async () => {
    const server = new Server({ ws: false })
    try {
      const listening = new Promise<void>(resolve => server.once('listening', resolve))
      server.listen(0, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' })
      await withTimeout(listening, REPLY_TIMEOUT_MS, 'listening')
      assert.equal((server.http!.address() as net.AddressInfo).address, '127.0.0.1')
    } finally { await closeServer(server) }
  })

  it('close(cb) calls back, closes WS clients, and frees the port', async () => {
    const s = await startServer()
    const c = await wsClient(s.ws)
    let called = 0
    await withTimeout(new Promise<void>(resolve => s.server.close(() => { called++; resolve() })), REPLY_TIMEOUT_MS, 'close')
    assert.equal(called, 1)
    assert.equal(s.server.listening, false)
    await withTimeout(c.closed, REPLY_TIMEOUT_MS, 'ws client closed by server close')
    // Closing again still calls back.
    await withTimeout(new Promise<void>(resolve => s.server.close(() => resolve())), REPLY_TIMEOUT_MS, 'second close')
    // The same port binds again on every transport.
    const tcp = net.createServer()
    await new Promise<void>((resolve, reject) => { tcp.once('error', reject); tcp.listen(s.port, '::', resolve) })
    const u4 = dgram.createSocket('udp4')
    const u6 = dgram.createSocket({ type: 'udp6', ipv6Only: true })
    try {
      await new Promise<void>((resolve, reject) => { u4.once('error', reject); u4.bind(s.port, '127.0.0.1', resolve) })
      await new Promise<void>((resolve, reject) => { u6.once('error', reject); u6.bind(s.port, '::1', resolve) })
    } finally {
      u4.close()
      u6.close()
      await new Promise(resolve => tcp.close(resolve))
    }
  })

  it('server.http, udp, udp4, udp6, ws exist per options', async () => {
    const cases: Array<[ServerOptions, { http: boolean, udp: boolean, ws: boolean }]> = [
      [{}, { http: true, udp: true, ws: true }],
      [{ udp: false }, { http: true, udp: false, ws: true }],
      // Without the HTTP tracker an HTTP server still carries WS and /stats (as the reference).
      [{ http: false }, { http: true, udp: true, ws: true }],
      [{ ws: false }, { http: true, udp: true, ws: false }],
      [{ http: false, ws: false, stats: false }, { http: false, udp: true, ws: false }],
      [{ http: false, udp: false, ws: false, stats: false }, { http: false, udp: false, ws: false }]
    ]
    for (const [opts, want] of cases) {
      const server = new Server(opts)
      const label = JSON.stringify(opts)
      assert.equal(server.http instanceof http.Server, want.http, `http ${label}`)
      const UdpClass = UDP_BACKEND === 'native' ? BatchUdpSocket : dgram.Socket
      assert.equal(server.udpBackend, UDP_BACKEND)
      assert.equal(server.udp instanceof UdpClass, want.udp, `udp ${label}`)
      assert.equal(server.udp4 instanceof UdpClass, want.udp, `udp4 ${label}`)
      assert.equal(server.udp6 instanceof UdpClass, want.udp, `udp6 ${label}`)
      assert.equal(server.ws instanceof WebSocketServer, want.ws, `ws ${label}`)
      await closeServer(server)
    }
  })

  it('{ http: false }: /announce is 404 while WS and /stats work; { ws: false }: no upgrade', async () => {
    await withServer({ http: false }, async (s) => {
      assert.equal((await httpGet(s.http4, `/announce?info_hash=${pct(IH)}&peer_id=${pct(IH)}&port=1`)).status, 404)
      assert.equal((await httpGet(s.http4, '/scrape')).status, 404)
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 200)
      const c = await wsClient(s.ws)
      c.send({ action: 'scrape', info_hash: IH })
      assert.equal((await c.next()).action, 'scrape')
      await c.close()
    })
    await withServer({ ws: false }, async (s) => {
      await assert.rejects(wsClient(s.ws))
      const r = await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(1), port: 1 })
      assert.equal(r.incomplete, 1)
    })
    await withServer({ stats: false }, async (s) => {
      assert.equal((await httpGet(s.http4, '/stats')).status, 404)
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 404)
    })
  })

  it('other paths are 404', async () => {
    await withServer({}, async (s) => {
      for (const path of ['/', '/announc', '/announce/', '/scrape/x', '/stats/', '/favicon.ico', '/ANNOUNCE?info_hash=x']) {
        const r = await httpGet(s.http4, path)
        assert.equal(r.status, 404, path)
        assert.equal(r.body.toString(), '404 Not Found')
      }
      assert.deepEqual(s.warnings, [])
    })
  })
})

describe('Server: mounted on the user’s own servers', () => {
  it('onHttpRequest on a node:http server and onWebSocketConnection on a noServer WebSocketServer', async () => {
    const tracker = new Server({ http: false, udp: false, ws: false })
    const seen: string[] = []
    tracker.on('start', (addr: string) => seen.push(addr))
    const wss = new WebSocketServer({ noServer: true })
    const own = http.createServer((req, res) => {
      if (req.url?.startsWith('/tracker/') === true) {
        req.url = req.url.slice('/tracker'.length)
        tracker.onHttpRequest(req, res)
      } else {
        res.end('mine')
      }
    })
    own.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, ws => tracker.onWebSocketConnection(ws, req))
    })
    await new Promise<void>(resolve => own.listen(0, '127.0.0.1', resolve))
    const port = (own.address() as net.AddressInfo).port
    const base = `http://127.0.0.1:${port}`
    try {
      assert.equal((await httpGet(base, '/other')).body.toString(), 'mine')
      const r = await httpAnnounce(`${base}/tracker`, { infoHash: IH, peerId: id20(1), port: 6881, event: 2 })
      assert.equal(r.failure, undefined)
      assert.equal(r.incomplete, 1)
      const c = await wsClient(`ws://127.0.0.1:${port}/anything`)
      try {
        c.send({ action: 'announce', info_hash: IH, peer_id: id20(2), numwant: 0, uploaded: 0, downloaded: 0, left: 0, event: 'started' })
        assert.deepEqual(await c.next(), { action: 'announce', interval: 120, info_hash: IH, complete: 1, incomplete: 1 })
      } finally { await c.close() }
      // The WS peer left with its socket; the HTTP one stays.
      assert.ok(await waitFor(() => tracker.torrents[hex(IH)]?.peers.size === 1, 2000))
      assert.deepEqual(keysOf(tracker, IH), ['127.0.0.1:6881'])
      assert.equal(seen[0], '127.0.0.1:6881')
      assert.match(seen[1], /^127\.0\.0\.1:\d+$/)
      // A path the tracker does not serve gets the tracker's 404 through onHttpRequest.
      assert.equal((await httpGet(base, '/tracker/nope')).status, 404)
    } finally {
      await new Promise<void>(resolve => { own.close(() => resolve()); own.closeAllConnections() })
      wss.close()
      await closeServer(tracker)
    }
  })
})

// =============================================================================================
// /stats
// =============================================================================================

describe('/stats and /stats.json', () => {
  it('reports the reference package’s fields, and escapes what peers control', async () => {
    await withServer({}, async (s, pool) => {
      const webtorrent = await pool.create('HTTP v4', '-WW0001-abcdefghijkl', 1001)
      const script = await pool.create('UDP v6', '<script>abcdefghijkl', 1002)
      const both1 = await pool.create('HTTP v4', '-qB4500-abcdefghijkl', 1003)
      const both2 = await pool.create('UDP v4', '-qB4500-abcdefghijkl', 1004)
      const wsPeer = await pool.create('WS', '-WW0002-abcdefghijkl', 0)
      await webtorrent.announce(IH, { event: 'started' })
      await script.announce(IH, { event: 'started', left: 0 })
      await both1.announce(IH, { event: 'started', left: 0 })
      await both2.announce(IH2, { event: 'started' })
      await wsPeer.announce(IH2, { event: 'started', left: 0, offers: 0 })
      const expected = {
        torrents: 2,
        activeTorrents: 2,
        peersAll: 4,
        peersSeederOnly: 2,
        peersLeecherOnly: 1,
        peersSeederAndLeecher: 1,
        peersIPv4: 3,
        peersIPv6: 1,
        clients: { WebTorrent: { '0.1': 1, '0.2': 1 }, unknown: { '<script>': 1 }, qBittorrent: { '4.5.0': 1 } }
      }
      const json = await httpGet(s.http4, '/stats.json')
      assert.equal(json.status, 200)
      assert.match(String(json.headers['content-type']), /^application\/json/)
      // The reference's fields, unchanged; the dashboard's fields follow (test/server/stats/).
      assert.deepEqual(referenceFields(JSON.parse(json.body.toString())), expected)
      assert.deepEqual(JSON.parse(JSON.stringify(s.server.getStats())), expected)
      // The reference also answers /stats with JSON for Accept: application/json.
      const viaAccept = await httpGet(s.http4, '/stats', { Accept: 'application/json' })
      assert.deepEqual(referenceFields(JSON.parse(viaAccept.body.toString())), expected)

      const html = await httpGet(s.http6, '/stats')
      assert.equal(html.status, 200)
      assert.match(String(html.headers['content-type']), /^text\/html/)
      const text = html.body.toString()
      for (const line of [
        '<dd data-k="torrents">2</dd>', '<dd data-k="activeTorrents">2</dd>', '<dd data-k="peersAll">4</dd>',
        '<dd data-k="peersSeederOnly">2</dd>', '<dd data-k="peersLeecherOnly">1</dd>', '<dd data-k="peersSeederAndLeecher">1</dd>',
        '<dd data-k="peersIPv4">3</dd>', '<dd data-k="peersIPv6">1</dd>',
        '<tr><td>unknown</td><td class="l">&lt;script&gt;</td><td>1</td></tr>',
        '<tr><td>qBittorrent</td><td class="l">4.5.0</td><td>1</td></tr>', '<tr><td>WebTorrent</td><td class="l">0.1</td><td>1</td></tr>'
      ]) assert.ok(text.includes(line), `missing ${line}`)
      assert.ok(!text.includes('<script>'), 'unescaped <script>')

      // Stopping changes it; a torrent with only a download count stays in `torrents`.
      await both2.announce(IH2, { event: 'completed', left: 0 })
      await both2.announce(IH2, { event: 'stopped', left: 0 })
      await pool.wsClientOf(wsPeer).close()
      assert.ok(await waitFor(() => s.server.getStats().activeTorrents === 1, 2000))
      const after = referenceFields(JSON.parse((await httpGet(s.http4, '/stats.json')).body.toString()))
      assert.deepEqual(after, {
        torrents: 2,
        activeTorrents: 1,
        peersAll: 3,
        peersSeederOnly: 2,
        peersLeecherOnly: 1,
        peersSeederAndLeecher: 0,
        peersIPv4: 2,
        peersIPv6: 1,
        clients: { WebTorrent: { '0.1': 1 }, unknown: { '<script>': 1 }, qBittorrent: { '4.5.0': 1 } }
      })
    })
  })
})

// =============================================================================================
// Expiry. The server's clock and sweep run on a 1 s timer, so this waits for real time: the
// peers announce in a file-level `before` and are checked by the last describe, so the wait
// overlaps the other tests instead of adding to them.
// =============================================================================================

const expiry = {
  s: undefined as unknown as StartedServer,
  pool: undefined as unknown as AgentPool,
  mounted: undefined as unknown as Server,
  mountedHttp: undefined as unknown as http.Server,
  refresher: undefined as NodeJS.Timeout | undefined,
  /** Polls for the moment the silent peers are gone (cleared then, or in `after`). */
  watcher: undefined as NodeJS.Timeout | undefined,
  goneAt: 0,
  refreshed: undefined as unknown as Agent,
  wsAgent: undefined as unknown as Agent,
  started: 0
}

before(async () => {
  const e = expiry
  e.s = await startServer({ interval: 1000 })
  e.pool = new AgentPool(e.s)
  const silent = [
    await e.pool.create('HTTP v4', id20(1), 5001),
    await e.pool.create('HTTP v6', id20(2), 5002),
    await e.pool.create('UDP v4', id20(3), 5003),
    await e.pool.create('UDP v6', id20(4), 5004)
  ]
  e.refreshed = await e.pool.create('HTTP v4', id20(5), 5005)
  e.wsAgent = await e.pool.create('WS', id20(6), 0)
  for (const a of silent) await a.announce(IH, { event: 'started' })
  await e.refreshed.announce(IH, { event: 'started' })
  await e.wsAgent.announce(IH, { event: 'started', offers: 0 })
  e.started = Date.now()
  assert.equal(e.s.server.torrents[hex(IH)]?.peers.size, 6)
  // Keeps one peer alive with an announce every half interval.
  e.refresher = setInterval(() => { e.refreshed.announce(IH).catch(() => undefined) }, 500)
  e.watcher = setInterval(() => {
    if (e.s.server.torrents[hex(IH)]?.peers.size === 2) { e.goneAt = Date.now(); clearInterval(e.watcher) }
  }, 20)
  // A tracker that is never listen()ed, mounted on the user's own server, must expire peers too.
  e.mounted = new Server({ interval: 1000, udp: false, ws: false })
  e.mountedHttp = http.createServer((req, res) => e.mounted.onHttpRequest(req, res))
  await new Promise<void>(resolve => e.mountedHttp.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(e.mountedHttp.address() as net.AddressInfo).port}`
  await httpAnnounce(base, { infoHash: IH, peerId: id20(7), port: 5007, event: 2 })
})

after(async () => {
  const e = expiry
  clearInterval(e.refresher)
  clearInterval(e.watcher)
  await e.pool?.closeAll()
  await e.s?.close()
  if (e.mountedHttp !== undefined) await new Promise<void>(resolve => { e.mountedHttp.close(() => resolve()); e.mountedHttp.closeAllConnections() })
  if (e.mounted !== undefined) await closeServer(e.mounted)
})

describe('expiry: peers silent for two intervals disappear', () => {
  it('drops silent HTTP/UDP peers, keeps refreshed and connected WS peers', async () => {
    const { s, refreshed, wsAgent, started } = expiry
    // interval 1 s → a peer silent for 2 s goes at the next sweep.
    const gone = await waitFor(() => expiry.goneAt !== 0, 8000, 50)
    assert.ok(gone, `still there after ${Date.now() - started} ms: ${keysOf(s, IH).join(', ')}`)
    // The clock has 1 s steps: a peer silent for 2 intervals (2 s) goes between 1 s and ~4 s
    // after its announce — not after a 30 s sweep pause.
    const elapsed = expiry.goneAt - started
    assert.ok(elapsed >= 1000 && elapsed <= 6000, `expired after ${elapsed} ms`)
    assert.deepEqual(keysOf(s, IH), sorted([refreshed.key, wsAgent.key]))
    const stats = s.server.getStats()
    assert.equal(stats.peersAll, 2)
    assert.equal(stats.peersIPv6, 0)
  })

  it('a mounted (never listening) tracker expires peers too', async () => {
    const { mounted } = expiry
    assert.ok(await waitFor(() => mounted.torrents[hex(IH)] === undefined, 8000, 50),
      `mounted tracker still has ${String(mounted.torrents[hex(IH)]?.peers.size)} peer(s)`)
  })
})
