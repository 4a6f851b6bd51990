/**
 * Small promise-based test clients for the three tracker transports, built on the project's own
 * codecs, plus `startServer` (a Server listening on port 0 on loopback).
 *
 * Every wait is bounded: an expected reply that does not come rejects after REPLY_TIMEOUT_MS,
 * and "no reply" checks resolve `undefined` after SILENCE_MS.
 */
import dgram from 'node:dgram'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import WebSocket from 'ws'
import { Server } from '../../src/server/server.js'
import type { ServerOptions } from '../../src/server/server.js'
import { encodeAnnounceQuery, decodeAnnounceResponse } from '../../src/protocol/http/announce.js'
import type { AnnounceResponse } from '../../src/protocol/http/announce.js'
import { encodeScrapeQuery, decodeScrapeResponse } from '../../src/protocol/http/scrape.js'
import type { ScrapeResponse } from '../../src/protocol/http/scrape.js'
import {
  encodeAnnounceRequest as encodeUdpAnnounce, encodeConnectRequest, encodeScrapeRequest as encodeUdpScrape,
  decodeUdpResponse
} from '../../src/protocol/udp/codec.js'
import type { UdpAnnounceFields, UdpResponse } from '../../src/protocol/udp/codec.js'
import { decodeWsResponse } from '../../src/protocol/ws/codec.js'
import type { WsServerMessage } from '../../src/protocol/ws/codec.js'
import type { AnnounceEvent, BinaryString } from '../../src/protocol/common/types.js'

/** Longest wait for a reply that must come (loopback answers in well under a millisecond). */
export const REPLY_TIMEOUT_MS = 3000
/** How long "no reply" is waited for. */
export const SILENCE_MS = 250

// ---------------------------------------------------------------------------------------------
// Identities

/** A 20-byte binary string from a seed: deterministic, covers every byte value. */
export function id20 (seed: number, prefix = ''): BinaryString {
  let s = prefix
  let x = (seed * 2654435761 + 12345) >>> 0
  while (s.length < 20) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    s += String.fromCharCode(x >>> 24)
  }
  return s.slice(0, 20)
}

export function hex (bin: BinaryString): string {
  return Buffer.from(bin, 'latin1').toString('hex')
}

