import type { RemoteInfo, Socket } from 'node:dgram'
import { UDP_MAX_PACKET } from '../../constants.js'
import { internalError, trackerError } from '../../errors.js'
import type { TrackerError } from '../../errors.js'
import { canonicalIp, compactAddr, formatAddr } from '../../protocol/common/address.js'
import type { AnnounceRequest } from '../../protocol/common/types.js'
import {
  decodeUdpRequest, encodeAnnounceResponse, encodeConnectResponse, encodeError, encodeScrapeResponse
} from '../../protocol/udp/codec.js'
import { isPromise } from '../core/maybe.js'
import type { StoreAnnounceResult } from '../store/store.js'
import type { ScrapeEntry } from '../../protocol/common/types.js'
import { addressKey } from './abuse.js'
import type { AddressKey } from './abuse.js'
import { ConnectionIds } from './connection-id.js'
import { announceParams } from './context.js'
import type { FrontendContext, RequestParams } from './context.js'
import { stripZone } from './http.js'

/**
 * UDP tracker frontend (BEP 15, 41). Connection ids are stateless (a keyed MAC of the source and
 * a time window). A packet whose id does not verify gets no answer at all, so a spoofed source
 * can never make the tracker send anything but a 16-byte connect reply to a 16-byte request.
 */
export class UdpFrontend {
  readonly ids: ConnectionIds

  constructor (private readonly ctx: FrontendContext, opts: { secret?: Uint8Array } = {}) {
    this.ids = new ConnectionIds({ secret: opts.secret })
  }

  /** Handles one datagram that arrived on `socket`. Never throws. */
  onMessage (socket: Socket, msg: Buffer, rinfo: RemoteInfo): void {
    const ctx = this.ctx
    if (msg.length > UDP_MAX_PACKET) return ctx.warning(trackerError('INVALID_PACKET', 'datagram too large'))
    const source = canonicalIp(stripZone(rinfo.address))
    if (source === undefined) return
    const nowMs = Date.now()
    const limits = ctx.limits
    let key: AddressKey | undefined
    if (limits.udp !== undefined || limits.udpBadIds !== undefined) {
      // Dropped without a word: an answer would let a spoofed source aim our replies at a victim.
      key = addressKey(source)
      if (key === undefined) return
      if (limits.udpBadIds !== undefined && limits.udpBadIds.banned(key, nowMs)) return
      if (limits.udp !== undefined && !limits.udp.allow(key, nowMs)) return
    }
    const decoded = decodeUdpRequest(msg)
    if (!decoded.ok) {
      ctx.warning(decoded.error)
      // Answer only a source that proved it receives our packets (a valid connection id). The
      // codec gives no id for packets it drops outright (an unknown action): any non-connect
      // request still starts with one, and a source that holds a valid id gets its error too.
      const tid = decoded.transactionId
      const id = decoded.reply ? decoded.connectionId : (tid !== undefined && msg.readUInt32BE(8) !== 0 ? msg.subarray(0, 8) : undefined)
      if (tid !== undefined && id !== undefined) {
        if (this.ids.verify(id, source, nowMs)) send(socket, encodeError(tid, decoded.error.clientMessage), rinfo)
        else this.badId(key, source, nowMs)
      }
      return
    }
    const m = decoded.value
    if (m.action === 'connect') {
      send(socket, encodeConnectResponse(m.transactionId, this.ids.issue(source, nowMs)), rinfo)
      return
    }
    if (!this.ids.verify(m.connectionId, source, nowMs)) {
      ctx.warning(trackerError('INVALID_PACKET', 'unknown or expired connection id'))
      this.badId(key, source, nowMs)
      return
    }
    if (m.action === 'scrape') this.scrape(socket, rinfo, m.transactionId, m.infoHashes)
    else this.announce(socket, rinfo, source, m.transactionId, m.request, m.urlData)
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

  private announce (socket: Socket, rinfo: RemoteInfo, source: string, tid: number, a: AnnounceRequest, urlData: string): void {
    const ctx = this.ctx
    let ip = source
    // The `ip` field lets anyone point a swarm at a third party: honoured only when allowed,
    // and only within the family the request came over (the reply carries that family only).
    if (ctx.acceptClientIp && a.ip !== undefined && source.indexOf(':') === -1) ip = a.ip
    const addr = compactAddr(ip, a.port)
    if (addr === undefined) return this.fail(socket, rinfo, tid, trackerError('INVALID_PORT'))
    const params = ctx.needsParams() ? udpParams(a, ip, urlData) : undefined
    const allowed = ctx.check(a.infoHash, params)
    if (allowed === null) return this.announceAllowed(socket, rinfo, tid, a, addr, ip, params)
    allowed.then(err => {
      if (err !== null) this.fail(socket, rinfo, tid, err)
      else this.announceAllowed(socket, rinfo, tid, a, addr, ip, params)
    }, (err: unknown) => this.fail(socket, rinfo, tid, internalError(err)))
  }

  private announceAllowed (
    socket: Socket, rinfo: RemoteInfo, tid: number, a: AnnounceRequest, addr: string, ip: string, params: RequestParams | undefined
  ): void {
    const ctx = this.ctx
    let result
    try {
      result = ctx.core.announce(a, addr, true, ctx.now())
    } catch (err) {
      return this.fail(socket, rinfo, tid, internalError(err))
    }
    const done = (r: StoreAnnounceResult): void => {
      send(socket, encodeAnnounceResponse(tid, ctx.core.announceInterval(), r.incomplete, r.complete, r.peers), rinfo)
      ctx.announced(a.event, formatAddr(ip, a.port), params)
    }
    if (isPromise(result)) result.then(done, err => this.fail(socket, rinfo, tid, internalError(err)))
    else done(result)
  }

  private scrape (socket: Socket, rinfo: RemoteInfo, tid: number, infoHashes: string[]): void {
    let result
    try {
      result = this.ctx.core.scrape(infoHashes)
    } catch (err) {
      return this.fail(socket, rinfo, tid, internalError(err))
    }
    const done = (r: ScrapeEntry[]): void => send(socket, encodeScrapeResponse(tid, r), rinfo)
    if (isPromise(result)) result.then(done, err => this.fail(socket, rinfo, tid, internalError(err)))
    else done(result)
  }

  private fail (socket: Socket, rinfo: RemoteInfo, tid: number, err: TrackerError): void {
    this.ctx.warning(err)
    send(socket, encodeError(tid, err.clientMessage), rinfo)
  }
}

function send (socket: Socket, packet: Uint8Array, rinfo: RemoteInfo): void {
  try {
    socket.send(packet, rinfo.port, rinfo.address)
  } catch {
    // Socket closed while a (possibly async) request was in flight: nothing to answer on.
  }
}


function udpParams (a: AnnounceRequest, ip: string, urlData: string): RequestParams {
  const p = announceParams('udp', a, ip, a.port)
  p.compact = 1
  p.url = urlData
  return p
}
