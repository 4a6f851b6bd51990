import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import type { AnnounceEvent, BinaryString } from '../../../src/protocol/common/types.js'
import { PeerStats } from '../../../src/server/stats/peer-stats.js'
import type { TrackerStats } from '../../../src/server/stats/peer-stats.js'
import { escapeHtml, renderStatsHtml } from '../../../src/server/stats/render.js'
import type { StatsDocument } from '../../../src/server/stats/render.js'
import { StatsCollector } from '../../../src/server/stats/collector.js'
import { RequestMetrics } from '../../../src/server/stats/metrics.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import { KIND_V4, KIND_V6, KIND_WS } from '../../../src/server/store/store.js'
import type { PeerKind } from '../../../src/server/store/store.js'
import { hash, req, v4, v6 } from '../store/conformance.js'
import type { Who } from '../store/conformance.js'

/** Peer ids of known clients and what the stats must call them. */
const CLIENTS: Array<{ prefix: string, client: string, version: string }> = [
  { prefix: '-TR2940-', client: 'Transmission', version: '2.94' },
  { prefix: '-qB4250-', client: 'qBittorrent', version: '4.2.5' },
  { prefix: '-WW0102-', client: 'WebTorrent', version: '1.2' },
  // known client, no version in the id: the first 8 bytes stand in
  { prefix: 'M7-2-2--', client: 'Mainline', version: 'M7-2-2--' },
  // unknown clients: the first 8 bytes, unprintable ones as '?'
  { prefix: 'ABCDEFGH', client: 'unknown', version: 'ABCDEFGH' },
  { prefix: '\x00\x01\xfe<b>&"', client: 'unknown', version: '???<b>&"' }
]

/** Peer id `n` of client `c` (20 bytes). */
function id (c: number, n: number): BinaryString {
  return CLIENTS[c].prefix + String(n).padStart(12, '0')
}

function describeId (peerId: BinaryString): { client: string, version: string } {
  const c = CLIENTS.find(x => peerId.startsWith(x.prefix))
  assert.ok(c !== undefined)
  return c
}

function http (addr: BinaryString, peerId: BinaryString): Who {
  return { key: addr, peerId, addr, kind: addr.length === 6 ? KIND_V4 : KIND_V6, conn: 0 }
}

function ws (peerId: BinaryString, socketAddr: BinaryString, conn: number): Who {
  return { key: peerId, peerId, addr: socketAddr, kind: KIND_WS, conn }
}

/** The stats recomputed by walking every peer of every swarm. */
function recount (store: MemoryStore): TrackerStats {
  const ids = new Map<BinaryString, { seed: number, leech: number, v4: boolean, v6: boolean }>()
  for (const ih of store.infoHashes()) {
    for (const [, p] of store.swarmInfo(ih)!.peers()) {
      let e = ids.get(p.peerId)
      if (e === undefined) { e = { seed: 0, leech: 0, v4: false, v6: false }; ids.set(p.peerId, e) }
      if (p.seeder) e.seed++; else e.leech++
      if (p.addr.length === 18) e.v6 = true; else e.v4 = true
    }
  }
  const out: TrackerStats = {
    torrents: store.counts.torrents + store.counts.retired,
    activeTorrents: store.counts.torrents,
    peersAll: ids.size,
    peersSeederOnly: 0,
    peersLeecherOnly: 0,
    peersSeederAndLeecher: 0,
    peersIPv4: 0,
    peersIPv6: 0,
    clients: {}
  }
  for (const [peerId, e] of ids) {
    if (e.seed > 0 && e.leech > 0) out.peersSeederAndLeecher++
    else if (e.seed > 0) out.peersSeederOnly++
    else out.peersLeecherOnly++
    if (e.v4) out.peersIPv4++
    if (e.v6) out.peersIPv6++
    const { client, version } = describeId(peerId)
    out.clients[client] ??= {}
    out.clients[client][version] = (out.clients[client][version] ?? 0) + 1
  }
  return out
}

function snap (stats: PeerStats, store: MemoryStore): TrackerStats {
  const s = stats.snapshot(store.counts.torrents + store.counts.retired, store.counts.torrents)
  // plain objects for deepEqual (the snapshot uses null-prototype records)
  return { ...s, clients: JSON.parse(JSON.stringify(s.clients)) }
}

function setup (): { stats: PeerStats, store: MemoryStore } {
  const stats = new PeerStats()
  return { stats, store: new MemoryStore({ peerTtl: 100, listener: stats }) }
}

const T = 1000

/** The whole /stats.json document for a snapshot over `store`. */
function doc (snapshot: TrackerStats, store: MemoryStore): StatsDocument {
  return { ...snapshot, ...new StatsCollector(new RequestMetrics(), store, () => 0).extras() }
}