export function bin (bytes: Uint8Array): BinaryString {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

// ---------------------------------------------------------------------------------------------
// Server

export interface StartedServer {
  server: Server
  port: number
  /** `http://127.0.0.1:PORT` */
  http4: string
  /** `http://[::1]:PORT` */
  http6: string
  /** `ws://127.0.0.1:PORT` */
  ws: string
  /** Every 'warning' the server emitted, in order. */
  warnings: Error[]
  close: () => Promise<void>
}

/**
 * The UDP backend this test process exercises: scripts/run-tests.mjs runs the UDP server tests
 * once as is (the native addon, which must be built) and once more with
 * BITTORRENT_TRACKER_NATIVE=0 (node:dgram). `startServer` asks for it explicitly, so a missing
 * addon fails the first run instead of quietly testing dgram twice.
 */
export const UDP_BACKEND: 'native' | 'dgram' = process.env.BITTORRENT_TRACKER_NATIVE === '0' ? 'dgram' : 'native'
/** The CLI's start-up line naming the UDP backend (tests run where the addon is built). */
export const UDP_BACKEND_LINE = UDP_BACKEND === 'native' ? 'udp: native recvmmsg/sendmmsg' : 'udp: dgram (disabled by BITTORRENT_TRACKER_NATIVE=0)'

export type Hostname = string | { http?: string, udp?: string, udp6?: string }

/**
 * A Server listening on port 0. By default the UDP sockets are bound to 127.0.0.1 and ::1 and
 * HTTP/WS to the dual-stack wildcard (the one way a single HTTP server takes both 127.0.0.1 and
 * ::1); pass `hostname` to change that.
 */
export async function startServer (opts: ServerOptions = {}, hostname: Hostname = { udp: '127.0.0.1', udp6: '::1' }): Promise<StartedServer> {
  const server = new Server({ udpBackend: UDP_BACKEND, ...opts })
  const warnings: Error[] = []
  server.on('warning', (err: Error) => { warnings.push(err) })
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    server.once('error', onError)
    server.listen(0, hostname, () => { server.off('error', onError); resolve() })
  })
  const port = server.http !== null
    ? (server.http.address() as net.AddressInfo).port
    : (server.udp4 ?? server.udp6)!.address().port
  return {
    server,
    port,
    http4: `http://127.0.0.1:${port}`,
    http6: `http://[::1]:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    warnings,
    close: () => closeServer(server)
  }
}

export function closeServer (server: Server): Promise<void> {
  return withTimeout(new Promise<void>(resolve => server.close(() => resolve())), REPLY_TIMEOUT_MS, 'server.close')
}

// ---------------------------------------------------------------------------------------------
// Generic helpers

export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

/**
 * Polls `check` until it returns true (every `stepMs`, at most `maxMs`): only for state that
 * has no event (a socket close seen by the server, the expiry sweep). Returns whether it held.
 */
export async function waitFor (check: () => boolean, maxMs: number, stepMs = 10): Promise<boolean> {
  const end = Date.now() + maxMs
  for (let i = 0; i < Math.ceil(maxMs / stepMs) + 1; i++) {
    if (check()) return true
    if (Date.now() >= end) break
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
  return check()
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface HttpResult {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** GET `path` (sent as is, not re-encoded) under `base` (`http://host:port` or `http://host:port/prefix`). */
/**
 * One GET on a fresh connection. An `https:` base goes over TLS, trusting exactly `tls.ca` (a
 * PEM certificate) when given.
 */
export function httpGet (base: string, path: string, headers?: http.OutgoingHttpHeaders, tls?: { ca: string }): Promise<HttpResult> {
  const u = new URL(base)
  const secure = u.protocol === 'https:'
  return withTimeout(new Promise<HttpResult>((resolve, reject) => {
    const req = (secure ? https : http).request({
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: Number(u.port),
      path: u.pathname.replace(/\/$/, '') + path,
      method: 'GET',
      headers,
      ca: tls?.ca,
      agent: false
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  }), REPLY_TIMEOUT_MS, `${secure ? 'HTTPS ' : ''}GET ${path.slice(0, 80)}`)
}

export interface HttpAnnounceFields {
  infoHash: BinaryString
  peerId: BinaryString
  port: number
  left?: number
  uploaded?: number
  downloaded?: number
  event?: AnnounceEvent
  numwant?: number
  compact?: boolean
  extra?: Record<string, string | number>
}

export type HttpAnnounceResult = AnnounceResponse & HttpResult

/** An announce to `${base}/announce`; the reply decoded with the project's client decoder. */
export async function httpAnnounce (base: string, f: HttpAnnounceFields): Promise<HttpAnnounceResult> {
  const q = encodeAnnounceQuery({
    infoHash: f.infoHash,
    peerId: f.peerId,
    port: f.port,
    uploaded: f.uploaded ?? 0,
    downloaded: f.downloaded ?? 0,
    left: f.left ?? 1000,
    event: f.event,
    numwant: f.numwant,
    compact: f.compact ?? true,
    extra: f.extra
  })
  const r = await httpGet(base, `/announce?${q}`)
  const d = decodeAnnounceResponse(r.body)
  if (!d.ok) throw new Error(`undecodable announce reply (${r.status}): ${r.body.toString('latin1')}`)
  return { ...d.value, ...r }
}

export type HttpScrapeResult = ScrapeResponse & HttpResult

export async function httpScrape (base: string, infoHashes: readonly BinaryString[]): Promise<HttpScrapeResult> {
  const r = await httpGet(base, `/scrape?${encodeScrapeQuery(infoHashes)}`)
  const d = decodeScrapeResponse(r.body)
  if (!d.ok) throw new Error(`undecodable scrape reply (${r.status}): ${r.body.toString('latin1')}`)
  return { ...d.value, ...r }
}

/**
 * Writes `data` on a fresh TCP connection and collects everything the server sends until it
 * closes the connection (or `maxMs` passes). `endAfterWrite` half-closes after writing.
 */
export function rawTcp (host: string, port: number, data: Uint8Array | string, opts: { maxMs?: number, destroyAfterWrite?: boolean } = {}): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = net.connect({ host, port })
    const timer = setTimeout(() => { socket.destroy(); resolve(Buffer.concat(chunks)) }, opts.maxMs ?? REPLY_TIMEOUT_MS)
    socket.on('connect', () => {
      socket.write(data, () => {
        if (opts.destroyAfterWrite === true) { socket.destroy(); clearTimeout(timer); resolve(Buffer.alloc(0)) }
      })
    })
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)) })
    socket.on('error', err => {
      // A reset after the server answered still leaves us its answer.
      if (chunks.length > 0 || opts.destroyAfterWrite === true) return
      clearTimeout(timer)
      reject(err)
    })
  })
}

