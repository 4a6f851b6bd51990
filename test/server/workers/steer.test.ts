/**
 * UDP steering by info hash (native/udp_batch.c steerReuseport): on a real SO_REUSEPORT group of
 * the addon's sockets, every announce and scrape reaches socket shardOf(its first info hash);
 * connects and short or odd packets still arrive (where the kernel's flow hash puts them). And
 * the WorkerPool reports whether it steers. Without the addon (BITTORRENT_TRACKER_NATIVE=0, the
 * second run of scripts/run-tests.mjs) the pool says it does not (the ShardedStore hands requests
 * over instead: see test/cli/workers). The socket-level suite tests the addon itself, so it loads
 * build/Release/udp_batch.node directly in both runs.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { nativeStatus } from '../../../src/server/native/loader.js'
import type { NativeAddon, NativeUdpHandle } from '../../../src/server/native/loader.js'
import { shardOf } from '../../../src/server/workers/shard.js'
// The pool starts dist/server/workers/worker.js (worker threads do not get the tests' TypeScript loader).
import { WorkerPool } from '../../../dist/index.js'
import { waitFor, withTimeout } from '../../helpers/tracker-clients.js'

/** Whether the server uses the addon in this run (the pool steers only then). */
const NATIVE = nativeStatus().available
const ADDON_FILE = fileURLToPath(new URL('../../../build/Release/udp_batch.node', import.meta.url))
/** The addon itself, whatever BITTORRENT_TRACKER_NATIVE says (npm install builds it; CI has g++). */
function nativeAddon (): NativeAddon {
  return createRequire(import.meta.url)(ADDON_FILE) as NativeAddon
}

/** A 20-byte hash with every byte value likely (like SHA-1), from a seed. */
function hashOf (seed: number): Buffer {
  const b = Buffer.alloc(20)
  let x = (seed * 0x9E3779B1 + 0x7f4a7c15) >>> 0
  for (let i = 0; i < 20; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    b[i] = x & 0xff
  }
  return b
}

function packet (action: number, hashes: Buffer[], len?: number): Buffer {
  const p = Buffer.alloc(len ?? (action === 1 ? 98 : 16 + 20 * hashes.length))
  p.writeUInt32BE(0x41727101, 0)
  p.writeUInt32BE(0x980, 4)
  p.writeUInt32BE(action, 8)
  p.writeUInt32BE(0x1234, 12)
  hashes.forEach((h, i) => h.copy(p, 16 + 20 * i))
  return p
}

