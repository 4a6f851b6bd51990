// Fuzzing our RFC 6455 server side (src/server/frontends/ws-socket.ts) over real TCP sockets:
// seeded random byte streams after a valid handshake — valid announces mixed with garbage text,
// flipped bits, lying lengths, stray control and continuation frames, raw bytes — written in
// random pieces, then the client vanishes in one of three ways. Afterwards the server must have
// emitted no 'error', hold no peer of any fuzzing socket, and answer a well-behaved client exactly.
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { hex, id20, REPLY_TIMEOUT_MS, startServer, waitFor, withTimeout, wsClient } from '../../helpers/tracker-clients.js'
import type { StartedServer } from '../../helpers/tracker-clients.js'

/** Cases, how many run at once, and a bound on the whole run. */
const CASES = 1500
const PARALLEL = 10
const BOUND_MS = 90_000
const SEED = Number(process.env.WS_FUZZ_SEED ?? 0x5eed)
/** The swarms the fuzzing announces join, so that leftovers would show. */
const HASHES = Array.from({ length: 8 }, (_, i) => id20(9000 + i))

/** xorshift32: the same seed gives the same cases. */
function rng (seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    return x
  }
}

class Gen {
  private readonly next: () => number
  constructor (seed: number) { this.next = rng(seed) }
  int (n: number): number { return this.next() % n }
  bytes (n: number): Buffer {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff
    return b
  }

  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)] }

  /** A client frame, masked with a key from this generator unless `mask` is false. */
  frame (opcode: number, payload: Buffer, o: { fin?: boolean, mask?: boolean, rsv?: number, len?: bigint } = {}): Buffer {
    const n = o.len ?? BigInt(payload.length)
    const mask = o.mask ?? true
    const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | (opcode & 0x0f)]
    const m = mask ? 0x80 : 0
    if (n < 126n) head.push(m | Number(n))
    else if (n < 65536n) head.push(m | 126, Number(n >> 8n), Number(n & 0xffn))
    else {
      const ext = Buffer.alloc(8)
      ext.writeBigUInt64BE(n)
      head.push(m | 127, ...ext)
    }
    if (!mask) return Buffer.concat([Buffer.from(head), payload])
    const key = this.bytes(4)
    const body = Buffer.from(payload)
    for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3]
    return Buffer.concat([Buffer.from(head), key, body])
  }

  sdp (): string {
    return this.pick(['v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n', 'é\u0000"\\/\u2028 ☃ 😀', '', 'x'.repeat(this.int(3000))])
  }

  /** A WebTorrent announce; `valid`: one the server must accept (a 'started' with a good `left`). */
  announce (valid = false): string {
    const offers = Array.from({ length: this.int(4) }, () => ({ offer: { type: 'offer', sdp: this.sdp() }, offer_id: this.bytes(20).toString('latin1') }))
    return JSON.stringify({
      action: 'announce',
      info_hash: this.pick(HASHES),
      peer_id: this.bytes(20).toString('latin1'),
      numwant: this.int(4),
      uploaded: 0,
      downloaded: 0,
      left: valid ? this.pick([0, 1]) : this.pick([0, 1, null, -1, 'x']),
      event: valid ? 'started' : this.pick(['started', 'completed', 'stopped', undefined, 'bogus']),
      offers
    })
  }

  junkJson (): string {
    return this.pick([
      '{"action":"announce"}', '{"action":"scrape","info_hash":[1,2,{}]}', '[]', 'null', '{"action":"announce","info_hash":"short"}',
      '{"action":"announce","info_hash":' + JSON.stringify(this.pick(HASHES)) + ',"peer_id":7}',
      '{"answer":{"sdp":1},"to_peer_id":"' + 'a'.repeat(20) + '","offer_id":"' + 'b'.repeat(20) + '","action":"announce"}',
      '['.repeat(5000), '{"a":' + '1'.repeat(400) + '}', '"\\ud800"', '{"action":"announce","__proto__":{"x":1}}'
    ])
  }

  /** One piece of a hostile stream. */
  piece (): Buffer {
    switch (this.int(9)) {
      case 0: case 1: return this.frame(1, Buffer.from(this.announce()))
      case 2: return this.frame(1, Buffer.from(this.junkJson()))
      case 3: return this.frame(this.pick([1, 2]), this.bytes(this.int(200)))
      case 4: { // a valid frame with a few bits flipped, anywhere
        const f = this.frame(1, Buffer.from(this.announce()))
        for (let k = 1 + this.int(4); k > 0; k--) f[this.int(Math.min(f.length, 24))] ^= 1 << this.int(8)
        return f
      }
      case 5: return this.bytes(1 + this.int(40))
      case 6: // control frames, reserved opcodes, reserved bits, unmasked frames
        return this.frame(this.pick([8, 9, 10, 3, 7, 11, 15]), this.bytes(this.pick([0, 2, 3, 125, 126, 300])),
          { rsv: this.pick([0, 0, 1, 4]), mask: this.int(5) !== 0 })
      case 7: // fragments: starts, continuations, in and out of order
        return Buffer.concat(Array.from({ length: 1 + this.int(4) }, () =>
          this.frame(this.pick([0, 1, 2]), Buffer.from(this.announce().slice(0, 50)), { fin: this.int(3) === 0 })))
      default: // a length far beyond what follows
        return this.frame(1, this.bytes(this.int(30)), { len: this.pick([126n, 70000n, 1n << 40n, (1n << 63n) - 1n, 1n << 63n]) })
    }
  }
}

