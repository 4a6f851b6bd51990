import dgram from 'node:dgram'
import { lookup as dnsLookup } from 'node:dns'
import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import type { ServerOptions as WsServerOptions, WebSocket } from 'ws'
import {
  DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_NUMWANT, FILTER_TIMEOUT_MS, HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS, MAX_FULL_SCRAPE, MAX_NUMWANT,
  MIN_INTERVAL_DIVISOR, PEER_EXPIRY_INTERVALS, SWEEP_BUDGET, SWEEP_INTERVAL_MS, WS_HEARTBEAT_MS,
  WS_INTERVAL_DIVISOR, WS_MAX_OFFERS, WS_MAX_PAYLOAD, WS_MAX_SWARMS_PER_SOCKET
} from '../constants.js'
import { TrackerError, trackerError } from '../errors.js'
import { parseCompactAddr } from '../protocol/common/address.js'
import { binaryToHex, hexToBinary } from '../protocol/common/binary.js'
import type { AnnounceEvent, BinaryString } from '../protocol/common/types.js'
import { Signalling } from './core/signalling.js'
import type { RemoteSignal, SignalBus } from './core/signalling.js'
import { TrackerCore } from './core/tracker.js'
import { EVENT_NAMES } from './frontends/context.js'
import type { FrontendContext, RequestParams } from './frontends/context.js'
import { HttpFrontend } from './frontends/http.js'
import type { HttpRequestOptions } from './frontends/http.js'
import { UdpFrontend, dgramReplyPort } from './frontends/udp.js'
import { BatchUdpSocket } from './frontends/udp-batch.js'
import { nativeAddon, nativeStatus } from './native/loader.js'
import type { NativeAddon, NativeUdpOptions } from './native/loader.js'
import { WsFrontend } from './frontends/ws.js'
import type { WsConnectionOptions } from './frontends/ws.js'
import { PeerStats } from './stats/peer-stats.js'
import type { TrackerStats } from './stats/peer-stats.js'
import { renderStatsHtml } from './stats/render.js'
import { MemoryStore } from './store/memory/memory-store.js'
import { KIND_WS } from './store/store.js'
import type { SwarmStore } from './store/store.js'

/**
 * `filter(infoHash, params, cb)`: call `cb(true)` / `cb()` / `cb(null)` to allow, `cb(false)` to
 * refuse, `cb(new Error(reason))` to refuse with that failure reason. It may instead return a
 * boolean or a Promise of one.
 */
export type Filter = (infoHash: string, params: RequestParams, cb: (result?: boolean | Error | null) => void) => unknown

export interface ServerOptions {
  /** Start an HTTP tracker (or options for `http.createServer`). Default true. */
  http?: boolean | http.ServerOptions
  /** Start a UDP tracker on IPv4 and IPv6 (or extra `dgram.createSocket` options). Default true. */
  udp?: boolean | Partial<dgram.SocketOptions>
  /** Start a WebSocket tracker on the HTTP port (or extra `ws` server options). Default true. */
  ws?: boolean | WsServerOptions
  /** Serve `/stats` and `/stats.json`. Default true. */
  stats?: boolean
  filter?: Filter
  /** Announce interval told to clients, ms. Default 600000 (WebSocket clients: a fifth of it). */
  interval?: number
  /** Take the client address from `X-Forwarded-For` (its last entry, the proxy's). */
  trustProxy?: boolean
  /** Use the address a client claims (HTTP `ip`, UDP `ip` field). Off: it lets anyone aim a swarm at a third party. */
  acceptClientIp?: boolean
  /** Most peers in one announce answer. Default MAX_NUMWANT. */
  maxNumwant?: number
  /** Most torrents in a full scrape; 0 refuses a scrape without info_hash. Default MAX_FULL_SCRAPE. */
  fullScrapeLimit?: number
  /** Most offers relayed per WebSocket announce. */
  wsMaxOffers?: number
  /** Most swarms one WebSocket may join. */
  wsMaxSwarms?: number
  /** Secret for UDP connection ids (16+ bytes) so several processes accept each other's ids. */
  udpSecret?: Uint8Array
  /** Swarm storage. Default: in memory. */
  store?: SwarmStore
  /**
   * Carries WebSocket offers and answers to peers connected to other nodes sharing the store
   * (other instances on one Redis, other worker threads); signals arriving from them go to
   * `receiveSignal`.
   */
  signalBus?: SignalBus
  /**
   * UDP I/O: 'native' batches datagrams with recvmmsg/sendmmsg through the addon built at
   * install (Linux), 'dgram' uses node:dgram, 'auto' (default) the addon when it is available
   * and the `udp` options need nothing only dgram has.
   */
  udpBackend?: UdpBackendOption
}

