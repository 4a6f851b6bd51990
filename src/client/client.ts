/**
 * The tracker client of the seed README: `new Client(opts)`, start/stop/complete/update/scrape,
 * `Client.scrape`, and the 'update' / 'peer' / 'scrape' / 'warning' / 'error' events.
 *
 * This façade owns the public, callback/EventEmitter style; each tracker URL is handled by a
 * TrackerConnection (http-tracker.ts, udp-tracker.ts, ws-tracker.ts). Browser-safe: no Node-only
 * imports (EventEmitter comes from 'events', which a bundle maps to the npm package), no Buffer.
 * UDP needs node:dgram, so the UDP tracker class is not imported here: the Node entry point
 * (src/index.ts) registers it with `registerTrackerClass('udp:', UdpTracker)`. Without it —
 * in a browser bundle — `udp:` URLs give an "Unsupported tracker protocol" warning.
 */
import { EventEmitter } from 'events'
import { DEFAULT_NUMWANT, ID_LENGTH } from '../constants.js'
import { binaryToHex, bytesToBinary, hexToBinary } from '../protocol/common/binary.js'
import {
  EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED, type AnnounceEvent, type BinaryString
} from '../protocol/common/types.js'
import {
  IS_NODE, normalizeAnnounceList, parseTrackerUrl, resolveTimeouts, trackerWarning, unrefTimeout,
  type ClientTimeouts, type ScrapeDone, type ScrapeResult, type TrackerWarning
} from './common.js'
import { HttpTracker } from './http-tracker.js'
import type { AnnounceOpts, ScrapeOpts, TrackerConnection, TrackerOwner } from './tracker.js'
import { WebSocketTracker } from './ws-tracker.js'

/** An info hash or peer id: 40 hex characters, or 20 bytes. */
export type IdInput = string | Uint8Array

/** What `start/stop/complete/update(opts)` and `getAnnounceOpts()` may give. */
export interface ClientAnnounceOpts {
  /** Bytes uploaded so far. Default 0. */
  uploaded?: number
  /** Bytes downloaded so far. Default 0. */
  downloaded?: number
  /** Bytes left to download; 0 = seeder. Default: unknown (`complete()`: 0). */
  left?: number
  /** Peers wanted. Default 50. */
  numwant?: number
  /** Anything else is sent to HTTP trackers as a query parameter. */
  [custom: string]: unknown
}

export interface ClientOptions {
  /** Torrent info hash: 40-character hex string or 20 bytes. Required. */
  infoHash: IdInput
  /** This client's peer id: 40-character hex string or 20 bytes. Required. */
  peerId: IdInput
  /** Tracker URL(s): http:, https:, udp:, ws:, wss:. Required (may be an empty list). */
  announce: string | Uint8Array | Array<string | Uint8Array>
  /** The torrent client's listening port. Required in Node, optional in the browser. */
  port?: number
  /**
   * Called on every announce (by you or by the timer); its values override the defaults and,
   * as in the reference, the values passed to start/stop/complete/update.
   */
  getAnnounceOpts?: () => ClientAnnounceOpts
  /** RTCPeerConnection configuration (WebSocket trackers). */
  rtcConfig?: unknown
  /** WebRTC implementation for Node, e.g. `@roamhq/wrtc` (or a function returning one). */
  wrtc?: unknown
  /** User-Agent header of HTTP(S) requests (Node only; browsers send their own). */
  userAgent?: string
  /**
   * Timeouts and back-off, in ms (defaults: HTTP request 15 s; BEP 15 UDP 15 s · 2^n with up
   * to 8 retransmissions; failed announce retried after 15 s doubling up to 30 min; destroy
   * waits up to 1 s for a final `stopped`; a tracker's `interval` below 1 min is raised to it).
   * Mostly for tests.
   */
  timeouts?: Partial<ClientTimeouts>
}

/** 'update' event: an announce answer. */
export interface UpdateData {
  announce: string
  /** Lowercase hex info hash of the torrent. */
  infoHash: string
  /** Seeders (0 when the tracker did not say). */
  complete: number
  /** Leechers (0 when the tracker did not say). */
  incomplete: number
}

