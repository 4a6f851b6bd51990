/**
 * The compact fast paths in worker mode: a ShardedStore answers `announceCompact` /
 * `scrapeCompact` for the swarms its node owns (the kernel steers UDP to the owner, so those
 * are answered in place) and says so through `compactServes`; every other hash takes the general
 * path through the mesh. Here the test thread is node 0 of a real 2-thread mesh (the other
 * node is a shard-host.ts worker) and runs a real Server on that store over loopback UDP.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { BinaryString } from '../../../src/protocol/common/types.js'
import { KIND_V4, WANT_V4 } from '../../../src/server/store/store.js'
import type { CompactAnnounceResult, StoreAnnounce } from '../../../src/server/store/store.js'
import { announceCompact, scrapeCompact } from '../../../src/server/store/store.js'
import type { ShardedStore } from '../../../src/server/workers/sharded-store.js'
import { shardOf } from '../../../src/server/workers/shard.js'
import { id20, startServer, udpClient } from '../../helpers/tracker-clients.js'
import type { StartedServer, UdpClient } from '../../helpers/tracker-clients.js'
import { Cluster } from './cluster.js'

/** The first `n` hashes id20(seed…) that node `node` of 2 owns. */
function hashesOwnedBy (node: number, n: number, from = 0): BinaryString[] {
  const out: BinaryString[] = []
  for (let seed = from; out.length < n; seed++) if (shardOf(id20(seed, 'cp'), 2) === node) out.push(id20(seed, 'cp'))
  return out
}

const [MINE, MINE2] = hashesOwnedBy(0, 2)
const [THEIRS, THEIRS2] = hashesOwnedBy(1, 2)

function storeAnnounce (infoHash: BinaryString, n: number, seeder = false): StoreAnnounce {
  const addr = String.fromCharCode(10, 0, 0, n, 0x1a, 0xe1)
  return { infoHash, key: addr, peerId: id20(n, 'peer'), addr, kind: KIND_V4, conn: 0, event: 0, seeder, numwant: 50, want: WANT_V4 }
}

describe('ShardedStore: compact paths for its own swarms only', () => {
  const cluster = new Cluster()
  let store: ShardedStore
  before(async () => { store = await cluster.start(2, 3600) })
  after(() => cluster.stop())

  it('compactServes is exactly "this node owns the hash"', () => {
    assert.equal(store.compactServes(MINE), true)
    assert.equal(store.compactServes(MINE2), true)
    assert.equal(store.compactServes(THEIRS), false)
    assert.equal(store.compactServes(THEIRS2), false)
  })

  it('announceCompact / scrapeCompact of another worker\'s swarm throw, changing nothing', async () => {
    const out = new Uint8Array(64)
    assert.throws(() => store.announceCompact(storeAnnounce(THEIRS, 1), 100, out, 0), /another worker owns/)
    assert.throws(() => store.scrapeCompact(THEIRS, out, 0), /another worker owns/)
    assert.deepEqual(await store.scrape([THEIRS]), [{ infoHash: THEIRS, complete: 0, incomplete: 0, downloaded: 0 }])
    assert.equal(store.counts.peers, 0)
  })

  it('the store.ts helpers take the compact path for owned hashes and the mesh for the others: same answers', async () => {
    await cluster.reset()
    for (const h of [MINE, THEIRS]) {
      for (let n = 1; n <= 3; n++) {
        const out = new Uint8Array(6 * 50)
        const r = announceCompact(store, storeAnnounce(h, n, n === 1), 100, out, 0)
        // Owned: answered synchronously (in place); foreign: a promise from the owner.
        assert.equal(r instanceof Promise, h === THEIRS)
        const v: CompactAnnounceResult = await r
        assert.deepEqual({ ...v }, { complete: 1, incomplete: n - 1, downloaded: 0, peers: n - 1 })
      }
    }
    // Counts are published after compact announces, as after the others.
    assert.deepEqual(store.counts, { torrents: 2, retired: 0, peers: 6, seeders: 2, leechers: 4 })
    // A scrape mixing owned and foreign hashes (and one nobody has) goes through `scrape`.
    const out = new Uint8Array(3 + 12 * 4).fill(0xaa)
    const r = scrapeCompact(store, [THEIRS, MINE, THEIRS2, MINE2], out, 3)
    assert.ok(r instanceof Promise)
    await r
    const row = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert.deepEqual([...out.subarray(0, 3)], [0xaa, 0xaa, 0xaa])
    assert.deepEqual([...out.subarray(3)], [...row, ...row, ...new Array(24).fill(0)])
    // Only owned hashes: in place, synchronously.
    const out2 = new Uint8Array(24)
    assert.equal(scrapeCompact(store, [MINE2, MINE], out2, 0), undefined)
    assert.deepEqual([...out2], [...new Array(12).fill(0), ...row])
  })
})

