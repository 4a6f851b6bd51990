/**
 * ShardedStore.trackerStats: the reference's /stats numbers over unique peer ids, with the
 * swarms spread over real worker threads, equal to what one thread's PeerStats counts for the
 * same announces — including peer ids whose swarms live on several workers.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import type { AnnounceEvent, BinaryString } from '../../../src/protocol/common/types.js'
import { PeerStats } from '../../../src/server/stats/peer-stats.js'
import type { TrackerStats } from '../../../src/server/stats/peer-stats.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import { KIND_V4, KIND_V6 } from '../../../src/server/store/store.js'
import type { ShardedStore } from '../../../src/server/workers/sharded-store.js'
import { shardOf } from '../../../src/server/workers/shard.js'
import { hash, req, v4, v6 } from '../store/conformance.js'
import type { Who } from '../store/conformance.js'
import { Cluster } from './cluster.js'

const NODES = 3
const TORRENTS = 12
const PEERS = 30
const PREFIXES = ['-TR2940-', '-qB4250-', '-WW0102-', 'ABCDEFGH']
const EVENTS: AnnounceEvent[] = [EVENT_STARTED, EVENT_NONE, EVENT_COMPLETED, EVENT_STOPPED]
const T = 1000
const SETTLE_MS = 5000

function peerId (n: number): BinaryString {
  return PREFIXES[n % PREFIXES.length] + String(n).padStart(12, '0')
}

/** Peer `n`'s HTTP entry over IPv4 or IPv6 (one address each, so the key follows the family). */
function who (n: number, six: boolean): Who {
  const addr = six ? v6(n) : v4(n)
  return { key: addr, peerId: peerId(n), addr, kind: six ? KIND_V6 : KIND_V4, conn: 0 }
}

/** A deterministic pseudo-random sequence (no flaky seeds). */
function lcg (seed: number): () => number {
  let x = seed >>> 0
  return () => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x / 2 ** 32 }
}

/** Plain objects with sorted client names and versions, for comparing (snapshots use null-prototype records). */
function plain (s: TrackerStats | undefined): TrackerStats | undefined {
  if (s === undefined) return undefined
  const clients: Record<string, Record<string, number>> = {}
  for (const name of Object.keys(s.clients).sort()) {
    clients[name] = {}
    for (const version of Object.keys(s.clients[name]).sort()) clients[name][version] = s.clients[name][version]
  }
  return { ...s, clients }
}

describe(`ShardedStore.trackerStats over ${NODES} threads`, () => {
  const cluster = new Cluster()
  after(() => cluster.stop())

  /** Polls (bounded) until the sharded numbers equal one thread's: changes cross workers asynchronously. */
  async function settled (store: ShardedStore, one: PeerStats, ref: MemoryStore): Promise<[TrackerStats | undefined, TrackerStats]> {
    const c = ref.counts
    const want = plain(one.snapshot(c.torrents + c.retired, c.torrents))!
    const deadline = Date.now() + SETTLE_MS
    let got = plain(store.trackerStats(c.torrents + c.retired, c.torrents))
    while (Date.now() < deadline && JSON.stringify(got) !== JSON.stringify(want)) {
      await new Promise(resolve => setTimeout(resolve, 10))
      got = plain(store.trackerStats(c.torrents + c.retired, c.torrents))
    }
    return [got, want]
  }

  it('counts every peer id once whichever workers hold its swarms, as one thread does; expiry too', async () => {
    const store = await cluster.start(NODES, 100, undefined, true)
    const one = new PeerStats()
    const ref = new MemoryStore({ peerTtl: 100, listener: one })
    const rnd = lcg(7)
    const shardsOfPeer = new Map<number, Set<number>>()
    for (let i = 0; i < 1500; i++) {
      const t = Math.floor(rnd() * TORRENTS)
      const n = Math.floor(rnd() * PEERS)
      const a = req(hash(t), who(n, rnd() < 0.3), { event: EVENTS[Math.floor(rnd() * EVENTS.length)], seeder: rnd() < 0.4 })
      ref.announce(a, T)
      await store.announce(a, T)
      if (a.event !== EVENT_STOPPED) {
        const s = shardsOfPeer.get(n) ?? new Set()
        s.add(shardOf(hash(t), NODES))
        shardsOfPeer.set(n, s)
      }
    }
    // The case this is about: peer ids in swarms of several workers, counted on yet another.
    assert.ok([...shardsOfPeer.values()].filter(s => s.size === NODES).length >= 10)
    assert.equal(new Set(Array.from({ length: PEERS }, (_, n) => shardOf(peerId(n), NODES))).size, NODES)

    const [got, want] = await settled(store, one, ref)
    assert.deepEqual(got, want)
    assert.ok(want.peersAll > 15 && want.peersSeederAndLeecher > 0 && want.peersIPv6 > 0, JSON.stringify(want))
    assert.equal(Object.keys(want.clients).length, PREFIXES.length)

    // Everyone expires: every worker's removals reach the peer ids' counters.
    ref.sweep(T + 1000, 1_000_000)
    for (let pass = 0; pass < 10 && !(await store.sweep(T + 1000, 1_000_000)); pass++);
    const [gone, none] = await settled(store, one, ref)
    assert.deepEqual(gone, none)
    assert.deepEqual([none.peersAll, none.peersIPv4, none.peersIPv6, none.clients], [0, 0, 0, {}])
  })
})
