import type { RemoteInfo, Socket } from 'node:dgram'
import {
  ID_LENGTH, UDP_ACTION_ANNOUNCE, UDP_ACTION_SCRAPE, UDP_ANNOUNCE_MIN_LENGTH, UDP_HEADER_LENGTH, UDP_MAX_PACKET,
  UDP_MAX_SCRAPE_HASHES
} from '../../constants.js'
import { internalError, TrackerError, trackerError } from '../../errors.js'
import { canonicalIp, compactAddr, formatAddr } from '../../protocol/common/address.js'
import { EVENT_COMPLETED } from '../../protocol/common/types.js'
import type { AnnounceEvent, AnnounceRequest, BinaryString } from '../../protocol/common/types.js'
import {
  binaryString20, decodeUdpRequest, encodeAnnounceResponse, encodeConnectResponse, encodeError, encodeScrapeResponse,
  udpOptionsFit, writeAnnounceResponseHeader, writeScrapeResponseHeader
} from '../../protocol/udp/codec.js'
import { isPromise } from '../core/maybe.js'
import { A_ANNOUNCE, A_CONNECT, A_INVALID, A_SCRAPE, P_UDP, R_DROPPED, R_ERROR, R_OK } from '../stats/metrics.js'
import type { Action } from '../stats/metrics.js'
import { KIND_V4, KIND_V6, scrapeCompact, WANT_V4, WANT_V6 } from '../store/store.js'
import type { StoreAnnounce, StoreAnnounceResult } from '../store/store.js'
import type { ScrapeEntry } from '../../protocol/common/types.js'
import { addressKey } from './abuse.js'
import type { AddressKey } from './abuse.js'
import { ConnectionIds } from './connection-id.js'
import { announceParams, passkeyInPath } from './context.js'
import type { FrontendContext, RequestParams } from './context.js'
import { stripZone } from './http.js'

/**
 * Where a UDP frontend's replies go. `P` names the requester: dgram's `rinfo`, or a slot of a
 * batch socket's receive slab. A slot is only valid during its batch, so a request that waits on
 * a promise `keep`s its requester first.
 */
export interface UdpReplyPort<P> {
  send: (peer: P, packet: Uint8Array) => void
  keep: (peer: P) => P
  /**
   * In-place replies, for requests answered synchronously: `open` gives the offset in `buf` where
   * a reply of up to `max` bytes may be written (-1: no room, use `send`), `commit` sends its
   * first `len` bytes. A reply opened and not committed is simply dropped.
   */
  open: (peer: P, max: number) => number
  readonly buf: Uint8Array
  commit: (peer: P, len: number) => void
}

/**
 * UDP tracker frontend (BEP 15, 41), shared by the node:dgram and the batched native transport.
 * Connection ids are stateless (a keyed MAC of the source and a time window). A packet whose id
 * does not verify gets no answer at all, so a spoofed source can never make the tracker send
 * anything but a 16-byte connect reply to a 16-byte request.
 */
export class UdpFrontend {
  readonly ids: ConnectionIds

  constructor (private readonly ctx: FrontendContext, opts: { secret?: Uint8Array } = {}) {
    this.ids = new ConnectionIds({ secret: opts.secret })
  }

  /** Requests waiting for an asynchronous filter or store: a graceful shutdown waits for their answers. */
  pending = 0
  /** Draining: new datagrams are ignored, those in flight are still answered. */
  draining = false
  private idle: (() => void) | undefined

  /** Resolves once no request is waiting for its answer (at once if none is). */
  whenIdle (): Promise<void> {
    if (this.pending === 0) return Promise.resolve()
    return new Promise(resolve => { this.idle = resolve })
  }

  private settled (): void {
    if (--this.pending === 0 && this.idle !== undefined) { const f = this.idle; this.idle = undefined; f() }
  }

  /** One datagram from a node:dgram socket. Never throws. */
  onDgram (port: UdpReplyPort<RemoteInfo>, msg: Buffer, rinfo: RemoteInfo): void {
    // One datagram per event-loop turn: user code may have run since the last one.
    this.paramsKnown = false
    if (msg.length > UDP_MAX_PACKET) return this.oversized()
    const source = canonicalIp(stripZone(rinfo.address))
    if (source === undefined) {
      if (!this.draining) this.ctx.metrics.done(P_UDP, A_INVALID, R_DROPPED, this.ctx.metrics.start())
      return
    }
    this.onMessage(port, msg, source, rinfo)
  }

  /** A datagram longer than UDP_MAX_PACKET: dropped. */
  oversized (): void {
    if (this.draining) return
    this.ctx.metrics.done(P_UDP, A_INVALID, R_DROPPED, this.ctx.metrics.start())
    this.ctx.warning(trackerError('INVALID_PACKET', 'datagram too large'))
  }

