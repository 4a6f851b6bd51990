/**
 * The SwarmStore conformance suite (src/server/store/store.ts states the contract). Written
 * against the interface only, awaiting every result, so any store — in memory or networked —
 * runs it: `runStoreConformance('my store', opts => new MyStore(opts))` from a *.test.ts file.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import {
  EVENT_COMPLETED, EVENT_NONE, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED
} from '../../../src/protocol/common/types.js'
import type { AnnounceEvent, BinaryString } from '../../../src/protocol/common/types.js'
import {
  announceCompact, KIND_V4, KIND_V6, KIND_WS, scrapeCompact, WANT_V4, WANT_V6, WANT_WS
} from '../../../src/server/store/store.js'
import type {
  PeerKind, StoreAnnounce, StoreAnnounceResult, StoreListener, StorePeer, SwarmStore
} from '../../../src/server/store/store.js'

export type StoreFactory = (opts: { peerTtl: number, listener?: StoreListener }) => SwarmStore | Promise<SwarmStore>

export interface ConformanceOptions {
  /**
   * Whether the store calls its StoreListener (the contract asks it only of stores that hold
   * state in process). Default true.
   */
  listener?: boolean
}

// ---- identities -----------------------------------------------------------------------------

/** A 20-byte info hash with bytes ≥ 0x80, so binary keys are exercised. */
export function hash (n: number): BinaryString {
  return String.fromCharCode(0xe0, n >> 8 & 0xff, n & 0xff) + '\xff\x80\x00\x7f'.repeat(4) + '\xe9'
}

/** A 20-byte peer id, Transmission-style. */
export function pid (n: number): BinaryString {
  return '-TR2940-' + String(n).padStart(12, '0')
}

/** Compact IPv4 address 10.0.x.y, port 6881 + (n >> 16). */
export function v4 (n: number): BinaryString {
  const port = 6881 + (n >> 16)
  return String.fromCharCode(10, 0, n >> 8 & 0xff, n & 0xff, port >> 8, port & 0xff)
}

/** Compact IPv6 address 2001:db8::x:y, port 6881. */
export function v6 (n: number): BinaryString {
  return String.fromCharCode(0x20, 0x01, 0x0d, 0xb8) + '\x00'.repeat(10) +
    String.fromCharCode(n >> 8 & 0xff, n & 0xff, 0x1a, 0xe1)
}

/** Who announces: everything of a StoreAnnounce that does not vary per announce. */
export interface Who {
  key: BinaryString
  peerId: BinaryString
  addr: BinaryString
  kind: PeerKind
  conn: number
}

export function httpV4 (n: number, peerId: BinaryString = pid(n)): Who {
  return { key: v4(n), peerId, addr: v4(n), kind: KIND_V4, conn: 0 }
}

export function httpV6 (n: number, peerId: BinaryString = pid(n)): Who {
  return { key: v6(n), peerId, addr: v6(n), kind: KIND_V6, conn: 0 }
}

/** A WebSocket peer: keyed by its peer id; `addr` is its socket's remote end. */
export function wsPeer (n: number, conn: number = n + 1): Who {
  const peerId = '-WW0102-' + String(n).padStart(12, '0')
  return { key: peerId, peerId, addr: v4(0x8000 + conn), kind: KIND_WS, conn }
}

interface AnnounceOpts {
  event?: AnnounceEvent
  seeder?: boolean
  numwant?: number
  want?: number
}

export function req (infoHash: BinaryString, who: Who, o: AnnounceOpts = {}): StoreAnnounce {
  return {
    infoHash,
    key: who.key,
    peerId: who.peerId,
    addr: who.addr,
    kind: who.kind,
    conn: who.conn,
    event: o.event ?? EVENT_NONE,
    seeder: o.seeder ?? false,
    numwant: o.numwant ?? 0,
    want: o.want ?? (who.kind === KIND_WS ? WANT_WS : who.kind === KIND_V4 ? WANT_V4 : WANT_V6)
  }
}

/** Identity of a returned peer as the tests build them (HTTP/UDP: address; WS: peer id). */
function peerKey (p: StorePeer): BinaryString {
  return p.kind === KIND_WS ? p.peerId : p.addr
}

/** Just the StorePeer fields (a store may hand out richer objects). */
function fields (p: StorePeer): StorePeer {
  return { peerId: p.peerId, addr: p.addr, kind: p.kind, conn: p.conn }
}

/**
 * `inner` answering through Promises, a microtask later, as a networked store would (for tests of
 * code that must await the store).
 */
export function behindPromises (inner: SwarmStore): SwarmStore {
  const later = async <T>(v: T | Promise<T>): Promise<T> => { await Promise.resolve(); return await v }
  return {
    announce: (a: StoreAnnounce, now: number) => later(inner.announce(a, now)),
    scrape: (hs: readonly BinaryString[]) => later(inner.scrape(hs)),
    scrapeAll: (limit: number) => later(inner.scrapeAll(limit)),
    remove: (ih: BinaryString, key: BinaryString) => later(inner.remove(ih, key)),
    sweep: (now: number, budget: number) => later(inner.sweep(now, budget)),
    swarmInfo: (ih: BinaryString) => inner.swarmInfo(ih),
    infoHashes: () => inner.infoHashes(),
    get counts () { return inner.counts },
    close: () => later(inner.close())
  }
}

/** `inner` with `refresh()` awaited after every call that may change it. */
function refreshing (inner: SwarmStore): SwarmStore {
  const after = async <T>(v: T | Promise<T>): Promise<T> => { const r = await v; await inner.refresh!(); return r }
  return {
    announce: (a: StoreAnnounce, now: number) => after(inner.announce(a, now)),
    scrape: (hs: readonly BinaryString[]) => inner.scrape(hs),
    scrapeAll: (limit: number) => inner.scrapeAll(limit),
    remove: (ih: BinaryString, key: BinaryString) => after(inner.remove(ih, key)),
    sweep: (now: number, budget: number) => after(inner.sweep(now, budget)),
    swarmInfo: (ih: BinaryString) => inner.swarmInfo(ih),
    infoHashes: () => inner.infoHashes(),
    get counts () { return inner.counts },
    close: () => inner.close()
  }
}

// ---- recount --------------------------------------------------------------------------------

interface Recount { torrents: number, peers: number, seeders: number, leechers: number }

/** Counts recomputed by walking every swarm, checking each swarm's own counters on the way. */
export function recount (store: SwarmStore): Recount {
  const r: Recount = { torrents: 0, peers: 0, seeders: 0, leechers: 0 }
  for (const ih of store.infoHashes()) {
    const info = store.swarmInfo(ih)
    assert.ok(info !== undefined, 'infoHashes() lists only swarms that exist')
    let seeders = 0
    let leechers = 0
    for (const [, p] of info.peers()) {
      if (p.seeder) seeders++; else leechers++
    }
    assert.ok(seeders + leechers > 0, 'no empty swarm is listed')
    assert.equal(info.complete, seeders, 'swarm complete = its seeders')
    assert.equal(info.incomplete, leechers, 'swarm incomplete = its leechers')
    r.torrents++
    r.peers += seeders + leechers
    r.seeders += seeders
    r.leechers += leechers
  }
  return r
}

export function assertCountsMatchRecount (store: SwarmStore): void {
  const { torrents, peers, seeders, leechers } = store.counts
  assert.deepEqual({ torrents, peers, seeders, leechers }, recount(store))
}

