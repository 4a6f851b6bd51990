import { describe, it } from 'node:test'
import assert from 'node:assert/strict'

import { MAX_UDP_PEERS } from '../../../src/constants.js'
import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import type { AnnounceEvent, AnnounceRequest, BinaryString } from '../../../src/protocol/common/types.js'
import { TrackerCore } from '../../../src/server/core/tracker.js'
import type { CoreOptions } from '../../../src/server/core/tracker.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import { KIND_V4, KIND_V6, KIND_WS, WANT_V4, WANT_V6 } from '../../../src/server/store/store.js'
import type { StoreAnnounce, StoreAnnounceResult, SwarmStore } from '../../../src/server/store/store.js'
import { hash, pid, req as storeReq, v4, v6, wsPeer } from '../store/conformance.js'

const OPTS: CoreOptions = {
  interval: 600, wsInterval: 120, minInterval: 300, defaultNumwant: 50, maxNumwant: 200, fullScrapeLimit: 3
}
const NOW = 1_000_000

function announceReq (infoHash: BinaryString, peerId: BinaryString, o: { left?: number, event?: AnnounceEvent, numwant?: number } = {}): AnnounceRequest {
  return {
    infoHash,
    peerId,
    port: 6881,
    uploaded: 0,
    downloaded: 0,
    left: o.left ?? Infinity,
    event: o.event ?? EVENT_NONE,
    numwant: o.numwant ?? -1,
    compact: true,
    noPeerId: false
  }
}

/** A store that records what the core asks of it. */
class SpyStore extends MemoryStore {
  readonly asked: StoreAnnounce[] = []
  override announce (a: StoreAnnounce, now: number): StoreAnnounceResult {
    this.asked.push({ ...a })
    return super.announce(a, now)
  }
}

function core (opts: Partial<CoreOptions> = {}, store: SwarmStore = new MemoryStore({ peerTtl: 1200 })): TrackerCore {
  return new TrackerCore(store, { ...OPTS, ...opts })
}

/** A swarm of `n4` IPv4 and `n6` IPv6 leechers (added over HTTP) and 3 WebSocket leechers. */
function populate (c: TrackerCore, H: BinaryString, n4: number, n6: number): void {
  for (let i = 1; i <= n4; i++) c.announce(announceReq(H, pid(i), { event: EVENT_STARTED }), v4(i), false, NOW)
  for (let i = 1; i <= n6; i++) c.announce(announceReq(H, pid(1000 + i), { event: EVENT_STARTED }), v6(i), false, NOW)
  for (let i = 1; i <= 3; i++) c.store.announce(storeReq(H, wsPeer(i), { event: EVENT_STARTED }), NOW)
}

function sync<T> (v: T | Promise<T>): T {
  assert.ok(!(v instanceof Promise), 'the memory store answers synchronously')
  return v as T
}

describe('TrackerCore.numwant', () => {
  const c = core({ defaultNumwant: 50 })
  it('uses the default when the client did not say (-1)', () => {
    assert.equal(c.numwant(-1, 200), 50)
    assert.equal(c.numwant(-1, 74), 50)
  })
  it('caps the default too', () => {
    assert.equal(c.numwant(-1, 30), 30)
    assert.equal(c.numwant(-1, 0), 0)
  })
  it('keeps a request within the cap, caps a larger one', () => {
    assert.equal(c.numwant(0, 200), 0)
    assert.equal(c.numwant(1, 200), 1)
    assert.equal(c.numwant(199, 200), 199)
    assert.equal(c.numwant(200, 200), 200)
    assert.equal(c.numwant(201, 200), 200)
    assert.equal(c.numwant(2 ** 31 - 1, 74), 74)
  })
})