  /**
   * Handles one datagram of at most UDP_MAX_PACKET bytes from `source` (canonical IP text).
   * `msg` may be reused once this returns. Never throws.
   */
  onMessage<P> (port: UdpReplyPort<P>, msg: Uint8Array, source: string, peer: P): void {
    this.onPacket(port, msg, 0, msg.length, source, peer)
  }

  /** `onMessage` of the datagram at bytes [off, off + len) of `data` (a receive slab). */
  onPacket<P> (port: UdpReplyPort<P>, data: Uint8Array, off: number, len: number, source: string, peer: P): void {
    if (this.draining) return
    const ctx = this.ctx
    const metrics = ctx.metrics
    const t0 = metrics.start()
    const nowMs = Date.now()
    const limits = ctx.limits
    let key: AddressKey | undefined
    if (limits.udp !== undefined || limits.udpBadIds !== undefined) {
      // Dropped without a word: an answer would let a spoofed source aim our replies at a victim.
      key = addressKey(source)
      if (key === undefined) return metrics.done(P_UDP, A_INVALID, R_DROPPED, t0)
      if (limits.udpBadIds !== undefined && limits.udpBadIds.banned(key, nowMs)) return metrics.done(P_UDP, A_INVALID, R_DROPPED, t0)
      if (limits.udp !== undefined && !limits.udp.allow(key, nowMs)) return metrics.done(P_UDP, A_INVALID, R_DROPPED, t0)
    }
    // The common requests straight from the bytes into the reply; anything unusual (an error to
    // answer, a filter, listeners, passkeys, an async store) takes the general path below.
    if (len >= UDP_HEADER_LENGTH && this.ctx.core.compact && (data[off + 8] | data[off + 9] | data[off + 10]) === 0) {
      const action = data[off + 11]
      if (action === UDP_ACTION_ANNOUNCE ? this.fastAnnounce(port, data, off, len, source, peer, nowMs, t0)
        : action === UDP_ACTION_SCRAPE && this.fastScrape(port, data, off, len, source, peer, nowMs, t0)) return
    }
    this.general(port, off === 0 && len === data.length ? data : data.subarray(off, off + len), source, peer, nowMs, t0, key)
  }

  /** The last source whose compact address bytes are in `srcBytes` (4 or 16 of them: `srcLength`). */
  private srcText: string | undefined = undefined
  private readonly srcBytes = new Uint8Array(16)
  private srcLength = 0
  /** Reused by every fast announce: the store keeps nothing of it. */
  private readonly storeAnnounce: StoreAnnounce = {
    infoHash: '', key: '', peerId: '', addr: '', kind: KIND_V4, conn: 0, event: 0, seeder: false, numwant: 0, want: WANT_V4
  }

  private readonly scrapeHashes: BinaryString[] = []

