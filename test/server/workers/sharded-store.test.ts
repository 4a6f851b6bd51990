/**
 * ShardedStore: the SwarmStore conformance suite with the swarms spread over real worker
 * threads (the test thread is node 0 and owns one shard; the others are shard-host.ts workers).
 */
import { after } from 'node:test'
import { runStoreConformance } from '../store/conformance.js'
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
