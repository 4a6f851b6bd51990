import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import type { AnnounceEvent } from '../../../src/protocol/common/types.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import { KIND_V4, KIND_V6, KIND_WS } from '../../../src/server/store/store.js'
import type { PeerKind } from '../../../src/server/store/store.js'
import {
  ListenerReplay, Model, T0, TTL, applyOp, behindPromises, compare, hash, httpV4, pid, req, runStoreConformance, v4, wsPeer
} from './conformance.js'
import type { Op } from './conformance.js'

runStoreConformance('MemoryStore', opts => new MemoryStore(opts))

// The same store answering through Promises: shows the suite awaits every result.
runStoreConformance('MemoryStore behind Promises', async opts => behindPromises(new MemoryStore(opts)))

describe('MemoryStore specifics', () => {
  /** Makes torrent `n` retired with `downloads` downloads. */
  function retire (s: MemoryStore, n: number, downloads = 1): void {
    for (let i = 0; i < downloads; i++) {
      s.announce(req(hash(n), httpV4(i), { event: EVENT_STARTED }), 1)
      s.announce(req(hash(n), httpV4(i), { event: EVENT_COMPLETED, seeder: true }), 1)
    }
    for (let i = 0; i < downloads; i++) s.announce(req(hash(n), httpV4(i), { event: EVENT_STOPPED }), 1)
  }

  it('forgets the longest-retired torrent beyond maxRetired', () => {
    const s = new MemoryStore({ peerTtl: 100, maxRetired: 3 })
    retire(s, 1, 1)
    retire(s, 2, 2)
    retire(s, 3, 3)
    assert.equal(s.counts.retired, 3)
    retire(s, 4, 4)
    assert.deepEqual(s.counts, { torrents: 0, retired: 3, peers: 0, seeders: 0, leechers: 0 })
    assert.deepEqual(s.scrape([hash(1), hash(2), hash(3), hash(4)]).map(e => e.downloaded), [0, 2, 3, 4])

    // a retired torrent that comes back is no longer retired; retiring it again makes it the newest
    s.announce(req(hash(2), httpV4(9), { event: EVENT_STARTED }), 1)
    assert.deepEqual(s.counts, { torrents: 1, retired: 2, peers: 1, seeders: 0, leechers: 1 })
    s.announce(req(hash(2), httpV4(9), { event: EVENT_STOPPED }), 1)
    assert.equal(s.counts.retired, 3)
    retire(s, 5, 5)
    assert.deepEqual(s.scrape([hash(2), hash(3), hash(4), hash(5)]).map(e => e.downloaded), [2, 0, 4, 5])
    assert.equal(s.counts.retired, 3)
  })

  it('close() forgets everything', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    retire(s, 1)
    s.announce(req(hash(2), wsPeer(1), { event: EVENT_STARTED }), 1)
    s.close()
    assert.deepEqual(s.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 })
    assert.deepEqual([...s.infoHashes()], [])
    assert.deepEqual(s.scrape([hash(1)])[0].downloaded, 0)
  })

  it('answers synchronously', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    const r = s.announce(req(hash(1), httpV4(1), { event: EVENT_STARTED }), 1)
    assert.equal(typeof (r as { then?: unknown }).then, 'undefined')
    assert.equal(typeof s.sweep(1, 10), 'boolean')
    assert.equal(typeof s.remove(hash(1), 'x'), 'boolean')
    assert.ok(Array.isArray(s.scrape([hash(1)])))
  })

  it('a returned peer keeps the peer id it had, after its record changes or moves', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    const H = hash(1)
    s.announce(req(H, httpV4(1), { event: EVENT_STARTED }), 1)
    s.announce(req(H, httpV4(2), { event: EVENT_STARTED }), 1)
    const r = s.announce(req(H, httpV4(1), { numwant: 5 }), 2)
    assert.equal(r.peers.length, 1)
    // peer 2 restarts with another peer id, becomes a seeder (its record moves), then leaves
    s.announce(req(H, httpV4(2, pid(77)), { event: EVENT_COMPLETED, seeder: true }), 3)
    s.announce(req(H, httpV4(2, pid(77)), { event: EVENT_STOPPED }), 3)
    const p = r.peers[0]
    assert.deepEqual({ addr: p.addr, peerId: p.peerId, kind: p.kind, conn: p.conn }, { addr: v4(2), peerId: pid(2), kind: 0, conn: 0 })
  })

  it('a swarm of 5000 HTTP peers: every one found again, 200 distinct picks, shrinks back when most leave', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    const H = hash(2)
    for (let i = 0; i < 5000; i++) s.announce(req(H, httpV4(i), { event: EVENT_STARTED, seeder: i % 3 === 0 }), 1)
    assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 5000, seeders: 1667, leechers: 3333 })
    // re-announcing finds each peer (no new entry), flipping every leecher with i % 5 === 0 to seeder
    for (let i = 0; i < 5000; i++) s.announce(req(H, httpV4(i), { seeder: i % 3 === 0 || i % 5 === 0 }), 2)
    assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 5000, seeders: 2333, leechers: 2667 })
    const r = s.announce(req(H, httpV4(1), { numwant: 200 }), 2)
    assert.equal(new Set(r.peers.map(p => p.addr)).size, 200)
    assert.ok(r.peers.every(p => p.addr !== v4(1) && p.peerId === pid(p.addr.charCodeAt(2) << 8 | p.addr.charCodeAt(3))))
    // a seeder gets leechers only
    const rs = s.announce(req(H, httpV4(0), { seeder: true, numwant: 200 }), 2)
    assert.ok(rs.peers.every(p => { const i = p.addr.charCodeAt(2) << 8 | p.addr.charCodeAt(3); return i % 3 !== 0 && i % 5 !== 0 }))
    // all but 10 leave
    for (let i = 10; i < 5000; i++) assert.equal(s.remove(H, v4(i)), true)
    assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 10, seeders: 5, leechers: 5 })
    const view = [...s.swarmInfo(H)!.peers()].map(([k, p]) => [k, p.peerId, p.seeder]).sort()
    assert.deepEqual(view, Array.from({ length: 10 }, (_, i) => [v4(i), pid(i), i % 3 === 0 || i % 5 === 0]).sort())
    for (let i = 0; i < 10; i++) s.announce(req(H, httpV4(i), { event: EVENT_STOPPED }), 3)
    assert.deepEqual(s.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 })
  })

  it('an IPv4 peer moves between the record and object layouts when its details need it, counted once', () => {
    const events: string[] = []
    const s = new MemoryStore({
      peerTtl: 100,
      listener: { peerChanged: (peerId, _kind, addr, before, after) => events.push(`${peerId.length}:${addr === v4(1) ? 'a' : '?'}:${before}>${after}`) }
    })
    const H = hash(3)
    const long = pid(1) + 'xxxxx' // 25 bytes: too long for a record
    s.announce(req(H, httpV4(1, long), { event: EVENT_STARTED }), 1)
    s.announce(req(H, httpV4(2), { event: EVENT_STARTED }), 1)
    assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 2, seeders: 0, leechers: 2 })
    // the same address with a 20-byte id completes: one peer, now a seeder, one download
    let r = s.announce(req(H, httpV4(1), { event: EVENT_COMPLETED, seeder: true, numwant: 5 }), 2)
    assert.deepEqual([r.complete, r.incomplete, r.downloaded, r.peers.map(p => p.addr)], [1, 1, 1, [v4(2)]])
    // and back to the long id as a seeder repeating completed: no second download
    r = s.announce(req(H, httpV4(1, long), { event: EVENT_COMPLETED, seeder: true }), 3)
    assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 1])
    const view = [...s.swarmInfo(H)!.peers()].map(([k, p]) => [k, p.peerId, p.seeder, p.lastSeen])
    assert.deepEqual(view.sort(), [[v4(1), long, true, 3], [v4(2), pid(2), false, 1]])
    // a peer asking as the other layout never gets itself back
    r = s.announce(req(H, httpV4(2), { numwant: 5 }), 3)
    assert.deepEqual(r.peers.map(p => [p.addr, p.peerId]), [[v4(1), long]])
    assert.equal(s.remove(H, v4(1)), true)
    assert.equal(s.remove(H, v4(1)), false)
    assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 1, seeders: 0, leechers: 1 })
    assert.deepEqual(events.filter(e => e.endsWith('a') || e.includes(':a:')), [
      '25:a:-1>0', '25:a:0>-1', '20:a:-1>1', '20:a:1>-1', '25:a:-1>1', '25:a:1>-1'
    ])
  })
})