/** 'scrape' event and `Client.scrape` result. */
export type ScrapeData = ScrapeResult

/** `Client.scrape` answer: one result when one info hash was asked for, else keyed by hex hash. */
export type ScrapeResults = ScrapeData | Record<string, ScrapeData>

export type ScrapeCallback = (err: Error | null, results?: ScrapeResults) => void

export interface StaticScrapeOptions extends Partial<Omit<ClientOptions, 'infoHash' | 'announce'>> {
  /** The tracker to ask (with a list, the first usable one). */
  announce: string | string[]
  infoHash: IdInput | IdInput[]
}

/** A tracker class: one per protocol. `scrape`'s `done` is optional for a class to support. */
export type TrackerClass = new (owner: TrackerOwner, announceUrl: string, timeouts: ClientTimeouts) =>
TrackerConnection & { scrape: (opts?: ScrapeOpts, done?: ScrapeDone) => void }

const trackerClasses = new Map<string, TrackerClass>([
  ['http:', HttpTracker],
  ['https:', HttpTracker],
  ['ws:', WebSocketTracker],
  ['wss:', WebSocketTracker]
])

/** Make `protocol` (e.g. 'udp:') use `cls`. The Node entry point registers the UDP tracker. */
export function registerTrackerClass (protocol: string, cls: TrackerClass): void {
  trackerClasses.set(protocol, cls)
}

const ID_HEX = /^[0-9a-fA-F]{40}$/
/** Placeholder id of a client whose id option was malformed (it never announces). */
const NO_ID = '\0'.repeat(ID_LENGTH)

/** An id option as a binary string; throws a clear Error when it is neither form. */
function toId (v: unknown, name: string): BinaryString {
  if (typeof v === 'string') {
    if (ID_HEX.test(v)) return hexToBinary(v) as string
  } else if (ArrayBuffer.isView(v)) {
    const u8 = v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    if (u8.length === ID_LENGTH) return bytesToBinary(u8)
  }
  throw new Error(`Option \`${name}\` must be a 40-character hex string or ${ID_LENGTH} bytes`)
}

function isMissing (v: unknown): boolean {
  return v === undefined || v === null || v === ''
}

const NUMERIC_OPTS = ['uploaded', 'downloaded', 'left', 'numwant']

/** User announce options as plain values: no `event` (the method decides it), numbers as numbers. */
function cleanOpts (opts: unknown): AnnounceOpts {
  const out: AnnounceOpts = {}
  if (opts === null || typeof opts !== 'object') return out
  for (const k of Object.keys(opts)) {
    if (k === 'event') continue
    let v = (opts as Record<string, unknown>)[k]
    if (v === undefined) continue
    if (NUMERIC_OPTS.includes(k) && typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v)
    out[k] = v
  }
  return out
}

function randomPeerId (): Uint8Array {
  const id = new Uint8Array(ID_LENGTH)
  crypto.getRandomValues(id)
  return id
}

export class Client extends EventEmitter implements TrackerOwner {
  /** Lowercase hex. */
  readonly infoHash: string
  /** Lowercase hex. */
  readonly peerId: string
  readonly infoHashBinary: BinaryString
  readonly peerIdBinary: BinaryString
  readonly port: number
  readonly userAgent: string | undefined
  readonly rtcConfig: unknown
  readonly wrtc: unknown
  destroyed = false

  private getAnnounceOpts: (() => ClientAnnounceOpts) | undefined
  private trackers: TrackerConnection[] = []
  /** The values of the last announce (minus its event): the base of timer announces. */
  private lastOpts: AnnounceOpts = {}
  private readonly timeouts: ClientTimeouts