function peerMap (store: SwarmStore, infoHash: BinaryString): Map<BinaryString, { peerId: string, seeder: boolean, kind: number }> {
  const out = new Map<BinaryString, { peerId: string, seeder: boolean, kind: number }>()
  const info = store.swarmInfo(infoHash)
  if (info === undefined) return out
  for (const [key, p] of info.peers()) out.set(key, { peerId: p.peerId, seeder: p.seeder, kind: p.kind })
  return out
}

/** Replays StoreListener calls into per-(peer id, kind, address) seeder/leecher counts. */
export class ListenerReplay implements StoreListener {
  readonly state = new Map<string, [number, number]>()
  calls = 0

  peerChanged (peerId: BinaryString, kind: PeerKind, addr: BinaryString, before: -1 | 0 | 1, after: -1 | 0 | 1): void {
    this.calls++
    assert.ok(before !== -1 || after !== -1, 'a change from absent to absent')
    const k = `${kind}|${peerId}|${addr}`
    let s = this.state.get(k)
    if (s === undefined) { s = [0, 0]; this.state.set(k, s) }
    if (before !== -1) {
      assert.ok(s[before] > 0, `listener removed a ${before === 1 ? 'seeder' : 'leecher'} it was never told of`)
      s[before]--
    }
    if (after !== -1) s[after]++
    if (s[0] === 0 && s[1] === 0) this.state.delete(k)
  }

  /** What the replay should hold: every peer of every swarm. */
  static expected (store: SwarmStore): Map<string, [number, number]> {
    const out = new Map<string, [number, number]>()
    for (const ih of store.infoHashes()) {
      for (const [, p] of store.swarmInfo(ih)!.peers()) {
        const k = `${p.kind}|${p.peerId}|${p.addr}`
        let s = out.get(k)
        if (s === undefined) { s = [0, 0]; out.set(k, s) }
        s[p.seeder ? 1 : 0]++
      }
    }
    return out
  }

  assertMatches (store: SwarmStore): void {
    const sorted = (m: Map<string, [number, number]>): Array<[string, [number, number]]> =>
      [...m].sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
    assert.deepEqual(sorted(this.state), sorted(ListenerReplay.expected(store)))
  }
}

// ---- the suite ------------------------------------------------------------------------------

export const TTL = 100
export const T0 = 1_000_000

