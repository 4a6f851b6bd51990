/**
 * The native addon itself (native/udp_batch.c through src/server/native/loader.ts), on real
 * sockets: batching, IPv6, the send queue under real EAGAIN, close, worker threads, listenFd,
 * and the errors bad arguments give. `npm ci` builds the addon; a missing one fails here.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { listenFd, nativeAddon, nativeStatus, STAT_NAMES } from '../../../src/server/native/loader.js'
import type { NativeAddon, NativeUdpHandle } from '../../../src/server/native/loader.js'
import { withTimeout, REPLY_TIMEOUT_MS } from '../../helpers/tracker-clients.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function addon (): NativeAddon {
  const a = nativeAddon()
  assert.ok(a !== undefined, `native addon not available: ${nativeStatus().reason ?? ''}`)
  return a
}

function stats (h: NativeUdpHandle): Record<string, number> {
  const v = h.stats()
  return Object.fromEntries(STAT_NAMES.map((n, i) => [n, v[i]]))
}

/** Points reply slot `slot` of `h` at ip:port with `len` bytes. */
function address (h: NativeUdpHandle, a: NativeAddon, slot: number, family: 4 | 6, port: number, len: number): void {
  const o = slot * a.META_SIZE
  new Uint32Array(h.sendMeta, o, 1)[0] = len
  new Uint16Array(h.sendMeta, o + 4, 1)[0] = port
  const b = new Uint8Array(h.sendMeta)
  b[o + 6] = family
  b.fill(0, o + 8, o + 24)
  if (family === 4) b.set([127, 0, 0, 1], o + 8)
  else b[o + 23] = 1
}

/** Echoes every datagram back to its source from the same slot; records batch sizes. */
function echo (a: NativeAddon, family: 4 | 6, host: string, batches: number[]): NativeUdpHandle {
  return new a.UdpSocket(family, host, 0, { recvBufferSize: 1 << 20 }, function (n) {
    batches.push(n)
    new Uint8Array(this.sendData).set(new Uint8Array(this.recvData))
    new Uint8Array(this.sendMeta).set(new Uint8Array(this.recvMeta))
    return n
  })
}