  constructor (opts: ClientOptions) {
    super()
    if (opts === null || typeof opts !== 'object') throw new Error('Client options are required')
    if (isMissing(opts.peerId)) throw new Error('Option `peerId` is required')
    if (isMissing(opts.infoHash)) throw new Error('Option `infoHash` is required')
    if (opts.announce === undefined || opts.announce === null) throw new Error('Option `announce` is required')
    if (IS_NODE && isMissing(opts.port)) throw new Error('Option `port` is required')

    // A malformed id (the seed README's own example passes 21 bytes) is a fatal client error
    // reported through 'error', as the reference's trackers would: the program keeps running.
    let invalid: Error | undefined
    let peerIdBinary = NO_ID
    let infoHashBinary = NO_ID
    try {
      peerIdBinary = toId(opts.peerId, 'peerId')
      infoHashBinary = toId(opts.infoHash, 'infoHash')
    } catch (err) {
      invalid = err as Error
    }
    this.peerIdBinary = peerIdBinary
    this.infoHashBinary = infoHashBinary
    this.peerId = binaryToHex(this.peerIdBinary)
    this.infoHash = binaryToHex(this.infoHashBinary)
    let port = 0
    if (!isMissing(opts.port)) {
      port = Number(opts.port)
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error('Option `port` must be an integer from 1 to 65535')
    }
    this.port = port
    this.userAgent = typeof opts.userAgent === 'string' && opts.userAgent !== '' ? opts.userAgent : undefined
    this.rtcConfig = opts.rtcConfig
    // As the reference: `wrtc` may be a function that loads the implementation lazily.
    this.wrtc = typeof opts.wrtc === 'function' ? (opts.wrtc as () => unknown)() : opts.wrtc
    this.getAnnounceOpts = typeof opts.getAnnounceOpts === 'function' ? opts.getAnnounceOpts : undefined
    this.timeouts = resolveTimeouts(opts.timeouts)
    if (invalid !== undefined) {
      const err = invalid
      queueMicrotask(() => { if (!this.destroyed) this.emit('error', err) })
      return
    }

    for (const url of normalizeAnnounceList(opts.announce)) {
      if (url === undefined) {
        this.warnLater(trackerWarning(undefined, 'Invalid tracker URL: not a string'))
        continue
      }
      const parsed = parseTrackerUrl(url)
      if (!parsed.ok) {
        this.warnLater(trackerWarning(undefined, parsed.message))
        continue
      }
      const protocol = parsed.url.protocol
      // A page served over https: cannot open ws: sockets (mixed content).
      if (protocol === 'ws:' && typeof window !== 'undefined' && window.location?.protocol === 'https:') {
        this.warnLater(trackerWarning(undefined, `Unsupported tracker protocol on an https: page: ${url}`))
        continue
      }
      const Cls = trackerClasses.get(protocol)
      if (Cls === undefined) {
        this.warnLater(trackerWarning(undefined, `Unsupported tracker protocol: ${url}`))
        continue
      }
      try {
        this.trackers.push(new Cls(this, url, this.timeouts))
      } catch (err) {
        this.warnLater(trackerWarning(undefined, `Invalid tracker URL: ${url}: ${(err as Error).message}`, err))
      }
    }
  }

  /** The tracker URLs in use (after folding duplicates and dropping invalid ones). */
  get announce (): string[] {
    return this.trackers.map(t => t.announceUrl)
  }

  /** Join the swarm (`started`) and re-announce on the trackers' intervals from then on. */
  start (opts?: ClientAnnounceOpts): void {
    this.announceAll(EVENT_STARTED, opts)
  }

  /** Leave the swarm gracefully (`stopped`). */
  stop (opts?: ClientAnnounceOpts): void {
    this.announceAll(EVENT_STOPPED, opts)
  }

  /** The download finished (`completed`); `left` defaults to 0. */
  complete (opts?: ClientAnnounceOpts): void {
    this.announceAll(EVENT_COMPLETED, opts)
  }

  /** Announce now, without an event (more 'update' and maybe more 'peer' events). */
  update (opts?: ClientAnnounceOpts): void {
    this.announceAll(EVENT_NONE, opts)
  }