describe('PeerStats', () => {
  it('counts unique peer ids across swarms: seeder only, leecher only, both, IPv4, IPv6, clients', () => {
    const { stats, store } = setup()
    const A = id(0, 1) // Transmission: seeds X (v4), leeches Y (v4)
    const B = id(1, 1) // qBittorrent: leeches X over IPv6
    const C = id(4, 1) // unknown: seeds X over v4 and Y over v6
    const D = id(2, 1) // WebTorrent over a ws socket from an IPv6 address: leeches Z
    const E = id(0, 2) // another Transmission, seeding Z
    store.announce(req(hash(1), http(v4(1), A), { event: EVENT_STARTED, seeder: true }), T)
    store.announce(req(hash(2), http(v4(1), A), { event: EVENT_STARTED }), T)
    store.announce(req(hash(1), http(v6(2), B), { event: EVENT_STARTED }), T)
    store.announce(req(hash(1), http(v4(3), C), { event: EVENT_STARTED, seeder: true }), T)
    store.announce(req(hash(2), http(v6(3), C), { event: EVENT_STARTED, seeder: true }), T)
    store.announce(req(hash(3), ws(D, v6(4), 1), { event: EVENT_STARTED }), T)
    store.announce(req(hash(3), http(v4(5), E), { event: EVENT_STARTED, seeder: true }), T)

    const expected: TrackerStats = {
      torrents: 3,
      activeTorrents: 3,
      peersAll: 5,
      peersSeederOnly: 2, // C, E
      peersLeecherOnly: 2, // B, D
      peersSeederAndLeecher: 1, // A
      peersIPv4: 3, // A, C, E
      peersIPv6: 3, // B, C, D
      clients: {
        Transmission: { 2.94: 2 },
        qBittorrent: { '4.2.5': 1 },
        unknown: { ABCDEFGH: 1 },
        WebTorrent: { 1.2: 1 }
      }
    }
    assert.deepEqual(snap(stats, store), expected)
    assert.deepEqual(snap(stats, store), recount(store))

    // A completes in Y: a seeder only now
    store.announce(req(hash(2), http(v4(1), A), { event: EVENT_COMPLETED, seeder: true }), T)
    let s = snap(stats, store)
    assert.deepEqual([s.peersSeederOnly, s.peersLeecherOnly, s.peersSeederAndLeecher], [3, 2, 0])

    // C leaves Y (its only IPv6 entry): no longer an IPv6 peer, still a peer
    store.announce(req(hash(2), http(v6(3), C), { event: EVENT_STOPPED }), T)
    s = snap(stats, store)
    assert.deepEqual([s.peersAll, s.peersIPv4, s.peersIPv6], [5, 3, 2])

    // the second Transmission leaves: one Transmission left
    store.announce(req(hash(3), http(v4(5), E), { event: EVENT_STOPPED }), T)
    s = snap(stats, store)
    assert.deepEqual(s.clients.Transmission, { 2.94: 1 })
    assert.deepEqual(s, recount(store))

    // everyone leaves: all zero, no clients
    store.remove(hash(3), D)
    store.announce(req(hash(1), http(v6(2), B), { event: EVENT_STOPPED }), T)
    store.sweep(T + 1000, 1_000_000)
    assert.deepEqual(snap(stats, store), {
      torrents: 1, // hash(2) is remembered for its download
      activeTorrents: 0,
      peersAll: 0,
      peersSeederOnly: 0,
      peersLeecherOnly: 0,
      peersSeederAndLeecher: 0,
      peersIPv4: 0,
      peersIPv6: 0,
      clients: {}
    })
  })

  it('names clients by the peer id: a version when it has one, else the first 8 bytes', () => {
    const { stats, store } = setup()
    CLIENTS.forEach((_, c) => store.announce(req(hash(1), http(v4(c), id(c, 0)), { event: EVENT_STARTED }), T))
    const expected: Record<string, Record<string, number>> = {}
    for (const c of CLIENTS) (expected[c.client] ??= {})[c.version] = 1
    assert.deepEqual(snap(stats, store).clients, expected)
  })

  it('follows a peer id change at the same address', () => {
    const { stats, store } = setup()
    store.announce(req(hash(1), http(v4(1), id(0, 1)), { event: EVENT_STARTED }), T)
    store.announce(req(hash(1), http(v4(1), id(1, 1)), { event: EVENT_NONE, seeder: true }), T)
    assert.deepEqual(snap(stats, store), {
      torrents: 1, activeTorrents: 1, peersAll: 1, peersSeederOnly: 1, peersLeecherOnly: 0, peersSeederAndLeecher: 0,
      peersIPv4: 1, peersIPv6: 0, clients: { qBittorrent: { '4.2.5': 1 } }
    })
  })

  it('passes the torrent counts through', () => {
    const s = new PeerStats().snapshot(7, 4)
    assert.deepEqual([s.torrents, s.activeTorrents, s.peersAll], [7, 4, 0])
  })

  it('ignores a removal it was never told of', () => {
    const stats = new PeerStats()
    stats.peerChanged(id(0, 1), KIND_V4, v4(1), 1, -1)
    stats.peerChanged(id(0, 1), KIND_V4, v4(1), 0, 1)
    assert.equal(stats.snapshot(0, 0).peersAll, 0)
  })

  it('equals a recount after any sequence of operations', () => {
    type Op =
      | { t: 'announce', h: number, kind: PeerKind, slot: number, c: number, n: number, v6: boolean, event: AnnounceEvent, seeder: boolean }
      | { t: 'remove', h: number, c: number, n: number }
      | { t: 'expire' }
    const op: fc.Arbitrary<Op> = fc.oneof(
      { arbitrary: fc.record({
        t: fc.constant('announce' as const),
        h: fc.integer({ min: 0, max: 2 }),
        kind: fc.constantFrom<PeerKind>(KIND_V4, KIND_V6, KIND_WS),
        slot: fc.integer({ min: 0, max: 3 }),
        c: fc.integer({ min: 0, max: CLIENTS.length - 1 }),
        n: fc.integer({ min: 0, max: 1 }),
        v6: fc.boolean(),
        event: fc.constantFrom<AnnounceEvent>(EVENT_NONE, EVENT_STARTED, EVENT_COMPLETED, EVENT_STOPPED),
        seeder: fc.boolean()
      }), weight: 8 },
      { arbitrary: fc.record({ t: fc.constant('remove' as const), h: fc.integer({ min: 0, max: 2 }), c: fc.integer({ min: 0, max: CLIENTS.length - 1 }), n: fc.integer({ min: 0, max: 1 }) }), weight: 1 },
      { arbitrary: fc.record({ t: fc.constant('expire' as const) }), weight: 1 }
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 50 }), ops => {
      const { stats, store } = setup()
      let now = T
      for (const o of ops) {
        if (o.t === 'announce') {
          const peerId = id(o.c, o.n)
          const who = o.kind === KIND_WS
            ? ws(peerId, o.v6 ? v6(o.slot) : v4(o.slot), o.slot + 1)
            : http(o.kind === KIND_V4 ? v4(o.slot) : v6(o.slot), peerId)
          store.announce(req(hash(o.h), who, { event: o.event, seeder: o.seeder }), now)
        } else if (o.t === 'remove') {
          store.remove(hash(o.h), id(o.c, o.n))
        } else {
          // HTTP/UDP peers expire; WebSocket peers stay
          now += 101
          while (!store.sweep(now, 3)) { /* next slice */ }
        }
        assert.deepEqual(snap(stats, store), recount(store))
      }
    }), { numRuns: 200 })
  })
})