describe('TrackerCore.announce', () => {
  it('hands the store the peer keyed by its address, its kind, and a clamped numwant', () => {
    const store = new SpyStore({ peerTtl: 1200 })
    const c = core({}, store)
    const H = hash(1)
    c.announce(announceReq(H, pid(1), { event: EVENT_STARTED, left: 10 }), v4(1), false, NOW)
    c.announce(announceReq(H, pid(2), { event: EVENT_COMPLETED, left: 0, numwant: 5000 }), v6(2), false, NOW)
    c.announce(announceReq(H, pid(3), { numwant: 5000 }), v4(3), true, NOW)
    c.announce(announceReq(H, pid(4), { numwant: 7 }), v6(4), true, NOW)
    c.announce(announceReq(H, pid(5), { event: EVENT_STOPPED, numwant: 0 }), v4(5), true, NOW)
    assert.deepEqual(store.asked, [
      { infoHash: H, key: v4(1), peerId: pid(1), addr: v4(1), kind: KIND_V4, conn: 0, event: EVENT_STARTED, seeder: false, numwant: 50, want: WANT_V4 | WANT_V6 },
      { infoHash: H, key: v6(2), peerId: pid(2), addr: v6(2), kind: KIND_V6, conn: 0, event: EVENT_COMPLETED, seeder: true, numwant: 200, want: WANT_V4 | WANT_V6 },
      { infoHash: H, key: v4(3), peerId: pid(3), addr: v4(3), kind: KIND_V4, conn: 0, event: EVENT_NONE, seeder: false, numwant: MAX_UDP_PEERS, want: WANT_V4 },
      { infoHash: H, key: v6(4), peerId: pid(4), addr: v6(4), kind: KIND_V6, conn: 0, event: EVENT_NONE, seeder: false, numwant: 7, want: WANT_V6 },
      { infoHash: H, key: v4(5), peerId: pid(5), addr: v4(5), kind: KIND_V4, conn: 0, event: EVENT_STOPPED, seeder: false, numwant: 0, want: WANT_V4 }
    ])
  })

  it('UDP over IPv4 returns only IPv4 peers, at most MAX_UDP_PEERS', () => {
    const c = core()
    const H = hash(2)
    populate(c, H, 120, 120)
    const def = sync(c.announce(announceReq(H, pid(9000)), v4(9000), true, NOW))
    assert.equal(def.peers.length, 50, 'the default numwant')
    const many = sync(c.announce(announceReq(H, pid(9000), { numwant: 1000 }), v4(9000), true, NOW))
    assert.equal(many.peers.length, MAX_UDP_PEERS)
    for (const r of [def, many]) {
      assert.ok(r.peers.every(p => p.kind === KIND_V4 && p.addr.length === 6 && p.addr !== v4(9000)))
      assert.equal(new Set(r.peers.map(p => p.addr)).size, r.peers.length)
    }
    assert.deepEqual([many.complete, many.incomplete], [0, 244])
  })

  it('UDP over IPv6 returns only IPv6 peers, at most MAX_UDP_PEERS', () => {
    const c = core()
    const H = hash(3)
    populate(c, H, 120, 120)
    const r = sync(c.announce(announceReq(H, pid(9000), { numwant: 1000 }), v6(9000), true, NOW))
    assert.equal(r.peers.length, MAX_UDP_PEERS)
    assert.ok(r.peers.every(p => p.kind === KIND_V6 && p.addr.length === 18))
  })

  it('UDP respects a server cap below MAX_UDP_PEERS', () => {
    const c = core({ maxNumwant: 10, defaultNumwant: 50 })
    const H = hash(4)
    populate(c, H, 30, 0)
    assert.equal(sync(c.announce(announceReq(H, pid(9000)), v4(9000), true, NOW)).peers.length, 10)
    assert.equal(sync(c.announce(announceReq(H, pid(9000), { numwant: 3 }), v4(9000), true, NOW)).peers.length, 3)
  })

  it('HTTP returns both families (never WebSocket peers), up to maxNumwant', () => {
    const c = core()
    const H = hash(5)
    populate(c, H, 150, 150)
    const r = sync(c.announce(announceReq(H, pid(9000), { numwant: 1000 }), v4(9000), false, NOW))
    assert.equal(r.peers.length, 200)
    assert.ok(r.peers.every(p => p.kind !== KIND_WS))
    const kinds = new Set(r.peers.map(p => p.kind))
    assert.deepEqual(kinds, new Set([KIND_V4, KIND_V6]), 'both families among 200 of 150 + 150')
    // a small swarm: everyone else, both families
    const small = core()
    populate(small, H, 2, 2)
    const all = sync(small.announce(announceReq(H, pid(9000)), v6(9000), false, NOW))
    assert.deepEqual(all.peers.map(p => p.addr).sort(), [v4(1), v4(2), v6(1), v6(2)].sort())
    assert.equal(sync(small.announce(announceReq(H, pid(9000), { numwant: 0 }), v6(9000), false, NOW)).peers.length, 0)
  })

  it('left 0 is a seeder, which gets only leechers; the same address with a new peer id is the same peer', () => {
    const c = core()
    const H = hash(6)
    sync(c.announce(announceReq(H, pid(1), { event: EVENT_STARTED, left: 0 }), v4(1), false, NOW))
    sync(c.announce(announceReq(H, pid(2), { event: EVENT_STARTED, left: 0 }), v4(2), false, NOW))
    sync(c.announce(announceReq(H, pid(3), { event: EVENT_STARTED }), v4(3), false, NOW))
    const r = sync(c.announce(announceReq(H, pid(99), { left: 0 }), v4(1), false, NOW))
    assert.deepEqual([r.complete, r.incomplete], [2, 1])
    assert.deepEqual(r.peers.map(p => p.addr), [v4(3)])
    const peers = [...c.store.swarmInfo(H)!.peers()].map(([, p]) => p.peerId).sort()
    assert.deepEqual(peers, [pid(2), pid(3), pid(99)])
  })
})

