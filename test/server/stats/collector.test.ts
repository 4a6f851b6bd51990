import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { LATENCY_BUCKETS_S, STATS_HISTORY_SAMPLES, STATS_TOP_SCAN_CHUNK, STATS_TOP_TORRENTS } from '../../../src/constants.js'
import { EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import { binaryToHex } from '../../../src/protocol/common/binary.js'
import { HISTORY_SERIES, StatsCollector } from '../../../src/server/stats/collector.js'
import {
  A_ANNOUNCE, A_CONNECT, A_SCRAPE, P_HTTP, P_UDP, P_WS, R_DROPPED, R_ERROR, R_OK, RequestMetrics, slot
} from '../../../src/server/stats/metrics.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import { KIND_V4 } from '../../../src/server/store/store.js'
import { hash, pid, req, v4 } from '../store/conformance.js'
import { waitFor } from '../../helpers/tracker-clients.js'

const T = 1000

function peer (n: number): { key: string, peerId: string, addr: string, kind: 0, conn: number } {
  return { key: v4(n), peerId: pid(n), addr: v4(n), kind: KIND_V4, conn: 0 }
}

describe('RequestMetrics', () => {
  it('counts into its slot and one latency bucket per request', () => {
    const m = new RequestMetrics()
    m.done(P_UDP, A_CONNECT, R_OK, m.start())
    m.done(P_UDP, A_ANNOUNCE, R_DROPPED, m.start())
    m.done(P_HTTP, A_SCRAPE, R_ERROR, m.start())
    // A request that took a second lands in the bucket above 0.5 s.
    m.done(P_WS, A_ANNOUNCE, R_OK, m.start() - 1000)
    assert.equal(m.counts[slot(P_UDP, A_CONNECT, R_OK)], 1)
    assert.equal(m.counts[slot(P_UDP, A_ANNOUNCE, R_DROPPED)], 1)
    assert.equal(m.counts[slot(P_HTTP, A_SCRAPE, R_ERROR)], 1)
    assert.equal(m.counts.reduce((a, b) => a + b, 0), 4)
    assert.equal(m.total(P_UDP, A_ANNOUNCE), 1)
    assert.equal(m.failures(), 2)
    const nb = LATENCY_BUCKETS_S.length + 1
    const ws = Array.from(m.buckets.subarray(P_WS * nb, P_WS * nb + nb))
    const expected = new Array(nb).fill(0)
    expected[LATENCY_BUCKETS_S.findIndex(b => b >= 1)] = 1
    assert.deepEqual(ws, expected)
    assert.ok(m.latencySum[P_WS] >= 1 && m.latencySum[P_WS] < 2)
  })
})

describe('StatsCollector', () => {
  it('keeps the last hour: a ring of STATS_HISTORY_SAMPLES samples, oldest first', () => {
    const m = new RequestMetrics()
    const store = new MemoryStore({ peerTtl: 100 })
    const c = new StatsCollector(m, store, () => 0, { sampleMs: 10_000 })
    assert.deepEqual(c.history(), { sampleSeconds: 10, t: [], series: Object.fromEntries(HISTORY_SERIES.map(s => [s, []])) })
    const total = STATS_HISTORY_SAMPLES + 40
    for (let i = 0; i < total; i++) {
      // Sample i sees i peers: the peers series tells which samples survived.
      if (i > 0) store.announce(req(hash(1), peer(i), { event: EVENT_STARTED }), T)
      c.sample()
    }
    const h = c.history()
    assert.equal(h.t.length, STATS_HISTORY_SAMPLES)
    assert.deepEqual(h.series.peers, Array.from({ length: STATS_HISTORY_SAMPLES }, (_, i) => i + 40))
    assert.deepEqual(h.series.torrents, new Array(STATS_HISTORY_SAMPLES).fill(1))
    for (const s of HISTORY_SERIES) assert.equal(h.series[s].length, STATS_HISTORY_SAMPLES, s)
    for (let i = 1; i < h.t.length; i++) assert.ok(h.t[i] >= h.t[i - 1])
  })

  it('turns counts into rates per series, and failures into errors per second', () => {
    const m = new RequestMetrics()
    let now = 5_000
    const c = new StatsCollector(m, new MemoryStore({ peerTtl: 100 }), () => 0, { sampleMs: 10_000, clock: () => now })
    now += 10_000
    c.sample()
    for (let i = 0; i < 30; i++) m.done(P_UDP, A_ANNOUNCE, R_OK, m.start())
    for (let i = 0; i < 10; i++) m.done(P_HTTP, A_ANNOUNCE, R_ERROR, m.start())
    m.done(P_UDP, A_SCRAPE, R_DROPPED, m.start())
    now += 10_000
    c.sample()
    const h = c.history()
    assert.equal(h.series['udp.announce'][1], 3)
    assert.equal(h.series['http.announce'][1], 1)
    assert.equal(h.series['udp.scrape'][1], 0.1)
    assert.equal(h.series.errors[1], 1.1)
    assert.equal(h.series['ws.announce'][1], 0)
    // The extras: the counts, and the newest rate per action.
    const x = c.extras()
    assert.deepEqual(x.requests.udp.announce, { ok: 30, error: 0, dropped: 0, rate: 3 })
    assert.deepEqual(x.requests.http.announce, { ok: 0, error: 10, dropped: 0, rate: 1 })
    assert.deepEqual(x.requests.udp.scrape, { ok: 0, error: 0, dropped: 1, rate: 0.1 })
    // Nothing more: the next sample's rates are 0.
    now += 10_000
    c.sample()
    assert.equal(c.history().series['udp.announce'][2], 0)
  })

  it('ranks the top torrents by peers, bounded, and re-reads them when a pass ends', async () => {
    const store = new MemoryStore({ peerTtl: 100 })
    const c = new StatsCollector(new RequestMetrics(), store, () => 0)
    // Torrent n has n % 37 peers (0 peers: never announced); more torrents than one scan chunk.
    const torrents = STATS_TOP_SCAN_CHUNK * 2 + 123
    let next = 1
    for (let n = 1; n <= torrents; n++) {
      for (let k = 0; k < n % 37; k++) store.announce(req(hash(n), peer(next++), { event: EVENT_STARTED }), T)
    }
    c.sample()
    // Three chunks: the pass ends on a later turn of the event loop.
    assert.deepEqual(c.topTorrents(), [])
    assert.ok(await waitFor(() => c.topTorrents().length === STATS_TOP_TORRENTS, 5000))
    const top = c.topTorrents()
    assert.deepEqual(top.map(t => t.peers), new Array(STATS_TOP_TORRENTS).fill(36))
    // Ties: by info hash; every one of them really has 36 peers.
    const sorted = [...top].sort((a, b) => a.infoHash < b.infoHash ? -1 : 1)
    assert.deepEqual(top, sorted)
    for (const t of top) {
      assert.equal(t.complete + t.incomplete, 36)
      assert.equal(t.incomplete, 36)
      assert.equal(t.downloaded, 0)
    }
    // A swarm that empties before the next pass drops out of the list.
    const gone = top[0].infoHash
    const gi = Array.from({ length: torrents }, (_, i) => i + 1).find(n => binaryToHex(hash(n)) === gone)!
    let first = 1
    for (let n = 1; n < gi; n++) first += n % 37
    for (let k = 0; k < 36; k++) store.announce(req(hash(gi), peer(first + k), { event: EVENT_STOPPED }), T)
    c.sample()
    assert.ok(await waitFor(() => !c.topTorrents().some(t => t.infoHash === gone), 5000))
    assert.equal(c.topTorrents().length, STATS_TOP_TORRENTS)
  })

  it('reports event-loop lag in ms, and health with one worker', () => {
    const c = new StatsCollector(new RequestMetrics(), new MemoryStore({ peerTtl: 100 }), () => 3)
    c.start()
    try {
      const h = c.health()
      assert.equal(h.workers, 1)
      assert.ok(h.uptimeSeconds >= 0 && h.uptimeSeconds < 5)
      for (const v of Object.values(h.eventLoopLagMs)) assert.ok(v >= 0 && Number.isFinite(v))
      assert.equal(c.extras().wsConnections, 3)
    } finally { c.stop() }
  })
})