describe('stats rendering', () => {
  it('escapes HTML', () => {
    assert.equal(escapeHtml('<a href="x" title=\'y\'>&amp;</a>'), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;')
    assert.equal(escapeHtml('plain 1.2.3'), 'plain 1.2.3')
  })

  it('renders the counts, and client names and versions escaped', () => {
    const { stats, store } = setup()
    store.announce(req(hash(1), http(v4(1), '<script>alert(1)//'.padEnd(20, 'x')), { event: EVENT_STARTED }), T)
    store.announce(req(hash(1), http(v6(2), id(0, 1)), { event: EVENT_STARTED, seeder: true }), T)
    store.announce(req(hash(2), http(v6(2), id(0, 1)), { event: EVENT_STARTED }), T)
    const html = renderStatsHtml(doc(stats.snapshot(store.counts.torrents + 3, store.counts.torrents), store))
    assert.ok(!html.includes('<script>'), 'a version taken from a peer id is escaped')
    assert.ok(html.includes('<tr><td>unknown</td><td class="l">&lt;script&gt;</td><td>1</td></tr>'))
    assert.ok(html.includes('<tr><td>Transmission</td><td class="l">2.94</td><td>1</td></tr>'))
    for (const line of [
      '<dd data-k="torrents">5</dd>',
      '<dd data-k="activeTorrents">2</dd>',
      '<dd data-k="peersAll">2</dd>',
      '<dd data-k="peersSeederOnly">0</dd>',
      '<dd data-k="peersLeecherOnly">1</dd>',
      '<dd data-k="peersSeederAndLeecher">1</dd>',
      '<dd data-k="peersIPv4">1</dd>',
      '<dd data-k="peersIPv6">1</dd>',
      '<dd data-k="swarmPeers.seeders">1</dd>',
      '<dd data-k="swarmPeers.leechers">2</dd>'
    ]) assert.ok(html.includes(line), line)
    // clients sorted by name
    assert.ok(html.indexOf('Transmission') < html.indexOf('unknown'))
  })

  it('escapes a client name too', () => {
    const { store } = setup()
    const html = renderStatsHtml(doc({
      torrents: 0, activeTorrents: 0, peersAll: 0, peersSeederOnly: 0, peersLeecherOnly: 0, peersSeederAndLeecher: 0,
      peersIPv4: 0, peersIPv6: 0, clients: { '<img src=x onerror=alert(1)>': { '"&\'': 1 } }
    }, store))
    assert.ok(html.includes('<tr><td>&lt;img src=x onerror=alert(1)&gt;</td><td class="l">&quot;&amp;&#39;</td><td>1</td></tr>'))
    assert.ok(!html.includes('<img'))
  })
})
