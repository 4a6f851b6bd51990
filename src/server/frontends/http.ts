import type { IncomingMessage, ServerResponse } from 'node:http'
import { MAX_URL_LENGTH } from '../../constants.js'
import { internalError, TrackerError, trackerError } from '../../errors.js'
import { canonicalIp, compactAddr, formatAddr } from '../../protocol/common/address.js'
import { decodeAnnounceQuery, encodeAnnounceResponse, encodeFailure } from '../../protocol/http/announce.js'
import type { HttpAnnounce } from '../../protocol/http/announce.js'
import type { ScrapeEntry } from '../../protocol/common/types.js'
import { decodeScrapeQuery, encodeScrapeResponse } from '../../protocol/http/scrape.js'
import { isPromise } from '../core/maybe.js'
import { A_ANNOUNCE, A_SCRAPE, P_HTTP, R_ERROR, R_OK } from '../stats/metrics.js'
import type { Action } from '../stats/metrics.js'
import type { StoreAnnounceResult } from '../store/store.js'
import { addressKey } from './abuse.js'
import { announceParams, passkeyInPath } from './context.js'
import type { FrontendContext, RequestParams } from './context.js'

export interface HttpRequestOptions {
  /** Treat the request as this action whatever its path (for trackers mounted on other routes). */
  action?: 'announce' | 'scrape'
  trustProxy?: boolean
}

const HEADERS_BENCODE = {
  'Content-Type': 'text/plain; charset=ISO-8859-1',
  // Browser clients (WebTorrent) announce to http trackers from pages of any origin.
  'Access-Control-Allow-Origin': '*',
  'Cache-Control': 'no-store'
}

/**
 * One tracker request, whatever carried it: node:http's req/res (`NodeHttpExchange`) or the
 * fast path's own reader (http-fast.ts). The frontend reads these and answers through `send`.
 */
export interface HttpExchange {
  /** The request target (path and query), as node:http's `req.url`. */
  readonly url: string
  /** The socket's peer address, canonical (zone cut off); undefined when unusable. */
  socketIp (): string | undefined
  /** The X-Forwarded-For header (repeated ones joined with ", "), or undefined. */
  forwardedFor (): string | undefined
  /** All request headers as node:http's `req.headers` would have them (for `filter` params). */
  headers (): Record<string, string | string[] | undefined>
  /** Sends a 200 response with this bencoded body (ignored once the client is gone). */
  send (body: Uint8Array): void
}

/** node:http's request and response as an HttpExchange. */
class NodeHttpExchange implements HttpExchange {
  readonly url: string
  constructor (private readonly req: IncomingMessage, private readonly res: ServerResponse) {
    this.url = req.url ?? ''
  }

  socketIp (): string | undefined { return canonicalIp(stripZone(this.req.socket.remoteAddress ?? '')) }
  forwardedFor (): string | undefined { return joinedHeader(this.req, 'x-forwarded-for') }
  headers (): Record<string, string | string[] | undefined> { return this.req.headers }
  send (body: Uint8Array): void { send(this.res, body) }
}

/**
 * HTTP tracker frontend (BEP 3, 7, 23, 48): request → codec → core → codec → response.
 * Failures are bencoded `failure reason`s with status 200, as clients expect.
 */
export class HttpFrontend {
  constructor (private readonly ctx: FrontendContext) {}

  /** Handles `/announce` and `/scrape` (or `opts.action`); returns false for any other path. */
  handle (req: IncomingMessage, res: ServerResponse, opts?: HttpRequestOptions): boolean {
    const url = req.url ?? ''
    const action = opts?.action ?? this.route(url)
    if (action === undefined) return false
    this.serve(new NodeHttpExchange(req, res), action, opts?.trustProxy)
    return true
  }

  /**
   * The tracker action a request target asks for: `/announce`, `/scrape`, or in private mode
   * `/announce/<passkey>`, `/<passkey>/announce` and the same for scrape (an open tracker keeps
   * those 404); undefined for any other path.
   */
  route (url: string): 'announce' | 'scrape' | undefined {
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (path === '/announce') return 'announce'
    if (path === '/scrape') return 'scrape'
    return this.ctx.passkeys === undefined ? undefined : passkeyInPath(path)?.action
  }

