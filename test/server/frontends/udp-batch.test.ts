/**
 * The UDP tracker on the native batch socket (BatchUdpSocket) beyond what the shared server
 * tests check on both backends: bursts larger than a batch, replies that wait on an async
 * store, close under traffic, the dgram-like socket surface, and choosing the backend.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { Server } from '../../../src/server/server.js'
import { BatchUdpSocket } from '../../../src/server/frontends/udp-batch.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import type { SwarmStore } from '../../../src/server/store/store.js'
import { encodeAnnounceRequest, encodeConnectRequest } from '../../../src/protocol/udp/codec.js'
import { closeServer, id20, startServer, udpClient, withTimeout, REPLY_TIMEOUT_MS } from '../../helpers/tracker-clients.js'

/** A MemoryStore whose announce and scrape answer a microtask (or a timer) later, like a networked store. */
function asyncStore (viaTimer: boolean): SwarmStore {
  const inner = new MemoryStore({ peerTtl: 3600 })
  const later = <T>(v: T): Promise<T> => viaTimer ? new Promise(resolve => setTimeout(() => resolve(v), 1)) : Promise.resolve(v)
  return new Proxy(inner, {
    get (target, key, receiver) {
      if (key === 'announce' || key === 'scrape') {
        return (...args: unknown[]) => later((target[key] as (...a: unknown[]) => unknown).apply(target, args))
      }
      // A networked store has no synchronous in-place answers.
      if (key === 'announceCompact' || key === 'scrapeCompact') return undefined
      const v = Reflect.get(target, key, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    }
  }) as SwarmStore
}

for (const family of [4, 6] as const) {
  describe(`native UDP v${family}`, () => {
    for (const store of ['memory', 'async (microtask)', 'async (timer)'] as const) {
      it(`a burst of 300 announces from 3 sockets, ${store} store: every one answered with its transaction id`, async () => {
        const s = await startServer({ udpBackend: 'native', store: store === 'memory' ? undefined : asyncStore(store === 'async (timer)') })
        const clients = await Promise.all([0, 1, 2].map(() => udpClient(family, s.port)))
        try {
          assert.equal(s.server.udpBackend, 'native')
          const cids = await Promise.all(clients.map(c => c.connect()))
          const sent = new Map<number, number>()
          const answered = new Set<number>()
          // Three waves of 100 (more than one batch each): a wave fits the kernel's default
          // receive buffer, which 300 datagrams from this one busy process would overflow.
          for (let wave = 0; wave < 3; wave++) {
            for (let i = wave * 100; i < wave * 100 + 100; i++) {
              const k = i % 3
              const tid = 0x10000 + i
              sent.set(tid, k)
              clients[k].fire(encodeAnnounceRequest({
                connectionId: cids[k],
                transactionId: tid,
                request: { infoHash: id20(i % 7), peerId: id20(1000 + i), port: 10000 + i, downloaded: 0, left: 1, uploaded: 0, event: 2, numwant: 0 }
              }))
            }
            for (const [k, c] of clients.entries()) {
              const expected = [34, 33, 33][(k + 3 - wave % 3) % 3]
              for (let n = 0; n < expected; n++) {
                const raw = await c.next(REPLY_TIMEOUT_MS)
                assert.ok(raw !== undefined, `wave ${wave}, client ${k}: ${n} replies of ${expected}`)
                const r = c.decode(raw)
                assert.equal(r.action, 'announce')
                assert.equal(sent.get(r.transactionId), k)
                answered.add(r.transactionId)
              }
            }
          }
          assert.equal(answered.size, 300)
          for (let t = 0; t < 7; t++) {
            assert.equal(s.server.torrents[Buffer.from(id20(t), 'latin1').toString('hex')]?.incomplete, t < 6 ? 43 : 42)
          }
          const socket = (family === 4 ? s.server.udp4 : s.server.udp6) as BatchUdpSocket
          const st = socket.stats()
          // 3 connects + 300 announces in, as many replies out, nothing queued or lost.
          assert.equal(st.received, 303)
          assert.equal(st.sent, 303)
          assert.deepEqual([st.dropped, st.sendErrors, st.queueLength], [0, 0, 0])
          assert.ok(st.recvCalls <= 303)
        } finally {
          for (const c of clients) c.close()
          await s.close()
        }
      })
    }

    it('close while datagrams and async replies are in flight: no error, the callback runs, the port frees', async () => {
      const s = await startServer({ udpBackend: 'native', store: asyncStore(true) })
      const c = await udpClient(family, s.port)
      const errors: Error[] = []
      s.server.on('error', (e: Error) => errors.push(e))
      try {
        const cid = await c.connect()
        for (let i = 0; i < 500; i++) {
          c.fire(encodeAnnounceRequest({
            connectionId: cid,
            transactionId: i,
            request: { infoHash: id20(1), peerId: id20(i), port: 2000 + i, downloaded: 0, left: 1, uploaded: 0, event: 2, numwant: 5 }
          }))
          if (i === 250) await s.close()
        }
        // Whatever was answered came before the close; afterwards nothing more.
        await new Promise(resolve => setTimeout(resolve, 100))
        const before = c.pending
        await new Promise(resolve => setTimeout(resolve, 100))
        assert.equal(c.pending, before)
        assert.ok(before <= 251, `${before} replies`)
        assert.deepEqual(errors, [])
        const u = dgram.createSocket(family === 4 ? { type: 'udp4' } : { type: 'udp6', ipv6Only: true })
        await new Promise<void>((resolve, reject) => { u.once('error', reject); u.bind(s.port, family === 4 ? '127.0.0.1' : '::1', resolve) })
        u.close()
      } finally { c.close() }
    })
  })
}

describe('BatchUdpSocket as server.udp4 / server.udp6', () => {
  it('an error reply longer than a slot (a filter\'s 3000-character reason) is cut to SLOT_SIZE bytes', async () => {
    const reason = 'r'.repeat(3000)
    const s = await startServer({ udpBackend: 'native', filter: (_ih, _p, cb) => cb(new Error(reason)) })
    const c = await udpClient(4, s.port)
    try {
      const cid = await c.connect()
      const raw = await c.send(encodeAnnounceRequest({
        connectionId: cid,
        transactionId: 7,
        request: { infoHash: id20(1), peerId: id20(2), port: 1, downloaded: 0, left: 1, uploaded: 0, event: 2, numwant: -1 }
      }), REPLY_TIMEOUT_MS)
      assert.equal(raw?.length, 2048)
      assert.deepEqual(raw, Buffer.concat([Buffer.from('0000000300000007', 'hex'), Buffer.from(reason.slice(0, 2040))]))
    } finally {
      c.close()
      await s.close()
    }
  })


  it('address(), ref/unref, close(cb) twice; address() before listening and after close throws like dgram', async () => {
    const server = new Server({ udpBackend: 'native', http: false, ws: false, stats: false })
    const u4 = server.udp4 as BatchUdpSocket
    assert.ok(u4 instanceof BatchUdpSocket)
    assert.equal(server.udp, u4)
    assert.throws(() => u4.address(), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' })
    // unref before bind holds after bind: the loop is not kept alive by UDP alone.
    assert.equal(u4.unref(), u4)
    assert.equal(u4.ref(), u4)
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, { udp: 'localhost', udp6: '::1' }, resolve)
      })
      const port = u4.address().port
      // A host name goes through dns.lookup (/etc/hosts has localhost as 127.0.0.1).
      assert.deepEqual(u4.address(), { address: '127.0.0.1', family: 'IPv4', port })
      assert.deepEqual(server.udp6!.address(), { address: '::1', family: 'IPv6', port })
      const c = await udpClient(6, port)
      try { assert.equal((await c.connect()).length, 8) } finally { c.close() }
    } finally { await closeServer(server) }
    assert.throws(() => u4.address(), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' })
    let called = 0
    await new Promise<void>(resolve => u4.close(() => { called++; resolve() }))
    assert.equal(called, 1)
  })

  it("a taken UDP port is the server's 'error' (EADDRINUSE), as with dgram", async () => {
    const holder = dgram.createSocket('udp4')
    await new Promise<void>(resolve => holder.bind(0, '127.0.0.1', resolve))
    const port = holder.address().port
    const server = new Server({ udpBackend: 'native', http: false, ws: false, stats: false })
    try {
      const err = await withTimeout(new Promise<NodeJS.ErrnoException>(resolve => {
        server.once('error', resolve)
        server.listen(port, { udp: '127.0.0.1', udp6: '::1' })
      }), REPLY_TIMEOUT_MS, 'error')
      assert.equal(err.code, 'EADDRINUSE')
      assert.equal(err.message, `bind EADDRINUSE 127.0.0.1:${port}`)
      assert.equal(server.listening, false)
    } finally {
      holder.close()
      await closeServer(server)
    }
  })

  it('an unresolvable host name is an error too', async () => {
    const server = new Server({ udpBackend: 'native', http: false, ws: false, stats: false })
    try {
      const err = await withTimeout(new Promise<NodeJS.ErrnoException>(resolve => {
        server.once('error', resolve)
        server.listen(0, { udp: 'no-such-host.invalid', udp6: '::1' })
      }), 10_000, 'error')
      assert.match(String(err.code), /^(ENOTFOUND|EAI_AGAIN)$/)
    } finally { await closeServer(server) }
  })
})

