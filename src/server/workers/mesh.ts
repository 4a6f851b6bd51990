import { Buffer } from 'node:buffer'
import { WORKER_OVERFLOW_MAX, WORKER_RING_BYTES } from '../../constants.js'

/**
 * Message passing between worker threads through shared memory: one single-producer,
 * single-consumer byte ring per ordered pair of nodes (so no locks), and one doorbell word per
 * node. A writer appends length-prefixed messages and, once per event-loop turn, rings the
 * reader's doorbell (Atomics.notify only when the reader sleeps); a reader woken by
 * Atomics.waitAsync drains every inbound ring. No postMessage, no structured clone, no copy
 * beyond the bytes of each message.
 */

/** Shared memory of a mesh, made once by the main thread and handed to every node. */
export interface MeshLayout {
  nodes: number
  /** Int32 words: doorbells, sleeping flags, then COUNT_SLOTS counters per node. */
  control: SharedArrayBuffer
  /** Ring from node `i` to node `j` at `i * nodes + j` (null on the diagonal). */
  rings: Array<SharedArrayBuffer | null>
}

/**
 * Counters each node publishes: its shard's (torrents, retired, peers, seeders, leechers), then
 * its part of the unique-peer statistics (PEER_STAT_SLOTS, from PEER_STAT_AT).
 */
export const PEER_STAT_AT = 5
/** PeerStats.writeCounters' six: all, seeder only, leecher only, both, IPv4, IPv6. */
export const PEER_STAT_SLOTS = 6
export const COUNT_SLOTS = PEER_STAT_AT + PEER_STAT_SLOTS

// Ring buffer: header (head and tail on separate cache lines), then the data.
const HEAD = 0
const TAIL = 16
const HEADER_BYTES = 128
/** Length word of a message that does not fit before the end: the reader skips to offset 0. */
const WRAP = -1

export function createMeshLayout (nodes: number, ringBytes: number = WORKER_RING_BYTES): MeshLayout {
  if (!Number.isInteger(nodes) || nodes < 1) throw new RangeError(`nodes must be a positive integer, got ${nodes}`)
  if (ringBytes < 1024 || (ringBytes & (ringBytes - 1)) !== 0) throw new RangeError('ringBytes must be a power of two ≥ 1024')
  const rings: Array<SharedArrayBuffer | null> = []
  for (let i = 0; i < nodes; i++) {
    for (let j = 0; j < nodes; j++) rings.push(i === j ? null : new SharedArrayBuffer(HEADER_BYTES + ringBytes))
  }
  return { nodes, control: new SharedArrayBuffer(4 * nodes * (2 + COUNT_SLOTS)), rings }
}

/** Atomics.waitAsync (Node 16+; not in the ES2022 lib typings this project compiles against). */
const waitAsync = (Atomics as unknown as {
  waitAsync: (a: Int32Array, index: number, value: number) => { async: boolean, value: Promise<string> | string }
}).waitAsync

class Ring {
  readonly header: Int32Array
  readonly words: Int32Array
  readonly bytes: Buffer
  readonly capacity: number
  readonly mask: number
  constructor (sab: SharedArrayBuffer) {
    this.header = new Int32Array(sab, 0, HEADER_BYTES / 4)
    this.capacity = sab.byteLength - HEADER_BYTES
    this.mask = this.capacity - 1
    this.words = new Int32Array(sab, HEADER_BYTES, this.capacity / 4)
    this.bytes = Buffer.from(sab, HEADER_BYTES, this.capacity)
  }

  /** Appends one message; false when there is not room for it now. */
  write (src: Buffer, len: number): boolean {
    const h = this.header
    let head = Atomics.load(h, HEAD)
    const tail = Atomics.load(h, TAIL)
    const need = 4 + ((len + 3) & ~3)
    let off = head & this.mask
    const pad = off + need > this.capacity ? this.capacity - off : 0
    if (((head - tail) | 0) + pad + need > this.capacity) return false
    if (pad > 0) {
      this.words[off >> 2] = WRAP
      head = (head + pad) | 0
      off = 0
    }
    this.words[off >> 2] = len
    src.copy(this.bytes, off + 4, 0, len)
    // Publishes the bytes: the reader's Atomics.load of head sees them.
    Atomics.store(h, HEAD, (head + need) | 0)
    return true
  }

  hasData (): boolean {
    return Atomics.load(this.header, HEAD) !== Atomics.load(this.header, TAIL)
  }
}

/** Builds one message in a reusable buffer (grown as needed), then `Mesh.send` copies it. */
export class Writer {
  buf = Buffer.allocUnsafe(4096)
  len = 0

  reset (): this { this.len = 0; return this }