  /** Answers one request whose action is known (see `route`). */
  serve (x: HttpExchange, action: 'announce' | 'scrape', trustProxy?: boolean): void {
    const url = x.url
    const q = url.indexOf('?')
    const passkeys = this.ctx.passkeys
    const passkey = passkeys === undefined ? undefined : passkeyInPath(q === -1 ? url : url.slice(0, q))?.key
    const t0 = this.ctx.metrics.start()
    const counted = action === 'announce' ? A_ANNOUNCE : A_SCRAPE
    const limiter = this.ctx.limits.http
    // A scrape needs the address only for the rate limit.
    const client = limiter === undefined && action === 'scrape' ? undefined : exchangeIp(x, this.ctx, trustProxy)
    if (limiter !== undefined) {
      const key = client === undefined ? undefined : addressKey(client)
      if (key !== undefined && !limiter.allow(key, Date.now())) {
        this.fail(x, trackerError('RATE_LIMITED'), counted, t0)
        return
      }
    }
    if (url.length > MAX_URL_LENGTH) {
      this.fail(x, trackerError('URL_TOO_LONG'), counted, t0)
      return
    }
    if (passkeys !== undefined) {
      const refused = passkeys.check(passkey)
      if (refused !== null) {
        this.fail(x, refused, counted, t0)
        return
      }
    }
    const query = q === -1 ? '' : url.slice(q + 1)
    if (action === 'announce') this.announce(x, query, t0, client, passkey)
    else this.scrape(x, query, t0)
  }

  private announce (x: HttpExchange, query: string, t0: number, client: string | undefined, passkey: string | undefined): void {
    const ctx = this.ctx
    const decoded = decodeAnnounceQuery(query)
    if (!decoded.ok) return this.fail(x, decoded.error, A_ANNOUNCE, t0)
    const a = decoded.value
    const ip = this.peerIp(a, client)
    const addr = ip === undefined ? undefined : compactAddr(ip, a.port)
    if (ip === undefined || addr === undefined) return this.fail(x, trackerError('INVALID_QUERY', 'unusable peer address'), A_ANNOUNCE, t0)
    const params = ctx.needsParams() ? httpParams(x, a, ip) : undefined
    const allowed = ctx.check(a.infoHash, a.peerId, params)
    if (allowed === null) return this.announceAllowed(x, a, addr, ip, params, passkey, t0)
    if (allowed instanceof TrackerError) return this.fail(x, allowed, A_ANNOUNCE, t0)
    allowed.then(err => {
      if (err !== null) this.fail(x, err, A_ANNOUNCE, t0)
      else this.announceAllowed(x, a, addr, ip, params, passkey, t0)
    }, (err: unknown) => this.fail(x, internalError(err), A_ANNOUNCE, t0))
  }

  private announceAllowed (
    x: HttpExchange, a: HttpAnnounce, addr: string, ip: string, params: RequestParams | undefined, passkey: string | undefined, t0: number
  ): void {
    const ctx = this.ctx
    let result
    try {
      result = ctx.core.announce(a, addr, false, ctx.now())
    } catch (err) {
      return this.fail(x, internalError(err), A_ANNOUNCE, t0)
    }
    const done = (r: StoreAnnounceResult): void => {
      const o = ctx.core.opts
      x.send(encodeAnnounceResponse({
        interval: ctx.core.announceInterval(),
        minInterval: o.minInterval,
        complete: r.complete,
        incomplete: r.incomplete,
        peers: r.peers,
        compact: a.compact,
        noPeerId: a.noPeerId
      }))
      if (passkey !== undefined) ctx.passkeys?.account(passkey, a.infoHash, addr, a.event, a.uploaded, a.downloaded, ctx.now())
      ctx.metrics.done(P_HTTP, A_ANNOUNCE, R_OK, t0)
      ctx.announced(a.event, formatAddr(ip, a.port), params)
    }
    if (isPromise(result)) result.then(done, err => this.fail(x, internalError(err), A_ANNOUNCE, t0))
    else done(result)
  }