export type UdpBackendOption = 'auto' | 'native' | 'dgram'

/** A UDP tracker socket: node:dgram's, or the native batch socket (address, close, ref/unref, events). */
export type UdpSocket = dgram.Socket | BatchUdpSocket

/** `udp` options the native backend honours too; any other one needs node:dgram. */
const NATIVE_UDP_OPTIONS = new Set(['type', 'reuseAddr', 'reusePort', 'recvBufferSize', 'sendBufferSize', 'lookup'])

/** What `server.torrents[infoHashHex]` gives. */
export interface TorrentView {
  infoHash: string
  complete: number
  incomplete: number
  downloaded: number
  /** Peers by id: `ip:port` for HTTP/UDP peers, hex peer id for WebSocket peers. */
  peers: Map<string, { peerId: string, ip: string, port: number, complete: boolean, type: 'ws' | 'http/udp' }>
}

type HostnameOpt = string | { http?: string, udp?: string, udp6?: string }
type PortOpt = number | string | { http?: number, udp?: number }

/**
 * The BitTorrent tracker server of the seed README: HTTP, UDP (IPv4 + IPv6) and WebSocket
 * trackers sharing one port, `/stats`, and the announce events.
 */
export class Server extends EventEmitter {
  http: http.Server | null = null
  udp: UdpSocket | null = null
  udp4: UdpSocket | null = null
  udp6: UdpSocket | null = null
  /** Which UDP I/O the UDP tracker uses, and (for 'dgram') why not the native one. */
  readonly udpBackend: 'native' | 'dgram'
  readonly udpBackendReason: string | undefined
  ws: WebSocketServer | null = null
  readonly intervalMs: number
  listening = false
  destroyed = false
  /** Live view of the swarms, keyed by hex info hash. */
  readonly torrents: Record<string, TorrentView>

  private readonly store: SwarmStore
  private readonly peerStats: PeerStats | undefined
  private readonly core: TrackerCore
  private readonly signalling: Signalling
  private readonly httpFrontend: HttpFrontend
  private readonly udpFrontend: UdpFrontend
  private readonly wsFrontend: WsFrontend
  private readonly filter: Filter | undefined
  private readonly serveHttpTracker: boolean
  private readonly serveStats: boolean
  private nowS = Math.floor(Date.now() / 1000)
  private nextSweep = 0
  private timer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private listenCalled = false
  private binding = false
  /** Extra `dgram.createSocket` options from `opts.udp`. */
  private udpExtra: Partial<dgram.SocketOptions> = {}
  private readonly addon: NativeAddon | undefined

