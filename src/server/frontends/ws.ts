import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { RawData, WebSocket } from 'ws'
import { WS_CLOSE_GOING_AWAY, WS_MAX_BUFFERED } from '../../constants.js'
import { internalError, TrackerError, trackerError } from '../../errors.js'
import { compactAddr, formatAddr } from '../../protocol/common/address.js'
import type { AnnounceRequest, BinaryString, ScrapeEntry } from '../../protocol/common/types.js'
import { decodeWsRequestJson, encodeFailure, encodeScrapeResponse } from '../../protocol/ws/codec.js'
import type { WsAction, WsAnnounceMessageJson } from '../../protocol/ws/codec.js'
import { isPromise } from '../core/maybe.js'
import type { Delivery, SignalResult } from '../core/signalling.js'
import { A_ANNOUNCE, A_INVALID, A_SCRAPE, P_WS, R_ERROR, R_OK } from '../stats/metrics.js'
import { addressKey } from './abuse.js'
import type { AddressKey } from './abuse.js'
import { announceParams, passkeyInPath } from './context.js'
import type { FrontendContext, RequestParams } from './context.js'
import { requestIp } from './http.js'
import { checkHandshake, handshakeHeaders, OPEN, RawWs, refuseHandshake } from './ws-socket.js'
import type { RawWsHandler } from './ws-socket.js'

export interface WsConnectionOptions {
  trustProxy?: boolean
}

/** What `upgrade` tells its caller (the server re-emits them on `server.ws`, as `ws` would). */
export interface WsUpgradeHooks {
  /** The 101 response's lines, before they are written: lines may be added. */
  headers?: (headers: string[], req: IncomingMessage) => void
  opened?: (ws: RawWs<unknown>, req: IncomingMessage) => void
}

/** Per-socket state; kept on a Map, not on the socket object. */
interface Conn {
  /** The connection number of the signalling core. */
  id: number
  /** A `ws` WebSocket (adopted through onWebSocketConnection), or undefined for `raw`. */
  socket: WebSocket | undefined
  /** Our own framing (sockets upgraded by the tracker's own HTTP server). */
  raw: RawWs<Conn> | undefined
  ip: string
  port: number
  alive: boolean
  headers: IncomingMessage['headers'] | undefined
  /** `ip:port` for the announce events, formatted once. */
  addr: string
  /** The TCP socket under `socket` when we know it (our own server): corked to batch writes. */
  tcp: Socket | undefined
  /** `tcp` is corked until the next flush. */
  corked: boolean
  /** Private mode: the passkey of the upgrade request path (`ws://host/<passkey>`). */
  passkey: string | undefined
  /** Rate-limit table key of `ip`, when WS messages are rate limited. */
  limitKey: AddressKey | undefined
}

/**
 * WebTorrent tracker frontend: socket ↔ JSON codec ↔ signalling core. Each connection gets a
 * number; the core answers with deliveries `[conn, message]` that this frontend sends.
 */
export class WsFrontend {
  private readonly conns = new Map<number, Conn>()
  /** Connections with writes held back until `flush` (after this poll phase's reads). */
  private corked: Conn[] = []
  private readonly flushBound = (): void => this.flush()
  /** Events of our own sockets: one object for all of them, no closures per socket or message. */
  private readonly rawHandler: RawWsHandler<Conn> = {
    text: (c, text) => this.onText(c, text),
    binary: c => this.onText(c, ''),
    pong: c => { c.alive = true },
    protocolError: (_c, code, reason) => this.ctx.warning(new Error(`WebSocket closed (${code}): ${reason}`)),
    closed: c => this.onClose(c.id)
  }

  constructor (private readonly ctx: FrontendContext) {}

