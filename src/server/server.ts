import dgram from 'node:dgram'
import { lookup as dnsLookup } from 'node:dns'
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import type { ServerOptions as WsServerOptions, WebSocket } from 'ws'
import {
  DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_NUMWANT, DRAIN_POLL_MS, DRAIN_TIMEOUT_MS, FILTER_TIMEOUT_MS, HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS, MAX_FULL_SCRAPE, MAX_NUMWANT,
  MAX_INTERVAL_JITTER, MIN_INTERVAL_DIVISOR, PEER_EXPIRY_INTERVALS, RATE_LIMIT_MAX_ADDRESSES, REDIS_VIEW_REFRESH_MS, STATE_SAVE_INTERVAL_MS, SWEEP_BUDGET, SWEEP_INTERVAL_MS, WS_HEARTBEAT_MS,
  WS_INTERVAL_DIVISOR, WS_MAX_OFFERS, WS_MAX_PAYLOAD, WS_MAX_SWARMS_PER_SOCKET
} from '../constants.js'
import { TrackerError, trackerError } from '../errors.js'
import { canonicalIp, parseCompactAddr } from '../protocol/common/address.js'
import { binaryToHex, hexToBinary } from '../protocol/common/binary.js'
import type { AnnounceEvent, BinaryString } from '../protocol/common/types.js'
import { AccessList } from './access/access-list.js'
import { Passkeys, isValidPasskey } from './core/passkeys.js'
import { RedisSignalBus } from './core/redis-signal-bus.js'
import { Signalling } from './core/signalling.js'
import type { RemoteSignal, SignalBus } from './core/signalling.js'
import { TrackerCore } from './core/tracker.js'
import { AdminApi } from './frontends/admin.js'
import { RateLimiter, StrikeTable, cidrMatcher } from './frontends/abuse.js'
import type { RateLimit, StrikeLimit } from './frontends/abuse.js'
import { EVENT_NAMES } from './frontends/context.js'
import type { FrontendContext, FrontendLimits, RequestParams } from './frontends/context.js'
import { forwardedFor, HttpFrontend, stripZone } from './frontends/http.js'
import { attachFastHttp } from './frontends/http-fast.js'
import type { HttpRequestOptions } from './frontends/http.js'
import { UdpFrontend, dgramReplyPort } from './frontends/udp.js'
import { BatchUdpSocket } from './frontends/udp-batch.js'
import { nativeAddon, nativeStatus } from './native/loader.js'
import type { NativeAddon, NativeUdpOptions } from './native/loader.js'
import { WsFrontend } from './frontends/ws.js'
import { loadTls } from './tls.js'
import type { TlsOptions } from './tls.js'
import { RawWs } from './frontends/ws-socket.js'
import type { WsConnectionOptions } from './frontends/ws.js'
import { applyState, dumpStateSliced, loadStateFile } from './persist/state-file.js'
import type { SavedState } from './persist/state-file.js'
import { StatsCollector } from './stats/collector.js'
import { AccessGuard } from './stats/guard.js'
import { RequestMetrics } from './stats/metrics.js'
import type { SharedMetrics } from './stats/metrics.js'
import { PeerStats } from './stats/peer-stats.js'
import type { TrackerStats } from './stats/peer-stats.js'
import { createRegistry } from './stats/prometheus.js'
import { renderStatsHtml } from './stats/render.js'
import type { StatsDocument } from './stats/render.js'
import { MemoryStore } from './store/memory/memory-store.js'
import { RedisStore } from './store/redis/redis-store.js'
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
  /** Serve Prometheus metrics at `/metrics`. Default false (the CLI turns it on). */
  metrics?: boolean
  /** Require this token for `/stats`, `/stats.json` and `/metrics` (`Authorization: Bearer T` or `?token=T`). */
  statsToken?: string
  /** Serve `/stats`, `/stats.json` and `/metrics` only to these address ranges (CIDR, IPv4 and IPv6). */
  statsAllow?: string[]
  /** Period of the dashboard's history samples, ms. Default STATS_SAMPLE_MS (10 s; an hour is 360 samples). */
  statsSampleInterval?: number
  filter?: Filter
  /** Announce interval told to clients, ms. Default 600000 (WebSocket clients: a fifth of it). */
  interval?: number
  /**
   * Take the client address from `X-Forwarded-For` (its last entry, the one the proxy appended).
   * `true` trusts the header from any peer; a list of addresses or CIDR ranges
   * (`['127.0.0.1/32', '::1']`) trusts it only from those proxies.
   */
  trustProxy?: boolean | readonly string[]
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
  /** Swarm storage. Default: in memory (or Redis with `redis`). */
  store?: SwarmStore
  /**
   * Extra headers on every HTTP response of the server's own (announce, scrape, stats, health…;
   * not the WebSocket upgrade), e.g. which node answered. Checked by node:http's rules at
   * construction (a bad name or value throws).
   */
  httpHeaders?: Record<string, string>
  /**
   * `redis://host:port`: keep the swarms in this Redis, shared with every other instance given
   * the same URL (give them the same `udpSecret` too). WebSocket signals between instances go
   * over Redis pub/sub unless `signalBus` is given. `listen` waits for the connection.
   */
  redis?: string
  /**
   * Carries WebSocket offers and answers to peers connected to other nodes sharing the store
   * (other instances on one Redis, other worker threads); signals arriving from them go to
   * `receiveSignal`.
   */
  signalBus?: SignalBus
  /**
   * Worker threads (WorkerPool): this worker's run of the request counters shared by all
   * workers, so /stats.json and /metrics count every worker's requests.
   */
  sharedMetrics?: SharedMetrics
  /**
   * Torrents and clients served: an AccessList (info-hash allow/deny list file, peer id prefix
   * lists). Checked before `filter`, synchronously, on announce and scrape of every transport.
   */
  accessList?: AccessList
  /**
   * Private tracker mode: only requests carrying a known passkey are served (HTTP
   * `/announce/<key>` and `/scrape/<key>`, UDP BEP 41 URL data `/announce/<key>`, WebSocket
   * `ws://host/<key>`), with per-key upload/download accounting. `true`: on, with keys from the
   * admin API only.
   */
  private?: boolean | PrivateOptions
  /**
   * Keep swarms, `downloaded` counts and private accounting in this file: read at construction,
   * written every `stateSaveInterval` ms and on close. WebSocket peers are not saved.
   */
  stateFile?: string
  /** How often the state file is written, ms. Default STATE_SAVE_INTERVAL_MS (60 s). */
  stateSaveInterval?: number
  /**
   * Serve HTTPS and WSS (instead of HTTP and WS) on the HTTP port. PEM `cert` and `key` (string
   * or bytes), or `certFile` and `keyFile` paths, which `reloadTls()` reads again. Default: off.
   */
  tls?: TlsOptions
  /**
   * Per-address request rates, per protocol (`{ rate, burst }`: requests per second and bucket
   * size). Over the limit HTTP and WS get a failure reason, UDP is dropped. Default: off.
   * IPv4 is limited per address, IPv6 per /64.
   */
  rateLimit?: { http?: RateLimit | false, udp?: RateLimit | false, ws?: RateLimit | false, maxAddresses?: number }
  /**
   * Ignore for `banMs` a UDP source that sent `max` bad connection ids within `windowMs`.
   * Default: off.
   */
  udpBadIdLimit?: StrikeLimit & { maxAddresses?: number } | false
  /** Random spread of the announce interval told to clients, a fraction from 0 to 0.5 (0.1: ±10%). Default 0. */
  intervalJitter?: number
  /**
   * UDP I/O: 'native' batches datagrams with recvmmsg/sendmmsg through the addon built at
   * install (Linux), 'dgram' uses node:dgram, 'auto' (default) the addon when it is available
   * and the `udp` options need nothing only dgram has.
   */
  udpBackend?: UdpBackendOption
}