  constructor (opts: ServerOptions = {}) {
    super()
    this.intervalMs = opts.interval !== undefined && opts.interval > 0 ? opts.interval : DEFAULT_ANNOUNCE_INTERVAL_MS
    const interval = Math.max(1, Math.ceil(this.intervalMs / 1000))
    this.filter = typeof opts.filter === 'function' ? opts.filter : undefined
    this.serveHttpTracker = opts.http !== false
    this.serveStats = opts.stats !== false

    if (opts.store !== undefined) {
      this.store = opts.store
    } else {
      this.peerStats = this.serveStats ? new PeerStats() : undefined
      this.store = new MemoryStore({ peerTtl: PEER_EXPIRY_INTERVALS * interval, listener: this.peerStats })
    }
    this.core = new TrackerCore(this.store, {
      interval,
      wsInterval: Math.max(1, Math.ceil(interval / WS_INTERVAL_DIVISOR)),
      minInterval: Math.max(1, Math.floor(interval / MIN_INTERVAL_DIVISOR)),
      defaultNumwant: DEFAULT_NUMWANT,
      maxNumwant: opts.maxNumwant ?? MAX_NUMWANT,
      fullScrapeLimit: opts.fullScrapeLimit ?? MAX_FULL_SCRAPE
    })
    this.signalling = new Signalling(this.store, {
      wsInterval: this.core.opts.wsInterval,
      maxOffers: opts.wsMaxOffers ?? WS_MAX_OFFERS,
      maxSwarms: opts.wsMaxSwarms ?? WS_MAX_SWARMS_PER_SOCKET,
      bus: opts.signalBus
    })
    const ctx = this.context(opts)
    this.httpFrontend = new HttpFrontend(ctx)
    this.udpFrontend = new UdpFrontend(ctx, { secret: opts.udpSecret })
    this.wsFrontend = new WsFrontend(ctx)
    this.torrents = this.torrentsView()

    const wantHttpServer = this.serveHttpTracker || this.serveStats || (opts.ws !== false && !(isObject(opts.ws) && opts.ws.noServer === true))
    if (wantHttpServer) {
      const server = isObject(opts.http) ? http.createServer(opts.http) : http.createServer()
      // Tracker requests are one small GET: a client slower than this is holding a socket.
      if (!isObject(opts.http) || opts.http.requestTimeout === undefined) server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS
      if (!isObject(opts.http) || opts.http.headersTimeout === undefined) server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS
      this.http = server
      server.on('error', err => this.onSocketError(err))
      server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket))
      // Added on the next tick so a user's own 'request' handler runs first; requests it
      // answered are left alone.
      process.nextTick(() => {
        server.on('request', (req: IncomingMessage, res: ServerResponse) => {
          if (res.headersSent || res.writableEnded) return
          this.handleHttp(req, res)
        })
      })
    }

    const backend = chooseUdpBackend(opts)
    this.udpBackend = backend.addon !== undefined ? 'native' : 'dgram'
    this.udpBackendReason = backend.reason
    this.addon = backend.addon
    if (opts.udp !== false) {
      this.udpExtra = isObject(opts.udp) ? opts.udp : {}
      this.udp4 = this.udp = this.udpSocket('udp4')
      this.udp6 = this.udpSocket('udp6')
    }

    if (opts.ws !== false) {
      const wsOpts = isObject(opts.ws) ? opts.ws : {}
      const noServer = wsOpts.noServer === true
      this.ws = new WebSocketServer({
        maxPayload: WS_MAX_PAYLOAD,
        perMessageDeflate: false,
        clientTracking: false,
        ...(noServer ? {} : { server: this.http! }),
        ...wsOpts
      })
      const httpServer = this.http
      Object.defineProperty(this.ws, 'address', {
        configurable: true,
        value: () => {
          if (noServer || httpServer === null) throw new Error('address() unavailable with { noServer: true }')
          return httpServer.address()
        }
      })
      this.ws.on('error', err => this.emit('error', err))
      this.ws.on('connection', (socket: WebSocket, req: IncomingMessage) => this.wsFrontend.onConnection(socket, req, undefined, req.socket))
    }
    // The clock, the expiry sweep and the WS heartbeat run from construction, not from listen():
    // a tracker mounted with onHttpRequest / onWebSocketConnection never listens.
    this.startTimers()
  }

  /**
   * Starts every transport on one port number (0: a free one, the same for HTTP, UDP4 and UDP6).
   * `hostname` may be one address or `{ http, udp, udp6 }`.
   */
  listen (port?: PortOpt | (() => void), hostname?: HostnameOpt | (() => void), onlistening?: () => void): void {
    if (this.listenCalled || this.listening) throw new Error('server already listening')
    if (this.destroyed) throw new Error('server is closed')
    this.listenCalled = true
    const args = [port, hostname, onlistening]
    const cb = args.find(a => typeof a === 'function') as (() => void) | undefined
    if (cb !== undefined) this.once('listening', cb)
    const p = typeof port === 'function' ? 0 : port
    const h = typeof hostname === 'function' ? undefined : hostname
    const httpPort = toPort(isObject(p) ? p.http : p)
    const udpPort = isObject(p) ? toPort(p.udp) : undefined
    const hosts = hostsFor(h)
    this.bindAll(httpPort, udpPort, hosts, 5)
  }

  close (cb?: (err?: Error | null) => void): void {
    if (this.destroyed) {
      if (cb !== undefined) process.nextTick(cb, null)
      return
    }
    this.destroyed = true
    this.listening = false
    if (this.timer !== undefined) clearInterval(this.timer)
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer)
    for (const s of [this.udp4, this.udp6]) {
      try { s?.close() } catch { /* not bound */ }
    }
    this.wsFrontend.closeAll()
    try { this.ws?.close() } catch { /* already closed */ }
    const done = (): void => {
      try {
        const r = this.store.close()
        if (r instanceof Promise) r.catch(() => undefined)
      } catch { /* closing anyway */ }
      cb?.(null)
    }
    if (this.http !== null && this.http.listening) {
      this.http.close(() => done())
      this.http.closeAllConnections()
    } else {
      process.nextTick(done)
    }
  }

  /** The HTTP tracker's request handler, to mount on a server of your own (e.g. express). */
  onHttpRequest (req: IncomingMessage, res: ServerResponse, opts?: HttpRequestOptions): void {
    if (!this.httpFrontend.handle(req, res, opts)) this.notFound(res)
  }

  /** Adopts a WebSocket accepted by a server of your own (`ws` with `noServer`, for example). */
  onWebSocketConnection (socket: WebSocket, req?: IncomingMessage | WsConnectionOptions, opts?: WsConnectionOptions): void {
    const r = isIncoming(req) ? req : (socket as unknown as { upgradeReq?: IncomingMessage }).upgradeReq
    this.wsFrontend.onConnection(socket, r, isIncoming(req) ? opts : (req ?? opts))
  }

  /** The `/stats.json` document. */
  /** A signal another node sent over the `signalBus` for one of this server's WebSocket peers. */
  receiveSignal (signal: RemoteSignal): void {
    this.wsFrontend.deliver(this.signalling.receive(signal))
  }

  getStats (): TrackerStats {
    const c = this.store.counts
    if (this.peerStats !== undefined) return this.peerStats.snapshot(c.torrents + c.retired, c.torrents)
    return {
      torrents: c.torrents + c.retired, activeTorrents: c.torrents, peersAll: c.peers,
      peersSeederOnly: c.seeders, peersLeecherOnly: c.leechers, peersSeederAndLeecher: 0,
      peersIPv4: 0, peersIPv6: 0, clients: {}
    }
  }

  private handleHttp (req: IncomingMessage, res: ServerResponse): void {
    if (this.serveHttpTracker && this.httpFrontend.handle(req, res)) return
    if (this.serveStats && (req.method === 'GET' || req.method === 'HEAD')) {
      const url = req.url ?? ''
      const path = url.split('?', 1)[0]
      const wantsJson = path === '/stats.json' || (path === '/stats' && req.headers.accept === 'application/json')
      if (wantsJson) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' })
        res.end(JSON.stringify(this.getStats()))
        return
      }
      if (path === '/stats') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
        res.end(renderStatsHtml(this.getStats()))
        return
      }
    }
    this.notFound(res)
  }

  private notFound (res: ServerResponse): void {
    res.writeHead(404, { 'Content-Type': 'text/plain' })
    res.end('404 Not Found')
  }

  private context (opts: ServerOptions): FrontendContext {
    return {
      core: this.core,
      signalling: this.signalling,
      trustProxy: opts.trustProxy === true,
      acceptClientIp: opts.acceptClientIp === true,
      now: () => this.nowS,
      needsParams: () => this.filter !== undefined || this.listenerCount('start') + this.listenerCount('complete') +
        this.listenerCount('update') + this.listenerCount('stop') > 0,
      check: (infoHash, params) => this.filter === undefined ? null : this.runFilter(infoHash, params!),
      warning: err => { if (this.listenerCount('warning') > 0) this.emit('warning', err) },
      announced: (event: AnnounceEvent, addr: string, params: RequestParams | undefined) => {
        this.emit(EVENT_NAMES[event], addr, params)
      }
    }
  }

  private runFilter (infoHash: BinaryString, params: RequestParams): Promise<TrackerError | null> {
    const filter = this.filter!
    return new Promise(resolve => {
      let settled = false
      const settle = (res: unknown): void => {
        if (settled) return
        settled = true
        clearTimeout(timeout)
        if (res === true || res === undefined || res === null) return resolve(null)
        if (res instanceof Error) return resolve(new TrackerError('TORRENT_DISALLOWED', res.message))
        if (typeof res === 'string' && res !== '') return resolve(new TrackerError('TORRENT_DISALLOWED', res))
        resolve(trackerError('TORRENT_DISALLOWED'))
      }
      // A filter that throws, synchronously or as a rejected promise, refuses with a generic
      // reason (its error text is not for clients) and fires 'warning' (SPEC §1).
      const threw = (err: unknown): void => {
        this.emit('warning', err instanceof Error ? err : new Error(String(err)))
        if (!settled) { settled = true; clearTimeout(timeout); resolve(trackerError('FILTER_FAILED')) }
      }
      // A filter that never answers is treated like one that failed.
      const timeout = setTimeout(() => threw(new Error(`filter did not answer within ${FILTER_TIMEOUT_MS} ms`)), FILTER_TIMEOUT_MS)
      try {
        const r = filter(binaryToHex(infoHash), params, settle)
        if (typeof r === 'boolean') settle(r)
        else if (r instanceof Promise) {
          r.then(v => { if (typeof v === 'boolean' || v instanceof Error) settle(v) }, threw)
        }
      } catch (err) {
        threw(err)
      }
    })
  }

  private startTimers (): void {
    this.timer = setInterval(() => this.tick(), 1000)
    this.timer.unref()
    // Also for sockets adopted through onWebSocketConnection when `ws` is off.
    this.heartbeatTimer = setInterval(() => this.wsFrontend.heartbeat(), WS_HEARTBEAT_MS)
    this.heartbeatTimer.unref()
  }

  /** Refreshes the clock and advances the incremental expiry sweep. */
  private tick (): void {
    this.nowS = Math.floor(Date.now() / 1000)
    if (this.nowS < this.nextSweep) return
    try {
      const r = this.store.sweep(this.nowS, SWEEP_BUDGET)
      // At most one announce interval between passes, so a peer goes after about two intervals
      // of silence (SPEC §5) even when the interval is shorter than SWEEP_INTERVAL_MS.
      const pause = Math.min(SWEEP_INTERVAL_MS / 1000, this.core.opts.interval)
      const after = (done: boolean): void => { if (done) this.nextSweep = this.nowS + pause }
      if (typeof r === 'boolean') after(r)
      else r.then(after, (err: unknown) => this.emit('warning', err))
    } catch (err) {
      this.emit('warning', err)
    }
  }

  /** Binds HTTP first (its port decides the others when port 0 was asked), then UDP4 and UDP6. */
  private bindAll (httpPort: number, udpPort: number | undefined, hosts: Hosts, retries: number): void {
    this.binding = true
    const fail = (err: Error): void => {
      // Port 0 picked an HTTP port whose UDP twin is taken: try another one.
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && httpPort === 0 && udpPort === undefined && retries > 0) {
        this.unbindAll(() => this.bindAll(httpPort, udpPort, hosts, retries - 1))
        return
      }
      this.binding = false
      this.emit('error', err)
    }
    const bindUdp = (port: number): void => {
      const sockets: Array<[UdpSocket, string | undefined]> = []
      if (this.udp4 !== null && hosts.udp4 !== null) sockets.push([this.udp4, hosts.udp4])
      if (this.udp6 !== null && hosts.udp6 !== null) sockets.push([this.udp6, hosts.udp6])
      if (sockets.length === 0) return this.onBound()
      const bindNext = (i: number, p: number): void => {
        if (i === sockets.length) return this.onBound()
        const [socket, host] = sockets[i]
        const onError = (err: Error): void => { socket.off('listening', onOk); fail(err) }
        const onOk = (): void => {
          socket.off('error', onError)
          bindNext(i + 1, i === 0 && p === 0 ? socket.address().port : p)
        }
        socket.once('error', onError)
        socket.once('listening', onOk)
        socket.bind(p, host)
      }
      bindNext(0, port)
    }
    if (this.http !== null) {
      const server = this.http
      const onError = (err: Error): void => { server.off('listening', onOk); fail(err) }
      const onOk = (): void => {
        server.off('error', onError)
        bindUdp(udpPort ?? (server.address() as AddressInfo).port)
      }
      server.once('error', onError)
      server.once('listening', onOk)
      server.listen(httpPort, hosts.http)
    } else {
      bindUdp(udpPort ?? httpPort)
    }
  }

  /** A UDP socket wired to the frontend, on the chosen backend. */
  private udpSocket (type: 'udp4' | 'udp6'): UdpSocket {
    if (this.addon !== undefined) {
      // The addon's IPv6 socket is IPV6_V6ONLY, as below.
      const x = this.udpExtra
      const nativeOpts: NativeUdpOptions = {
        reuseAddr: x.reuseAddr === true,
        reusePort: (x as { reusePort?: boolean }).reusePort === true,
        recvBufferSize: x.recvBufferSize,
        sendBufferSize: x.sendBufferSize
      }
      const socket = new BatchUdpSocket(this.addon, type, this.udpFrontend, nativeOpts)
      socket.on('error', err => this.onSocketError(err))
      return socket
    }
    // ipv6Only: the IPv4 socket owns IPv4 traffic on the same port, and replies keep the family.
    const socket = dgram.createSocket({ type, reuseAddr: false, ipv6Only: type === 'udp6', lookup: literalLookup, ...this.udpExtra })
    const port = dgramReplyPort(socket)
    socket.on('message', (msg, rinfo) => this.udpFrontend.onDgram(port, msg, rinfo))
    socket.on('error', err => this.onSocketError(err))
    return socket
  }

  private unbindAll (then: () => void): void {
    // dgram sockets cannot re-bind after an error: make fresh ones with the same handlers.
    const remake = (s: UdpSocket | null, type: 'udp4' | 'udp6'): UdpSocket | null => {
      if (s === null) return null
      try { s.close() } catch { /* never bound */ }
      return this.udpSocket(type)
    }
    this.udp4 = this.udp = remake(this.udp4, 'udp4')
    this.udp6 = remake(this.udp6, 'udp6')
    if (this.http?.listening === true) this.http.close(() => then())
    else then()
  }

  /**
   * A request Node's HTTP parser refused (bad bytes in the target, a broken header, a timeout):
   * bad client input like any other, so a 'warning' (SPEC §6), then Node's own default answer,
   * which a 'clientError' listener replaces. A client that reset the connection is not bad input.
   */
  private onClientError (err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code !== 'ECONNRESET' && this.listenerCount('warning') > 0) this.emit('warning', err)
    const s = socket as Duplex & { bytesWritten?: number }
    if (s.writable && (s.bytesWritten ?? 0) === 0) {
      const status = err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
      s.write(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`)
    }
    s.destroy()
  }

  /** Errors while binding are handled by `bindAll`; after that they are fatal server errors. */
  private onSocketError (err: Error): void {
    if (!this.binding) this.emit('error', err)
  }

  private onBound (): void {
    this.binding = false
    this.listening = true
    this.emit('listening')
  }

  private torrentsView (): Record<string, TorrentView> {
    const store = this.store
    const view = (hex: string): TorrentView | undefined => {
      const bin = hex.length === 40 ? hexToBinary(hex.toLowerCase()) : undefined
      const info = bin === undefined ? undefined : store.swarmInfo(bin)
      if (info === undefined) return undefined
      const peers: TorrentView['peers'] = new Map()
      for (const [key, p] of info.peers()) {
        const a = parseCompactAddr(p.addr)
        const ip = a?.ip ?? ''
        const port = a?.port ?? 0
        const ws = p.kind === KIND_WS
        peers.set(ws ? binaryToHex(key) : (a !== undefined ? (a.family === 6 ? `[${ip}]:${port}` : `${ip}:${port}`) : ''), {
          peerId: binaryToHex(p.peerId), ip, port, complete: p.seeder, type: ws ? 'ws' : 'http/udp'
        })
      }
      return { infoHash: hex.toLowerCase(), complete: info.complete, incomplete: info.incomplete, downloaded: info.downloaded, peers }
    }
    return new Proxy(Object.create(null) as Record<string, TorrentView>, {
      get: (_t, key) => typeof key === 'string' ? view(key) : undefined,
      has: (_t, key) => typeof key === 'string' && view(key) !== undefined,
      ownKeys: () => Array.from(store.infoHashes(), binaryToHex),
      getOwnPropertyDescriptor: (_t, key) => {
        const v = typeof key === 'string' ? view(key) : undefined
        return v === undefined ? undefined : { value: v, enumerable: true, configurable: true, writable: false }
      },
      set: () => false,
      deleteProperty: () => false,
      defineProperty: () => false
    })
  }
}

/** The addon when `udpBackend` and the `udp` options allow it; otherwise why not. */
function chooseUdpBackend (opts: ServerOptions): { addon?: NativeAddon, reason?: string } {
  const want = opts.udpBackend ?? 'auto'
  if (want !== 'auto' && want !== 'native' && want !== 'dgram') {
    throw new TypeError(`udpBackend must be 'auto', 'native' or 'dgram', got ${String(want)}`)
  }
  if (want === 'dgram') return { reason: "udpBackend 'dgram' chosen" }
  const status = nativeStatus()
  const addon = nativeAddon()
  if (addon === undefined) {
    if (want === 'native') throw new Error(`udpBackend 'native' is not available: ${status.reason ?? 'unknown reason'}`)
    return { reason: status.reason }
  }
  const dgramOnly = isObject(opts.udp) ? Object.keys(opts.udp).filter(k => !NATIVE_UDP_OPTIONS.has(k)) : []
  if (dgramOnly.length > 0) {
    if (want === 'native') throw new Error(`udpBackend 'native' does not support the udp options ${dgramOnly.join(', ')}`)
    return { reason: `udp options ${dgramOnly.join(', ')} need node:dgram` }
  }
  return { addon }
}

interface Hosts { http: string | undefined, udp4: string | undefined | null, udp6: string | undefined | null }

/** Addresses for each socket; a single IPv4 (IPv6) address leaves the other UDP family unbound. */
function hostsFor (h: HostnameOpt | undefined): Hosts {
  if (isObject(h)) return { http: h.http, udp4: h.udp ?? '0.0.0.0', udp6: h.udp6 ?? '::' }
  if (h === undefined || h === '') return { http: undefined, udp4: '0.0.0.0', udp6: '::' }
  if (h === 'localhost') return { http: 'localhost', udp4: '127.0.0.1', udp6: '::1' }
  if (h.includes(':')) return { http: h, udp4: h === '::' ? '0.0.0.0' : null, udp6: h }
  return { http: h, udp4: h, udp6: h === '0.0.0.0' ? '::' : null }
}

function toPort (p: unknown): number {
  const n = Number(p)
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : 0
}

function isObject (v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null
}

function isIncoming (v: unknown): v is IncomingMessage {
  return isObject(v) && 'headers' in v && 'socket' in v
}

/**
 * dgram resolves the address of every send with dns.lookup, which answers an IP literal only on
 * the next tick: a deferred send, a tick and closures per reply. Replies go to `rinfo.address`,
 * always a literal, so answer that at once (same result as dns.lookup: the literal and its
 * family); anything else still goes through dns.lookup.
 */
const literalLookup: NonNullable<dgram.SocketOptions['lookup']> = (hostname, options, callback) => {
  const family = isIP(hostname)
  if (family !== 0) return callback(null, hostname, family)
  dnsLookup(hostname, options, callback)
}