function handshake (port: number, key: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  socket.on('error', () => { /* a reset by the server is an expected end */ })
  return withTimeout(new Promise<net.Socket>((resolve, reject) => {
    let head = ''
    const onData = (d: Buffer): void => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      socket.resume() // whatever the server sends from now on is read and dropped
      if (head.startsWith('HTTP/1.1 101')) resolve(socket)
      else reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`))
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error('closed during the handshake')))
    socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  }), REPLY_TIMEOUT_MS, 'handshake')
}

async function fuzzCase (port: number, g: Gen): Promise<void> {
  const socket = await handshake(port, g.bytes(16).toString('base64'))
  const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
  // A few valid announces first (peers that must leave again), then the hostile pieces.
  const valid = Array.from({ length: g.int(3) }, () => g.frame(1, Buffer.from(g.announce(true))))
  const stream = Buffer.concat([...valid, ...Array.from({ length: 1 + g.int(6) }, () => g.piece())])
  for (let at = 0; at < stream.length && !socket.destroyed;) {
    const n = 1 + g.int(g.int(4) === 0 ? 8 : 2000)
    socket.write(stream.subarray(at, at + n))
    at += n
    if (g.int(4) === 0) await new Promise(resolve => setImmediate(resolve))
  }
  switch (g.int(3)) {
    case 0: socket.destroy(); break // vanishes (RST or plain close, no close frame)
    case 1: socket.end(); break // FIN without a close frame
    default: // stays until the server ends it, or gives up after a moment
      await Promise.race([closed, new Promise(resolve => setTimeout(resolve, 200))])
      socket.destroy()
  }
  await closed
}

describe('WS framing fuzz (seeded; WS_FUZZ_SEED picks another run)', () => {
  let s: StartedServer
  const errors: Error[] = []
  before(async () => {
    s = await startServer({ udp: false })
    s.server.on('error', (err: Error) => { errors.push(err) })
  })
  after(async () => { await s.close() })

  it(`${CASES} hostile streams: no 'error', no peer left behind, a good client still answered exactly`, async () => {
    const started = Date.now()
    let nextCase = 0
    let ran = 0
    let starts = 0
    s.server.on('start', () => { starts++ })
    const worker = async (): Promise<void> => {
      while (nextCase < CASES && Date.now() - started < BOUND_MS) {
        const c = nextCase++
        await fuzzCase(s.port, new Gen(SEED + c * 7919)).catch((err: Error) => {
          throw new Error(`case ${c} (WS_FUZZ_SEED=${SEED}): ${err.message}`)
        })
        ran++
      }
    }
    await Promise.all(Array.from({ length: PARALLEL }, worker))
    assert.equal(ran, CASES, `ran ${ran} of ${CASES} cases within ${BOUND_MS} ms`)
    assert.deepEqual(errors.map(e => e.message), [], "the server's 'error' events")
    // The streams reached both layers: peers joined swarms, frames and messages were refused.
    const warned = s.warnings.map(w => w.message)
    assert.ok(starts >= CASES / 4, `only ${starts} peers started`)
    assert.ok(warned.some(m => m.startsWith('WebSocket closed (1002)')), 'no protocol error closed a socket')
    assert.ok(warned.includes('invalid JSON'), 'no message was refused as invalid JSON')
    // Every fuzzing socket is gone, so every swarm it joined is empty again.
    const empty = (): boolean => HASHES.every(h => {
      const t = s.server.torrents[hex(h)]
      return t === undefined || (t.complete === 0 && t.incomplete === 0)
    })
    assert.ok(await waitFor(empty, REPLY_TIMEOUT_MS), `a fuzzing peer stayed: ${JSON.stringify(HASHES.map(h => s.server.torrents[hex(h)]))}`)

    const good = id20(8999)
    const c = await wsClient(s.ws)
    try {
      c.send({ action: 'announce', info_hash: good, peer_id: id20(1, 'good'), numwant: 5, uploaded: 0, downloaded: 0, left: 0, event: 'started', offers: [] })
      const r = await c.next()
      assert.deepEqual({ action: r.action, complete: r.complete, incomplete: r.incomplete }, { action: 'announce', complete: 1, incomplete: 0 })
      c.send({ action: 'scrape', info_hash: [good, HASHES[0]] })
      const sc = await c.next()
      const files = sc.files as Record<string, { complete: number, incomplete: number, downloaded: number }>
      assert.deepEqual(files[good], { complete: 1, incomplete: 0, downloaded: 0 })
      // The fuzz's own 'completed' announces may have counted downloads there; its peers are gone.
      assert.deepEqual({ ...files[HASHES[0]], downloaded: 0 }, { complete: 0, incomplete: 0, downloaded: 0 })
      assert.ok(Number.isInteger(files[HASHES[0]].downloaded) && files[HASHES[0]].downloaded >= 0)
    } finally {
      await c.close()
    }
  })
})