  /**
   * A well-formed announce with a valid connection id, answered in place when nothing needs
   * more than the swarm (no passkeys, filter, announce listeners or client-claimed address).
   * Returns false, having changed nothing, when the general path must take it.
   */
  private fastAnnounce<P> (port: UdpReplyPort<P>, d: Uint8Array, off: number, len: number, source: string, peer: P, nowMs: number, t0: number): boolean {
    const ctx = this.ctx
    if (len < UDP_ANNOUNCE_MIN_LENGTH || ctx.passkeys !== undefined) return false
    if ((d[off + 80] | d[off + 81] | d[off + 82]) !== 0 || d[off + 83] > 3) return false
    const port16 = (d[off + 96] << 8) | d[off + 97]
    if (port16 === 0) return false
    if (len > UDP_ANNOUNCE_MIN_LENGTH && !udpOptionsFit(d, off, len)) return false
    if (ctx.acceptClientIp && (d[off + 84] | d[off + 85] | d[off + 86] | d[off + 87]) !== 0) return false
    if (!this.ids.verifyAt(d, off, source, nowMs) || this.needsParams() || !this.sourceBytes(source)) return false
    const infoHash = binaryString20(d, off + 16)
    const peerId = binaryString20(d, off + 36)
    const core = ctx.core
    if (!core.compactServes(infoHash) || ctx.check(infoHash, peerId, undefined) !== null) return false
    const v4 = this.srcLength === 4
    const stride = v4 ? 6 : 18
    const numwantField = (d[off + 92] << 24) | (d[off + 93] << 16) | (d[off + 94] << 8) | d[off + 95]
    const numwant = core.numwant(numwantField < 0 ? -1 : numwantField, core.udpNumwantCap)
    const o = port.open(peer, 20 + stride * numwant)
    if (o < 0) return false
    const b = this.srcBytes
    const addr = v4
      ? String.fromCharCode(b[0], b[1], b[2], b[3], port16 >> 8, port16 & 0xff)
      : String.fromCharCode(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15], port16 >> 8, port16 & 0xff)
    const a = this.storeAnnounce
    a.infoHash = infoHash
    a.key = addr
    a.peerId = peerId
    a.addr = addr
    a.kind = v4 ? KIND_V4 : KIND_V6
    a.event = d[off + 83] as AnnounceEvent
    // isSeeder (core/tracker.ts) on the raw bytes: `completed`, or `left` 0.
    a.seeder = a.event === EVENT_COMPLETED ||
      (d[off + 64] | d[off + 65] | d[off + 66] | d[off + 67] | d[off + 68] | d[off + 69] | d[off + 70] | d[off + 71]) === 0
    a.numwant = numwant
    a.want = v4 ? WANT_V4 : WANT_V6
    const tid = readU32BE(d, off + 12)
    const buf = port.buf
    let r
    try {
      r = core.announceCompact(a, ctx.now(), buf, o + 20)
    } catch (err) {
      this.fail(port, peer, tid, internalError(err), A_ANNOUNCE, t0)
      return true
    }
    writeAnnounceResponseHeader(buf, o, tid, core.announceInterval(), r.incomplete, r.complete)
    port.commit(peer, 20 + stride * r.peers)
    // No announce listeners (needsParams() is false): the event would reach no one.
    ctx.metrics.done(P_UDP, A_ANNOUNCE, R_OK, t0)
    return true
  }

  /** A well-formed scrape with a valid connection id, answered in place; false: the general path. */
  private fastScrape<P> (port: UdpReplyPort<P>, d: Uint8Array, off: number, len: number, source: string, peer: P, nowMs: number, t0: number): boolean {
    const ctx = this.ctx
    const body = len - UDP_HEADER_LENGTH
    if (body === 0 || body % ID_LENGTH !== 0 || body / ID_LENGTH > UDP_MAX_SCRAPE_HASHES || ctx.passkeys !== undefined) return false
    if (!this.ids.verifyAt(d, off, source, nowMs)) return false
    const count = body / ID_LENGTH
    const hashes = this.scrapeHashes
    if (hashes.length !== count) hashes.length = count
    const core = ctx.core
    for (let n = 0; n < count; n++) {
      const h = binaryString20(d, off + UDP_HEADER_LENGTH + n * ID_LENGTH)
      // A hash another worker owns (a scrape the kernel could steer by its first hash only).
      if (!core.compactServes(h)) return false
      hashes[n] = h
    }
    if (ctx.checkScrape(hashes) !== null) return false
    const o = port.open(peer, 8 + 12 * count)
    if (o < 0) return false
    const tid = readU32BE(d, off + 12)
    const buf = port.buf
    try {
      scrapeCompact(core.store, hashes, buf, o + 8)
    } catch (err) {
      this.fail(port, peer, tid, internalError(err), A_SCRAPE, t0)
      return true
    }
    writeScrapeResponseHeader(buf, o, tid)
    port.commit(peer, 8 + 12 * count)
    ctx.metrics.done(P_UDP, A_SCRAPE, R_OK, t0)
    return true
  }

  // `ctx.needsParams()` (listener counts) asked once per run of in-place answers: they call no
  // user code, so nothing can add or remove a listener between them. Anything that may run user
  // code (the general path: filter, events, warnings) and the end of a batch forget it.
  private paramsKnown = false
  private paramsNeeded = false

  private needsParams (): boolean {
    if (!this.paramsKnown) {
      this.paramsNeeded = this.ctx.needsParams()
      this.paramsKnown = true
    }
    return this.paramsNeeded
  }

  /** The end of a batch of datagrams (native backend): user code may run before the next one. */
  endBatch (): void {
    this.paramsKnown = false
  }

  /** Puts the source's address bytes in `srcBytes` (kept while the source repeats); false if it has none. */
  private sourceBytes (source: string): boolean {
    if (source === this.srcText) return true
    const c = compactAddr(source, 1)
    if (c === undefined) return false
    const n = c.length - 2
    for (let k = 0; k < n; k++) this.srcBytes[k] = c.charCodeAt(k)
    this.srcLength = n
    this.srcText = source
    return true
  }

  /** Every request the fast paths leave: decoded into objects, every rule applied. */
  private general<P> (port: UdpReplyPort<P>, msg: Uint8Array, source: string, peer: P, nowMs: number, t0: number, key: AddressKey | undefined): void {
    this.paramsKnown = false
    const ctx = this.ctx
    const metrics = ctx.metrics
    const decoded = decodeUdpRequest(msg)
    if (!decoded.ok) {
      ctx.warning(decoded.error)
      // Answer only a source that proved it receives our packets (a valid connection id). The
      // codec gives no id for packets it drops outright (an unknown action): any non-connect
      // request still starts with one, and a source that holds a valid id gets its error too.
      const tid = decoded.transactionId
      const id = decoded.reply ? decoded.connectionId : (tid !== undefined && (msg[8] | msg[9] | msg[10] | msg[11]) !== 0 ? msg.subarray(0, 8) : undefined)
      const action = msg.length >= 12 ? actionOf((msg[8] << 24 | msg[9] << 16 | msg[10] << 8 | msg[11]) >>> 0) : A_INVALID
      if (tid !== undefined && id !== undefined && this.ids.verify(id, source, nowMs)) {
        port.send(peer, encodeError(tid, decoded.error.clientMessage))
        metrics.done(P_UDP, action, R_ERROR, t0)
      } else {
        if (tid !== undefined && id !== undefined) this.badId(key, source, nowMs)
        metrics.done(P_UDP, action, R_DROPPED, t0)
      }
      return
    }
    const m = decoded.value
    if (m.action === 'connect') {
      port.send(peer, encodeConnectResponse(m.transactionId, this.ids.issue(source, nowMs)))
      return metrics.done(P_UDP, A_CONNECT, R_OK, t0)
    }
    if (!this.ids.verify(m.connectionId, source, nowMs)) {
      metrics.badConnectionId()
      metrics.done(P_UDP, m.action === 'scrape' ? A_SCRAPE : A_ANNOUNCE, R_DROPPED, t0)
      ctx.warning(trackerError('INVALID_PACKET', 'unknown or expired connection id'))
      this.badId(key, source, nowMs)
      return
    }
    if (m.action === 'scrape') {
      // BEP 41 options follow announces only: a scrape has no place for a passkey.
      if (ctx.passkeys !== undefined) return this.fail(port, peer, m.transactionId, trackerError('UDP_SCRAPE_PRIVATE'), A_SCRAPE, t0)
      this.scrape(port, peer, m.transactionId, m.infoHashes, t0)
    } else this.announce(port, peer, source, m.transactionId, m.request, m.urlData, t0)
  }

  /** Counts a bad connection id against its source; says so once when the source gets banned. */
  private badId (key: AddressKey | undefined, source: string, nowMs: number): void {
    const table = this.ctx.limits.udpBadIds
    if (table === undefined || key === undefined) return
    if (table.strike(key, nowMs)) {
      const who = source.indexOf(':') === -1 ? source : `${source} (its /64)`
      this.ctx.warning(new Error(`ignoring UDP from ${who} for a while: too many bad connection ids`))
    }
  }

  private announce<P> (port: UdpReplyPort<P>, peer: P, source: string, tid: number, a: AnnounceRequest, urlData: string, t0: number): void {
    const ctx = this.ctx
    // Private mode: the passkey rides in the BEP 41 URL data (`/announce/<passkey>` or `/<passkey>/announce`).
    const passkey = ctx.passkeys === undefined ? undefined : passkeyInPath(urlData)?.key
    if (ctx.passkeys !== undefined) {
      const refused = ctx.passkeys.check(passkey)
      if (refused !== null) return this.fail(port, peer, tid, refused, A_ANNOUNCE, t0)
    }
    let ip = source
    // The `ip` field lets anyone point a swarm at a third party: honoured only when allowed,
    // and only within the family the request came over (the reply carries that family only).
    if (ctx.acceptClientIp && a.ip !== undefined && source.indexOf(':') === -1) ip = a.ip
    const addr = compactAddr(ip, a.port)
    if (addr === undefined) return this.fail(port, peer, tid, trackerError('INVALID_PORT'), A_ANNOUNCE, t0)
    const params = ctx.needsParams() ? udpParams(a, ip, urlData) : undefined
    const allowed = ctx.check(a.infoHash, a.peerId, params)
    if (allowed === null) return this.announceAllowed(port, peer, tid, a, addr, ip, params, passkey, t0)
    if (allowed instanceof TrackerError) return this.fail(port, peer, tid, allowed, A_ANNOUNCE, t0)
    const kept = port.keep(peer)
    this.pending++
    allowed.then(err => {
      this.settled()
      if (err !== null) this.fail(port, kept, tid, err, A_ANNOUNCE, t0)
      else this.announceAllowed(port, kept, tid, a, addr, ip, params, passkey, t0)
    }, (err: unknown) => { this.settled(); this.fail(port, kept, tid, internalError(err), A_ANNOUNCE, t0) })
  }

  private announceAllowed<P> (
    port: UdpReplyPort<P>, peer: P, tid: number, a: AnnounceRequest, addr: string, ip: string, params: RequestParams | undefined,
    passkey: string | undefined, t0: number
  ): void {
    const ctx = this.ctx
    let result
    try {
      result = ctx.core.announce(a, addr, true, ctx.now())
    } catch (err) {
      return this.fail(port, peer, tid, internalError(err), A_ANNOUNCE, t0)
    }
    if (isPromise(result)) {
      const kept = port.keep(peer)
      this.pending++
      result.then(r => { this.settled(); this.announced(port, kept, tid, a, addr, ip, params, passkey, t0, r) },
        err => { this.settled(); this.fail(port, kept, tid, internalError(err), A_ANNOUNCE, t0) })
    } else {
      this.announced(port, peer, tid, a, addr, ip, params, passkey, t0, result)
    }
  }

  private announced<P> (
    port: UdpReplyPort<P>, peer: P, tid: number, a: AnnounceRequest, addr: string, ip: string, params: RequestParams | undefined,
    passkey: string | undefined, t0: number, r: StoreAnnounceResult
  ): void {
    const ctx = this.ctx
    port.send(peer, encodeAnnounceResponse(tid, ctx.core.announceInterval(), r.incomplete, r.complete, r.peers))
    if (passkey !== undefined) ctx.passkeys?.account(passkey, a.infoHash, addr, a.event, a.uploaded, a.downloaded, ctx.now())
    ctx.metrics.done(P_UDP, A_ANNOUNCE, R_OK, t0)
    ctx.announced(a.event, formatAddr(ip, a.port), params)
  }

  private scrape<P> (port: UdpReplyPort<P>, peer: P, tid: number, infoHashes: string[], t0: number): void {
    const refused = this.ctx.checkScrape(infoHashes)
    if (refused !== null) return this.fail(port, peer, tid, refused, A_SCRAPE, t0)
    let result
    try {
      result = this.ctx.core.scrape(infoHashes)
    } catch (err) {
      return this.fail(port, peer, tid, internalError(err), A_SCRAPE, t0)
    }
    const done = (p: P, r: ScrapeEntry[]): void => {
      port.send(p, encodeScrapeResponse(tid, r))
      this.ctx.metrics.done(P_UDP, A_SCRAPE, R_OK, t0)
    }
    if (isPromise(result)) {
      const kept = port.keep(peer)
      this.pending++
      result.then(r => { this.settled(); done(kept, r) }, err => { this.settled(); this.fail(port, kept, tid, internalError(err), A_SCRAPE, t0) })
    } else {
      done(peer, result)
    }
  }

  private fail<P> (port: UdpReplyPort<P>, peer: P, tid: number, err: TrackerError, action: Action, t0: number): void {
    this.paramsKnown = false
    this.ctx.metrics.done(P_UDP, action, R_ERROR, t0)
    this.ctx.warning(err)
    port.send(peer, encodeError(tid, err.clientMessage))
  }
}