// ---------------------------------------------------------------------------------------------
// UDP

export interface UdpAnnounceInput extends Partial<Omit<UdpAnnounceFields, 'infoHash' | 'peerId' | 'port'>> {
  infoHash: BinaryString
  peerId: BinaryString
  port: number
}

export interface UdpClient {
  readonly family: 4 | 6
  /** The client socket's own port. */
  readonly localPort: number
  /** Sends raw bytes and waits for the next datagram, or `undefined` after `timeoutMs`. */
  send: (bytes: Uint8Array, timeoutMs?: number) => Promise<Buffer | undefined>
  /** Sends without waiting. */
  fire: (bytes: Uint8Array) => void
  /** The next datagram (queued or still to come), or `undefined` after `timeoutMs`. */
  next: (timeoutMs?: number) => Promise<Buffer | undefined>
  /** Datagrams received and not yet taken by `next`. */
  readonly pending: number
  /**
   * Sends a connect as a barrier and returns every datagram that arrived before its reply:
   * the tracker answers in order, so `[]` proves the packets sent earlier got no answer.
   */
  drain: () => Promise<Buffer[]>
  /** BEP 15 connect; remembers and returns the connection id. */
  connect: () => Promise<Uint8Array>
  /** Announce (connecting first if needed); resolves the decoded reply plus its raw bytes. */
  announce: (f: UdpAnnounceInput, urlData?: BinaryString) => Promise<UdpResponse & { raw: Buffer }>
  scrape: (infoHashes: readonly BinaryString[]) => Promise<UdpResponse & { raw: Buffer }>
  /** Decodes a reply with this family's peer size. */
  decode: (raw: Uint8Array) => UdpResponse
  connectionId: Uint8Array | undefined
  nextTransactionId: () => number
  close: () => void
}

