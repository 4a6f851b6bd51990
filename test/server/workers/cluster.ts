/** Worker threads each owning a shard (shard-host.ts); the test thread is node 0. */
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { createMeshLayout, Mesh } from '../../../src/server/workers/mesh.js'
import { ShardedStore } from '../../../src/server/workers/sharded-store.js'
import { PeerStats } from '../../../src/server/stats/peer-stats.js'

export class Cluster {
  readonly workers: Worker[] = []
  store: ShardedStore | undefined

  /** `peerStats`: every node keeps its part of the unique-peer statistics (node 0 never caches). */
  async start (nodes: number, peerTtl: number, ringBytes?: number, peerStats = false): Promise<ShardedStore> {
    const layout = createMeshLayout(nodes, ringBytes)
    for (let node = 1; node < nodes; node++) {
      const w = new Worker(new URL('./ts-worker.mjs', import.meta.url), {
        workerData: { entry: new URL('./shard-host.ts', import.meta.url).href, layout, node, peerTtl, peerStats }
      })
      this.workers.push(w)
      await once(w, 'message')
    }
    this.store = new ShardedStore({
      mesh: new Mesh(layout, 0), peerTtl, sweep: 'all', ...(peerStats ? { peerStats: new PeerStats(), clientsCacheMs: 0 } : {})
    })
    return this.store
  }

  async command (i: number, m: unknown): Promise<any> {
    const w = this.workers[i]
    w.postMessage(m)
    const [reply] = await once(w, 'message')
    return reply
  }

  async reset (): Promise<void> {
    for (let i = 0; i < this.workers.length; i++) await this.command(i, { cmd: 'reset' })
  }

  async stop (): Promise<void> {
    await Promise.all(this.workers.map(w => w.terminate()))
    this.workers.length = 0
  }
}