/** The reply port of a node:dgram socket (make one per socket). */
export function dgramReplyPort (socket: Socket): UdpReplyPort<RemoteInfo> {
  const send = (rinfo: RemoteInfo, packet: Uint8Array): void => {
    try {
      socket.send(packet, rinfo.port, rinfo.address)
    } catch {
      // Socket closed while a (possibly async) request was in flight: nothing to answer on.
    }
  }
  // In-place replies are written to one scratch buffer and copied out at their true length:
  // dgram keeps a sent buffer until the send completes, so each reply needs its own.
  const buf = Buffer.allocUnsafe(UDP_MAX_PACKET)
  return {
    send,
    keep: rinfo => rinfo,
    open: (_rinfo, max) => max <= buf.length ? 0 : -1,
    buf,
    commit: (rinfo, len) => send(rinfo, Buffer.from(buf.subarray(0, len)))
  }
}

function readU32BE (b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
}

/** The counter action of a BEP 15 action number (2 is scrape; 3, error, is never a request). */
function actionOf (n: number): Action {
  return n === 0 ? A_CONNECT : n === 1 ? A_ANNOUNCE : n === 2 ? A_SCRAPE : A_INVALID
}

function udpParams (a: AnnounceRequest, ip: string, urlData: string): RequestParams {
  const p = announceParams('udp', a, ip, a.port)
  p.compact = 1
  p.url = urlData
  return p
}