  /**
   * Scrape every tracker; results come as 'scrape' events. `opts.infoHash` (hex string, bytes,
   * or a list of them) scrapes those torrents instead of this client's.
   */
  scrape (opts?: { infoHash?: IdInput | IdInput[] }): void {
    if (this.destroyed) return
    let infoHashes: BinaryString[] | undefined
    const want = opts?.infoHash
    if (want !== undefined && want !== null) {
      infoHashes = []
      for (const h of Array.isArray(want) ? want : [want]) {
        try {
          infoHashes.push(toId(h, 'infoHash'))
        } catch (err) {
          this.warnLater(trackerWarning(undefined, `scrape: ${(err as Error).message}`))
        }
      }
      if (infoHashes.length === 0) return
    }
    for (const t of this.trackers) t.scrape(infoHashes === undefined ? {} : { infoHashes })
  }

  /** Re-announce every `ms` instead of the trackers' own interval (never below their `min interval`). */
  setInterval (ms: number): void {
    if (this.destroyed) return
    for (const t of this.trackers) t.setInterval(ms)
  }

  /**
   * Leave without a final `stopped` (one already sent may still finish, for up to
   * `timeouts.destroyGrace`). Releases every timer and socket; `cb` runs when they are released.
   */
  destroy (cb?: (err?: Error | null) => void): void {
    if (this.destroyed) {
      if (typeof cb === 'function') queueMicrotask(() => cb(null))
      return
    }
    this.destroyed = true
    const trackers = this.trackers
    this.trackers = []
    this.getAnnounceOpts = undefined
    let left = trackers.length
    const done = (): void => { if (--left === 0 && typeof cb === 'function') cb(null) }
    if (left === 0) {
      left = 1
      queueMicrotask(done)
      return
    }
    for (const t of trackers) t.destroy(done)
  }

  /** Defaults for an announce: 50 peers, zero counters, the last values, then `getAnnounceOpts()`. */
  defaultAnnounceOpts (): AnnounceOpts {
    const o: AnnounceOpts = { numwant: DEFAULT_NUMWANT, uploaded: 0, downloaded: 0, ...this.lastOpts }
    Object.assign(o, this.fromGetter())
    delete o.event
    return o
  }

  /** `getAnnounceOpts()`, cleaned; a throwing callback is a warning, not a crash on a timer. */
  private fromGetter (): AnnounceOpts {
    const get = this.getAnnounceOpts
    if (get === undefined) return {}
    try {
      return cleanOpts(get())
    } catch (err) {
      this.emit('warning', trackerWarning(undefined, `getAnnounceOpts threw: ${(err as Error)?.message ?? String(err)}`, err))
      return {}
    }
  }

  private announceAll (event: AnnounceEvent, opts: ClientAnnounceOpts | undefined): void {
    if (this.destroyed) return
    const explicit = cleanOpts(opts)
    const fromGetter = this.fromGetter()
    // As the reference: what getAnnounceOpts() returns wins over the call's own values.
    const o: AnnounceOpts = { numwant: DEFAULT_NUMWANT, uploaded: 0, downloaded: 0, ...this.lastOpts, ...explicit, ...fromGetter }
    // `complete()` makes us a seeder: left is 0 unless this call (or getAnnounceOpts) says otherwise.
    if (event === EVENT_COMPLETED && explicit.left === undefined && fromGetter.left === undefined) o.left = 0
    this.lastOpts = { ...o }
    o.event = event
    // Trackers do not modify `opts`; one object serves them all.
    for (const t of this.trackers) t.announce(o)
  }

  /** Scrape `infoHashes` on the first tracker; `done` once with what it returned. */
  private scrapeFirst (infoHashes: BinaryString[], done: ScrapeDone): void {
    const t = this.trackers[0] as (TrackerConnection & { scrape: (o?: ScrapeOpts, d?: ScrapeDone) => void }) | undefined
    if (t === undefined) {
      queueMicrotask(() => done(new Error('no usable tracker URL'), []))
      return
    }
    t.scrape({ infoHashes }, done)
  }

  private warnLater (err: Error): void {
    queueMicrotask(() => { if (!this.destroyed) this.emit('warning', err) })
  }