export type { TlsOptions } from './tls.js'

export interface PrivateOptions {
  /** Valid passkeys (16–64 characters of A-Z, a-z, 0-9). */
  keys?: Iterable<string>
  /** A file with one passkey per line; blank lines and lines starting with `#` are skipped. */
  keysFile?: string
  /** Bearer token of the admin API (`/admin/keys`); without one the API is off (404). */
  adminToken?: string
}

/** A state file that could not be used at start (the server then starts empty). */
export class StateFileWarning extends Error {
  readonly code = 'STATE_FILE_UNUSABLE'
  constructor (message: string, readonly file: string, readonly movedTo: string | undefined) {
    super(message)
    this.name = 'StateFileWarning'
  }
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
  /** Connecting to the store (and the bus) before binding; undefined for in-process stores. */
  private starting: Promise<void> | undefined
  private redisBus: RedisSignalBus | undefined
  private refreshing = false
  private nextRefresh = 0
  private readonly peerStats: PeerStats | undefined
  private readonly core: TrackerCore
  private readonly signalling: Signalling
  private readonly httpFrontend: HttpFrontend
  private readonly udpFrontend: UdpFrontend
  private readonly wsFrontend: WsFrontend
  private readonly filter: Filter | undefined
  private readonly serveHttpTracker: boolean
  /** `httpHeaders` as [name, value] pairs, for node:http responses. */
  private readonly extraHeaders: Array<[string, string]>
  private readonly serveStats: boolean
  /** Private mode's passkeys and accounting; undefined for an open tracker. */
  readonly passkeys: Passkeys | undefined
  private readonly admin: AdminApi | undefined
  private readonly stateFile: string | undefined
  private readonly peerTtl: number
  /** Accounting read from the state file while private mode is off: written back unchanged. */
  private carried: SavedState | undefined
  private saveChain: Promise<void> = Promise.resolve()
  /** The save waiting for the one running to finish (callers meanwhile share it). */
  private saveQueued: Promise<void> | undefined
  private saveTimer: NodeJS.Timeout | undefined
  private draining = false
  private readonly serveMetrics: boolean
  private readonly trustProxy: boolean
  /** Request counters, kept whatever is served: a few increments per request. */
  private readonly metrics: RequestMetrics
  private readonly collector: StatsCollector | undefined
  private readonly registry: ReturnType<typeof createRegistry> | undefined
  private readonly guard: AccessGuard
  private nowS = Math.floor(Date.now() / 1000)
  private nextSweep = 0
  private timer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private listenCalled = false
  private tlsOpts: TlsOptions | undefined
  private binding = false
  /** Extra `dgram.createSocket` options from `opts.udp`. */
  private udpExtra: Partial<dgram.SocketOptions> = {}
  private readonly addon: NativeAddon | undefined

