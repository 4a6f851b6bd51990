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
import { ConnectionIds } from './connection-id.js'
import { announceParams } from './context.js'
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

  /** One datagram from a node:dgram socket. Never throws. */
  onDgram (port: UdpReplyPort<RemoteInfo>, msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length > UDP_MAX_PACKET) return this.oversized()
    const source = canonicalIp(stripZone(rinfo.address))
    if (source === undefined) return
    this.onMessage(port, msg, source, rinfo)
  }

  /** A datagram longer than UDP_MAX_PACKET: dropped. */
  oversized (): void {
    this.ctx.warning(trackerError('INVALID_PACKET', 'datagram too large'))
  }

  /**
   * Handles one datagram of at most UDP_MAX_PACKET bytes from `source` (canonical IP text).
   * `msg` may be reused once this returns. Never throws.
   */
  onMessage<P> (port: UdpReplyPort<P>, msg: Uint8Array, source: string, peer: P): void {
    const ctx = this.ctx
    const decoded = decodeUdpRequest(msg)
    const nowMs = Date.now()
    if (!decoded.ok) {
      ctx.warning(decoded.error)
      // Answer only a source that proved it receives our packets (a valid connection id). The
      // codec gives no id for packets it drops outright (an unknown action): any non-connect
      // request still starts with one, and a source that holds a valid id gets its error too.
      const tid = decoded.transactionId
      const id = decoded.reply ? decoded.connectionId : (tid !== undefined && (msg[8] | msg[9] | msg[10] | msg[11]) !== 0 ? msg.subarray(0, 8) : undefined)
      if (tid !== undefined && id !== undefined && this.ids.verify(id, source, nowMs)) {
        port.send(peer, encodeError(tid, decoded.error.clientMessage))
      }
      return
    }
    const m = decoded.value
    if (m.action === 'connect') {
      port.send(peer, encodeConnectResponse(m.transactionId, this.ids.issue(source, nowMs)))
      return
    }
    if (!this.ids.verify(m.connectionId, source, nowMs)) {
      ctx.warning(trackerError('INVALID_PACKET', 'unknown or expired connection id'))
      return
    }
    if (m.action === 'scrape') this.scrape(port, peer, m.transactionId, m.infoHashes)
    else this.announce(port, peer, source, m.transactionId, m.request, m.urlData)
  }

  private announce<P> (port: UdpReplyPort<P>, peer: P, source: string, tid: number, a: AnnounceRequest, urlData: string): void {
    const ctx = this.ctx
    let ip = source
    // The `ip` field lets anyone point a swarm at a third party: honoured only when allowed,
    // and only within the family the request came over (the reply carries that family only).
    if (ctx.acceptClientIp && a.ip !== undefined && source.indexOf(':') === -1) ip = a.ip
    const addr = compactAddr(ip, a.port)
    if (addr === undefined) return this.fail(port, peer, tid, trackerError('INVALID_PORT'))
    const params = ctx.needsParams() ? udpParams(a, ip, urlData) : undefined
    const allowed = ctx.check(a.infoHash, params)
    if (allowed === null) return this.announceAllowed(port, peer, tid, a, addr, ip, params)
    const kept = port.keep(peer)
    allowed.then(err => {
      if (err !== null) this.fail(port, kept, tid, err)
      else this.announceAllowed(port, kept, tid, a, addr, ip, params)
    }, (err: unknown) => this.fail(port, kept, tid, internalError(err)))
  }

  private announceAllowed<P> (
    port: UdpReplyPort<P>, peer: P, tid: number, a: AnnounceRequest, addr: string, ip: string, params: RequestParams | undefined
  ): void {
    const ctx = this.ctx
    let result
    try {
      result = ctx.core.announce(a, addr, true, ctx.now())
    } catch (err) {
      return this.fail(port, peer, tid, internalError(err))
    }
    if (isPromise(result)) {
      const kept = port.keep(peer)
      result.then(r => this.announced(port, kept, tid, a, ip, params, r), err => this.fail(port, kept, tid, internalError(err)))
    } else {
      this.announced(port, peer, tid, a, ip, params, result)
    }
  }

  private announced<P> (
    port: UdpReplyPort<P>, peer: P, tid: number, a: AnnounceRequest, ip: string, params: RequestParams | undefined, r: StoreAnnounceResult
  ): void {
    const ctx = this.ctx
    port.send(peer, encodeAnnounceResponse(tid, ctx.core.opts.interval, r.incomplete, r.complete, r.peers))
    ctx.announced(a.event, formatAddr(ip, a.port), params)
  }

  private scrape<P> (port: UdpReplyPort<P>, peer: P, tid: number, infoHashes: string[]): void {
    let result
    try {
      result = this.ctx.core.scrape(infoHashes)
    } catch (err) {
      return this.fail(port, peer, tid, internalError(err))
    }
    if (isPromise(result)) {
      const kept = port.keep(peer)
      result.then((r: ScrapeEntry[]) => port.send(kept, encodeScrapeResponse(tid, r)), err => this.fail(port, kept, tid, internalError(err)))
    } else {
      port.send(peer, encodeScrapeResponse(tid, result))
    }
  }

  private fail<P> (port: UdpReplyPort<P>, peer: P, tid: number, err: TrackerError): void {
    this.ctx.warning(err)
    port.send(peer, encodeError(tid, err.clientMessage))
  }
}

/** The reply port of a node:dgram socket (make one per socket). */
export function dgramReplyPort (socket: Socket): UdpReplyPort<RemoteInfo> {
  return {
    send: (rinfo, packet) => {
      try {
        socket.send(packet, rinfo.port, rinfo.address)
      } catch {
        // Socket closed while a (possibly async) request was in flight: nothing to answer on.
      }
    },
    keep: rinfo => rinfo
  }
}

function udpParams (a: AnnounceRequest, ip: string, urlData: string): RequestParams {
  const p = announceParams('udp', a, ip, a.port)
  p.compact = 1
  p.url = urlData
  return p
}