export function runStoreConformance (name: string, makeStore: StoreFactory, options: ConformanceOptions = {}): void {
  const withListener = options.listener !== false

  /**
   * Runs `fn` on a fresh store and closes it whatever happens. A store with a snapshot view
   * (`refresh`) is refreshed after every call, before the test reads the synchronous members.
   */
  async function withStore (fn: (s: SwarmStore) => Promise<void>, listener?: StoreListener): Promise<void> {
    const store = await makeStore({ peerTtl: TTL, listener })
    try { await fn(store.refresh === undefined ? store : refreshing(store)) } finally { await store.close() }
  }

  const announce = async (s: SwarmStore, infoHash: BinaryString, who: Who, o: AnnounceOpts = {}, now = T0): Promise<StoreAnnounceResult> =>
    await s.announce(req(infoHash, who, o), now)

  const scrapeOne = async (s: SwarmStore, infoHash: BinaryString): Promise<[number, number, number]> => {
    const [e] = await s.scrape([infoHash])
    assert.equal(e.infoHash, infoHash)
    return [e.complete, e.incomplete, e.downloaded]
  }

  describe(`SwarmStore conformance: ${name}`, () => {
    describe('seeders and leechers', () => {
      it('counts peers through started, update, completed, paused and stopped', () => withStore(async s => {
        const H = hash(1)
        const a = httpV4(1)
        const b = httpV4(2)
        let r = await announce(s, H, a, { event: EVENT_STARTED })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded, r.peers], [0, 1, 0, []])
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 1, seeders: 0, leechers: 1 })

        r = await announce(s, H, b, { event: EVENT_STARTED, seeder: true })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 0], 'starting as a seeder is no download')
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 2, seeders: 1, leechers: 1 })

        r = await announce(s, H, a, { event: EVENT_NONE })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 0], 'an update refreshes, adds nothing')

        r = await announce(s, H, a, { event: EVENT_PAUSED })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 0], 'paused keeps the peer')

        r = await announce(s, H, a, { event: EVENT_COMPLETED, seeder: true })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [2, 0, 1])
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 2, seeders: 2, leechers: 0 })

        r = await announce(s, H, b, { event: EVENT_NONE, seeder: false })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 1], 'a seeder with left > 0 is a leecher again')
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 2, seeders: 1, leechers: 1 })

        r = await announce(s, H, b, { event: EVENT_STOPPED })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded, r.peers], [1, 0, 1, []])
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 1, seeders: 1, leechers: 0 })
        assert.deepEqual(await scrapeOne(s, H), [1, 0, 1])
        assertCountsMatchRecount(s)
      }))

      it('a peer first seen through paused is added', () => withStore(async s => {
        const r = await announce(s, hash(1), httpV4(1), { event: EVENT_PAUSED, seeder: true })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 0])
        assert.equal(s.counts.peers, 1)
      }))

      it('stopped from an unknown peer or in an unknown swarm changes nothing', () => withStore(async s => {
        let r = await announce(s, hash(1), httpV4(1), { event: EVENT_STOPPED, numwant: 10 })
        assert.deepEqual(r, { complete: 0, incomplete: 0, downloaded: 0, peers: [] })
        assert.equal(s.swarmInfo(hash(1)), undefined)
        assert.deepEqual(s.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 })
        await announce(s, hash(1), httpV4(2), { event: EVENT_STARTED, seeder: true })
        r = await announce(s, hash(1), httpV4(1), { event: EVENT_STOPPED, numwant: 10 })
        assert.deepEqual(r, { complete: 1, incomplete: 0, downloaded: 0, peers: [] })
        assert.equal(s.counts.peers, 1)
      }))

      it('the swarm view shows each peer with its details', () => withStore(async s => {
        const H = hash(7)
        await announce(s, H, httpV4(1), { event: EVENT_STARTED }, T0)
        await announce(s, H, httpV6(2), { event: EVENT_STARTED, seeder: true }, T0 + 5)
        await announce(s, H, wsPeer(3, 42), { event: EVENT_STARTED }, T0 + 9)
        const info = s.swarmInfo(H)
        assert.ok(info !== undefined)
        assert.deepEqual([info.complete, info.incomplete, info.downloaded], [1, 2, 0])
        const peers = [...info.peers()].map(([key, p]) => ({
          key, peerId: p.peerId, addr: p.addr, kind: p.kind, conn: p.conn, seeder: p.seeder, lastSeen: p.lastSeen
        })).sort((x, y) => x.kind - y.kind)
        assert.deepEqual(peers, [
          { key: v4(1), peerId: pid(1), addr: v4(1), kind: KIND_V4, conn: 0, seeder: false, lastSeen: T0 },
          { key: v6(2), peerId: pid(2), addr: v6(2), kind: KIND_V6, conn: 0, seeder: true, lastSeen: T0 + 5 },
          { key: wsPeer(3, 42).peerId, peerId: wsPeer(3, 42).peerId, addr: v4(0x8000 + 42), kind: KIND_WS, conn: 42, seeder: false, lastSeen: T0 + 9 }
        ])
        await announce(s, H, httpV4(1), {}, T0 + 20)
        const a = [...s.swarmInfo(H)!.peers()].find(([k]) => k === v4(1))
        assert.equal(a?.[1].lastSeen, T0 + 20, 'an announce refreshes lastSeen')
      }))
    })

    describe('downloaded', () => {
      it('counts one download per leecher → seeder transition through completed', () => withStore(async s => {
        const H = hash(2)
        const a = httpV4(1)
        await announce(s, H, a, { event: EVENT_STARTED })
        let r = await announce(s, H, a, { event: EVENT_COMPLETED, seeder: true })
        assert.equal(r.downloaded, 1)
        r = await announce(s, H, a, { event: EVENT_COMPLETED, seeder: true })
        assert.equal(r.downloaded, 1, 'a seeder re-sending completed is not a new download')
        r = await announce(s, H, a, { event: EVENT_NONE, seeder: true })
        assert.equal(r.downloaded, 1)
        // back to leeching (new data), then completing again is a second download
        await announce(s, H, a, { event: EVENT_NONE, seeder: false })
        r = await announce(s, H, a, { event: EVENT_COMPLETED, seeder: true })
        assert.equal(r.downloaded, 2)
        assert.deepEqual(await scrapeOne(s, H), [1, 0, 2])
      }))

      it('an update with left = 0 makes a seeder but counts no download, nor does a later completed', () => withStore(async s => {
        const H = hash(3)
        const a = httpV4(1)
        await announce(s, H, a, { event: EVENT_STARTED })
        let r = await announce(s, H, a, { event: EVENT_NONE, seeder: true })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 0])
        r = await announce(s, H, a, { event: EVENT_COMPLETED, seeder: true })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 0])
        r = await announce(s, H, a, { event: EVENT_PAUSED, seeder: true })
        assert.equal(r.downloaded, 0)
      }))

      it('completed with left > 0 counts nothing and keeps a leecher', () => withStore(async s => {
        const H = hash(4)
        await announce(s, H, httpV4(1), { event: EVENT_STARTED })
        const r = await announce(s, H, httpV4(1), { event: EVENT_COMPLETED, seeder: false })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 1, 0])
      }))

      it('a peer first seen through completed with left = 0 counts one download; started as a seeder none', () => withStore(async s => {
        const H = hash(5)
        let r = await announce(s, H, httpV4(1), { event: EVENT_COMPLETED, seeder: true })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 1])
        r = await announce(s, H, httpV4(2), { event: EVENT_STARTED, seeder: true })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [2, 0, 1])
        r = await announce(s, H, httpV6(3), { event: EVENT_NONE, seeder: true })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [3, 0, 1])
      }))

      it('every leecher that completes counts, whatever its kind', () => withStore(async s => {
        const H = hash(6)
        const who = [httpV4(1), httpV6(2), wsPeer(3)]
        for (const w of who) await announce(s, H, w, { event: EVENT_STARTED })
        for (const w of who) await announce(s, H, w, { event: EVENT_COMPLETED, seeder: true })
        assert.deepEqual(await scrapeOne(s, H), [3, 0, 3])
      }))

      it('survives the swarm being emptied and dropped, and carries on when it comes back', () => withStore(async s => {
        const H = hash(8)
        const a = httpV4(1)
        const b = httpV4(2)
        await announce(s, H, a, { event: EVENT_STARTED })
        await announce(s, H, b, { event: EVENT_STARTED })
        await announce(s, H, a, { event: EVENT_COMPLETED, seeder: true })
        await announce(s, H, a, { event: EVENT_STOPPED })
        const r = await announce(s, H, b, { event: EVENT_STOPPED })
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 0, 1])
        assert.equal(s.swarmInfo(H), undefined)
        assert.deepEqual(s.counts, { torrents: 0, retired: 1, peers: 0, seeders: 0, leechers: 0 })
        assert.deepEqual(await scrapeOne(s, H), [0, 0, 1])

        await announce(s, H, b, { event: EVENT_STARTED })
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 1, seeders: 0, leechers: 1 })
        const back = await announce(s, H, b, { event: EVENT_COMPLETED, seeder: true })
        assert.equal(back.downloaded, 2)
        assert.equal(s.swarmInfo(H)?.downloaded, 2)
      }))

      it('a swarm emptied with no download is forgotten entirely', () => withStore(async s => {
        await announce(s, hash(9), httpV4(1), { event: EVENT_STARTED, seeder: true })
        await announce(s, hash(9), httpV4(1), { event: EVENT_STOPPED })
        assert.deepEqual(s.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 })
        assert.deepEqual(await scrapeOne(s, hash(9)), [0, 0, 0])
      }))
    })

    describe('empty swarms', () => {
      it('are dropped: no swarmInfo, not in infoHashes(), counts.torrents drops', () => withStore(async s => {
        for (let i = 0; i < 3; i++) await announce(s, hash(i), httpV4(i), { event: EVENT_STARTED })
        assert.equal(s.counts.torrents, 3)
        assert.deepEqual(new Set(s.infoHashes()), new Set([hash(0), hash(1), hash(2)]))

        await announce(s, hash(1), httpV4(1), { event: EVENT_STOPPED })
        assert.equal(s.swarmInfo(hash(1)), undefined)
        assert.deepEqual(new Set(s.infoHashes()), new Set([hash(0), hash(2)]))
        assert.equal(s.counts.torrents, 2)

        assert.equal(await s.remove(hash(2), v4(2)), true)
        assert.equal(s.swarmInfo(hash(2)), undefined)
        assert.deepEqual([...s.infoHashes()], [hash(0)])
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 1, seeders: 0, leechers: 1 })
        assertCountsMatchRecount(s)
      }))
    })

    describe('peer identity', () => {
      it('an HTTP/UDP peer is its address: a new peer id from the same address replaces it', () => withStore(async s => {
        const H = hash(10)
        await announce(s, H, httpV4(1, pid(100)), { event: EVENT_STARTED })
        await announce(s, H, httpV4(1, pid(101)), { event: EVENT_STARTED, seeder: true })
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 1, seeders: 1, leechers: 0 })
        assert.deepEqual([...peerMap(s, H)], [[v4(1), { peerId: pid(101), seeder: true, kind: KIND_V4 }]])
        // the same for IPv6
        await announce(s, H, httpV6(1, pid(100)), { event: EVENT_STARTED })
        await announce(s, H, httpV6(1, pid(102)), { event: EVENT_NONE })
        assert.equal(s.counts.peers, 2)
        assert.equal(peerMap(s, H).get(v6(1))?.peerId, pid(102))
        // and the new identity is what others get
        const r = await announce(s, H, httpV4(9), { numwant: 10, want: WANT_V4 | WANT_V6 })
        assert.deepEqual(r.peers.map(p => p.peerId).sort(), [pid(101), pid(102)])
      }))

      it('the same peer id from two addresses is two peers', () => withStore(async s => {
        const H = hash(11)
        await announce(s, H, httpV4(1, pid(7)), { event: EVENT_STARTED })
        await announce(s, H, httpV4(2, pid(7)), { event: EVENT_STARTED })
        await announce(s, H, httpV6(1, pid(7)), { event: EVENT_STARTED })
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 3, seeders: 0, leechers: 3 })
        // stopping one address leaves the others
        await announce(s, H, httpV4(1, pid(7)), { event: EVENT_STOPPED })
        assert.deepEqual([...peerMap(s, H).keys()].sort(), [v4(2), v6(1)].sort())
      }))

      it('a WebSocket peer is its peer id', () => withStore(async s => {
        const H = hash(12)
        const w = wsPeer(1, 5)
        await announce(s, H, w, { event: EVENT_STARTED })
        await announce(s, H, { ...w, addr: v4(0x8000 + 6) }, { event: EVENT_NONE })
        assert.equal(s.counts.peers, 1)
        assert.deepEqual([...peerMap(s, H)], [[w.peerId, { peerId: w.peerId, seeder: false, kind: KIND_WS }]])
      }))
    })

    describe('peer selection', () => {
      /** A leecher swarm with 4 IPv4, 3 IPv6 and 2 WS peers. */
      async function mixed (s: SwarmStore, H: BinaryString): Promise<void> {
        for (let i = 1; i <= 4; i++) await announce(s, H, httpV4(i), { event: EVENT_STARTED })
        for (let i = 1; i <= 3; i++) await announce(s, H, httpV6(i), { event: EVENT_STARTED })
        for (let i = 1; i <= 2; i++) await announce(s, H, wsPeer(i), { event: EVENT_STARTED })
      }

      it('keeps IPv4, IPv6 and WebSocket peers apart by want', () => withStore(async s => {
        const H = hash(20)
        await mixed(s, H)
        const ask = async (who: Who, want: number): Promise<StorePeer[]> =>
          (await announce(s, H, who, { numwant: 50, want })).peers
        const keys = (ps: StorePeer[]): string[] => ps.map(peerKey).sort()

        let ps = await ask(httpV4(1), WANT_V4)
        assert.ok(ps.every(p => p.kind === KIND_V4 && p.addr.length === 6 && p.conn === 0))
        assert.deepEqual(keys(ps), [v4(2), v4(3), v4(4)].sort())

        ps = await ask(httpV4(1), WANT_V6)
        assert.ok(ps.every(p => p.kind === KIND_V6 && p.addr.length === 18))
        assert.deepEqual(keys(ps), [v6(1), v6(2), v6(3)].sort())

        ps = await ask(httpV6(1), WANT_V4 | WANT_V6)
        assert.deepEqual(keys(ps), [v4(1), v4(2), v4(3), v4(4), v6(2), v6(3)].sort())

        ps = await ask(wsPeer(1), WANT_WS)
        assert.deepEqual(ps.map(fields), [{ peerId: wsPeer(2).peerId, addr: wsPeer(2).addr, kind: KIND_WS, conn: wsPeer(2).conn }])

        ps = await ask(httpV4(9), 0)
        assert.deepEqual(ps, [], 'want 0 returns nothing')
      }))

      it('never returns the asker, whatever the swarm size and numwant', () => withStore(async s => {
        const H = hash(21)
        for (let n = 1; n <= 12; n++) {
          await announce(s, H, httpV4(n), { event: EVENT_STARTED })
          for (let numwant = 0; numwant <= n + 1; numwant++) {
            for (let i = 1; i <= n; i++) {
              const r = await announce(s, H, httpV4(i), { numwant })
              assert.ok(!r.peers.some(p => p.addr === v4(i)), `peer ${i} of ${n} got itself (numwant ${numwant})`)
              assert.equal(r.peers.length, Math.min(numwant, n - 1))
            }
          }
        }
      }))

      it('gives seeders only leechers, leechers everyone', () => withStore(async s => {
        const H = hash(22)
        for (let i = 1; i <= 5; i++) await announce(s, H, httpV4(i), { event: EVENT_STARTED, seeder: i <= 2 })
        for (let i = 1; i <= 3; i++) await announce(s, H, wsPeer(i), { event: EVENT_STARTED, seeder: i === 1 })
        const seeder = await announce(s, H, httpV4(1), { seeder: true, numwant: 50 })
        assert.deepEqual(seeder.peers.map(peerKey).sort(), [v4(3), v4(4), v4(5)].sort())
        const leecher = await announce(s, H, httpV4(3), { numwant: 50 })
        assert.deepEqual(leecher.peers.map(peerKey).sort(), [v4(1), v4(2), v4(4), v4(5)].sort())
        const wsSeeder = await announce(s, H, wsPeer(1), { seeder: true, numwant: 50 })
        assert.deepEqual(wsSeeder.peers.map(peerKey).sort(), [wsPeer(2).peerId, wsPeer(3).peerId].sort())
        // a leecher that becomes a seeder through this announce already gets only leechers
        const done = await announce(s, H, httpV4(4), { event: EVENT_COMPLETED, seeder: true, numwant: 50 })
        assert.deepEqual(done.peers.map(peerKey).sort(), [v4(3), v4(5)].sort())
        // a seeder with no leechers around gets nothing
        const lone = await announce(s, hash(23), httpV4(1), { event: EVENT_STARTED, seeder: true, numwant: 50 })
        assert.deepEqual(lone.peers, [])
      }))

      it('returns min(numwant, others) distinct peers; numwant 0 returns []', () => withStore(async s => {
        const H = hash(24)
        for (let i = 1; i <= 20; i++) await announce(s, H, httpV4(i), { event: EVENT_STARTED, seeder: i % 3 === 0 })
        for (const numwant of [0, 1, 5, 18, 19, 20, 200]) {
          const r = await announce(s, H, httpV4(1), { numwant })
          assert.equal(r.peers.length, Math.min(numwant, 19), `numwant ${numwant}`)
          assert.equal(new Set(r.peers.map(peerKey)).size, r.peers.length, 'distinct')
        }
        assert.deepEqual((await announce(s, H, httpV4(21), { event: EVENT_STARTED, numwant: 0 })).peers, [])
      }))

      it('picks at random: in a 100-peer swarm every peer comes back about as often as the others', () => withStore(async s => {
        const H = hash(25)
        // 50 leechers and 50 seeders, so the pick spans two kinds of lists
        for (let i = 1; i <= 100; i++) await announce(s, H, httpV4(i), { event: EVENT_STARTED, seeder: i > 50 })
        const rounds = 3000
        const numwant = 10
        const seen = new Map<string, number>()
        for (let round = 0; round < rounds; round++) {
          const r = await announce(s, H, httpV4(1), { numwant })
          assert.equal(r.peers.length, numwant)
          const keys = r.peers.map(peerKey)
          assert.equal(new Set(keys).size, numwant, 'returned peers are distinct')
          for (const k of keys) seen.set(k, (seen.get(k) ?? 0) + 1)
        }
        assert.equal(seen.has(v4(1)), false, 'never the asker')
        assert.equal(seen.size, 99, 'every other peer is returned sometimes')
        // each peer is expected rounds·numwant/99 ≈ 303 times (binomial sd ≈ 17): allow ±40 %
        const expected = rounds * numwant / 99
        for (let i = 2; i <= 100; i++) {
          const n = seen.get(v4(i)) ?? 0
          assert.ok(n > expected * 0.6 && n < expected * 1.4, `peer ${i} returned ${n} times, expected about ${expected.toFixed(0)}`)
        }
      }))

      it('picks at random also when the asker is not among the candidates', () => withStore(async s => {
        const H = hash(26)
        // a seeder asks among 6 leechers for 5: each leecher must be left out sometimes
        for (let i = 1; i <= 6; i++) await announce(s, H, httpV4(i), { event: EVENT_STARTED })
        await announce(s, H, httpV4(99), { event: EVENT_STARTED, seeder: true })
        const seen = new Map<string, number>()
        const rounds = 600
        for (let round = 0; round < rounds; round++) {
          const r = await announce(s, H, httpV4(99), { seeder: true, numwant: 5 })
          assert.equal(r.peers.length, 5)
          for (const p of r.peers) seen.set(p.addr, (seen.get(p.addr) ?? 0) + 1)
        }
        for (let i = 1; i <= 6; i++) {
          const n = seen.get(v4(i)) ?? 0
          // expected 500 (5/6 of the rounds)
          assert.ok(n > 400 && n < 580, `leecher ${i} returned ${n} of ${rounds} times`)
        }
        // and an IPv6 asker (not a candidate) picking among IPv4 peers
        const seen4 = new Set<string>()
        for (let round = 0; round < 200; round++) {
          const r = await announce(s, H, httpV6(1), { numwant: 6, want: WANT_V4 })
          assert.equal(r.peers.length, 6)
          for (const p of r.peers) seen4.add(p.addr)
        }
        assert.equal(seen4.size, 7)
      }))
    })

    describe('compact answers (announceCompact / scrapeCompact, native or through announce)', () => {
      const OFF = 7
      /** announceCompact into a buffer filled with 0xaa: the addresses it wrote, the result, the buffer. */
      const compact = async (s: SwarmStore, infoHash: BinaryString, who: Who, o: AnnounceOpts = {}, now = T0):
      Promise<{ addrs: BinaryString[], r: { complete: number, incomplete: number, downloaded: number, peers: number }, out: Uint8Array }> => {
        const a = req(infoHash, who, o)
        const stride = a.want === WANT_V6 ? 18 : 6
        const out = new Uint8Array(OFF + stride * Math.max(a.numwant, 1) + 8).fill(0xaa)
        const r = { ...await announceCompact(s, a, now, out, OFF) }
        const addrs: BinaryString[] = []
        for (let i = 0; i < r.peers; i++) addrs.push(String.fromCharCode(...out.subarray(OFF + i * stride, OFF + (i + 1) * stride)))
        assert.ok(out.subarray(0, OFF).every(b => b === 0xaa), 'nothing written before offset')
        assert.ok(out.subarray(OFF + r.peers * stride).every(b => b === 0xaa), 'nothing written past the peers')
        return { addrs, r, out }
      }

      it('writes the same peers and counts as announce, IPv4 and IPv6, seeders and leechers', () => withStore(async s => {
        const H = hash(90)
        for (let i = 1; i <= 6; i++) await announce(s, H, httpV4(i), { event: EVENT_STARTED, seeder: i <= 2 })
        for (let i = 1; i <= 4; i++) await announce(s, H, httpV6(i), { event: EVENT_STARTED, seeder: i === 1 })
        for (let i = 1; i <= 2; i++) await announce(s, H, wsPeer(i), { event: EVENT_STARTED })
        // an IPv4 peer whose peer id is longer than 20 bytes (kept apart by some stores)
        await announce(s, H, httpV4(7, 'x'.repeat(30)), { event: EVENT_STARTED })
        const cases: Array<[Who, AnnounceOpts]> = [
          [httpV4(3), { numwant: 50 }], [httpV4(1), { seeder: true, numwant: 50 }], [httpV6(2), { numwant: 50 }],
          [httpV6(1), { seeder: true, numwant: 50 }], [httpV4(99), { numwant: 50 }], [httpV6(99), { numwant: 50 }]
        ]
        for (const [who, o] of cases) {
          const c = await compact(s, H, who, o)
          const r = await announce(s, H, who, o)
          assert.deepEqual(c.addrs.sort(), r.peers.map(p => p.addr).sort(), `peers for ${JSON.stringify(o)}`)
          assert.deepEqual([c.r.complete, c.r.incomplete, c.r.downloaded, c.r.peers], [r.complete, r.incomplete, r.downloaded, r.peers.length])
        }
        const v4s = (await compact(s, H, httpV4(3), { numwant: 50 })).addrs.sort()
        assert.deepEqual(v4s, [v4(1), v4(2), v4(4), v4(5), v4(6), v4(7), v4(99)].sort())
        const v6s = (await compact(s, H, httpV6(99), { numwant: 50 })).addrs.sort()
        assert.deepEqual(v6s, [v6(1), v6(2), v6(3), v6(4)].sort())
        assert.deepEqual((await compact(s, H, httpV6(2), { seeder: true, numwant: 50 })).addrs.sort(), [v6(3), v6(4), v6(99)].sort())
      }))

      it('updates the swarm as announce does: started, completed, stopped', () => withStore(async s => {
        const H = hash(91)
        let c = await compact(s, H, httpV4(1), { event: EVENT_STARTED, numwant: 10 })
        assert.deepEqual([c.r.complete, c.r.incomplete, c.r.downloaded, c.r.peers], [0, 1, 0, 0])
        c = await compact(s, H, httpV4(2), { event: EVENT_COMPLETED, seeder: true, numwant: 10 })
        assert.deepEqual([c.r.complete, c.r.incomplete, c.r.downloaded], [1, 1, 1])
        assert.deepEqual(c.addrs, [v4(1)])
        c = await compact(s, H, httpV4(1), { event: EVENT_STOPPED, numwant: 10 })
        assert.deepEqual([c.r.complete, c.r.incomplete, c.r.downloaded, c.r.peers], [1, 0, 1, 0])
        c = await compact(s, H, httpV4(2), { event: EVENT_STOPPED, numwant: 10 })
        assert.deepEqual([c.r.complete, c.r.incomplete, c.r.downloaded, c.r.peers], [0, 0, 1, 0])
        assert.equal(s.counts.torrents, 0)
        c = await compact(s, hash(92), httpV4(1), { event: EVENT_STOPPED, numwant: 10 })
        assert.deepEqual([c.r.complete, c.r.incomplete, c.r.downloaded, c.r.peers], [0, 0, 0, 0])
        assert.deepEqual(await scrapeOne(s, H), [0, 0, 1], 'the retired count survives')
      }))

      it('never writes the asker, and min(numwant, others) addresses', () => withStore(async s => {
        const H = hash(93)
        for (let n = 1; n <= 10; n++) {
          await announce(s, H, httpV4(n), { event: EVENT_STARTED })
          for (let numwant = 0; numwant <= n + 1; numwant++) {
            for (let i = 1; i <= n; i++) {
              const { addrs } = await compact(s, H, httpV4(i), { numwant })
              assert.ok(!addrs.includes(v4(i)), `peer ${i} of ${n} got itself (numwant ${numwant})`)
              assert.equal(addrs.length, Math.min(numwant, n - 1))
              assert.equal(new Set(addrs).size, addrs.length, 'distinct')
            }
          }
        }
      }))

      it('picks at random: in a 100-peer swarm every peer comes back about as often as the others', () => withStore(async s => {
        const H = hash(94)
        for (let i = 1; i <= 100; i++) await announce(s, H, httpV4(i), { event: EVENT_STARTED, seeder: i > 50 })
        const rounds = 3000
        const seen = new Map<string, number>()
        for (let round = 0; round < rounds; round++) {
          const { addrs } = await compact(s, H, httpV4(1), { numwant: 10 })
          assert.equal(new Set(addrs).size, 10)
          for (const k of addrs) seen.set(k, (seen.get(k) ?? 0) + 1)
        }
        assert.equal(seen.has(v4(1)), false, 'never the asker')
        assert.equal(seen.size, 99)
        const expected = rounds * 10 / 99
        for (let i = 2; i <= 100; i++) {
          const n = seen.get(v4(i)) ?? 0
          assert.ok(n > expected * 0.6 && n < expected * 1.4, `peer ${i} returned ${n} times, expected about ${expected.toFixed(0)}`)
        }
      }))

      it('scrapeCompact writes seeders, completed, leechers (u32 big-endian) per hash, zeros for unknown ones', () => withStore(async s => {
        await announce(s, hash(95), httpV4(1), { event: EVENT_STARTED })
        await announce(s, hash(95), httpV4(2), { event: EVENT_COMPLETED, seeder: true })
        await announce(s, hash(95), httpV4(3), { event: EVENT_STARTED, seeder: true })
        await announce(s, hash(96), httpV4(1), { event: EVENT_COMPLETED, seeder: true })
        await announce(s, hash(96), httpV4(1), { event: EVENT_STOPPED, seeder: true })
        const out = new Uint8Array(3 + 12 * 3 + 2).fill(0xaa)
        await scrapeCompact(s, [hash(97), hash(95), hash(96)], out, 3)
        assert.deepEqual([...out], [
          0xaa, 0xaa, 0xaa,
          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1,
          0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
          0xaa, 0xaa
        ])
        assert.equal(s.counts.torrents, 1, 'scraping creates no swarm')
      }))
    })

    describe('sweep', () => {
      it('removes HTTP/UDP peers silent longer than peerTtl, keeps WebSocket peers', () => withStore(async s => {
        const H = hash(30)
        const G = hash(31)
        await announce(s, H, httpV4(1), { event: EVENT_STARTED }, T0)
        await announce(s, H, httpV6(2), { event: EVENT_STARTED, seeder: true }, T0)
        await announce(s, H, wsPeer(3), { event: EVENT_STARTED }, T0)
        await announce(s, H, httpV4(4), { event: EVENT_STARTED }, T0 + 50)
        await announce(s, G, httpV4(1), { event: EVENT_STARTED, seeder: true }, T0)

        const full = async (now: number): Promise<void> => {
          for (let i = 0; i < 100; i++) if (await s.sweep(now, 1_000_000)) return
          assert.fail('sweep never completed a pass')
        }
        await full(T0 + TTL)
        assert.equal(s.counts.peers, 5, 'silent for exactly peerTtl is kept')

        // a refresh just in time keeps the peer
        await announce(s, H, httpV4(1), {}, T0 + TTL)
        await full(T0 + TTL + 1)
        assert.deepEqual([...peerMap(s, H).keys()].sort(), [v4(1), wsPeer(3).peerId, v4(4)].sort())
        assert.equal(s.swarmInfo(G), undefined, 'a swarm whose peers all expired is dropped')
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 3, seeders: 0, leechers: 3 })
        assertCountsMatchRecount(s)

        // much later: only the WebSocket peer is left
        await full(T0 + 100 * TTL)
        assert.deepEqual([...peerMap(s, H).keys()], [wsPeer(3).peerId])
        assertCountsMatchRecount(s)
      }))

      it('works incrementally with a small budget and completes a pass', () => withStore(async s => {
        const swarms = 40
        for (let i = 0; i < swarms; i++) {
          for (let j = 0; j < 3; j++) await announce(s, hash(i), httpV4(i * 8 + j), { event: EVENT_STARTED, seeder: j === 0 }, T0)
          // one live peer in every other swarm, one WebSocket peer in every fifth
          if (i % 2 === 0) await announce(s, hash(i), httpV6(i), { event: EVENT_STARTED }, T0 + 2 * TTL)
          if (i % 5 === 0) await announce(s, hash(i), wsPeer(i), { event: EVENT_STARTED }, T0)
        }
        const before = s.counts.peers
        assert.equal(before, 3 * swarms + swarms / 2 + swarms / 5)
        const now = T0 + 2 * TTL
        let calls = 0
        let done = false
        while (!done) {
          done = await s.sweep(now, 1)
          calls++
          assertCountsMatchRecount(s)
          if (calls === 1) assert.equal(done, false, `a budget of 1 cannot cover ${before} peers in one call`)
          assert.ok(calls <= 10 * before, 'the pass makes progress')
        }
        assert.ok(calls >= 2)
        assert.deepEqual(s.counts, { torrents: swarms / 2 + swarms / 10, retired: 0, peers: swarms / 2 + swarms / 5, seeders: 0, leechers: swarms / 2 + swarms / 5 })
        for (let i = 0; i < swarms; i++) {
          const keys = [...peerMap(s, hash(i)).keys()].sort()
          const want = [...(i % 2 === 0 ? [v6(i)] : []), ...(i % 5 === 0 ? [wsPeer(i).peerId] : [])].sort()
          assert.deepEqual(keys, want, `swarm ${i}`)
        }
      }))

      it('a pass survives swarms appearing and disappearing between calls', () => withStore(async s => {
        for (let i = 0; i < 30; i++) await announce(s, hash(i), httpV4(i), { event: EVENT_STARTED }, T0)
        const now = T0 + TTL + 1
        let calls = 0
        let done = false
        while (!done) {
          done = await s.sweep(now, 2)
          calls++
          // churn: a new live swarm, and a stale one removed by hand
          await announce(s, hash(1000 + calls), httpV4(1000 + calls), { event: EVENT_STARTED }, now)
          await s.remove(hash(29 - (calls % 30)), v4(29 - (calls % 30)))
          assertCountsMatchRecount(s)
          assert.ok(calls < 1000, 'the pass completes')
        }
        // one more full pass leaves only live peers
        while (!(await s.sweep(now, 2))) calls++
        for (const ih of s.infoHashes()) {
          for (const [, p] of s.swarmInfo(ih)!.peers()) assert.equal(p.lastSeen, now)
        }
        assertCountsMatchRecount(s)
      }))

      it('an empty store completes a pass at once', () => withStore(async s => {
        let calls = 0
        while (!(await s.sweep(T0, 10))) assert.ok(++calls < 3)
      }))
    })

    describe('remove', () => {
      it('removes one peer and says whether it was there', () => withStore(async s => {
        const H = hash(40)
        await announce(s, H, wsPeer(1), { event: EVENT_STARTED })
        await announce(s, H, wsPeer(2), { event: EVENT_STARTED, seeder: true })
        await announce(s, H, httpV4(1), { event: EVENT_STARTED })
        assert.equal(await s.remove(H, wsPeer(1).peerId), true)
        assert.equal(await s.remove(H, wsPeer(1).peerId), false, 'not twice')
        assert.equal(await s.remove(hash(41), wsPeer(2).peerId), false, 'not in another swarm')
        assert.equal(await s.remove(H, pid(1)), false, 'HTTP peers are keyed by address')
        assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 2, seeders: 1, leechers: 1 })
        assert.equal(await s.remove(H, v4(1)), true)
        assert.equal(await s.remove(H, wsPeer(2).peerId), true)
        assert.equal(s.swarmInfo(H), undefined)
        assert.deepEqual(s.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 })
      }))
    })

    describe('scrape', () => {
      it('answers every hash asked, in order, zeros for unknown ones', () => withStore(async s => {
        await announce(s, hash(50), httpV4(1), { event: EVENT_STARTED })
        await announce(s, hash(50), httpV4(2), { event: EVENT_COMPLETED, seeder: true })
        const got = await s.scrape([hash(51), hash(50), hash(52), hash(50)])
        assert.deepEqual(got, [
          { infoHash: hash(51), complete: 0, incomplete: 0, downloaded: 0 },
          { infoHash: hash(50), complete: 1, incomplete: 1, downloaded: 1 },
          { infoHash: hash(52), complete: 0, incomplete: 0, downloaded: 0 },
          { infoHash: hash(50), complete: 1, incomplete: 1, downloaded: 1 }
        ])
        assert.deepEqual(await s.scrape([]), [])
        assert.equal(s.counts.torrents, 1, 'scraping creates no swarm')
      }))

      it('scrapeAll returns the active torrents, at most limit', () => withStore(async s => {
        for (let i = 0; i < 5; i++) {
          for (let j = 0; j <= i; j++) await announce(s, hash(60 + i), httpV4(j), { event: EVENT_STARTED, seeder: j === 0 })
        }
        const all = await s.scrapeAll(100)
        assert.deepEqual(all.map(e => e.infoHash).sort(), [60, 61, 62, 63, 64].map(hash).sort())
        for (const e of all) {
          const i = e.infoHash.charCodeAt(2) - 60
          assert.deepEqual(e, { infoHash: hash(60 + i), complete: 1, incomplete: i, downloaded: 0 })
        }
        const some = await s.scrapeAll(3)
        assert.equal(some.length, 3)
        assert.equal(new Set(some.map(e => e.infoHash)).size, 3)
        for (const e of some) assert.ok(all.some(a => a.infoHash === e.infoHash && a.complete === e.complete && a.incomplete === e.incomplete))
        assert.deepEqual(await s.scrapeAll(0), [])
        assert.equal((await s.scrapeAll(5)).length, 5)
      }))
    })

    if (withListener) {
      describe('listener', () => {
        it('sees balanced adds and removes: its replay rebuilds every peer', async () => {
          const replay = new ListenerReplay()
          await withStore(async s => {
            const H = hash(70)
            const steps: Array<() => unknown> = [
              () => announce(s, H, httpV4(1, pid(1)), { event: EVENT_STARTED }),
              () => announce(s, H, httpV4(2, pid(2)), { event: EVENT_STARTED, seeder: true }),
              () => announce(s, H, httpV6(1, pid(1)), { event: EVENT_STARTED }),
              () => announce(s, hash(71), httpV4(1, pid(1)), { event: EVENT_STARTED, seeder: true }),
              () => announce(s, H, httpV4(1, pid(1)), { event: EVENT_COMPLETED, seeder: true }),
              () => announce(s, H, httpV4(1, pid(9)), {}), // new peer id, same address
              () => announce(s, H, httpV4(1, pid(9)), { seeder: false }),
              () => announce(s, H, wsPeer(1, 3), { event: EVENT_STARTED }),
              () => announce(s, H, { ...wsPeer(1, 3), addr: v6(77), conn: 4 }, {}), // same ws peer, new socket
              () => s.remove(H, wsPeer(1).peerId),
              () => announce(s, H, httpV4(2, pid(2)), { event: EVENT_STOPPED }),
              () => announce(s, hash(71), httpV4(5), { event: EVENT_STARTED }, T0 + 2 * TTL),
              () => s.sweep(T0 + 2 * TTL, 1_000_000),
              () => s.sweep(T0 + 2 * TTL, 1_000_000)
            ]
            for (const step of steps) {
              await step()
              replay.assertMatches(s)
            }
            assert.deepEqual([...replay.state.keys()], [`${KIND_V4}|${pid(5)}|${v4(5)}`])
            assert.ok(replay.calls > steps.length)
          }, replay)
        })
      })
    }

    describe('model-based', () => {
      it('counts, swarms, scrapes and returned peers match a reference model after any sequence of operations', async () => {
        await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: 60 }), async ops => {
          const replay = withListener ? new ListenerReplay() : undefined
          await withStore(async s => {
            const m = new Model(T0)
            for (const op of ops) {
              await applyOp(s, m, op)
              compare(s, m)
              replay?.assertMatches(s)
            }
            const scraped = await s.scrape(HASHES)
            assert.deepEqual(scraped, HASHES.map(h => m.scrape(h)))
          }, replay)
        }), { numRuns: 150 })
      })

      it('the same with swarms of up to 48 peers (larger data structures, growing and shrinking)', async () => {
        await fc.assert(fc.asyncProperty(fc.array(bigOpArb, { minLength: 50, maxLength: 400 }), async ops => {
          const replay = withListener ? new ListenerReplay() : undefined
          await withStore(async s => {
            const m = new Model(T0)
            for (const op of ops) {
              await applyOp(s, m, op)
              compare(s, m)
              replay?.assertMatches(s)
            }
          }, replay)
        }), { numRuns: 40 })
      })
    })
  })
}