/** A UDP client bound to loopback (127.0.0.1 or ::1) talking to `port` on the same address. */
export async function udpClient (family: 4 | 6, port: number): Promise<UdpClient> {
  const host = family === 4 ? '127.0.0.1' : '::1'
  const socket = dgram.createSocket(family === 4 ? { type: 'udp4' } : { type: 'udp6', ipv6Only: true })
  const queue: Buffer[] = []
  let waiter: ((b: Buffer | undefined) => void) | undefined
  socket.on('message', (msg: Buffer) => {
    if (waiter !== undefined) { const w = waiter; waiter = undefined; w(msg) } else queue.push(msg)
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, host, () => { socket.off('error', reject); resolve() })
  })
  let tid = (Math.random() * 0xffffffff) >>> 0
  const peerLength = family === 4 ? 6 : 18

  const next = (timeoutMs = SILENCE_MS): Promise<Buffer | undefined> => {
    const q = queue.shift()
    if (q !== undefined) return Promise.resolve(q)
    if (waiter !== undefined) throw new Error('udpClient: one next() at a time')
    return new Promise(resolve => {
      const timer = setTimeout(() => { waiter = undefined; resolve(undefined) }, timeoutMs)
      waiter = b => { clearTimeout(timer); resolve(b) }
    })
  }
  const fire = (bytes: Uint8Array): void => { socket.send(bytes, port, host) }
  const send = (bytes: Uint8Array, timeoutMs = SILENCE_MS): Promise<Buffer | undefined> => {
    fire(bytes)
    return next(timeoutMs)
  }
  const decode = (raw: Uint8Array): UdpResponse => {
    const d = decodeUdpResponse(raw, peerLength)
    if (!d.ok) throw new Error(`undecodable UDP reply: ${d.error.message}`)
    return d.value
  }
  const request = async (bytes: Uint8Array, t: number): Promise<UdpResponse & { raw: Buffer }> => {
    const raw = await send(bytes, REPLY_TIMEOUT_MS)
    if (raw === undefined) throw new Error('no UDP reply')
    const r = decode(raw)
    if (r.transactionId !== t) throw new Error(`transaction id ${r.transactionId}, expected ${t}`)
    return { ...r, raw }
  }
  const client: UdpClient = {
    family,
    localPort: socket.address().port,
    send,
    fire,
    next,
    get pending () { return queue.length },
    async drain () {
      const t = client.nextTransactionId()
      fire(encodeConnectRequest(t))
      const before: Buffer[] = []
      for (let i = 0; i < 1000; i++) {
        const m = await next(REPLY_TIMEOUT_MS)
        if (m === undefined) throw new Error('no reply to the barrier connect')
        if (m.length === 16 && m.readUInt32BE(0) === 0 && m.readUInt32BE(4) === t) return before
        before.push(m)
      }
      throw new Error('more than 1000 datagrams before the barrier reply')
    },
    connectionId: undefined,
    nextTransactionId: () => { tid = (tid + 1) >>> 0; return tid },
    decode,
    async connect () {
      const t = client.nextTransactionId()
      const r = await request(encodeConnectRequest(t), t)
      if (r.action !== 'connect') throw new Error(`connect answered with ${r.action}`)
      client.connectionId = r.connectionId
      return r.connectionId
    },
    async announce (f, urlData) {
      const cid = client.connectionId ?? await client.connect()
      const t = client.nextTransactionId()
      return request(encodeUdpAnnounce({
        connectionId: cid,
        transactionId: t,
        request: {
          infoHash: f.infoHash,
          peerId: f.peerId,
          port: f.port,
          downloaded: f.downloaded ?? 0,
          left: f.left ?? 1000,
          uploaded: f.uploaded ?? 0,
          event: f.event ?? 0,
          ip: f.ip,
          key: f.key,
          numwant: f.numwant ?? -1
        },
        urlData
      }), t)
    },
    async scrape (infoHashes) {
      const cid = client.connectionId ?? await client.connect()
      const t = client.nextTransactionId()
      return request(encodeUdpScrape(cid, t, infoHashes), t)
    },
    close () { try { socket.close() } catch { /* closed */ } }
  }
  return client
}

// ---------------------------------------------------------------------------------------------
// WebSocket

export interface WsClient {
  readonly socket: WebSocket
  /** Local port of the TCP connection (the server sees the peer at 127.0.0.1:localPort). */
  readonly localPort: number
  /** Sends an object as JSON, or a string / bytes as they are (bytes as a binary frame). */
  send: (data: unknown) => void
  /** The next text frame (raw), or `undefined` after `timeoutMs`. */
  nextRaw: (timeoutMs?: number) => Promise<string | undefined>
  /** The next frame parsed as JSON; rejects when none comes within REPLY_TIMEOUT_MS. */
  next: () => Promise<Record<string, unknown>>
  /** The next frame decoded by the project's client codec. */
  nextDecoded: () => Promise<WsServerMessage>
  /** Frames received and not yet taken. */
  readonly pending: number
  /**
   * Sends a scrape as a barrier and returns every frame (parsed) that arrived before its reply:
   * `[]` proves nothing was sent to this socket before.
   */
  drain: () => Promise<Array<Record<string, unknown>>>
  /** Resolves with the close code once the connection is closed. */
  readonly closed: Promise<number>
  close: () => Promise<number>
}

/** The info hash WS barrier scrapes ask for (no test announces it; an allowlist must let it through). */
export const BARRIER_HASH = '\x00'.repeat(19) + '\x01'