describe('udpBackend option', () => {
  it("'dgram' gives node:dgram sockets; 'native' and 'auto' the batch socket", async () => {
    const cases: Array<['auto' | 'native' | 'dgram' | undefined, 'native' | 'dgram', string | undefined]> = [
      [undefined, 'native', undefined], ['auto', 'native', undefined], ['native', 'native', undefined], ['dgram', 'dgram', "udpBackend 'dgram' chosen"]
    ]
    for (const [udpBackend, want, reason] of cases) {
      const server = new Server({ udpBackend, http: false, ws: false })
      assert.equal(server.udpBackend, want)
      assert.equal(server.udpBackendReason, reason)
      assert.equal(server.udp4 instanceof (want === 'native' ? BatchUdpSocket : dgram.Socket), true)
      assert.equal(server.udp6 instanceof (want === 'native' ? BatchUdpSocket : dgram.Socket), true)
      await closeServer(server)
    }
  })

  it('udp options the addon maps stay native; others make auto fall back and native refuse', async () => {
    const mapped = new Server({ udp: { recvBufferSize: 1 << 20, sendBufferSize: 1 << 20, reuseAddr: true }, http: false, ws: false })
    assert.equal(mapped.udpBackend, 'native')
    await new Promise<void>(resolve => mapped.listen(0, { udp: '127.0.0.1', udp6: '::1' }, resolve))
    const c = await udpClient(4, (mapped.udp4!).address().port)
    try { assert.equal((await c.connect()).length, 8) } finally { c.close(); await closeServer(mapped) }

    const signal = new AbortController().signal
    const auto = new Server({ udp: { signal }, http: false, ws: false })
    assert.equal(auto.udpBackend, 'dgram')
    assert.equal(auto.udpBackendReason, 'udp options signal need node:dgram')
    await closeServer(auto)
    assert.throws(() => new Server({ udp: { signal }, udpBackend: 'native' }), { message: "udpBackend 'native' does not support the udp options signal" })
    assert.throws(() => new Server({ udpBackend: 'fast' as 'auto' }), { name: 'TypeError', message: "udpBackend must be 'auto', 'native' or 'dgram', got fast" })
  })

  it('a connect over the native path gets the same 16 bytes shape as over dgram, and ids work across backends with a shared secret', async () => {
    const secret = Buffer.alloc(32, 3)
    const a = await startServer({ udpBackend: 'native', udpSecret: secret })
    const b = await startServer({ udpBackend: 'dgram', udpSecret: secret })
    const ca = await udpClient(4, a.port)
    const cb = await udpClient(4, b.port)
    try {
      const r = await ca.send(encodeConnectRequest(99), REPLY_TIMEOUT_MS)
      assert.equal(r?.length, 16)
      // The id the native tracker issued is accepted by the dgram one (same address, same secret).
      cb.connectionId = r!.subarray(8)
      const ann = await cb.announce({ infoHash: id20(1), peerId: id20(2), port: 3000 })
      assert.equal(ann.action, 'announce')
    } finally {
      ca.close()
      cb.close()
      await a.close()
      await b.close()
    }
  })
})

