/**
 * ShardedStore: the SwarmStore conformance suite with the swarms spread over real worker
 * threads (the test thread is node 0 and owns one shard; the others are shard-host.ts workers).
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { CONN_NODE_FACTOR } from '../../../src/server/core/signalling.js'
import { EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import { T0, TTL, hash, req, runStoreConformance, wsPeer } from '../store/conformance.js'
import { Cluster } from './cluster.js'

for (const nodes of [2, 3]) {
  const cluster = new Cluster()
  after(() => cluster.stop())
  runStoreConformance(`ShardedStore over ${nodes} threads`, async opts => {
    if (cluster.store === undefined) return await cluster.start(nodes, opts.peerTtl)
    await cluster.reset()
    return cluster.store
  }, { listener: false })
}

describe('ShardedStore: a WebSocket peer held by one worker\'s connection', () => {
  const cluster = new Cluster()
  after(() => cluster.stop())

  it('cannot be announced, stopped or removed by another worker\'s connection (its own shard and another\'s)', async () => {
    const store = await cluster.start(2, TTL)
    // Connection numbers carry their worker's node number in their high bits.
    const mine = 1 * CONN_NODE_FACTOR + 5
    const theirs = 2 * CONN_NODE_FACTOR + 5
    const own = [0, 1, 2, 3, 4, 5, 6, 7].map(hash).find(h => store.compactServes(h))!
    const foreign = [0, 1, 2, 3, 4, 5, 6, 7].map(hash).find(h => !store.compactServes(h))!
    assert.ok(own !== undefined && foreign !== undefined)
    for (const ih of [own, foreign]) {
      assert.equal((await store.announce(req(ih, wsPeer(1, mine)), T0)).incomplete, 1)
      for (const a of [req(ih, wsPeer(1, theirs), { seeder: true }), req(ih, wsPeer(1, theirs), { event: EVENT_STOPPED })]) {
        // Thrown for this node's own shard, a rejection from another's: both PEER_ID_BOUND.
        await assert.rejects(async () => await store.announce(a, T0), { name: 'TrackerError', code: 'PEER_ID_BOUND', message: 'peer_id is bound to another connection' })
      }
      assert.equal(await store.remove(ih, wsPeer(1).key, theirs), false)
      assert.deepEqual((await store.scrape([ih]))[0], { infoHash: ih, complete: 0, incomplete: 1, downloaded: 0 })
      // Another connection of the same worker is that worker's signalling's business (the contract).
      assert.equal((await store.announce(req(ih, wsPeer(1, mine + 1)), T0)).incomplete, 1)
      assert.equal(await store.remove(ih, wsPeer(1).key, mine + 1), true)
      assert.deepEqual((await store.scrape([ih]))[0], { infoHash: ih, complete: 0, incomplete: 0, downloaded: 0 })
    }
  })
})