// ---- model-based test -----------------------------------------------------------------------

const HASHES = [hash(900), hash(901), hash(902)]

export type Op =
  | { t: 'announce', h: number, kind: PeerKind, slot: number, id: number, conn: number, event: AnnounceEvent, seeder: boolean, numwant: number, want: number }
  | { t: 'remove', h: number, kind: PeerKind, slot: number }
  | { t: 'tick', by: number }
  | { t: 'sweepStep', budget: number }
  | { t: 'fullSweep', budget: number }
  /** `count` announces of HTTP/UDP IPv4 peers into consecutive swarms from `from` (one each). */
  | { t: 'bulk', from: number, count: number, slot: number, event: AnnounceEvent, seeder: boolean }
  | { t: 'setDownloaded', h: number, n: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({
    t: fc.constant('announce' as const),
    h: fc.integer({ min: 0, max: 2 }),
    kind: fc.constantFrom<PeerKind>(KIND_V4, KIND_V6, KIND_WS),
    slot: fc.integer({ min: 0, max: 3 }),
    id: fc.integer({ min: 0, max: 3 }),
    conn: fc.integer({ min: 1, max: 3 }),
    event: fc.constantFrom<AnnounceEvent>(EVENT_NONE, EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED, EVENT_PAUSED),
    seeder: fc.boolean(),
    numwant: fc.integer({ min: 0, max: 8 }),
    want: fc.integer({ min: 0, max: 7 })
  }), weight: 10 },
  { arbitrary: fc.record({ t: fc.constant('remove' as const), h: fc.integer({ min: 0, max: 2 }), kind: fc.constantFrom<PeerKind>(KIND_V4, KIND_V6, KIND_WS), slot: fc.integer({ min: 0, max: 3 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('tick' as const), by: fc.integer({ min: 0, max: 150 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('sweepStep' as const), budget: fc.integer({ min: 1, max: 4 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('fullSweep' as const), budget: fc.integer({ min: 1, max: 4 }) }), weight: 1 }
)

/** Mostly HTTP/UDP IPv4 peers, many per swarm, over two swarms; ticks make some of them stale. */
const bigOpArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({
    t: fc.constant('announce' as const),
    h: fc.integer({ min: 0, max: 1 }),
    kind: fc.constantFrom<PeerKind>(KIND_V4, KIND_V4, KIND_V4, KIND_V4, KIND_V6, KIND_WS),
    slot: fc.integer({ min: 0, max: 47 }),
    id: fc.integer({ min: 0, max: 1 }),
    conn: fc.integer({ min: 1, max: 2 }),
    event: fc.constantFrom<AnnounceEvent>(EVENT_NONE, EVENT_COMPLETED, EVENT_STARTED, EVENT_STARTED, EVENT_STOPPED),
    seeder: fc.boolean(),
    numwant: fc.integer({ min: 0, max: 60 }),
    want: fc.integer({ min: 0, max: 7 })
  }), weight: 30 },
  { arbitrary: fc.record({ t: fc.constant('remove' as const), h: fc.integer({ min: 0, max: 1 }), kind: fc.constantFrom<PeerKind>(KIND_V4, KIND_V4, KIND_V6, KIND_WS), slot: fc.integer({ min: 0, max: 47 }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('tick' as const), by: fc.integer({ min: 0, max: 60 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('sweepStep' as const), budget: fc.integer({ min: 1, max: 30 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('fullSweep' as const), budget: fc.integer({ min: 1, max: 30 }) }), weight: 1 }
)

/** Peer ids from 100 on are 25 bytes long (stores may keep such peers in another form). */
export function whoOf (kind: PeerKind, slot: number, id: number, conn: number): Who {
  if (kind === KIND_V4) return httpV4(slot, id >= 100 ? pid(id) + 'xxxxx' : pid(id))
  if (kind === KIND_V6) return httpV6(slot, pid(id))
  return wsPeer(slot, conn)
}

function keyOf (kind: PeerKind, slot: number): BinaryString {
  return kind === KIND_V4 ? v4(slot) : kind === KIND_V6 ? v6(slot) : wsPeer(slot).peerId
}

interface MPeer { peerId: BinaryString, addr: BinaryString, kind: PeerKind, conn: number, seeder: boolean, lastSeen: number }

/** The reference model: plain maps, the contract in the most obvious code. */
export class Model {
  readonly swarms = new Map<BinaryString, Map<BinaryString, MPeer>>()
  readonly downloaded = new Map<BinaryString, number>()
  constructor (public now: number) {}

  announce (a: StoreAnnounce): void {
    let swarm = this.swarms.get(a.infoHash)
    if (a.event === EVENT_STOPPED) {
      if (swarm !== undefined) { swarm.delete(a.key); this.dropIfEmpty(a.infoHash) }
      return
    }
    if (swarm === undefined) { swarm = new Map(); this.swarms.set(a.infoHash, swarm) }
    const old = swarm.get(a.key)
    const wasLeecher = old !== undefined && !old.seeder
    const isNew = old === undefined
    if (a.seeder && a.event === EVENT_COMPLETED && (isNew || wasLeecher)) {
      this.downloaded.set(a.infoHash, (this.downloaded.get(a.infoHash) ?? 0) + 1)
    }
    swarm.set(a.key, { peerId: a.peerId, addr: a.addr, kind: a.kind, conn: a.conn, seeder: a.seeder, lastSeen: this.now })
  }

  remove (infoHash: BinaryString, key: BinaryString): boolean {
    const had = this.swarms.get(infoHash)?.delete(key) ?? false
    this.dropIfEmpty(infoHash)
    return had
  }

  dropIfEmpty (infoHash: BinaryString): void {
    if (this.swarms.get(infoHash)?.size === 0) this.swarms.delete(infoHash)
  }

  stale (p: MPeer): boolean {
    return p.kind !== KIND_WS && p.lastSeen < this.now - TTL
  }

  scrape (infoHash: BinaryString): { infoHash: BinaryString, complete: number, incomplete: number, downloaded: number } {
    let complete = 0
    let incomplete = 0
    for (const p of this.swarms.get(infoHash)?.values() ?? []) if (p.seeder) complete++; else incomplete++
    return { infoHash, complete, incomplete, downloaded: this.downloaded.get(infoHash) ?? 0 }
  }
}

export async function applyOp (s: SwarmStore, m: Model, op: Op, hashes: BinaryString[] = HASHES): Promise<void> {
  switch (op.t) {
    case 'bulk': {
      for (let i = 0; i < op.count; i++) {
        const infoHash = hashes[(op.from + i) % hashes.length]
        const a = req(infoHash, httpV4(op.slot), { event: op.event, seeder: op.seeder })
        m.announce(a)
        const r = await s.announce(a, m.now)
        const expect = m.scrape(infoHash)
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [expect.complete, expect.incomplete, expect.downloaded])
      }
      return
    }
    case 'setDownloaded': {
      const infoHash = hashes[op.h]
      s.setDownloaded!(infoHash, op.n)
      m.downloaded.set(infoHash, op.n)
      return
    }
    case 'announce': {
      const infoHash = hashes[op.h]
      const a = req(infoHash, whoOf(op.kind, op.slot, op.id, op.conn), op)
      m.announce(a)
      const r = await s.announce(a, m.now)
      const expect = m.scrape(infoHash)
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [expect.complete, expect.incomplete, expect.downloaded])
      if (op.event === EVENT_STOPPED) { assert.deepEqual(r.peers, []); return }
      const eligible = [...m.swarms.get(infoHash)!].filter(([key, p]) =>
        key !== a.key && (op.want & (1 << p.kind)) !== 0 && !(op.seeder && p.seeder))
      assert.equal(r.peers.length, Math.min(op.numwant, eligible.length), 'min(numwant, eligible) peers')
      const keys = new Set<BinaryString>()
      for (const p of r.peers) {
        const key = peerKey(p)
        keys.add(key)
        const e = eligible.find(([k]) => k === key)
        assert.ok(e !== undefined, 'a returned peer is an eligible one (right kind, not self, leechers to seeders)')
        assert.deepEqual(fields(p), { peerId: e[1].peerId, addr: e[1].addr, kind: e[1].kind, conn: e[1].conn })
      }
      assert.equal(keys.size, r.peers.length, 'distinct peers')
      return
    }
    case 'remove': {
      const infoHash = hashes[op.h]
      const key = keyOf(op.kind, op.slot)
      assert.equal(await s.remove(infoHash, key), m.remove(infoHash, key))
      return
    }
    case 'tick':
      m.now += op.by
      return
    case 'sweepStep': {
      await s.sweep(m.now, op.budget)
      // a partial pass may have removed some stale peers, and only stale ones
      for (const [ih, swarm] of m.swarms) {
        const live = s.swarmInfo(ih)
        const present = new Set<BinaryString>()
        if (live !== undefined) for (const [key] of live.peers()) present.add(key)
        for (const [key, p] of swarm) {
          if (present.has(key)) continue
          assert.ok(m.stale(p), 'sweep removed only peers silent longer than peerTtl, never WebSocket peers')
          swarm.delete(key)
        }
        m.dropIfEmpty(ih)
      }
      return
    }
    case 'fullSweep': {
      // finish whatever pass is under way, then one whole pass at this time
      for (let pass = 0; pass < 2; pass++) {
        let calls = 0
        while (!(await s.sweep(m.now, op.budget))) assert.ok(++calls < 1000, 'a sweep pass completes')
      }
      for (const [ih, swarm] of m.swarms) {
        for (const [key, p] of swarm) if (m.stale(p)) swarm.delete(key)
        m.dropIfEmpty(ih)
      }
    }
  }
}

/** Checks counts, the torrent list and (for the info hashes in `check`) every swarm against the model. */
export function compare (s: SwarmStore, m: Model, check: BinaryString[] = HASHES): void {
  let peers = 0
  let seeders = 0
  for (const swarm of m.swarms.values()) for (const p of swarm.values()) { peers++; if (p.seeder) seeders++ }
  let retired = 0
  for (const [ih, n] of m.downloaded) if (n > 0 && !m.swarms.has(ih)) retired++
  assert.deepEqual({ ...s.counts }, { torrents: m.swarms.size, retired, peers, seeders, leechers: peers - seeders })
  assert.deepEqual(new Set(s.infoHashes()), new Set(m.swarms.keys()))
  for (const ih of check) {
    const info = s.swarmInfo(ih)
    const swarm = m.swarms.get(ih)
    if (swarm === undefined) { assert.equal(info, undefined); continue }
    assert.ok(info !== undefined)
    const e = m.scrape(ih)
    assert.deepEqual([info.complete, info.incomplete, info.downloaded], [e.complete, e.incomplete, e.downloaded])
    const got = new Map<BinaryString, MPeer>()
    for (const [key, p] of info.peers()) {
      got.set(key, { peerId: p.peerId, addr: p.addr, kind: p.kind, conn: p.conn, seeder: p.seeder, lastSeen: p.lastSeen })
    }
    assert.deepEqual(got, swarm)
  }
  assertCountsMatchRecount(s)
}