describe('MemoryStore torrent table: one-peer torrents inline, bigger ones as objects (model-based)', () => {
  const N = 2500
  const HASHES = Array.from({ length: N }, (_, i) => hash(i))
  /** Mostly one-peer torrents over many info hashes: growth and shrink of the index, inline ↔ object. */
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { arbitrary: fc.record({
      t: fc.constant('announce' as const),
      h: fc.integer({ min: 0, max: 40 }),
      kind: fc.constantFrom<PeerKind>(KIND_V4, KIND_V4, KIND_V4, KIND_V6, KIND_WS),
      slot: fc.integer({ min: 0, max: 2 }),
      id: fc.constantFrom(0, 1, 100),
      conn: fc.integer({ min: 1, max: 2 }),
      event: fc.constantFrom<AnnounceEvent>(EVENT_NONE, EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED),
      seeder: fc.boolean(),
      numwant: fc.integer({ min: 0, max: 4 }),
      want: fc.integer({ min: 0, max: 7 })
    }), weight: 20 },
    { arbitrary: fc.record({
      t: fc.constant('bulk' as const),
      from: fc.integer({ min: 0, max: N - 1 }),
      count: fc.integer({ min: 1, max: 1500 }),
      slot: fc.integer({ min: 0, max: 1 }),
      event: fc.constantFrom<AnnounceEvent>(EVENT_STARTED, EVENT_COMPLETED, EVENT_STOPPED, EVENT_STOPPED),
      seeder: fc.boolean()
    }), weight: 3 },
    { arbitrary: fc.record({ t: fc.constant('remove' as const), h: fc.integer({ min: 0, max: 40 }), kind: fc.constantFrom<PeerKind>(KIND_V4, KIND_V4, KIND_V6, KIND_WS), slot: fc.integer({ min: 0, max: 2 }) }), weight: 3 },
    { arbitrary: fc.record({ t: fc.constant('setDownloaded' as const), h: fc.integer({ min: 0, max: 40 }), n: fc.constantFrom(1, 254, 255, 256, 1000) }), weight: 2 },
    { arbitrary: fc.record({ t: fc.constant('tick' as const), by: fc.integer({ min: 0, max: 80 }) }), weight: 3 },
    { arbitrary: fc.record({ t: fc.constant('sweepStep' as const), budget: fc.integer({ min: 1, max: 3000 }) }), weight: 2 },
    { arbitrary: fc.record({ t: fc.constant('fullSweep' as const), budget: fc.integer({ min: 500, max: 5000 }) }), weight: 1 }
  )

  it('counts, torrents, swarms and returned peers match the model', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 20, maxLength: 80 }), async ops => {
      const replay = new ListenerReplay()
      const s = new MemoryStore({ peerTtl: TTL, listener: replay })
      const m = new Model(T0)
      for (const op of ops) {
        await applyOp(s, m, op, HASHES)
        // the small swarms every op; a sample of the rest
        compare(s, m, op.t === 'bulk' ? [...HASHES.slice(0, 41), HASHES[op.from], HASHES[(op.from + op.count - 1) % N]] : HASHES.slice(0, 41))
        replay.assertMatches(s)
      }
      compare(s, m, HASHES)
      assert.deepEqual(s.scrape(HASHES), HASHES.map(h => m.scrape(h)))
    }), { numRuns: 25 })
  })

  it('5000 one-peer torrents: the index grows, every torrent answers; expired, it shrinks back', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    for (let i = 0; i < 5000; i++) s.announce(req(hash(i), httpV4(i), { event: EVENT_STARTED, seeder: i % 4 === 0 }), 1)
    assert.deepEqual(s.counts, { torrents: 5000, retired: 0, peers: 5000, seeders: 1250, leechers: 3750 })
    let l = s.layout()
    assert.equal(l.objects, 0, 'one-peer torrents take no object')
    assert.equal(l.arenaBytes, 0, 'nor a record block')
    assert.equal(l.entries, 5000)
    assert.ok(l.slots >= 8192)
    for (let i = 0; i < 5000; i++) {
      assert.deepEqual(s.scrape([hash(i)])[0], { infoHash: hash(i), complete: i % 4 === 0 ? 1 : 0, incomplete: i % 4 === 0 ? 0 : 1, downloaded: 0 })
    }
    // 100 stay fresh; the rest expire
    for (let i = 0; i < 100; i++) s.announce(req(hash(i), httpV4(i), { seeder: i % 4 === 0 }), 150)
    let calls = 0
    while (!s.sweep(200, 1000)) calls++
    assert.ok(calls >= 5, 'a pass over 5000 torrents takes several steps at a budget of 1000')
    while (!s.sweep(200, 1000));
    assert.deepEqual(s.counts, { torrents: 100, retired: 0, peers: 100, seeders: 25, leechers: 75 })
    // the sweep also walks the shrinking index, a slice per call
    for (let i = 0; i < 100 && s.layout().resizing; i++) s.sweep(200, 1000)
    l = s.layout()
    assert.equal(l.resizing, false)
    assert.ok(l.slots <= 1024, `the index shrank back (${l.slots} slots)`)
    assert.deepEqual(new Set(s.infoHashes()), new Set(Array.from({ length: 100 }, (_, i) => hash(i))))
  })

  it('a torrent moves inline → object → inline as peers come and go, keeping its downloads', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    const H = hash(7)
    s.announce(req(H, httpV4(1), { event: EVENT_STARTED }), 1)
    s.announce(req(H, httpV4(1), { event: EVENT_COMPLETED, seeder: true }), 1)
    assert.deepEqual(s.layout().objects, 0)
    let r = s.announce(req(H, httpV4(2), { event: EVENT_STARTED, numwant: 5 }), 2)
    assert.deepEqual([r.complete, r.incomplete, r.downloaded, r.peers.map(p => [p.addr, p.peerId])], [1, 1, 1, [[v4(1), pid(1)]]])
    assert.equal(s.layout().objects, 1)
    s.announce(req(H, httpV4(1), { event: EVENT_STOPPED }), 3)
    assert.equal(s.layout().objects, 0, 'back inline with one peer')
    assert.equal(s.layout().arenaBytes > 0, true, 'the arena keeps its chunk')
    assert.deepEqual([...s.swarmInfo(H)!.peers()].map(([k, p]) => [k, p.peerId, p.seeder, p.lastSeen]), [[v4(2), pid(2), false, 2]])
    // 300 downloads do not fit the inline byte: the torrent becomes an object again, alone
    s.setDownloaded(H, 300)
    assert.equal(s.layout().objects, 1)
    r = s.announce(req(H, httpV4(2), { event: EVENT_COMPLETED, seeder: true }), 4)
    assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 301])
    s.announce(req(H, httpV4(2), { event: EVENT_STOPPED }), 4)
    assert.deepEqual(s.counts, { torrents: 0, retired: 1, peers: 0, seeders: 0, leechers: 0 })
    // back from the retired with 301: an object from its first peer
    r = s.announce(req(H, httpV4(3), { event: EVENT_STARTED }), 5)
    assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 1, 301])
    assert.equal(s.layout().objects, 1)
    // an inline torrent at 255 counts its 256th download
    const G = hash(8)
    s.setDownloaded(G, 255)
    s.announce(req(G, httpV4(1), { event: EVENT_STARTED }), 5)
    r = s.announce(req(G, httpV4(1), { event: EVENT_COMPLETED, seeder: true }), 5)
    assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 256])
  })
})
