/**
 * The shared-memory mesh and the ShardedStore's failure paths: ring wrap-around and order,
 * full rings (local queue, then WORKERS_BUSY), oversized messages, signals between nodes, a
 * worker that does not answer a synchronous read.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MSG_DROPPABLE, MSG_REPLY, Mesh, Reader, Writer, createMeshLayout } from '../../../src/server/workers/mesh.js'
import { ShardedStore } from '../../../src/server/workers/sharded-store.js'
import type { RemoteSignal } from '../../../src/server/core/signalling.js'
import { EVENT_STARTED } from '../../../src/protocol/common/types.js'
import { TrackerError } from '../../../src/errors.js'
import { hash, httpV4, req } from '../store/conformance.js'
import { withTimeout } from '../../helpers/tracker-clients.js'
import { Cluster } from './cluster.js'

const RING = 1024

/** Collects what node `node` receives, as [from, text]. */
function receiver (mesh: Mesh): { got: Array<[number, string]>, wait: (n: number) => Promise<void> } {
  const got: Array<[number, string]> = []
  let want = Infinity
  let done: (() => void) | undefined
  mesh.start((from: number, r: Reader) => {
    got.push([from, r.utf8()])
    if (got.length >= want) done?.()
  })
  return {
    got,
    wait: n => got.length >= n
      ? Promise.resolve()
      : withTimeout(new Promise<void>(resolve => { want = n; done = resolve }), 5000, `${n} messages`)
  }
}

function text (s: string): Writer {
  return new Writer().utf8(s)
}

const meshes: Mesh[] = []
after(() => { for (const m of meshes) m.close() })
function mesh (layout: ReturnType<typeof createMeshLayout>, node: number, overflowMax?: number): Mesh {
  const m = new Mesh(layout, node, overflowMax)
  meshes.push(m)
  return m
}

describe('Mesh', () => {
  it('carries messages of every size in order through a small ring, wrapping many times', async () => {
    const layout = createMeshLayout(2, RING)
    const a = mesh(layout, 0)
    const b = mesh(layout, 1)
    const rx = receiver(b)
    const sent: string[] = []
    for (let i = 0; i < 2000; i++) {
      const s = `${i}:` + 'x'.repeat(i % 300)
      sent.push(s)
      assert.equal(a.send(1, text(s), MSG_DROPPABLE), true)
    }
    await rx.wait(sent.length)
    assert.deepEqual(rx.got, sent.map(s => [0, s]))
    assert.equal(a.backlog, 0)
  })

  it('queues locally while the ring is full, refuses droppable messages beyond the bound, keeps replies', async () => {
    const layout = createMeshLayout(2, RING)
    const a = mesh(layout, 0, 4)
    const b = mesh(layout, 1)
    const msg = 'y'.repeat(200) // 4 + 4 + 200 bytes: four fit in a 1024-byte ring
    let accepted = 0
    while (a.send(1, text(msg), MSG_DROPPABLE)) assert.ok(++accepted < 100)
    assert.equal(accepted, 4 + 4, 'four in the ring, four queued')
    assert.equal(a.backlog, 4)
    assert.equal(a.send(1, text('reply'), MSG_REPLY), true, 'a reply is never refused')
    assert.equal(a.backlog, 5)
    const rx = receiver(b) // the reader starts: everything arrives, in order
    await rx.wait(accepted + 1)
    assert.deepEqual(rx.got.map(([, s]) => s), [...Array(accepted).fill(msg), 'reply'])
    assert.equal(a.backlog, 0)
  })

  it('refuses a message larger than a ring can ever hold', () => {
    const layout = createMeshLayout(2, RING)
    const a = mesh(layout, 0)
    assert.equal(a.maxMessage, RING - 8)
    assert.equal(a.send(1, text('z'.repeat(RING)), MSG_REPLY), false)
    assert.equal(a.backlog, 0)
  })

  it('Writer and Reader: binary strings of every length 0-255 (every byte value) and numbers round-trip; 256 chars are refused', () => {
    const w = new Writer()
    const strings: string[] = []
    for (let n = 0; n <= 255; n++) strings.push(Array.from({ length: n }, (_, i) => String.fromCharCode((n * 31 + i * 7) & 0xff)).join(''))
    for (const s of strings) w.bin8(s).u32(s.length).f64(-s.length / 3).u8(s.length & 0xff)
    const r = new Reader().at(w.buf, 0, w.len)
    for (const s of strings) {
      assert.equal(r.bin8(), s)
      assert.equal(r.u32(), s.length)
      assert.equal(r.f64(), -s.length / 3)
      assert.equal(r.u8(), s.length & 0xff)
    }
    assert.equal(r.pos, w.len)
    assert.throws(() => r.u8(), /^RangeError: truncated worker message$/)
    assert.throws(() => new Writer().bin8('x'.repeat(256)), /^RangeError: binary string longer than 255$/)
  })

  it('rejects bad layouts and node numbers', () => {
    assert.throws(() => createMeshLayout(0), /nodes must be a positive integer/)
    assert.throws(() => createMeshLayout(2, 1000), /power of two/)
    assert.throws(() => new Mesh(createMeshLayout(2, RING), 2), /node 2 outside the mesh/)
  })
})