describe('TrackerCore.scrape', () => {
  it('scrapes the hashes asked for, zeros for unknown ones', () => {
    const c = core()
    sync(c.announce(announceReq(hash(10), pid(1), { event: EVENT_STARTED }), v4(1), false, NOW))
    assert.deepEqual(sync(c.scrape([hash(10), hash(11)])), [
      { infoHash: hash(10), complete: 0, incomplete: 1, downloaded: 0 },
      { infoHash: hash(11), complete: 0, incomplete: 0, downloaded: 0 }
    ])
  })

  it('an empty list is a full scrape, bounded by fullScrapeLimit', () => {
    const c = core({ fullScrapeLimit: 3 })
    for (let i = 0; i < 5; i++) sync(c.announce(announceReq(hash(20 + i), pid(i), { event: EVENT_STARTED }), v4(i), false, NOW))
    const full = sync(c.scrape([]))
    assert.equal(full.length, 3)
    assert.equal(new Set(full.map(e => e.infoHash)).size, 3)
    for (const e of full) assert.deepEqual({ ...e, infoHash: '' }, { infoHash: '', complete: 0, incomplete: 1, downloaded: 0 })
    assert.equal(sync(core({ fullScrapeLimit: 100 }, c.store).scrape([])).length, 5)
    assert.deepEqual(sync(core({ fullScrapeLimit: 0 }, c.store).scrape([])), [], 'a limit of 0 is an empty full scrape')
  })
})

describe('TrackerCore in-place announces', () => {
  it('compact is true only with a store that has announceCompact and scrapeCompact', () => {
    assert.equal(core().compact, true)
    const plain: SwarmStore = Object.assign(Object.create(null) as SwarmStore, { announce: () => ({ complete: 0, incomplete: 0, downloaded: 0, peers: [] }) })
    assert.equal(core({}, plain).compact, false)
  })

  it('udpNumwantCap is the smaller of MAX_UDP_PEERS and maxNumwant', () => {
    assert.equal(core({ maxNumwant: 200 }).udpNumwantCap, MAX_UDP_PEERS)
    assert.equal(core({ maxNumwant: 10 }).udpNumwantCap, 10)
  })

  it('announceCompact writes the addresses announce would give, after the update', () => {
    const c = core()
    const H = hash(300)
    populate(c, H, 5, 2)
    const a = storeReq(H, { key: v4(9), peerId: pid(9), addr: v4(9), kind: KIND_V4, conn: 0 }, { event: EVENT_STARTED, numwant: 50, want: WANT_V4 })
    const out = new Uint8Array(4 + 6 * 50)
    const r = c.announceCompact(a, NOW, out, 4)
    assert.deepEqual({ ...r }, { complete: 0, incomplete: 11, downloaded: 0, peers: 5 })
    const got = Array.from({ length: 5 }, (_, i) => String.fromCharCode(...out.subarray(4 + 6 * i, 10 + 6 * i))).sort()
    assert.deepEqual(got, [1, 2, 3, 4, 5].map(v4).sort())
    const r6 = c.announceCompact({ ...a, key: v6(9), addr: v6(9), kind: KIND_V6, want: WANT_V6 }, NOW, out, 0)
    assert.equal(r6.peers, 2)
    assert.deepEqual([String.fromCharCode(...out.subarray(0, 18)), String.fromCharCode(...out.subarray(18, 36))].sort(), [v6(1), v6(2)].sort())
  })
})