  private room (n: number): void {
    if (this.len + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n))
    this.buf.copy(next, 0, 0, this.len)
    this.buf = next
  }

  u8 (v: number): this { this.room(1); this.buf[this.len++] = v; return this }
  u32 (v: number): this { this.room(4); this.buf.writeUInt32LE(v >>> 0, this.len); this.len += 4; return this }
  f64 (v: number): this { this.room(8); this.buf.writeDoubleLE(v, this.len); this.len += 8; return this }
  /** A binary string of at most 255 chars (ids, addresses, offer ids). */
  bin8 (s: string): this {
    const n = s.length
    if (n > 255) throw new RangeError('binary string longer than 255')
    this.room(1 + n)
    const b = this.buf
    let o = this.len
    b[o++] = n
    // Ids and addresses (6 to 20 chars) by hand: Buffer.write is a call into C++, ~3× dearer for these.
    if (n <= 32) for (let i = 0; i < n; i++) b[o + i] = s.charCodeAt(i)
    else b.write(s, o, 'latin1')
    this.len = o + n
    return this
  }

  /** Any text, as UTF-8 with a 32-bit length. */
  utf8 (s: string): this {
    this.room(4 + s.length * 3)
    const n = this.buf.write(s, this.len + 4, 'utf8')
    this.buf.writeUInt32LE(n, this.len)
    this.len += 4 + n
    return this
  }
}

/** Reads one message in place (in the ring's shared memory). */
export class Reader {
  buf: Buffer = Buffer.alloc(0)
  pos = 0
  end = 0

  at (buf: Buffer, start: number, end: number): this { this.buf = buf; this.pos = start; this.end = end; return this }

  private need (n: number): number {
    const p = this.pos
    if (p + n > this.end) throw new RangeError('truncated worker message')
    this.pos = p + n
    return p
  }

  u8 (): number { return this.buf[this.need(1)] }
  u32 (): number { return this.buf.readUInt32LE(this.need(4)) }
  f64 (): number { return this.buf.readDoubleLE(this.need(8)) }
  bin8 (): string {
    const n = this.u8()
    const p = this.need(n)
    const b = this.buf
    // The common sizes (IPv4 peer address, ids and info hashes) without a call into C++.
    if (n === 6) return String.fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5])
    if (n === 20) {
      return String.fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5], b[p + 6], b[p + 7], b[p + 8], b[p + 9],
        b[p + 10], b[p + 11], b[p + 12], b[p + 13], b[p + 14], b[p + 15], b[p + 16], b[p + 17], b[p + 18], b[p + 19])
    }
    return b.toString('latin1', p, p + n)
  }

  utf8 (): string {
    const n = this.u32()
    const p = this.need(n)
    return this.buf.toString('utf8', p, p + n)
  }
}

/** Handles one message from node `from`; the reader is positioned at its first byte. */
export type MessageHandler = (from: number, msg: Reader) => void

/** Which way a message goes matters when a ring is full (see `send`). */
export const MSG_REPLY = 0
export const MSG_DROPPABLE = 1

/**
 * One node's end of the mesh. `send` never blocks: a message that finds its ring full waits in a
 * local queue (kept in order) that is flushed as the reader makes room.
 */
export class Mesh {
  readonly node: number
  readonly nodes: number
  readonly control: Int32Array
  private readonly out: Array<Ring | null> = []
  private readonly in: Array<Ring | null> = []
  private readonly overflow: Buffer[][] = []
  private readonly dirty: boolean[] = []
  private flushScheduled = false
  private retryTimer: NodeJS.Timeout | undefined
  private handler: MessageHandler = () => {}
  private readonly reader = new Reader()
  private draining = false
  private closed = false
  private started = false

  constructor (layout: MeshLayout, node: number, private readonly overflowMax: number = WORKER_OVERFLOW_MAX) {
    if (!Number.isInteger(node) || node < 0 || node >= layout.nodes) throw new RangeError(`node ${node} outside the mesh`)
    this.node = node
    this.nodes = layout.nodes
    this.control = new Int32Array(layout.control)
    for (let j = 0; j < layout.nodes; j++) {
      const o = layout.rings[node * layout.nodes + j]
      const i = layout.rings[j * layout.nodes + node]
      this.out.push(o === null ? null : new Ring(o))
      this.in.push(i === null ? null : new Ring(i))
      this.overflow.push([])
      this.dirty.push(false)
    }
  }

  /** Starts receiving: `handler` runs for every message, in order per sender. */
  start (handler: MessageHandler): void {
    this.handler = handler
    if (this.started) return
    this.started = true
    this.arm()
  }

  /**
   * Queues the message built in `w` for node `to`. With the ring full it waits in a local queue;
   * with that queue at its bound, a droppable message (a request or signal) is refused (false),
   * while a reply is always kept: replies are bounded by the requests in flight, and a lost
   * reply would leave a request hanging.
   */
  send (to: number, w: Writer, kind: number): boolean {
    if (this.closed || w.len > this.maxMessage) return false
    const q = this.overflow[to]
    if (q.length === 0 && this.out[to]!.write(w.buf, w.len)) {
      this.ring(to)
      return true
    }
    if (kind === MSG_DROPPABLE && q.length >= this.overflowMax) return false
    q.push(Buffer.from(w.buf.subarray(0, w.len)))
    this.scheduleRetry()
    return true
  }