  /**
   * Scrape one tracker for one or more torrents without setting up a client.
   *
   * `Client.scrape(announceUrl, infoHash | [infoHash…], cb)` or
   * `Client.scrape({ announce, infoHash }, cb)`. `cb(err, results)`: with one info hash asked
   * for, `results` is that torrent's `{ announce, infoHash, complete, incomplete, downloaded }`
   * (as the reference does); with several, an object keyed by lowercase hex info hash, holding
   * the torrents the tracker answered for (BEP 48 lets it leave unknown ones out). `err` when the
   * tracker failed or returned nothing at all. Returns the short-lived Client doing the work.
   */
  static scrape (announce: string, infoHash: IdInput | IdInput[], cb: ScrapeCallback): Client
  static scrape (opts: StaticScrapeOptions, cb: ScrapeCallback): Client
  static scrape (a: string | StaticScrapeOptions, b: IdInput | IdInput[] | ScrapeCallback, c?: ScrapeCallback): Client {
    let opts: StaticScrapeOptions
    let cb: ScrapeCallback | undefined
    if (typeof a === 'string' || Array.isArray(a)) {
      opts = { announce: a, infoHash: b as IdInput | IdInput[] }
      cb = c
    } else {
      opts = a
      cb = b as ScrapeCallback
    }
    if (typeof cb !== 'function') throw new Error('Client.scrape needs a callback')
    if (opts === null || typeof opts !== 'object') throw new Error('Client.scrape options are required')
    const list = Array.isArray(opts.infoHash) ? opts.infoHash : [opts.infoHash]
    if (list.length === 0 || list.some(isMissing)) throw new Error('Option `infoHash` is required')
    if (isMissing(opts.announce) || (Array.isArray(opts.announce) && opts.announce.length === 0)) {
      throw new Error('Option `announce` is required')
    }
    const hashes = Array.from(new Set(list.map(h => toId(h, 'infoHash'))))
    const hexes = hashes.map(binaryToHex)
    const announce = Array.isArray(opts.announce) ? opts.announce[0] : opts.announce

    const client = new Client({
      ...opts,
      announce,
      infoHash: hexes[0],
      peerId: opts.peerId ?? randomPeerId(),
      port: opts.port ?? 6881
    })
    const t = client.timeouts
    const results: Record<string, ScrapeData> = {}
    let got = 0
    let finished = false
    const callback = cb
    const finish = (err: Error | null): void => {
      if (finished) return
      finished = true
      clearTimeout(safety)
      client.destroy()
      if (got === 0) return callback(err ?? new Error('tracker returned no scrape data'))
      callback(null, hexes.length === 1 ? results[hexes[0]] : results)
    }
    // HTTP and UDP trackers always call back; this only bounds a tracker class that does not.
    const safety = unrefTimeout(() => finish(new Error('scrape timed out')), Math.max(t.request, t.udp) + 1000)
    client.on('scrape', (data: ScrapeData) => {
      if (finished || !hexes.includes(data.infoHash) || data.infoHash in results) return
      results[data.infoHash] = data
      if (++got === hexes.length) finish(null)
    })
    client.on('warning', (err: Error) => finish(err))
    client.on('error', (err: Error) => finish(err))
    client.scrapeFirst(hashes, err => finish(err))
    return client
  }
}

/** The README's events, typed. */
export interface Client {
  on (event: 'update', listener: (data: UpdateData) => void): this
  on (event: 'peer', listener: (peer: any) => void): this
  on (event: 'scrape', listener: (data: ScrapeData) => void): this
  on (event: 'warning', listener: (err: TrackerWarning) => void): this
  on (event: 'error', listener: (err: Error) => void): this
  on (event: string | symbol, listener: (...args: any[]) => void): this
  once (event: 'update', listener: (data: UpdateData) => void): this
  once (event: 'peer', listener: (peer: any) => void): this
  once (event: 'scrape', listener: (data: ScrapeData) => void): this
  once (event: 'warning', listener: (err: TrackerWarning) => void): this
  once (event: 'error', listener: (err: Error) => void): this
  once (event: string | symbol, listener: (...args: any[]) => void): this
}

export default Client