  /**
   * The tracker's own HTTP server's 'upgrade' event: checks the handshake (and the WS rate
   * limit), answers it and serves the socket with our own framing.
   */
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer, hooks: WsUpgradeHooks = {}): void {
    const bad = checkHandshake(req)
    if (bad !== undefined) return refuseHandshake(socket, bad.status, bad.message, bad.headers)
    if (!this.allowConnection(req)) return refuseHandshake(socket, 429, 'Too Many Requests')
    if (!socket.writable) { socket.destroy(); return }
    const headers = handshakeHeaders(req)
    hooks.headers?.(headers, req)
    socket.write(headers.join('\r\n') + '\r\n\r\n')
    const c = this.open(undefined, req, undefined, undefined)
    c.raw = new RawWs(socket as Socket, c, this.rawHandler, head)
    hooks.opened?.(c.raw, req)
  }

  /** Adopts an open WebSocket (from our server or one the user runs). */
  onConnection (socket: WebSocket, req?: IncomingMessage, opts?: WsConnectionOptions, tcp?: Socket): void {
    const state = this.open(socket, req, opts, tcp)
    const conn = state.id
    socket.on('message', (data: RawData, isBinary: boolean) => this.onMessage(state, isBinary ? '' : rawToString(data)))
    socket.on('pong', () => { state.alive = true })
    socket.on('error', (err: Error) => { this.ctx.warning(err); socket.terminate() })
    socket.on('close', () => this.onClose(conn))
  }

  private open (socket: WebSocket | undefined, req: IncomingMessage | undefined, opts: WsConnectionOptions | undefined, tcp: Socket | undefined): Conn {
    const ctx = this.ctx
    const ip = (req === undefined ? undefined : requestIp(req, ctx, opts?.trustProxy)) ?? '0.0.0.0'
    const port = req?.socket.remotePort ?? 0
    const conn = ctx.signalling.open(compactAddr(ip, port === 0 ? 1 : port) ?? '')
    const state: Conn = {
      id: conn, socket, raw: undefined, ip, port, alive: true, headers: req?.headers, addr: formatAddr(ip, port), tcp, corked: false,
      passkey: ctx.passkeys === undefined ? undefined : wsPasskey(req?.url),
      limitKey: ctx.limits.ws === undefined ? undefined : addressKey(ip)
    }
    this.conns.set(conn, state)
    ctx.metrics.setWsConnections(this.conns.size)
    return state
  }

  private onText (c: Conn, text: string): void { this.onMessage(c, text) }

  /**
   * Whether a WebSocket upgrade from this request's address is within the WS rate limit (an
   * upgrade costs one message's worth), checked before the handshake so a connection flood is
   * refused before any per-socket state exists.
   */
  allowConnection (req: IncomingMessage): boolean {
    const limiter = this.ctx.limits.ws
    if (limiter === undefined) return true
    const ip = requestIp(req, this.ctx)
    const key = ip === undefined ? undefined : addressKey(ip)
    if (key === undefined || limiter.allow(key, Date.now())) return true
    this.ctx.warning(trackerError('RATE_LIMITED'))
    return false
  }

  /** Called by the server's heartbeat timer: closes sockets that missed the previous ping. */
  heartbeat (): void {
    for (const c of this.conns.values()) {
      const raw = c.raw
      if (raw !== undefined) {
        if (!c.alive) { raw.terminate(); continue }
        c.alive = false
        raw.ping()
        continue
      }
      const socket = c.socket!
      if (!c.alive) { socket.terminate(); continue }
      c.alive = false
      try { socket.ping() } catch { socket.terminate() }
    }
  }

  /** Graceful shutdown: flushes, then a 1001 "going away" close (clients reconnect elsewhere or later). */
  goAway (): void {
    this.flush()
    for (const c of this.conns.values()) {
      if (c.raw !== undefined) { c.raw.close(WS_CLOSE_GOING_AWAY, 'tracker restarting'); continue }
      try { c.socket!.close(WS_CLOSE_GOING_AWAY, 'tracker restarting') } catch { c.socket!.terminate() }
    }
  }

  closeAll (): void {
    this.flush() // what was sent before the close still goes out
    for (const c of this.conns.values()) {
      if (c.raw !== undefined) c.raw.terminate()
      else c.socket!.terminate()
    }
  }

  /** Writes out every corked socket's messages, each socket's in one system call. */
  flush (): void {
    const list = this.corked
    if (list.length === 0) return
    this.corked = []
    for (let i = 0; i < list.length; i++) {
      const c = list[i]
      c.corked = false
      if (c.raw !== undefined) c.raw.flush()
      else c.tcp!.uncork()
    }
  }

  private onClose (conn: number): void {
    if (!this.conns.delete(conn)) return
    this.ctx.metrics.setWsConnections(this.conns.size)
    try {
      const r = this.ctx.signalling.close(conn)
      if (isPromise(r)) r.catch((err: unknown) => this.ctx.warning(internalError(err)))
    } catch (err) {
      this.ctx.warning(internalError(err))
    }
  }

  private onMessage (c: Conn, text: string): void {
    const ctx = this.ctx
    const conn = c.id
    const t0 = ctx.metrics.start()
    // Custom fields are only read by `filter` and event listeners: unread otherwise.
    const decoded = decodeWsRequestJson(text, ctx.needsParams())
    if (!decoded.ok) {
      return this.reply(conn, c, decoded.error, t0, decoded.action, decoded.infoHash)
    }
    const m = decoded.value
    // Decoded first so the refusal names the torrent (clients match failures by info_hash).
    if (c.limitKey !== undefined && !ctx.limits.ws!.allow(c.limitKey, Date.now())) {
      return this.reply(conn, c, trackerError('RATE_LIMITED'), t0, m.action, m.action === 'scrape' ? m.infoHashes[0] : m.request.infoHash)
    }
    // Private mode: checked on every message, so a key revoked by the admin API stops at once.
    if (ctx.passkeys !== undefined) {
      const refused = ctx.passkeys.check(c.passkey)
      if (refused !== null) return this.reply(conn, c, refused, t0, m.action, m.action === 'announce' ? m.request.infoHash : undefined)
    }
    if (m.action === 'scrape') {
      if (m.infoHashes.length === 0 && ctx.core.opts.fullScrapeLimit === 0) {
        return this.reply(conn, c, trackerError('FULL_SCRAPE_DISABLED'), t0, 'scrape')
      }
      const refused = ctx.checkScrape(m.infoHashes)
      if (refused !== null) return this.reply(conn, c, refused, t0, 'scrape')
      const full = m.infoHashes.length === 0
      let r
      try { r = ctx.core.scrape(m.infoHashes) } catch (err) { return this.reply(conn, c, internalError(err), t0, 'scrape') }
      const scraped = (v: ScrapeEntry[]): void => {
        this.send(c, encodeScrapeResponse(full ? ctx.visible(v) : v))
        ctx.metrics.done(P_WS, A_SCRAPE, R_OK, t0)
      }
      if (isPromise(r)) r.then(scraped, err => this.reply(conn, c, internalError(err), t0, 'scrape'))
      else scraped(r)
      return
    }
    const a = m.request
    if (m.answer !== undefined) {
      const res = ctx.signalling.answer(conn, a.infoHash, a.peerId, m.answer, ctx.now())
      if (!res.ok) return this.reply(conn, c, res.error, t0, 'announce', a.infoHash)
      this.deliver(res.deliveries)
      return ctx.metrics.done(P_WS, A_ANNOUNCE, R_OK, t0)
    }
    // Refuse a stolen peer id before the filter sees it.
    if (!ctx.signalling.mayUse(conn, a.peerId)) return this.reply(conn, c, trackerError('PEER_ID_BOUND'), t0, 'announce', a.infoHash)
    const params = ctx.needsParams() ? wsParams(c, a, m.extra) : undefined
    const allowed = ctx.check(a.infoHash, a.peerId, params)
    if (allowed === null) return this.announce(conn, c, m, params, t0)
    if (allowed instanceof TrackerError) return this.reply(conn, c, allowed, t0, 'announce', a.infoHash)
    allowed.then(err => {
      if (err !== null) this.reply(conn, c, err, t0, 'announce', a.infoHash)
      else this.announce(conn, c, m, params, t0)
    }, (err: unknown) => this.reply(conn, c, internalError(err), t0, 'announce', a.infoHash))
  }

  private announce (conn: number, c: Conn, m: WsAnnounceMessageJson, params: RequestParams | undefined, t0: number): void {
    const ctx = this.ctx
    const a = m.request
    let res
    try {
      res = ctx.signalling.announce(conn, a, m.offers, ctx.now())
    } catch (err) {
      return this.reply(conn, c, internalError(err), t0, 'announce', a.infoHash)
    }
    const done = (r: SignalResult): void => {
      if (!r.ok) return this.reply(conn, c, r.error, t0, 'announce', a.infoHash)
      this.deliver(r.deliveries)
      if (c.passkey !== undefined) ctx.passkeys?.account(c.passkey, a.infoHash, a.peerId, a.event, a.uploaded, a.downloaded, ctx.now())
      ctx.metrics.done(P_WS, A_ANNOUNCE, R_OK, t0)
      ctx.announced(a.event, c.addr, params)
    }
    if (isPromise(res)) res.then(done, err => this.reply(conn, c, internalError(err), t0, 'announce', a.infoHash))
    else done(res)
  }

  /** Sends messages the core produced for local connections (also those relayed from other nodes). */
  deliver (deliveries: Delivery[]): void {
    for (let i = 0; i < deliveries.length; i++) {
      const d = deliveries[i]
      const target = this.conns.get(d[0])
      if (target !== undefined) this.send(target, d[1])
    }
  }

  private send (c: Conn, message: string): void {
    const raw = c.raw
    if (raw !== undefined) {
      // A consumer that does not read gets nothing more rather than growing our memory.
      if (raw.readyState !== OPEN || raw.bufferedAmount > WS_MAX_BUFFERED) return
      // Queued on the socket, written with the others' at `flush` (as for `ws` sockets below).
      raw.send(message)
      if (!c.corked) {
        c.corked = true
        if (this.corked.push(c) === 1) setImmediate(this.flushBound)
      }
      return
    }
    const socket = c.socket!
    // A consumer that does not read gets nothing more rather than growing our memory.
    if (socket.readyState !== 1 || socket.bufferedAmount > WS_MAX_BUFFERED) return
    // Several messages for one socket in one turn of the event loop (an announce's reply and
    // the answers to its offers, read from other sockets in the same poll) go out in one write:
    // the system call, not the JS, is most of a message's cost. setImmediate runs after the poll
    // phase, so no message waits for more than the reads already pending.
    const tcp = c.tcp
    if (tcp !== undefined && !c.corked && !tcp.destroyed) {
      tcp.cork()
      c.corked = true
      if (this.corked.push(c) === 1) setImmediate(this.flushBound)
    }
    socket.send(message)
  }

  private reply (_conn: number, c: Conn, err: TrackerError, t0: number, action?: WsAction, infoHash?: BinaryString): void {
    this.ctx.metrics.done(P_WS, action === 'announce' ? A_ANNOUNCE : action === 'scrape' ? A_SCRAPE : A_INVALID, R_ERROR, t0)
    this.ctx.warning(err)
    this.send(c, encodeFailure(err.clientMessage, action, infoHash))
  }
}

function rawToString (data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8')
  return data.toString('utf8')
}

function wsParams (c: Conn, a: AnnounceRequest, extra: Record<string, unknown> | undefined): RequestParams {
  const p = announceParams('ws', a, c.ip, c.port)
  p.headers = c.headers
  // Custom fields are kept, as HTTP custom query params are, but never over the tracker's own.
  if (extra !== undefined) for (const k of Object.keys(extra)) if (!(k in p)) p[k] = extra[k]
  return p
}

/**
 * The passkey of a WebSocket upgrade path: `/<passkey>`, or the HTTP forms (`/announce/<passkey>`,
 * `/<passkey>/announce`) for clients given one URL for every transport. undefined for `/`.
 */
function wsPasskey (url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  const keyed = passkeyInPath(url)
  if (keyed !== undefined) return keyed.key
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const key = path.slice(path.lastIndexOf('/') + 1)
  return key === '' ? undefined : key
}