describe('native addon', () => {
  it('is built and loads (nativeStatus)', () => {
    assert.deepEqual(nativeStatus(), { available: true })
    const a = addon()
    assert.deepEqual([a.BATCH, a.SLOT_SIZE, a.META_SIZE, a.QUEUE_MAX], [64, 2048, 32, 4096])
  })

  it('BITTORRENT_TRACKER_NATIVE=0 disables it: nativeStatus says why, listenFd throws', () => {
    const code = "import('./src/server/native/loader.ts').then(m => { console.log(JSON.stringify(m.nativeStatus())); try { m.listenFd('tcp4', '127.0.0.1', 0, 1) } catch (e) { console.log(e.message) } })"
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, env: { ...process.env, BITTORRENT_TRACKER_NATIVE: '0' }, encoding: 'utf8', timeout: 20_000 })
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), [
      JSON.stringify({ available: false, reason: 'disabled by BITTORRENT_TRACKER_NATIVE=0' }),
      'listenFd: disabled by BITTORRENT_TRACKER_NATIVE=0'
    ])
  })

  for (const [family, host] of [[4, '127.0.0.1'], [6, '::1']] as const) {
    it(`IPv${family}: 130 datagrams queued before the loop runs arrive in batches of at most 64 (one full), all echoed`, async () => {
      const a = addon()
      const batches: number[] = []
      const server = echo(a, family, host, batches)
      const port = server.address()[1]
      assert.deepEqual(server.address(), [host, port])
      const got: number[] = []
      let done: () => void
      const all = new Promise<void>(resolve => { done = resolve })
      const client = new a.UdpSocket(family, host, 0, { recvBufferSize: 1 << 20 }, function (n) {
        const meta = new Uint32Array(this.recvMeta)
        const data = new DataView(this.recvData)
        for (let i = 0; i < n; i++) {
          assert.equal(meta[i * 8], 8)
          got.push(data.getUint32(i * a.SLOT_SIZE + 4))
        }
        if (got.length === 130) done()
        return 0
      })
      try {
        const data = new DataView(client.sendData)
        // Sent synchronously by sendmmsg: all 130 wait in the server's receive queue.
        for (let first = 0; first < 130; first += 64) {
          const n = Math.min(64, 130 - first)
          for (let s = 0; s < n; s++) {
            address(client, a, s, family, port, 8)
            data.setUint32(s * a.SLOT_SIZE, 0xcafe)
            data.setUint32(s * a.SLOT_SIZE + 4, first + s)
          }
          client.send(n)
        }
        await withTimeout(all, REPLY_TIMEOUT_MS, 'echoes')
        assert.deepEqual(got, Array.from({ length: 130 }, (_, i) => i))
        assert.equal(batches.reduce((x, y) => x + y, 0), 130)
        assert.equal(Math.max(...batches), 64)
        assert.ok(batches.length >= 3 && batches.length < 130, `batches: ${batches.join(',')}`)
        const s = stats(server)
        assert.equal(s.received, 130)
        assert.equal(s.sent, 130)
        assert.equal(s.recvCalls, batches.length)
        assert.deepEqual([s.queued, s.dropped, s.sendErrors, s.truncated, s.queueLength], [0, 0, 0, 0, 0])
        assert.equal(stats(client).sent, 130)
      } finally {
        server.close()
        client.close()
      }
    })
  }

  it('a reply to a destination of the other family is refused per datagram, the rest go out', async () => {
    const a = addon()
    const rx = dgram.createSocket('udp4')
    await new Promise<void>(resolve => rx.bind(0, '127.0.0.1', resolve))
    const got: string[] = []
    rx.on('message', m => got.push(m.toString()))
    const h = new a.UdpSocket(4, '127.0.0.1', 0, {}, () => 0)
    try {
      const port = (rx.address()).port
      address(h, a, 0, 4, port, 1)
      address(h, a, 1, 6, port, 1)
      address(h, a, 2, 4, port, 1)
      address(h, a, 3, 4, port, a.SLOT_SIZE + 1) // longer than a slot
      new Uint8Array(h.sendData).set([0x61], 0)
      new Uint8Array(h.sendData).set([0x63], 2 * a.SLOT_SIZE)
      h.send(4)
      await withTimeout((async () => { while (got.length < 2) await new Promise(resolve => setTimeout(resolve, 5)) })(), REPLY_TIMEOUT_MS, 'two datagrams')
      assert.deepEqual(got, ['a', 'c'])
      assert.equal(stats(h).sent, 2)
      assert.equal(stats(h).sendErrors, 2)
    } finally {
      h.close()
      rx.close()
    }
  })

  it('partial sends and EAGAIN: a burst larger than the send buffer queues, drains in order, drops beyond QUEUE_MAX', async (t) => {
    // Needs root (a private network namespace whose loopback has a slow tbf qdisc: packets wait
    // there counting against the sender's SO_SNDBUF). CI runs as root. Pinned to one CPU: the
    // qdisc releases packets from whichever CPU runs it (the sender, or its timer elsewhere), and
    // loopback delivers each through the backlog of that CPU, so on two CPUs the kernel itself
    // can reorder them; what this test checks is the order the addon sends in.
    assert.equal(process.getuid?.(), 0, 'this test needs root for unshare --net and tc')
    const count = 5000
    const cmd = 'ip link set lo up && tc qdisc add dev lo root tbf rate 40mbit burst 16kb limit 20mb' +
      ` && exec taskset -c 0 "${process.execPath}" --import tsx test/server/native/send-queue-fixture.ts ${count}`
    const child = spawn('unshare', ['--net', 'sh', '-c', cmd], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const killer = setTimeout(() => child.kill('SIGKILL'), 40_000)
    const code = await new Promise<number | null>(resolve => child.on('close', resolve))
    clearTimeout(killer)
    assert.equal(code, 0, err)
    const r = JSON.parse(out) as {
      afterBurst: Record<string, number>, sender: Record<string, number>, receiverStats: Record<string, number>, received: number, inOrder: boolean, queueMax: number
    }
    t.diagnostic(out.trim())
    const b = r.afterBurst
    // Right after the burst: some went out, EAGAIN stopped the rest, the ring is full, the excess dropped.
    assert.ok(b.sent > 0 && b.sent < count - r.queueMax, `sent at once: ${b.sent}`)
    assert.ok(b.eagain > 0)
    assert.equal(b.queueLength, r.queueMax)
    assert.equal(b.sent + b.queueLength + b.dropped, count)
    // Then the loop drained the ring as the socket became writable again.
    const s = r.sender
    assert.equal(s.queueLength, 0)
    assert.equal(s.sent, b.sent + r.queueMax)
    assert.equal(s.sent + s.dropped, count)
    assert.equal(s.dropped, b.dropped)
    assert.equal(s.sendErrors, 0)
    // Every datagram sent arrived, once, in order.
    assert.equal(r.receiverStats.received, s.sent)
    assert.equal(r.received, s.sent)
    assert.equal(r.inOrder, true)
  })

  it('close: idempotent, stops reading, frees the port; a closed socket refuses send and address', async () => {
    const a = addon()
    let batches = 0
    const h = new a.UdpSocket(4, '127.0.0.1', 0, {}, () => { batches++; return 0 })
    const port = h.address()[1]
    h.close()
    h.close()
    assert.throws(() => h.send(1), { code: 'EBADF', syscall: 'send' })
    assert.throws(() => h.address(), { code: 'EBADF' })
    h.ref()
    h.unref()
    assert.equal(stats(h).received, 0)
    const again = new a.UdpSocket(4, '127.0.0.1', port, {}, () => 0)
    assert.equal(again.address()[1], port)
    again.close()
    assert.equal(batches, 0)
  })

  it('close from inside the batch callback while datagrams keep coming', async () => {
    const a = addon()
    let calls = 0
    const h = new a.UdpSocket(4, '127.0.0.1', 0, {}, function (n) {
      calls++
      this.close()
      return n // replies asked for after close are not sent
    })
    const port = h.address()[1]
    const tx = dgram.createSocket('udp4')
    await new Promise<void>(resolve => tx.bind(0, '127.0.0.1', resolve))
    const replies: Buffer[] = []
    tx.on('message', m => replies.push(m))
    try {
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 50; i++) tx.send(Buffer.from([i]), port, '127.0.0.1')
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      assert.equal(calls, 1)
      assert.deepEqual(replies, [])
      assert.equal(stats(h).sent, 0)
    } finally { tx.close() }
  })

  it('works in a worker thread (its own loop), and a worker exiting with a socket open cleans up', async () => {
    const file = `${ROOT}build/Release/udp_batch.node`
    const code = `
      const { parentPort } = require('node:worker_threads')
      const a = require(${JSON.stringify(file)})
      const h = new a.UdpSocket(6, '::1', 0, {}, function (n) {
        new Uint8Array(this.sendData).set(new Uint8Array(this.recvData))
        new Uint8Array(this.sendMeta).set(new Uint8Array(this.recvMeta))
        return n
      })
      parentPort.postMessage(h.address()[1])`
    for (let round = 0; round < 2; round++) {
      const w = new Worker(code, { eval: true })
      const port = await withTimeout(new Promise<number>((resolve, reject) => { w.once('message', resolve); w.once('error', reject) }), REPLY_TIMEOUT_MS, 'worker port')
      const c = dgram.createSocket({ type: 'udp6', ipv6Only: true })
      try {
        await new Promise<void>(resolve => c.bind(0, '::1', resolve))
        const reply = new Promise<Buffer>(resolve => c.once('message', resolve))
        c.send(Buffer.from('ping'), port, '::1')
        assert.equal((await withTimeout(reply, REPLY_TIMEOUT_MS, 'echo from the worker')).toString(), 'ping')
      } finally { c.close() }
      // The socket is still open: terminating the worker runs the addon's env cleanup.
      assert.equal(await w.terminate(), 1)
      // The port is free again.
      const again = new (addon().UdpSocket)(6, '::1', port, {}, () => 0)
      again.close()
    }
  })

  it('bad arguments throw errors with codes', () => {
    const a = addon()
    const ok = (): number => 0
    const U = a.UdpSocket as unknown as new (...args: unknown[]) => NativeUdpHandle
    assert.throws(() => new U(5, '127.0.0.1', 0, {}, ok), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'family must be 4 or 6' })
    assert.throws(() => new U(4, 7, 0, {}, ok), { name: 'TypeError', message: 'host must be an IP address string' })
    assert.throws(() => new U(4, '127.0.0.1', 65536, {}, ok), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' })
    assert.throws(() => new U(4, '127.0.0.1', -1, {}, ok), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' })
    assert.throws(() => new U(4, '127.0.0.1', 0, null, ok), { name: 'TypeError', message: 'options must be an object' })
    assert.throws(() => new U(4, '127.0.0.1', 0, {}, 'no'), { name: 'TypeError', message: 'onBatch must be a function' })
    assert.throws(() => new U(4, '::1', 0, {}, ok), { code: 'EINVAL', syscall: 'bind', message: 'bind EINVAL ::1' })
    assert.throws(() => new U(6, 'localhost', 0, {}, ok), { code: 'EINVAL', syscall: 'bind' })
    const h = new U(4, '127.0.0.1', 0, {}, ok)
    try {
      const port = h.address()[1]
      assert.throws(() => new U(4, '127.0.0.1', port, {}, ok), { code: 'EADDRINUSE', errno: -98, syscall: 'bind', message: `bind EADDRINUSE 127.0.0.1:${port}` })
      assert.throws(() => h.send(65), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
      assert.throws(() => h.send(-1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
      h.send(0)
      const notASocket = { send: h.send }
      // V8's receiver check (Illegal invocation) stops a method called on another object.
      assert.throws(() => notASocket.send(1), { name: 'TypeError' })
    } finally { h.close() }
    // reusePort: several sockets share a port when every one asks for it.
    const r1 = new U(6, '::1', 0, { reusePort: true }, ok)
    const r2 = new U(6, '::1', r1.address()[1], { reusePort: true }, ok)
    assert.equal(r2.address()[1], r1.address()[1])
    r1.close()
    r2.close()
  })
})

describe('listenFd', () => {
  for (const [kind, host] of [['tcp4', '127.0.0.1'], ['tcp6', '::1']] as const) {
    it(`${kind}: two listeners share a port (SO_REUSEPORT) through net.Server.listen({ fd })`, async () => {
      const fd1 = listenFd(kind, host, 0, 64)
      const s1 = net.createServer()
      let accepted = 0
      const onConn = (c: net.Socket): void => { accepted++; c.end('x') }
      s1.on('connection', onConn)
      await new Promise<void>(resolve => s1.listen({ fd: fd1 }, resolve))
      const port = (s1.address() as net.AddressInfo).port
      assert.deepEqual(s1.address(), { address: host, family: kind === 'tcp4' ? 'IPv4' : 'IPv6', port })
      const fd2 = listenFd(kind, host, port, 64)
      assert.notEqual(fd2, fd1)
      const s2 = net.createServer(onConn)
      await new Promise<void>(resolve => s2.listen({ fd: fd2 }, resolve))
      try {
        for (let i = 0; i < 20; i++) {
          const c = net.connect(port, host)
          const data = await withTimeout(new Promise<string>((resolve, reject) => {
            let d = ''
            c.on('data', b => { d += b.toString() })
            c.on('end', () => resolve(d))
            c.on('error', reject)
          }), REPLY_TIMEOUT_MS, 'connection')
          assert.equal(data, 'x')
        }
        assert.equal(accepted, 20)
      } finally {
        await new Promise(resolve => s1.close(resolve))
        await new Promise(resolve => s2.close(resolve))
      }
    })
  }

  it('errors: bad kind, port, backlog, host; a port held without SO_REUSEPORT', async () => {
    const f = listenFd as unknown as (...args: unknown[]) => number
    assert.throws(() => f('udp4', '127.0.0.1', 0, 1), { name: 'TypeError', message: "kind must be 'tcp4' or 'tcp6'" })
    assert.throws(() => f('tcp4', '127.0.0.1', 70000, 1), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' })
    assert.throws(() => f('tcp4', '127.0.0.1', 0, 0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => f('tcp6', '127.0.0.1', 0, 1), { code: 'EINVAL', syscall: 'listen' })
    const plain = net.createServer()
    await new Promise<void>(resolve => plain.listen(0, '127.0.0.1', resolve))
    try {
      const port = (plain.address() as net.AddressInfo).port
      assert.throws(() => f('tcp4', '127.0.0.1', port, 1), { code: 'EADDRINUSE', syscall: 'bind', message: `bind EADDRINUSE 127.0.0.1:${port}` })
    } finally { await new Promise(resolve => plain.close(resolve)) }
  })
})