  constructor (opts: ServerOptions = {}) {
    super()
    this.metrics = new RequestMetrics(opts.sharedMetrics)
    this.intervalMs = opts.interval !== undefined && opts.interval > 0 ? opts.interval : DEFAULT_ANNOUNCE_INTERVAL_MS
    const jitter = opts.intervalJitter ?? 0
    this.extraHeaders = Object.entries(opts.httpHeaders ?? {})
    for (const [name, value] of this.extraHeaders) {
      http.validateHeaderName(name)
      http.validateHeaderValue(name, value)
    }
    if (!(jitter >= 0 && jitter <= MAX_INTERVAL_JITTER)) throw new RangeError(`intervalJitter must be between 0 and ${MAX_INTERVAL_JITTER}`)
    // Read (and checked) before anything else is built, so a bad certificate throws cleanly.
    const tlsContext = opts.tls === undefined ? undefined : loadTls(opts.tls)
    this.tlsOpts = opts.tls
    const interval = Math.max(1, Math.ceil(this.intervalMs / 1000))
    this.filter = typeof opts.filter === 'function' ? opts.filter : undefined
    this.serveHttpTracker = opts.http !== false
    this.serveStats = opts.stats !== false
    this.serveMetrics = opts.metrics === true
    this.trustProxy = opts.trustProxy === true
    // Throws on a malformed range: a guard that silently allowed everyone would be worse.
    this.guard = new AccessGuard({ token: opts.statsToken, allow: opts.statsAllow })

    this.peerTtl = PEER_EXPIRY_INTERVALS * interval
    let bus = opts.signalBus
    if (opts.store !== undefined) {
      this.store = opts.store
    } else if (typeof opts.redis === 'string' && opts.redis !== '') {
      const ownBus = bus === undefined
      const store = new RedisStore({ url: opts.redis, peerTtl: PEER_EXPIRY_INTERVALS * interval, reapDeadNodes: ownBus })
      this.store = store
      if (ownBus) bus = this.redisBus = new RedisSignalBus(store.redis, n => store.signalChannel(n), store.prefix, signal => this.receiveSignal(signal))
      const redisBus = this.redisBus
      // Connecting starts now (a tracker mounted with onHttpRequest never listens); listen waits for it.
      this.starting = (async () => {
        await store.connect()
        await redisBus?.start()
      })()
      this.starting.catch(() => { /* reported by listen() */ })
    } else {
      this.peerStats = this.serveStats ? new PeerStats() : undefined
      this.store = new MemoryStore({ peerTtl: this.peerTtl, listener: this.peerStats })
    }
    if (opts.private !== undefined && opts.private !== false) {
      const p = opts.private === true ? {} : opts.private
      this.passkeys = loadPasskeys(p)
      if (typeof p.adminToken === 'string' && p.adminToken !== '') {
        // A key added or removed is saved at once (when there is a state file), not at the next tick.
        this.admin = new AdminApi(this.passkeys, p.adminToken, () => { this.saveState().catch(() => { /* reported as a warning */ }) })
      }
    }
    this.stateFile = typeof opts.stateFile === 'string' && opts.stateFile !== '' ? opts.stateFile : undefined
    if (this.stateFile !== undefined) this.restoreState(this.stateFile)
    this.core = new TrackerCore(this.store, {
      interval,
      wsInterval: Math.max(1, Math.ceil(interval / WS_INTERVAL_DIVISOR)),
      minInterval: Math.max(1, Math.floor(interval / MIN_INTERVAL_DIVISOR)),
      defaultNumwant: DEFAULT_NUMWANT,
      maxNumwant: opts.maxNumwant ?? MAX_NUMWANT,
      fullScrapeLimit: opts.fullScrapeLimit ?? MAX_FULL_SCRAPE,
      intervalJitter: jitter
    })
    this.signalling = new Signalling(this.store, {
      wsInterval: this.core.opts.wsInterval,
      maxOffers: opts.wsMaxOffers ?? WS_MAX_OFFERS,
      maxSwarms: opts.wsMaxSwarms ?? WS_MAX_SWARMS_PER_SOCKET,
      bus,
      intervalJitter: jitter
    })
    const ctx = this.context(opts)
    this.httpFrontend = new HttpFrontend(ctx)
    this.udpFrontend = new UdpFrontend(ctx, { secret: opts.udpSecret })
    this.wsFrontend = new WsFrontend(ctx)
    this.torrents = this.torrentsView()
    if (this.serveStats || this.serveMetrics) {
      this.collector = new StatsCollector(this.metrics, this.store, () => this.metrics.wsConnections, { sampleMs: opts.statsSampleInterval })
      if (this.serveMetrics) this.registry = createRegistry(this.metrics, this.store, this.collector, () => this.metrics.wsConnections)
    }

    const wantHttpServer = this.serveHttpTracker || this.serveStats || this.serveMetrics || (opts.ws !== false && !(isObject(opts.ws) && opts.ws.noServer === true))
    if (wantHttpServer) {
      const httpOpts = isObject(opts.http) ? opts.http : {}
      const server: http.Server = tlsContext === undefined
        ? http.createServer(httpOpts)
        // A client that never finishes its TLS handshake holds a socket: Node's default lets it for 2 min.
        : https.createServer({ handshakeTimeout: HTTP_HEADERS_TIMEOUT_MS, ...httpOpts, ...tlsContext })
      // Tracker requests are one small GET: a client slower than this is holding a socket.
      if (!isObject(opts.http) || opts.http.requestTimeout === undefined) server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS
      if (!isObject(opts.http) || opts.http.headersTimeout === undefined) server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS
      // node:http times no connection that has not begun a request: one that sends nothing would
      // be held for ever. The plain-HTTP fast path closes those itself; where node:http serves
      // every connection (TLS, or no HTTP tracker), an idle socket closes after this long.
      // WebSockets turn it off (setTimeout(0)) once upgraded; `server.http.timeout` may change it.
      const fastPath = this.serveHttpTracker && tlsContext === undefined
      if (!fastPath) server.timeout = HTTP_HEADERS_TIMEOUT_MS
      this.http = server
      server.on('error', err => this.onSocketError(err))
      server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket))
      // Added on the next tick so a user's own 'request' handler runs first; requests it
      // answered are left alone.
      let ownHandlerOnly = false
      process.nextTick(() => {
        server.on('request', (req: IncomingMessage, res: ServerResponse) => {
          if (res.headersSent || res.writableEnded) return
          for (let i = 0; i < this.extraHeaders.length; i++) res.setHeader(this.extraHeaders[i][0], this.extraHeaders[i][1])
          this.handleHttp(req, res)
        })
        ownHandlerOnly = server.listenerCount('request') === 1
      })
      // Plain HTTP: announce and scrape skip node:http (frontends/http-fast.ts) while no 'request'
      // handler of the user's would see them first; the admin API keeps its paths.
      if (fastPath) {
        attachFastHttp(server, this.httpFrontend, {
          headers: this.extraHeaders.map(([name, value]) => `${name}: ${value}\r\n`).join(''),
          accepts: url => ownHandlerOnly && server.listenerCount('request') === 1 && !(this.admin !== undefined && url.startsWith('/admin/'))
            ? this.httpFrontend.route(url)
            : undefined
        })
      }
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
      // Rate-limited upgrades are refused with 429 before the handshake completes.
      const verifyClient = ctx.limits.ws === undefined
        ? {}
        : { verifyClient: (info: { req: IncomingMessage }, cb: (ok: boolean, code?: number, message?: string) => void) => cb(this.wsFrontend.allowConnection(info.req), 429, 'Too Many Requests') }
      // `ws: true` (the default): upgrades on our HTTP server are served by our own framing
      // (frontends/ws-socket.ts: frames parsed in place, one write per socket per turn); `server.ws` is then a `ws`
      // server with `noServer` for what users do with it (address(), close(), handleUpgrade).
      // `ws` options given: the `ws` package serves them, as they configure it.
      const own = !isObject(opts.ws)
      this.ws = new WebSocketServer({
        maxPayload: WS_MAX_PAYLOAD,
        perMessageDeflate: false,
        clientTracking: false,
        ...(noServer || own ? { noServer: true } : { server: this.http! }),
        ...verifyClient,
        ...wsOpts
      })
      if (own) {
        // 'headers' and 'connection' still fire on `server.ws` (the socket emits 'close' like a `ws` one).
        const hooks = {
          headers: (headers: string[], req: IncomingMessage): void => { this.ws?.emit('headers', headers, req) },
          opened: (socket: RawWs<unknown>, req: IncomingMessage): void => { this.ws?.emit('connection', socket, req) }
        }
        this.http!.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.wsFrontend.upgrade(req, socket, head, hooks))
      }
      const httpServer = this.http
      Object.defineProperty(this.ws, 'address', {
        configurable: true,
        value: () => {
          if (noServer || httpServer === null) throw new Error('address() unavailable with { noServer: true }')
          return httpServer.address()
        }
      })
      this.ws.on('error', err => this.emit('error', err))
      this.ws.on('connection', (socket: WebSocket, req: IncomingMessage) => {
        if (!(socket instanceof RawWs)) this.wsFrontend.onConnection(socket, req, undefined, req.socket)
      })
    }
    // The clock, the expiry sweep and the WS heartbeat run from construction, not from listen():
    // a tracker mounted with onHttpRequest / onWebSocketConnection never listens.
    this.startTimers()
    if (this.stateFile !== undefined) {
      const every = opts.stateSaveInterval !== undefined && opts.stateSaveInterval > 0 ? opts.stateSaveInterval : STATE_SAVE_INTERVAL_MS
      this.saveTimer = setInterval(() => { this.saveState().catch(() => { /* reported as a warning */ }) }, every)
      this.saveTimer.unref()
    }
  }

  /**
   * Writes the state file now (atomically: temp file, fsync, rename, fsync of the directory),
   * built in slices that leave the event loop free between them. Saves run one at a time: a call
   * while one runs waits for it and then saves (calls meanwhile share that next save). A failure
   * fires 'warning' and rejects. Without `stateFile`: no-op.
   */
  saveState (): Promise<void> {
    const file = this.stateFile
    if (file === undefined) return Promise.resolve()
    // A save not started yet covers this caller too: at most one runs and one waits.
    if (this.saveQueued !== undefined) return this.saveQueued
    const run = this.saveChain.then(async () => {
      this.saveQueued = undefined
      // The snapshot is taken when this save's turn comes, so it is never older than the last one;
      // it is built in slices with the event loop running between them (see encodeState).
      await dumpStateSliced(this.store, this.passkeys, this.carried, Date.now(), file)
    })
    this.saveChain = run.catch(() => undefined)
    this.saveQueued = run.catch((err: Error) => {
      const e = new Error(`state file ${file}: cannot save: ${err.message}`)
      this.emit('warning', e)
      throw e
    })
    return this.saveQueued
  }

  /**
   * Graceful shutdown: stops accepting connections and datagrams, answers the requests in flight
   * (waiting at most DRAIN_TIMEOUT_MS), tells WebSocket clients it is going away, then closes like
   * `close` (which saves the state file).
   */
  drain (cb?: (err?: Error | null) => void): void {
    if (this.destroyed && !this.draining) {
      if (cb !== undefined) process.nextTick(cb, null)
      return
    }
    // A drain already under way: this caller hears the same end.
    if (cb !== undefined) this.once('drained', cb)
    if (this.draining) return
    this.draining = true
    this.udpFrontend.draining = true
    this.wsFrontend.goAway()
    const waits: Array<Promise<void>> = [this.udpFrontend.whenIdle()]
    let poll: NodeJS.Timeout | undefined
    const http = this.http
    if (http !== null && http.listening) {
      waits.push(new Promise(resolve => http.close(() => resolve())))
      // Keep-alive connections that finished their request are closed as soon as they are idle;
      // one still sending or awaiting its answer is left to finish.
      http.closeIdleConnections()
      poll = setInterval(() => http.closeIdleConnections(), DRAIN_POLL_MS)
    }
    let bound: NodeJS.Timeout | undefined
    const timeout = new Promise<void>(resolve => { bound = setTimeout(resolve, DRAIN_TIMEOUT_MS) })
    void Promise.race([Promise.all(waits), timeout]).then(() => {
      clearInterval(poll)
      clearTimeout(bound)
      this.close(err => { this.draining = false; this.emit('drained', err ?? null) })
    })
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
    const starting = this.starting ?? this.store.connect?.()
    if (starting === undefined) return this.bindAll(httpPort, udpPort, hosts, 5)
    // A networked store first: without it the tracker could only refuse requests.
    starting.then(() => {
      if (!this.destroyed) this.bindAll(httpPort, udpPort, hosts, 5)
    }, (err: unknown) => {
      if (!this.destroyed) this.emit('error', err instanceof Error ? err : new Error(String(err)))
    })
  }

  /** Whether the tracker can serve requests: its store is reachable (always, in memory). */
  ready (): boolean {
    return this.store.ready === undefined || this.store.ready()
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
    if (this.saveTimer !== undefined) clearInterval(this.saveTimer)
    this.collector?.stop()
    for (const s of [this.udp4, this.udp6]) {
      try { s?.close() } catch { /* not bound */ }
    }
    this.wsFrontend.closeAll()
    this.redisBus?.close()
    try { this.ws?.close() } catch { /* already closed */ }
    const closeStore = (err: Error | null): void => {
      try {
        const r = this.store.close()
        if (r instanceof Promise) r.catch(() => undefined)
      } catch { /* closing anyway */ }
      cb?.(err)
    }
    // The state is saved before the store lets go of it; a failed save is reported, not fatal.
    const done = (): void => {
      if (this.stateFile === undefined) return closeStore(null)
      this.saveState().then(() => closeStore(null), (err: Error) => closeStore(err))
    }
    if (this.http !== null && this.http.listening) {
      this.http.close(() => done())
      this.http.closeAllConnections()
    } else {
      // Draining already stopped listening: end what is left of its connections.
      this.http?.closeAllConnections()
      process.nextTick(done)
    }
  }

  /** The HTTP tracker's request handler, to mount on a server of your own (e.g. express). */
  onHttpRequest (req: IncomingMessage, res: ServerResponse, opts?: HttpRequestOptions): void {
    if (!this.httpFrontend.handle(req, res, opts)) this.notFound(res)
  }

  /** The admin API (`/admin/keys…`, private mode with an admin token) on a server of your own; else 404. */
  onAdminRequest (req: IncomingMessage, res: ServerResponse): void {
    if (this.admin === undefined || !this.admin.handle(req, res)) this.notFound(res)
  }

  /** Adopts a WebSocket accepted by a server of your own (`ws` with `noServer`, for example). */
  onWebSocketConnection (socket: WebSocket, req?: IncomingMessage | WsConnectionOptions, opts?: WsConnectionOptions): void {
    const r = isIncoming(req) ? req : (socket as unknown as { upgradeReq?: IncomingMessage }).upgradeReq
    this.wsFrontend.onConnection(socket, r, isIncoming(req) ? opts : (req ?? opts))
  }

  /** A signal another node sent over the `signalBus` for one of this server's WebSocket peers. */
  receiveSignal (signal: RemoteSignal): void {
    this.wsFrontend.deliver(this.signalling.receive(signal))
  }

  getStats (): TrackerStats {
    const c = this.store.counts
    if (this.peerStats !== undefined) return this.peerStats.snapshot(c.torrents + c.retired, c.torrents)
    const kept = this.store.trackerStats?.(c.torrents + c.retired, c.torrents)
    if (kept !== undefined) return kept
    return {
      torrents: c.torrents + c.retired, activeTorrents: c.torrents, peersAll: c.peers,
      peersSeederOnly: c.seeders, peersLeecherOnly: c.leechers, peersSeederAndLeecher: 0,
      peersIPv4: 0, peersIPv6: 0, clients: {}
    }
  }

  /** The whole `/stats.json` document: `getStats()` and the dashboard's fields. */
  getStatsDocument (): StatsDocument {
    const collector = this.collector ?? new StatsCollector(this.metrics, this.store, () => this.metrics.wsConnections)
    return { ...this.getStats(), ...collector.extras() }
  }


  /**
   * Loads the TLS certificate and key again (from `tls.certFile`/`keyFile`, or the PEM given
   * here) for connections made from now on. Throws, keeping the current ones, if they do not
   * load or do not match.
   */
  reloadTls (tls?: TlsOptions): void {
    const server = this.http
    if (this.tlsOpts === undefined || !(server instanceof https.Server)) throw new Error('TLS is not enabled on this server')
    const next = tls ?? this.tlsOpts
    server.setSecureContext(loadTls(next))
    this.tlsOpts = next
  }

  private handleHttp (req: IncomingMessage, res: ServerResponse): void {
    if (this.admin !== undefined && this.admin.handle(req, res)) return
    if (this.serveHttpTracker && this.httpFrontend.handle(req, res)) return
    if (req.method === 'GET' || req.method === 'HEAD') {
      const url = req.url ?? ''
      const path = url.split('?', 1)[0]
      if (path === '/health') return this.sendHealth(res)
      const stats = this.serveStats && (path === '/stats' || path === '/stats.json')
      const metrics = this.serveMetrics && path === '/metrics'
      if (stats || metrics) {
        if (this.guard.active) {
          const verdict = this.guard.check(req, this.clientIp(req))
          if (verdict === 401) return this.sendText(res, 401, 'unauthorized: a valid token is required', { 'WWW-Authenticate': 'Bearer' })
          if (verdict === 403) return this.sendText(res, 403, 'forbidden')
        }
        if (metrics) return this.sendMetrics(res)
        let doc
        try {
          doc = this.getStatsDocument()
        } catch (err) {
          // A store that fails to give its counters must not take the server down with it.
          if (this.listenerCount('warning') > 0) this.emit('warning', err)
          return this.sendText(res, 500, 'statistics unavailable')
        }
        if (path === '/stats.json' || req.headers.accept === 'application/json') {
          res.writeHead(200, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-store' })
          res.end(JSON.stringify(doc))
          return
        }
        res.writeHead(200, {
          'Content-Type': 'text/html; charset=utf-8',
          'Cache-Control': 'no-store',
          // Everything the page needs is inline; nothing may load from elsewhere.
          'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:"
        })
        res.end(renderStatsHtml(doc))
        return
      }
    }
    this.notFound(res)
  }

  /** 200 with `{ status: 'ok' }` when ready, else 503: for load balancers and orchestrators. */
  private sendHealth (res: ServerResponse): void {
    const storeReady = this.ready()
    const ok = this.listening && !this.destroyed && storeReady
    res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
    res.end(JSON.stringify({
      status: ok ? 'ok' : 'unavailable',
      listening: this.listening,
      storeReady,
      uptimeSeconds: this.collector === undefined ? null : Math.floor((Date.now() - this.collector.startedAt) / 1000)
    }))
  }

  private sendMetrics (res: ServerResponse): void {
    const registry = this.registry!
    registry.metrics().then(text => {
      if (res.writableEnded || res.destroyed) return
      res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' })
      res.end(text)
    }, (err: unknown) => {
      if (this.listenerCount('warning') > 0) this.emit('warning', err)
      this.sendText(res, 500, 'metrics unavailable')
    })
  }

  private sendText (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers })
    res.end(text)
  }

  /** The client address as the tracker sees it (a trusted proxy's header, else the socket's). */
  private clientIp (req: IncomingMessage): string {
    const fwd = this.trustProxy ? forwardedFor(req) : undefined
    return fwd ?? canonicalIp(stripZone(req.socket.remoteAddress ?? '')) ?? ''
  }

  private notFound (res: ServerResponse): void {
    res.writeHead(404, { 'Content-Type': 'text/plain' })
    res.end('404 Not Found')
  }

  private context (opts: ServerOptions): FrontendContext {
    const access = opts.accessList
    if (access !== undefined && !(access instanceof AccessList)) throw new TypeError('accessList must be an AccessList')
    return {
      core: this.core,
      signalling: this.signalling,
      metrics: this.metrics,
      trustsProxy: trustFunction(opts.trustProxy),
      limits: limitsFor(opts),
      acceptClientIp: opts.acceptClientIp === true,
      passkeys: this.passkeys,
      now: () => this.nowS,
      needsParams: () => this.filter !== undefined || this.listenerCount('start') + this.listenerCount('complete') +
        this.listenerCount('update') + this.listenerCount('stop') > 0,
      check: (infoHash, peerId, params) => {
        if (access !== undefined) {
          const refused = access.check(infoHash, peerId)
          if (refused !== null) return refused
        }
        return this.filter === undefined ? null : this.runFilter(infoHash, params!)
      },
      checkScrape: infoHashes => {
        if (access === undefined) return null
        for (let i = 0; i < infoHashes.length; i++) {
          const refused = access.check(infoHashes[i])
          if (refused !== null) return refused
        }
        return null
      },
      visible: entries => access === undefined ? entries : entries.filter(e => access.allows(e.infoHash)),
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
    this.collector?.start()
  }

  /** Refreshes the clock and advances the incremental expiry sweep. */
  private tick (): void {
    this.nowS = Math.floor(Date.now() / 1000)
    if (this.store.refresh !== undefined && !this.refreshing && Date.now() >= this.nextRefresh) {
      // The snapshot behind counts and server.torrents (networked stores), one reload at a time.
      this.refreshing = true
      this.nextRefresh = Date.now() + REDIS_VIEW_REFRESH_MS
      this.store.refresh().catch(() => { /* unreachable: ready() says so; next tick retries */ })
        .finally(() => { this.refreshing = false })
    }
    // A store that is away is not swept (its own reconnection and refresh tell when it is back).
    if (this.nowS < this.nextSweep || (this.store.ready !== undefined && !this.store.ready())) return
    // Accounting entries go with their peers (cheap: stops at the first fresh entry).
    this.passkeys?.expire(this.nowS - this.peerTtl)
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

  /** Reads the state file into the empty store; an unusable file is reported and moved aside. */
  private restoreState (file: string): void {
    const st = this.store
    if (st.retired === undefined || st.restorePeer === undefined || st.setDownloaded === undefined) {
      throw new Error('stateFile needs a store with retired(), restorePeer() and setDownloaded()')
    }
    const r = loadStateFile(file)
    if (r.ok) {
      applyState(r.state, st, this.passkeys, Math.floor(Date.now() / 1000) - this.peerTtl)
      if (this.passkeys === undefined && (r.state.accounts.length > 0 || r.state.reports.length > 0)) this.carried = r.state
      return
    }
    if (r.missing) return
    const w = new StateFileWarning(
      `state file ${file}: ${r.error}; starting with an empty state` + (r.movedTo !== undefined ? ` (the file was moved to ${r.movedTo})` : ''),
      file, r.movedTo)
    // After the constructor returns, so the caller's 'warning' listener hears it.
    process.nextTick(() => this.emit('warning', w))
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

  /**
   * @internal A WorkerPool worker bound or adopted this server's sockets itself (not through
   * `listen`): from now on it is listening (`listening`, `/health`, the 'listening' event).
   */
  socketsBound (): void {
    if (!this.destroyed && !this.listening) this.onBound()
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

/** The passkeys of `opts.keys` and `opts.keysFile`; a malformed key throws, naming where it is. */
function loadPasskeys (opts: PrivateOptions): Passkeys {
  const keys = new Passkeys()
  for (const k of opts.keys ?? []) {
    if (!isValidPasskey(k)) throw new Error(`invalid passkey in options.private.keys: ${JSON.stringify(String(k).slice(0, 80))} (16–64 characters of A-Z, a-z, 0-9)`)
    keys.add(k, 'file')
  }
  if (opts.keysFile !== undefined) {
    const lines = readFileSync(opts.keysFile, 'utf8').split('\n')
    for (let i = 0; i < lines.length; i++) {
      const k = lines[i].trim()
      if (k === '' || k.startsWith('#')) continue
      if (!isValidPasskey(k)) throw new Error(`keys file ${opts.keysFile} line ${i + 1}: invalid passkey (16–64 characters of A-Z, a-z, 0-9)`)
      keys.add(k, 'file')
    }
  }
  return keys
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

function trustFunction (trust: ServerOptions['trustProxy']): (ip: string) => boolean {
  if (Array.isArray(trust)) return cidrMatcher(trust)
  const all = trust === true
  return () => all
}

function limitsFor (opts: ServerOptions): FrontendLimits {
  const r = opts.rateLimit
  const size = r?.maxAddresses ?? RATE_LIMIT_MAX_ADDRESSES
  const table = (l: RateLimit | false | undefined): RateLimiter | undefined => isObject(l) ? new RateLimiter(l, size) : undefined
  const bad = opts.udpBadIdLimit
  return {
    http: table(r?.http),
    udp: table(r?.udp),
    ws: table(r?.ws),
    udpBadIds: isObject(bad) ? new StrikeTable(bad, bad.maxAddresses ?? RATE_LIMIT_MAX_ADDRESSES) : undefined
  }
}