export async function wsClient (url: string, opts: WebSocket.ClientOptions = {}): Promise<WsClient> {
  const socket = new WebSocket(url, { perMessageDeflate: false, ...opts })
  const queue: string[] = []
  let waiter: ((s: string | undefined) => void) | undefined
  socket.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
    const s = isBinary ? '<binary>' : (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString('utf8')
    if (waiter !== undefined) { const w = waiter; waiter = undefined; w(s) } else queue.push(s)
  })
  const closed = new Promise<number>(resolve => socket.once('close', (code: number) => resolve(code)))
  socket.on('error', () => { /* surfaced through `closed` */ })
  await withTimeout(new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  }), REPLY_TIMEOUT_MS, `ws connect ${url}`)
  const nextRaw = (timeoutMs = SILENCE_MS): Promise<string | undefined> => {
    const q = queue.shift()
    if (q !== undefined) return Promise.resolve(q)
    if (waiter !== undefined) throw new Error('wsClient: one next() at a time')
    return new Promise(resolve => {
      const timer = setTimeout(() => { waiter = undefined; resolve(undefined) }, timeoutMs)
      waiter = s => { clearTimeout(timer); resolve(s) }
    })
  }
  const next = async (): Promise<Record<string, unknown>> => {
    const s = await nextRaw(REPLY_TIMEOUT_MS)
    if (s === undefined) throw new Error('no WebSocket message')
    return JSON.parse(s) as Record<string, unknown>
  }
  const underlying = (socket as unknown as { _socket: net.Socket })._socket
  return {
    socket,
    localPort: underlying.localPort ?? 0,
    send (data) {
      if (typeof data === 'string' || data instanceof Uint8Array) socket.send(data)
      else socket.send(JSON.stringify(data))
    },
    nextRaw,
    next,
    async nextDecoded () {
      const s = await nextRaw(REPLY_TIMEOUT_MS)
      if (s === undefined) throw new Error('no WebSocket message')
      const d = decodeWsResponse(s)
      if (!d.ok) throw new Error(`undecodable ws frame: ${d.error.message}: ${s.slice(0, 200)}`)
      return d.value
    },
    get pending () { return queue.length },
    async drain () {
      socket.send(JSON.stringify({ action: 'scrape', info_hash: [BARRIER_HASH] }))
      const before: Array<Record<string, unknown>> = []
      for (let i = 0; i < 1000; i++) {
        const m = await next()
        const files = m.files as Record<string, unknown> | undefined
        if (m.action === 'scrape' && typeof files === 'object' && files !== null && Object.keys(files).includes(BARRIER_HASH)) return before
        before.push(m)
      }
      throw new Error('more than 1000 frames before the barrier reply')
    },
    closed,
    close () {
      if (socket.readyState === WebSocket.CLOSED) return closed
      socket.close()
      return withTimeout(closed, REPLY_TIMEOUT_MS, 'ws close').catch(() => { socket.terminate(); return closed })
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Peer agents: one announcing peer on one transport, with replies in a common shape, so one
// scenario runs unchanged over HTTP v4, HTTP v6, UDP v4, UDP v6 and WS.

export const TRANSPORTS = ['HTTP v4', 'HTTP v6', 'UDP v4', 'UDP v6', 'WS'] as const
export type TransportName = typeof TRANSPORTS[number]

export type EventName = 'started' | 'completed' | 'stopped' | 'paused' | 'update'
const EVENT_NUMBER: Record<EventName, AnnounceEvent> = { update: 0, completed: 1, started: 2, stopped: 3, paused: 4 }

export interface AgentAnnounce {
  event?: EventName
  /** Default 1000 (a leecher); 0 makes a seeder. */
  left?: number
  numwant?: number
  /** Custom params: HTTP query params, WS fields of their own. */
  extra?: Record<string, string>
  /** UDP only: BEP 41 URL data. */
  urlData?: string
  /** HTTP only: `compact=0`. */
  compact?: boolean
  /** WS only: offers to send (default 10, none with `stopped`). */
  offers?: number
}

export interface AgentReply {
  failure?: string
  complete?: number
  incomplete?: number
  interval?: number
  minInterval?: number
  /**
   * The peers the answer gave, as keys of `server.torrents[hex].peers`: `ip:port` / `[ip]:port`
   * for HTTP and UDP, the hex peer id of every WS peer that was relayed one of the offers.
   */
  peers: string[]
}

export interface AgentScrape {
  failure?: string
  files: Map<BinaryString, { complete: number, incomplete: number, downloaded: number }>
}

export interface Agent {
  readonly transport: TransportName
  readonly peerId: BinaryString
  /** Key of this peer in `server.torrents[hex].peers`. */
  readonly key: string
  /** `ip:port` the announce events carry. */
  readonly addr: string
  announce: (infoHash: BinaryString, o?: AgentAnnounce) => Promise<AgentReply>
  scrape: (infoHashes: readonly BinaryString[]) => Promise<AgentScrape>
  close: () => Promise<void>
}

interface WsAgentState {
  agent: Agent
  client: WsClient
  /** Offers and answers received, in order. */
  inbox: Array<Record<string, unknown>>
}

function peerKey (addr: BinaryString): string {
  const b = Buffer.from(addr, 'latin1')
  if (b.length === 6) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}:${b.readUInt16BE(4)}`
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16))
  // Only loopback and a few documentation addresses appear in these tests; keep it simple.
  const text = groups.join(':') === '0:0:0:0:0:0:0:1' ? '::1' : groups.join(':')
  return `[${text}]:${b.readUInt16BE(16)}`
}

/** Creates agents on one server and closes them all; WS agents are tracked for offer collection. */
export class AgentPool {
  private readonly agents: Agent[] = []
  private readonly ws: WsAgentState[] = []
  private offerSeq = 0

  constructor (readonly s: StartedServer) {}

  async create (transport: TransportName, peerId: BinaryString, port: number): Promise<Agent> {
    const a = transport.startsWith('HTTP')
      ? this.httpAgent(transport, peerId, port)
      : transport.startsWith('UDP')
        ? await this.udpAgent(transport, peerId, port)
        : await this.wsAgent(peerId)
    this.agents.push(a)
    return a
  }

  /** Offers and answers a WS agent has received (and the collection step has seen). */
  inbox (a: Agent): Array<Record<string, unknown>> {
    const st = this.ws.find(w => w.agent === a)
    if (st === undefined) throw new Error('not a WS agent of this pool')
    return st.inbox
  }

  wsClientOf (a: Agent): WsClient {
    const st = this.ws.find(w => w.agent === a)
    if (st === undefined) throw new Error('not a WS agent of this pool')
    return st.client
  }

  /**
   * Makes every open WS agent's pending frames visible: each sends a scrape and reads up to its
   * reply. The tracker writes relayed offers in the same tick as the reply to the announcer, so
   * anything relayed before this call is in front of that scrape reply on each socket.
   */
  async collect (): Promise<void> {
    for (const st of this.ws) {
      if (st.client.socket.readyState !== WebSocket.OPEN) continue
      st.inbox.push(...await st.client.drain())
    }
  }

  async closeAll (): Promise<void> {
    await Promise.all(this.agents.map(a => a.close()))
  }

  private httpAgent (transport: TransportName, peerId: BinaryString, port: number): Agent {
    const v6 = transport === 'HTTP v6'
    const base = v6 ? this.s.http6 : this.s.http4
    const addr = v6 ? `[::1]:${port}` : `127.0.0.1:${port}`
    return {
      transport,
      peerId,
      key: addr,
      addr,
      async announce (infoHash, o = {}) {
        const r = await httpAnnounce(base, {
          infoHash,
          peerId,
          port,
          left: o.left ?? 1000,
          event: EVENT_NUMBER[o.event ?? 'update'],
          numwant: o.numwant,
          compact: o.compact,
          extra: o.extra
        })
        if (r.failure !== undefined) return { failure: r.failure, peers: [] }
        return {
          complete: r.complete,
          incomplete: r.incomplete,
          interval: r.interval,
          minInterval: r.minInterval,
          peers: r.peers.map(p => peerKey(p.addr))
        }
      },
      async scrape (infoHashes) {
        const r = await httpScrape(base, infoHashes)
        const files = new Map(r.files.map(f => [f.infoHash, { complete: f.complete, incomplete: f.incomplete, downloaded: f.downloaded }]))
        return r.failure !== undefined ? { failure: r.failure, files } : { files }
      },
      close: async () => {}
    }
  }

  private async udpAgent (transport: TransportName, peerId: BinaryString, port: number): Promise<Agent> {
    const family = transport === 'UDP v6' ? 6 : 4
    const client = await udpClient(family, this.s.port)
    const addr = family === 6 ? `[::1]:${port}` : `127.0.0.1:${port}`
    return {
      transport,
      peerId,
      key: addr,
      addr,
      async announce (infoHash, o = {}) {
        const r = await client.announce({
          infoHash,
          peerId,
          port,
          left: o.left ?? 1000,
          event: EVENT_NUMBER[o.event ?? 'update'],
          numwant: o.numwant ?? -1
        }, o.urlData)
        if (r.action === 'error') return { failure: r.message, peers: [] }
        if (r.action !== 'announce') throw new Error(`announce answered with ${r.action}`)
        return {
          complete: r.seeders,
          incomplete: r.leechers,
          interval: r.interval,
          peers: r.peers.map(p => peerKey(p.addr))
        }
      },
      async scrape (infoHashes) {
        const r = await client.scrape(infoHashes)
        if (r.action === 'error') return { failure: r.message, files: new Map() }
        if (r.action !== 'scrape') throw new Error(`scrape answered with ${r.action}`)
        return { files: new Map(r.entries.map((e, i) => [infoHashes[i], e])) }
      },
      close: async () => { client.close() }
    }
  }

  private async wsAgent (peerId: BinaryString): Promise<Agent> {
    const client = await wsClient(this.s.ws)
    const pool = this
    const st: WsAgentState = { agent: undefined as unknown as Agent, client, inbox: [] }
    const readReply = async (action: string): Promise<Record<string, unknown>> => {
      for (let i = 0; i < 1000; i++) {
        const m = await client.next()
        if (m['failure reason'] !== undefined) return m
        if (m.action === action && m.offer === undefined && m.answer === undefined) return m
        st.inbox.push(m)
      }
      throw new Error('no reply among 1000 frames')
    }
    st.agent = {
      transport: 'WS',
      peerId,
      key: hex(peerId),
      addr: `127.0.0.1:${client.localPort}`,
      async announce (infoHash, o = {}) {
        const stopping = o.event === 'stopped'
        const n = o.offers ?? (stopping ? 0 : 10)
        const seq = ++pool.offerSeq
        const offerIds = Array.from({ length: n }, (_, i) => `o${seq}-${i}`.padEnd(20, '.'))
        const msg: Record<string, unknown> = {
          action: 'announce',
          info_hash: infoHash,
          peer_id: peerId,
          uploaded: 0,
          downloaded: 0,
          left: o.left ?? 1000,
          numwant: o.numwant ?? n,
          offers: offerIds.map(id => ({ offer_id: id, offer: { type: 'offer', sdp: `sdp of ${id}` } }))
        }
        if (o.event !== undefined && o.event !== 'update') msg.event = o.event
        if (o.extra !== undefined) Object.assign(msg, o.extra)
        client.send(msg)
        const r = await readReply('announce')
        if (r['failure reason'] !== undefined) return { failure: String(r['failure reason']), peers: [] }
        await pool.collect()
        const ids = new Set(offerIds)
        const peers: string[] = []
        for (const w of pool.ws) {
          for (const m of w.inbox) {
            if (m.offer !== undefined && ids.has(String(m.offer_id))) peers.push(w.agent.key)
          }
        }
        return {
          complete: r.complete as number,
          incomplete: r.incomplete as number,
          interval: r.interval as number,
          peers
        }
      },
      async scrape (infoHashes) {
        client.send({ action: 'scrape', info_hash: infoHashes })
        const r = await readReply('scrape')
        if (r['failure reason'] !== undefined) return { failure: String(r['failure reason']), files: new Map() }
        const files = r.files as Record<string, { complete: number, incomplete: number, downloaded: number }>
        return { files: new Map(Object.entries(files)) }
      },
      close: async () => { await client.close() }
    }
    this.ws.push(st)
    return st.agent
  }
}