describe('ShardedStore failure paths', () => {
  it('a request to a shard whose worker stopped reading fails with WORKERS_BUSY once its queue is full', async () => {
    const layout = createMeshLayout(2, RING)
    const store = new ShardedStore({ mesh: mesh(layout, 0, 2), peerTtl: 100 })
    let h = 0
    while (store.shardOf(hash(h)) !== 1) h++
    // Node 1 never starts reading: the ring fills, then the local queue, then requests fail.
    const results: Array<Promise<unknown>> = []
    let busy: unknown
    for (let i = 0; i < 100 && busy === undefined; i++) {
      const r = store.announce(req(hash(h), httpV4(i), { event: EVENT_STARTED }), 1000)
      assert.ok(r instanceof Promise)
      results.push(r.then(() => 'ok', (err: unknown) => { busy = err; return 'busy' }))
      await Promise.resolve()
    }
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.ok(busy instanceof TrackerError)
    assert.equal(busy.code, 'WORKERS_BUSY')
    assert.equal(busy.message, 'tracker busy, try again later')
    // Once node 1 serves, every accepted request is answered.
    const owner = new ShardedStore({ mesh: mesh(layout, 1), peerTtl: 100 })
    const outcome = await withTimeout(Promise.all(results), 5000, 'answers')
    const ok = outcome.filter(o => o === 'ok').length
    assert.deepEqual(outcome, [...Array(ok).fill('ok'), 'busy'])
    assert.equal(store.counts.peers, ok)
    assert.equal(owner.counts.peers, ok)
  })

  it('a synchronous read of a shard whose worker does not answer throws after the timeout', () => {
    const layout = createMeshLayout(2, RING)
    const store = new ShardedStore({ mesh: mesh(layout, 0), peerTtl: 100, syncTimeoutMs: 100 })
    let h = 0
    while (store.shardOf(hash(h)) !== 1) h++
    assert.throws(() => store.swarmInfo(hash(h)), /^Error: worker 2 did not answer within 100 ms$/)
    assert.throws(() => [...store.infoHashes()], /^Error: worker 2 did not answer within 100 ms$/)
  })

  it('spreads info hashes evenly over the shards', () => {
    const layout = createMeshLayout(3, RING)
    const store = new ShardedStore({ mesh: mesh(layout, 0), peerTtl: 100 })
    const per = [0, 0, 0]
    for (let i = 0; i < 3000; i++) per[store.shardOf(hash(i))]++
    for (const n of per) assert.ok(n > 900 && n < 1100, `shard sizes ${per.join(', ')}`)
  })
})

describe('ShardedStore as a SignalBus, across real threads', () => {
  const cluster = new Cluster()
  after(() => cluster.stop())

  it('delivers offers and answers to the worker named, and nothing to a bad node number', async () => {
    const store = await cluster.start(3, 100)
    const offer: RemoteSignal = {
      t: 'offer', conn: 2 * 2 ** 32 + 7, fromConn: 1 * 2 ** 32 + 3, fromPeerId: '-AA0001-000000000001', toPeerId: '-BB0001-000000000002',
      infoHash: hash(5), offerId: '\x00\xffoffer-id-0123456789', expires: 1_700_000_000_123, message: '{"sdp":"v=0 ünïcode ✓"}'
    }
    const answer: RemoteSignal = { t: 'answer', conn: 3 * 2 ** 32 + 9, message: '{"answer":"a"}' }
    assert.equal(store.node, 1)
    store.send(2, offer)
    store.send(3, answer)
    store.send(1, answer) // itself: not a remote node
    store.send(4, answer) // no such node
    store.send(0, answer)
    // The test thread asks worker 3 to send an answer back to worker 2 through the mesh.
    await cluster.command(1, { cmd: 'send', node: 2, signal: { t: 'answer', conn: 5, message: 'from 3' } })
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.deepEqual((await cluster.command(0, { cmd: 'signals' })).signals, [offer, { t: 'answer', conn: 5, message: 'from 3' }])
    assert.deepEqual((await cluster.command(1, { cmd: 'signals' })).signals, [answer])
  })
})