describe('Server on a ShardedStore: UDP in place for owned swarms, through the mesh for the others', () => {
  const cluster = new Cluster()
  let store: ShardedStore
  let s: StartedServer
  const clients: UdpClient[] = []
  const calls = { announceCompact: 0, scrapeCompact: 0, announce: 0, scrape: 0 }
  before(async () => {
    store = await cluster.start(2, 3600)
    // Counted, not replaced: every call still reaches the real store.
    const ac = store.announceCompact.bind(store)
    const sc = store.scrapeCompact.bind(store)
    const an = store.announce.bind(store)
    const sr = store.scrape.bind(store)
    store.announceCompact = (...a) => { calls.announceCompact++; return ac(...a) }
    store.scrapeCompact = (...a) => { calls.scrapeCompact++; return sc(...a) }
    store.announce = (...a) => { calls.announce++; return an(...a) }
    store.scrape = (...a) => { calls.scrape++; return sr(...a) }
    s = await startServer({ store, http: false, ws: false })
  })
  after(async () => {
    for (const c of clients) c.close()
    await s.close()
    await cluster.stop()
  })

  const client = async (): Promise<UdpClient> => {
    const c = await udpClient(4, s.port)
    clients.push(c)
    return c
  }

  it('announces: owned hashes in place, foreign ones through the owner; same counts and peers', async () => {
    const peers: UdpClient[] = []
    for (let i = 0; i < 3; i++) peers.push(await client())
    for (const h of [MINE, THEIRS]) {
      const before = { ...calls }
      for (let i = 0; i < 3; i++) {
        const r = await peers[i].announce({ infoHash: h, peerId: id20(i, 'udp'), port: 7000 + i, left: i === 0 ? 0 : 100, numwant: 50 })
        assert.equal(r.action, 'announce')
        if (r.action !== 'announce') return
        assert.equal(r.seeders, 1)
        assert.equal(r.leechers, i)
        // Every earlier peer of the swarm (to a seeder only leechers: none yet for i = 0).
        const want = []
        for (let k = 0; k < i; k++) want.push(`127.0.0.1:${7000 + k}`)
        assert.deepEqual(r.peers.map(p => `${[...Buffer.from(p.addr, 'latin1').subarray(0, 4)].join('.')}:${Buffer.from(p.addr, 'latin1').readUInt16BE(4)}`).sort(), want)
      }
      if (h === MINE) {
        assert.equal(calls.announceCompact - before.announceCompact, 3)
        assert.equal(calls.announce - before.announce, 0)
      } else {
        assert.equal(calls.announceCompact - before.announceCompact, 0)
        assert.equal(calls.announce - before.announce, 3)
      }
    }
    assert.deepEqual(store.counts, { torrents: 2, retired: 0, peers: 6, seeders: 2, leechers: 4 })
  })

  it('scrapes: only owned hashes in place; one foreign hash sends the whole scrape through scrape()', async () => {
    const c = await client()
    let before = { ...calls }
    let r = await c.scrape([MINE, MINE2])
    assert.deepEqual(r.action === 'scrape' && r.entries, [{ complete: 1, downloaded: 0, incomplete: 2 }, { complete: 0, downloaded: 0, incomplete: 0 }])
    assert.equal(calls.scrapeCompact - before.scrapeCompact, 2)
    assert.equal(calls.scrape - before.scrape, 0)
    before = { ...calls }
    r = await c.scrape([MINE, THEIRS, MINE2, THEIRS2])
    assert.deepEqual(r.action === 'scrape' && r.entries, [
      { complete: 1, downloaded: 0, incomplete: 2 }, { complete: 1, downloaded: 0, incomplete: 2 },
      { complete: 0, downloaded: 0, incomplete: 0 }, { complete: 0, downloaded: 0, incomplete: 0 }
    ])
    assert.equal(calls.scrapeCompact - before.scrapeCompact, 0)
    assert.equal(calls.scrape - before.scrape, 1)
  })
})