describe('UDP steering by info hash (SO_ATTACH_REUSEPORT_CBPF)', () => {
  for (const [family, host] of [[4, '127.0.0.1'], [6, '::1']] as const) {
    for (const shards of [2, 3]) {
      it(`IPv${family}, ${shards} sockets: each announce and scrape reaches socket shardOf(hash); connects and short packets arrive too`, async () => {
        const addon = nativeAddon()
        /** Per socket: the hex of each hash received (announce/scrape), and the other datagrams. */
        const got: Array<{ hashes: string[], other: number }> = []
        const socks: NativeUdpHandle[] = []
        let port = 0
        for (let i = 0; i < shards; i++) {
          const seen = { hashes: [] as string[], other: 0 }
          got.push(seen)
          const h: NativeUdpHandle = new addon.UdpSocket(family, host, port, { reusePort: true }, (n: number) => {
            const data = Buffer.from(h.recvData)
            const meta = new Uint32Array(h.recvMeta)
            for (let k = 0; k < n; k++) {
              const len = meta[k * addon.META_SIZE / 4]
              const d = data.subarray(k * addon.SLOT_SIZE, k * addon.SLOT_SIZE + len)
              const action = len >= 12 ? d.readUInt32BE(8) : -1
              if (len >= 36 && (action === 1 || action === 2)) seen.hashes.push(d.toString('hex', 16, 36))
              else seen.other++
            }
            return 0
          })
          socks.push(h)
          port = h.address()[1]
        }
        try {
          addon.steerReuseport(socks[0], shards)
          const client = dgram.createSocket(family === 4 ? 'udp4' : 'udp6')
          await new Promise<void>(resolve => client.bind(0, host, resolve))
          const sent: string[] = []
          let others = 0
          const send = (p: Buffer): Promise<void> => new Promise((resolve, reject) => client.send(p, port, host, err => err == null ? resolve() : reject(err)))
          for (let i = 0; i < 60; i++) {
            const h = hashOf(i)
            sent.push(h.toString('hex'))
            // Announces, and scrapes of 1 and 3 hashes (steered by the first).
            await send(i % 3 === 0 ? packet(1, [h]) : i % 3 === 1 ? packet(2, [h]) : packet(2, [h, hashOf(i + 1000), hashOf(i + 2000)]))
            if (i % 10 === 0) {
              // A connect, an announce too short to hold a hash, an unknown action.
              await send(packet(0, [])); await send(packet(1, [], 30)); await send(packet(7, [h], 98))
              others += 3
            }
          }
          const total = (): number => got.reduce((a, g) => a + g.hashes.length + g.other, 0)
          assert.ok(await waitFor(() => total() === sent.length + others, 5000), `received ${total()} of ${sent.length + others}`)
          client.close()
          for (let s = 0; s < shards; s++) {
            const want = sent.filter(hex => shardOf(Buffer.from(hex, 'hex').toString('latin1'), shards) === s).sort()
            assert.deepEqual([...got[s].hashes].sort(), want, `socket ${s}`)
            assert.ok(want.length > 0, `the sample reaches shard ${s}`)
          }
          assert.equal(got.reduce((a, g) => a + g.other, 0), others)
        } finally {
          for (const s of socks) s.close()
        }
      })
    }
  }

  it('refuses a shard count out of range and an object that is not a socket', () => {
    const addon = nativeAddon()
    assert.ok(addon !== undefined)
    const h = new addon.UdpSocket(4, '127.0.0.1', 0, { reusePort: true }, () => 0)
    try {
      assert.throws(() => addon.steerReuseport(h, 0), { name: 'RangeError', message: 'shards must be an integer 1-65536' })
      assert.throws(() => addon.steerReuseport({} as NativeUdpHandle, 2), { name: 'TypeError', message: 'not a UdpSocket' })
    } finally { h.close() }
    // A socket without SO_REUSEPORT has no group to steer: the kernel says so.
    const plain = new addon.UdpSocket(4, '127.0.0.1', 0, {}, () => 0)
    try {
      assert.throws(() => addon.steerReuseport(plain, 2), { code: 'EINVAL', syscall: 'setsockopt' })
    } finally { plain.close() }
    assert.throws(() => addon.steerReuseport(plain, 2), { code: 'EBADF' })
  })
})

describe('shardOf', () => {
  it('is the documented fold: XOR of the big-endian words, times 0x9E3779B1, top 16 bits, mod shards', () => {
    const h = Buffer.from('0102030405060708090a0b0c0d0e0f1011121314', 'hex')
    const x = (0x01020304 ^ 0x05060708 ^ 0x090a0b0c ^ 0x0d0e0f10 ^ 0x11121314) >>> 0
    const top = Number((BigInt(x) * 0x9E3779B1n) % 2n ** 32n >> 16n)
    for (const n of [1, 2, 3, 7]) assert.equal(shardOf(h.toString('latin1'), n), top % n)
    assert.equal(shardOf(h.toString('latin1'), 1), 0)
  })
})

describe('WorkerPool: UDP steering', () => {
  it(NATIVE ? 'with the addon, 2 workers on SO_REUSEPORT steer UDP by info hash' : 'without the addon, the pool does not steer (shared descriptors)', async () => {
    const pool = new WorkerPool({ workers: 2, server: { http: false, ws: false } })
    try {
      await withTimeout(new Promise<void>((resolve, reject) => {
        pool.once('error', reject)
        pool.listen(0, { udp: '127.0.0.1', udp6: '::1' }, () => resolve())
      }), 20000, 'pool listening')
      assert.equal(pool.sockets, NATIVE ? 'reuseport' : 'shared-fd')
      assert.equal(pool.udpSteered, NATIVE)
    } finally {
      await new Promise<void>(resolve => pool.close(resolve))
    }
  })
})
