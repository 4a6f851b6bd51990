import { lookup } from 'node:dns'
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import type { AddressInfo } from 'node:net'
import { UDP_MAX_PACKET } from '../../constants.js'
import { ipFromBytes } from '../../protocol/common/address.js'
import { STAT_NAMES } from '../native/loader.js'
import type { NativeAddon, NativeUdpHandle, NativeUdpOptions } from '../native/loader.js'
import type { UdpFrontend, UdpReplyPort } from './udp.js'

/** Meta record of a datagram, in 32-bit words (see native/udp_batch.c): length, port | family << 16, address. */
const META_WORDS = 8
const W_LENGTH = 0
const W_ADDR = 2
const B_FAMILY = 6
const B_ADDR = 8

/** A requester: a slot of the current batch, or its meta record kept past the batch. */
type BatchPeer = number | Uint32Array

/**
 * The UDP tracker on the native addon: a batch of up to BATCH datagrams per system call, each
 * decoded from the shared receive slab and handed to the same `UdpFrontend` the dgram path uses;
 * replies go into the shared send slab and leave in one sendmmsg per batch. Replies that wait on
 * a promise (async filter or store) are written when it settles and flushed at the end of that
 * microtask turn.
 *
 * To users it is `server.udp4` / `server.udp6`: the node:dgram Socket methods a tracker's users
 * rely on — bind (via listen), address(), close(), ref(), unref(), 'listening'/'error'/'close'.
 */
export class BatchUdpSocket extends EventEmitter {
  readonly type: 'udp4' | 'udp6'
  private handle: NativeUdpHandle | undefined
  private closed = false
  private binding = false
  private refed = true
  private recvData = new Uint8Array(0)
  private recvMeta = new Uint8Array(0)
  private recvMeta32 = new Uint32Array(0)
  private sendData = new Uint8Array(0)
  private sendMeta32 = new Uint32Array(0)
  /** Reply slots filled and not yet handed to the addon. */
  private out = 0
  private inBatch = false
  private flushQueued = false
  /** The last source address seen, so a burst from one address formats its text once. */
  private lastFamily = 0
  private readonly lastWords = new Uint32Array(4)
  private lastText = ''
  private readonly replyPort: UdpReplyPort<BatchPeer>
  private readonly flushSoon = (): void => this.flush()

  constructor (
    private readonly addon: NativeAddon, type: 'udp4' | 'udp6', private readonly frontend: UdpFrontend,
    private readonly opts: NativeUdpOptions = {}
  ) {
    super()
    this.type = type
    const self = this
    this.replyPort = {
      send: (peer, packet) => this.reply(peer, packet),
      keep: peer => this.keep(peer),
      open: (_peer, max) => this.open(max),
      get buf () { return self.sendData },
      commit: (peer, len) => this.commit(peer, len)
    }
  }

  /** Binds and starts reading; 'listening' or 'error' follows (as with dgram). */
  bind (port = 0, address?: string): this {
    if (this.handle !== undefined || this.binding) throw new Error('Socket is already bound')
    if (this.closed) throw new Error('Not running')
    this.binding = true
    const family = this.type === 'udp4' ? 4 : 6
    const host = address === undefined || address === '' ? (family === 4 ? '0.0.0.0' : '::') : address
    const open = (ip: string): void => {
      this.binding = false
      if (this.closed) return
      try {
        this.handle = new this.addon.UdpSocket(family, ip, port, this.opts, (n: number) => this.onBatch(n))
      } catch (err) {
        this.emit('error', err)
        return
      }
      this.attach(this.handle)
      this.emit('listening')
    }
    if (isIP(host) !== 0) process.nextTick(open, host)
    else {
      lookup(host, { family }, (err, ip) => {
        if (err !== null) { this.binding = false; this.emit('error', err) } else open(ip)
      })
    }
    return this
  }

  address (): AddressInfo {
    if (this.handle === undefined || this.closed) {
      throw Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' })
    }
    const [address, port] = this.handle.address()
    return { address, family: this.type === 'udp4' ? 'IPv4' : 'IPv6', port }
  }

  close (cb?: () => void): this {
    if (this.closed) {
      if (cb !== undefined) process.nextTick(cb)
      return this
    }
    this.closed = true
    this.handle?.close()
    process.nextTick(() => { this.emit('close'); cb?.() })
    return this
  }

  ref (): this {
    this.refed = true
    if (!this.closed) this.handle?.ref()
    return this
  }