  private scrape (x: HttpExchange, query: string, t0: number): void {
    const decoded = decodeScrapeQuery(query)
    if (!decoded.ok) return this.fail(x, decoded.error, A_SCRAPE, t0)
    const ctx = this.ctx
    if (decoded.value.infoHashes.length === 0 && ctx.core.opts.fullScrapeLimit === 0) {
      return this.fail(x, trackerError('FULL_SCRAPE_DISABLED'), A_SCRAPE, t0)
    }
    const refused = ctx.checkScrape(decoded.value.infoHashes)
    if (refused !== null) return this.fail(x, refused, A_SCRAPE, t0)
    let result
    try {
      result = ctx.core.scrape(decoded.value.infoHashes)
    } catch (err) {
      return this.fail(x, internalError(err), A_SCRAPE, t0)
    }
    const opts = { minRequestInterval: ctx.core.opts.minInterval }
    const full = decoded.value.infoHashes.length === 0
    const done = (r: ScrapeEntry[]): void => {
      x.send(encodeScrapeResponse(full ? ctx.visible(r) : r, opts))
      ctx.metrics.done(P_HTTP, A_SCRAPE, R_OK, t0)
    }
    if (isPromise(result)) result.then(done, err => this.fail(x, internalError(err), A_SCRAPE, t0))
    else done(result)
  }

  /** The peer's address: the client's (see exchangeIp) or, if allowed, the `ip` param. */
  private peerIp (a: HttpAnnounce, client: string | undefined): string | undefined {
    if (this.ctx.acceptClientIp && a.ip !== undefined) {
      const claimed = canonicalIp(a.ip)
      if (claimed !== undefined) return claimed
    }
    return client
  }

  private fail (x: HttpExchange, err: TrackerError, action: Action, t0: number): void {
    this.ctx.metrics.done(P_HTTP, action, R_ERROR, t0)
    this.ctx.warning(err)
    x.send(encodeFailure(err.clientMessage))
  }
}

function send (res: ServerResponse, body: Uint8Array): void {
  if (res.writableEnded || res.destroyed) return
  res.writeHead(200, HEADERS_BENCODE)
  res.end(body)
}

/** A request header's value, repeated ones joined with ", " (as node:http joins them). */
function joinedHeader (req: IncomingMessage, name: string): string | undefined {
  const h = req.headers[name]
  return h === undefined ? undefined : Array.isArray(h) ? h.join(', ') : h
}

/** The last entry of an X-Forwarded-For value, canonical; undefined when unusable. */
export function lastForwarded (all: string | undefined): string | undefined {
  if (all === undefined) return undefined
  const last = all.slice(all.lastIndexOf(',') + 1).trim()
  return canonicalIp(stripZone(last))
}

/**
 * The client address of an exchange: the last X-Forwarded-For entry when the socket's peer is a
 * trusted proxy (`override` decides instead when given), else the socket's own address.
 */
function exchangeIp (x: HttpExchange, ctx: FrontendContext, override?: boolean): string | undefined {
  const socketIp = x.socketIp()
  if (override ?? (socketIp !== undefined && ctx.trustsProxy(socketIp))) {
    const fwd = lastForwarded(x.forwardedFor())
    if (fwd !== undefined) return fwd
  }
  return socketIp
}

/**
 * The client address a trusted reverse proxy reports: the last `X-Forwarded-For` entry (the one
 * the proxy itself appended — earlier entries come from the client and can be forged).
 */
export function forwardedFor (req: IncomingMessage): string | undefined {
  return lastForwarded(joinedHeader(req, 'x-forwarded-for'))
}

/**
 * The client address of a request (HTTP or a WebSocket upgrade): the last X-Forwarded-For entry
 * when the socket's peer is a trusted proxy (`override` decides instead when given), else the
 * socket's own address.
 */
export function requestIp (req: IncomingMessage, ctx: FrontendContext, override?: boolean): string | undefined {
  const socketIp = canonicalIp(stripZone(req.socket.remoteAddress ?? ''))
  if (override ?? (socketIp !== undefined && ctx.trustsProxy(socketIp))) {
    const fwd = forwardedFor(req)
    if (fwd !== undefined) return fwd
  }
  return socketIp
}

export function stripZone (ip: string): string {
  const pct = ip.indexOf('%')
  return pct === -1 ? ip : ip.slice(0, pct)
}


function httpParams (x: HttpExchange, a: HttpAnnounce, ip: string): RequestParams {
  const p = announceParams('http', a, ip, a.port)
  p.compact = a.compact ? 1 : 0
  p.headers = x.headers()
  // Custom query params are kept, but never over the tracker's own fields.
  for (const k of Object.keys(a.extra)) if (!(k in p)) p[k] = a.extra[k]
  return p
}