  /** Largest message a ring can carry (a bigger one could never be written). */
  get maxMessage (): number {
    for (const r of this.out) if (r !== null) return r.capacity - 8
    return 0
  }

  /** Messages queued here because their ring was full. */
  get backlog (): number {
    let n = 0
    for (const q of this.overflow) n += q.length
    return n
  }

  /**
   * Blocks this thread (Atomics.wait) until `done()` holds, handling inbound messages meanwhile
   * so two nodes waiting on each other cannot deadlock. For rare synchronous reads only.
   * Returns false on timeout.
   */
  waitUntil (done: () => boolean, timeoutMs: number): boolean {
    if (this.draining) throw new Error('a synchronous worker read from inside a message handler')
    const deadline = Date.now() + timeoutMs
    const bell = this.node
    const c = this.control
    this.flushNow()
    for (;;) {
      // Asleep for writers, so they notify: this thread may have been polling (flag 0). Left
      // set afterwards: at worst one needless notify.
      Atomics.store(c, this.nodes + this.node, 1)
      const v = Atomics.load(c, bell)
      this.drain()
      if (done()) return true
      this.flushNow()
      const left = deadline - Date.now()
      if (left <= 0) return false
      Atomics.wait(c, bell, v, Math.min(left, 50))
    }
  }

  close (): void {
    this.closed = true
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    for (const q of this.overflow) q.length = 0
  }

  private ring (to: number): void {
    this.dirty[to] = true
    if (this.flushScheduled) return
    this.flushScheduled = true
    // Once per event-loop turn: every message written during this turn shares one wake-up.
    setImmediate(this.flush)
  }

  private readonly flush = (): void => {
    this.flushScheduled = false
    this.flushNow()
  }

  private flushNow (): void {
    for (let to = 0; to < this.nodes; to++) {
      const q = this.overflow[to]
      if (q.length > 0) {
        const ring = this.out[to]!
        let i = 0
        while (i < q.length && ring.write(q[i], q[i].length)) i++
        if (i > 0) { q.splice(0, i); this.dirty[to] = true }
        if (q.length > 0) this.scheduleRetry()
      }
      if (!this.dirty[to]) continue
      this.dirty[to] = false
      const c = this.control
      Atomics.add(c, to, 1)
      // A reader that is not asleep drains before it sleeps again (it re-checks its rings).
      if (Atomics.load(c, this.nodes + to) !== 0) Atomics.notify(c, to)
    }
  }

  private scheduleRetry (): void {
    if (this.retryTimer !== undefined || this.closed) return
    // The reader frees room as it drains; check back shortly rather than spin.
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.flushNow() }, 1)
  }

  private hasInput (): boolean {
    for (const r of this.in) if (r !== null && r.hasData()) return true
    return false
  }

  /** Sleeps until the doorbell rings (or input is already there), then drains. */
  private arm (): void {
    if (this.closed) return
    const c = this.control
    const sleeping = this.nodes + this.node
    Atomics.store(c, sleeping, 1)
    const v = Atomics.load(c, this.node)
    if (this.hasInput()) {
      Atomics.store(c, sleeping, 0)
      setImmediate(this.wake)
      return
    }
    const r = waitAsync(c, this.node, v)
    if (r.async) void (r.value as Promise<string>).then(this.wake)
    else setImmediate(this.wake)
  }

  private readonly wake = (): void => {
    Atomics.store(this.control, this.nodes + this.node, 0)
    if (this.closed) return
    // While messages keep coming, look again next turn instead of sleeping: writers skip the
    // notify (a cross-thread wake-up) for a reader that is awake. A turn with nothing: sleep.
    if (this.drain() > 0) setImmediate(this.wake)
    else this.arm()
  }

  /** Handles every message waiting in every inbound ring; returns how many. */
  private drain (): number {
    if (this.draining) return 0
    this.draining = true
    let handled = 0
    try {
      for (let from = 0; from < this.nodes; from++) {
        const ring = this.in[from]
        if (ring === null) continue
        const h = ring.header
        let tail = Atomics.load(h, TAIL)
        let head = Atomics.load(h, HEAD)
        while (tail !== head) {
          let off = tail & ring.mask
          let len = ring.words[off >> 2]
          if (len === WRAP) {
            tail = (tail + ring.capacity - off) | 0
            off = 0
            len = ring.words[0]
          }
          const start = off + 4
          try {
            this.handler(from, this.reader.at(ring.bytes, start, start + len))
          } catch (err) {
            // A message this node cannot handle must not stop the others; the handler answers
            // requests it can decode, so this is a bug, reported once per message.
            process.emitWarning(`worker message from node ${from}: ${(err as Error).message}`)
          }
          handled++
          tail = (tail + 4 + ((len + 3) & ~3)) | 0
          // Free the room at once: a writer waiting on a full ring can go on.
          Atomics.store(h, TAIL, tail)
          if (tail === head) head = Atomics.load(h, HEAD)
        }
      }
    } finally {
      this.draining = false
    }
    return handled
  }
}