  unref (): this {
    this.refed = false
    if (!this.closed) this.handle?.unref()
    return this
  }

  /** The addon's socket once bound (worker threads attach their SO_REUSEPORT steering to it). */
  get native (): NativeUdpHandle | undefined {
    return this.closed ? undefined : this.handle
  }

  /** The addon's counters (datagrams received and sent, system calls, queued/dropped replies). */
  stats (): Record<typeof STAT_NAMES[number], number> {
    const values = this.handle?.stats() ?? []
    const out = {} as Record<typeof STAT_NAMES[number], number>
    STAT_NAMES.forEach((name, i) => { out[name] = values[i] ?? 0 })
    return out
  }

  private attach (h: NativeUdpHandle): void {
    this.recvData = new Uint8Array(h.recvData)
    this.recvMeta = new Uint8Array(h.recvMeta)
    this.recvMeta32 = new Uint32Array(h.recvMeta)
    this.sendData = new Uint8Array(h.sendData)
    this.sendMeta32 = new Uint32Array(h.sendMeta)
    if (!this.refed) h.unref()
  }

  private onBatch (n: number): number {
    const { frontend, recvMeta32 } = this
    const slot = this.addon.SLOT_SIZE
    this.inBatch = true
    try {
      for (let i = 0; i < n; i++) {
        const len = recvMeta32[i * META_WORDS + W_LENGTH]
        if (len > UDP_MAX_PACKET || len > slot) {
          frontend.oversized()
          continue
        }
        frontend.onPacket(this.replyPort, this.recvData, i * slot, len, this.sourceText(i), i)
      }
    } finally {
      this.inBatch = false
      frontend.endBatch()
      this.flush()
    }
    return 0
  }

  /** Canonical text of datagram i's source address. */
  private sourceText (i: number): string {
    const m = this.recvMeta32
    const w = i * META_WORDS + W_ADDR
    const family = this.recvMeta[i * this.addon.META_SIZE + B_FAMILY]
    const last = this.lastWords
    if (family === this.lastFamily && m[w] === last[0] &&
      (family === 4 || (m[w + 1] === last[1] && m[w + 2] === last[2] && m[w + 3] === last[3]))) {
      return this.lastText
    }
    this.lastFamily = family
    last[0] = m[w]
    last[1] = m[w + 1]
    last[2] = m[w + 2]
    last[3] = m[w + 3]
    this.lastText = ipFromBytes(this.recvMeta, i * this.addon.META_SIZE + B_ADDR, family === 4 ? 4 : 6)
    return this.lastText
  }

  private keep (peer: BatchPeer): BatchPeer {
    if (typeof peer !== 'number') return peer
    const o = peer * META_WORDS
    return this.recvMeta32.slice(o, o + META_WORDS)
  }

  private reply (peer: BatchPeer, packet: Uint8Array): void {
    if (this.closed || this.handle === undefined) return
    // Only an error reply with a very long message (a filter's own text) can exceed a slot: cut it.
    const len = Math.min(packet.length, this.addon.SLOT_SIZE)
    this.sendData.set(len === packet.length ? packet : packet.subarray(0, len), this.out * this.addon.SLOT_SIZE)
    this.commit(peer, len)
  }

  /** The offset of the next free reply slot, for a reply of up to `max` bytes written in place (-1: none). */
  private open (max: number): number {
    if (max > this.addon.SLOT_SIZE || this.closed || this.handle === undefined) return -1
    return this.out * this.addon.SLOT_SIZE
  }

  /** Sends the reply of `len` bytes in the next free slot to `peer`. */
  private commit (peer: BatchPeer, len: number): void {
    if (this.closed || this.handle === undefined) return
    const slot = this.out++
    const d = this.sendMeta32
    const o = slot * META_WORDS
    if (typeof peer === 'number') {
      const s = this.recvMeta32
      const r = peer * META_WORDS
      for (let k = 0; k < META_WORDS; k++) d[o + k] = s[r + k]
    } else {
      for (let k = 0; k < META_WORDS; k++) d[o + k] = peer[k]
    }
    d[o + W_LENGTH] = len
    if (this.out === this.addon.BATCH) this.flush()
    else if (!this.inBatch && !this.flushQueued) {
      // A reply that waited on a promise: others settle in the same microtask turn, send them together.
      this.flushQueued = true
      queueMicrotask(this.flushSoon)
    }
  }

  private flush (): void {
    this.flushQueued = false
    const n = this.out
    this.out = 0
    if (n > 0 && !this.closed) this.handle?.send(n)
  }
}
