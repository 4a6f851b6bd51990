/**
 * A worker thread that owns one shard of a ShardedStore, for the tests: it answers other nodes'
 * requests through the mesh, and on the parent's command empties its shard, sends a signal, or
 * reports the signals it received.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Mesh } from '../../../src/server/workers/mesh.js'
import type { MeshLayout } from '../../../src/server/workers/mesh.js'
import { ShardedStore } from '../../../src/server/workers/sharded-store.js'
import type { RemoteSignal } from '../../../src/server/core/signalling.js'
import { PeerStats } from '../../../src/server/stats/peer-stats.js'

const { layout, node, peerTtl, peerStats } = workerData as { layout: MeshLayout, node: number, peerTtl: number, peerStats: boolean }
const store = new ShardedStore({ mesh: new Mesh(layout, node), peerTtl, peerStats: peerStats ? new PeerStats() : undefined })
const received: RemoteSignal[] = []
store.onSignal = s => { received.push(s) }

parentPort!.on('message', (m: { cmd: 'reset' } | { cmd: 'signals' } | { cmd: 'send', node: number, signal: RemoteSignal }) => {
  if (m.cmd === 'reset') store.close()
  else if (m.cmd === 'signals') { parentPort!.postMessage({ signals: received.splice(0) }); return }
  else store.send(m.node, m.signal)
  parentPort!.postMessage({ ok: true })
})
parentPort!.postMessage({ ready: true })
