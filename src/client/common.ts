/**
 * Shared by the client's tracker classes: tracker URL parsing, timer and back-off helpers, the
 * client's timing defaults, and `RequestTracker`, the announce scheduler of the request/response
 * transports (HTTP and UDP). Browser-safe: no Node-only imports, no Buffer.
 *
 * The names exported here are used by ws-tracker.ts too; keep them stable.
 */
import {
  CLIENT_DEFAULT_INTERVAL_MS, CLIENT_MAX_PEERS_PER_ANSWER, CLIENT_MAX_RESPONSE_BYTES, CLIENT_MIN_REANNOUNCE_MS, CLIENT_MIN_TRACKER_INTERVAL_MS
} from '../constants.js'
import { formatAddr, parseCompactAddr } from '../protocol/common/address.js'
import { binaryToHex } from '../protocol/common/binary.js'
import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED, type AnnounceEvent, type BinaryString } from '../protocol/common/types.js'
import type { AnnounceOpts, ScrapeOpts, TrackerConnection, TrackerOwner } from './tracker.js'

// ---------------------------------------------------------------------------------------------
// Environment

/** True in Node.js (and Node-compatible runtimes), false in a browser bundle. */
export const IS_NODE: boolean = typeof process !== 'undefined' && process !== null &&
  typeof process.versions === 'object' && process.versions !== null && typeof process.versions.node === 'string'

// ---------------------------------------------------------------------------------------------
// Timing

/** How long the client waits for trackers, and how it backs off. All in ms. */
export interface ClientTimeouts {
  /** One HTTP(S) request, from sending it to the end of the body. */
  request: number
  /** BEP 15: the first UDP timeout (n = 0); retransmission n waits `udp · 2^n`. */
  udp: number
  /** BEP 15: the most UDP retransmissions of one request (n runs up to this). */
  udpRetransmits: number
  /** First delay before re-trying a failed announce; doubles per consecutive failure. */
  retryMin: number
  /** Longest delay between re-tries of a failing tracker. */
  retryMax: number
  /** How long `destroy()` lets an in-flight `stopped` announce finish before cutting it off. */
  destroyGrace: number
  /** Shortest re-announce interval a tracker's answer may set (a smaller `interval` is raised to it). */
  intervalFloor: number
}

export const DEFAULT_TIMEOUTS: Readonly<ClientTimeouts> = Object.freeze({
  // The reference client's request timeout; long enough for a slow tracker on another continent.
  request: 15_000,
  // BEP 15: "15 * 2 ^ n seconds", n = 0…8.
  udp: 15_000,
  udpRetransmits: 8,
  // A tracker that failed is tried again after 15 s, then 30 s, 1 min … up to 30 min.
  retryMin: 15_000,
  retryMax: 30 * 60_000,
  // The reference waits as long for pending requests on destroy.
  destroyGrace: 1_000,
  intervalFloor: CLIENT_MIN_TRACKER_INTERVAL_MS
})

/** `DEFAULT_TIMEOUTS` with the valid (finite, ≥ 0) entries of `opts` laid over it. */
export function resolveTimeouts (opts: Partial<ClientTimeouts> | undefined): ClientTimeouts {
  const out: ClientTimeouts = { ...DEFAULT_TIMEOUTS }
  if (opts === undefined || opts === null || typeof opts !== 'object') return out
  for (const k of Object.keys(out) as Array<keyof ClientTimeouts>) {
    const v = opts[k]
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[k] = v
  }
  return out
}

export const DEFAULT_CLIENT_INTERVAL_MS = CLIENT_DEFAULT_INTERVAL_MS
export const MIN_REANNOUNCE_MS = CLIENT_MIN_REANNOUNCE_MS
export const MAX_RESPONSE_BYTES = CLIENT_MAX_RESPONSE_BYTES
/** setTimeout fires at once for delays above 2^31 − 1 ms (~24.8 days): clamp to it. */
export const MAX_TIMER_MS = 0x7fffffff

export type TimerHandle = ReturnType<typeof setTimeout>

/**
 * setTimeout that does not keep Node's event loop alive (a no-op difference in browsers).
 * The delay is clamped to 0…MAX_TIMER_MS.
 */
export function unrefTimeout (fn: () => void, ms: number): TimerHandle {
  const t = setTimeout(fn, Math.min(Math.max(0, Math.floor(ms)), MAX_TIMER_MS))
  const u = t as unknown as { unref?: () => void }
  if (typeof u.unref === 'function') u.unref()
  return t
}

/**
 * Exponential back-off with jitter: `min · 2^attempt`, capped at `max`, then a uniformly random
 * point of its upper half ("equal jitter"), so many clients that failed together do not retry
 * together, and a delay never drops below half its nominal value. `attempt` counts from 0.
 */
export function backoffDelay (attempt: number, min: number, max: number, random: () => number = Math.random): number {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 40)
  const nominal = Math.min(max, min * 2 ** exp)
  return Math.floor(nominal / 2 + random() * (nominal / 2))
}

/** Consecutive-failure counter around `backoffDelay`. */
export class Backoff {
  private failures = 0
  constructor (private readonly min: number, private readonly max: number, private readonly random: () => number = Math.random) {}
  /** The delay before the next attempt; each call counts one more failure. */
  next (): number {
    return backoffDelay(this.failures++, this.min, this.max, this.random)
  }

  /** After a success: the next failure waits `min` again. */
  reset (): void {
    this.failures = 0
  }

  get attempts (): number {
    return this.failures
  }
}

// ---------------------------------------------------------------------------------------------
// Tracker URLs

export type TrackerProtocol = 'http:' | 'https:' | 'udp:' | 'ws:' | 'wss:'

export interface TrackerUrl {
  /** The URL as the client knows it (trailing slashes removed). */
  href: string
  protocol: TrackerProtocol
  /** Host name or address; IPv6 without brackets. */
  hostname: string
  /** Explicit port, or the scheme's default (80/443); UDP has no default. */
  port: number
  /** Path and query as an HTTP request target (`/announce?k=1`); '/' when there is none. */
  target: string
}

export type ParsedTrackerUrl =
  | { ok: true, url: TrackerUrl }
  | { ok: false, reason: 'invalid' | 'unsupported' | 'port', message: string }

const PROTOCOLS: ReadonlySet<string> = new Set(['http:', 'https:', 'udp:', 'ws:', 'wss:'])
const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 }

/**
 * Parse a tracker URL. `udp:` is parsed as if it were `http:` because WHATWG URL treats other
 * schemes as opaque in some browsers (no host/port). A UDP URL must name its port.
 */
export function parseTrackerUrl (href: string): ParsedTrackerUrl {
  if (typeof href !== 'string' || href.length === 0) return { ok: false, reason: 'invalid', message: `Invalid tracker URL: ${String(href)}` }
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(href)
  if (m === null) return { ok: false, reason: 'invalid', message: `Invalid tracker URL: ${href}` }
  const protocol = m[1].toLowerCase() + ':'
  if (!PROTOCOLS.has(protocol)) return { ok: false, reason: 'unsupported', message: `Unsupported tracker protocol: ${href}` }
  let u: URL
  try {
    u = new URL(protocol === 'udp:' ? 'http:' + href.slice(m[0].length) : href)
  } catch {
    return { ok: false, reason: 'invalid', message: `Invalid tracker URL: ${href}` }
  }
  if (u.hostname === '') return { ok: false, reason: 'invalid', message: `Invalid tracker URL: ${href}` }
  let port: number
  if (u.port !== '') {
    port = Number(u.port)
  } else if (protocol === 'udp:') {
    // new URL('http://h:80') drops the default port: tell "udp://h:80" from "udp://h".
    if (!/^[a-zA-Z]+:\/\/[^/?#]*:80(?:[/?#]|$)/.test(href)) {
      return { ok: false, reason: 'port', message: `Invalid tracker port: ${href}` }
    }
    port = 80
  } else {
    port = DEFAULT_PORTS[protocol]
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return { ok: false, reason: 'port', message: `Invalid tracker port: ${href}` }
  }
  let hostname = u.hostname
  if (hostname.startsWith('[') && hostname.endsWith(']')) hostname = hostname.slice(1, -1)
  return { ok: true, url: { href, protocol: protocol as TrackerProtocol, hostname, port, target: u.pathname + u.search } }
}

const utf8 = new TextDecoder()

/**
 * The `announce` option as a list of distinct URLs, in order: strings (or UTF-8 bytes, as a
 * parsed torrent holds them) with surrounding whitespace and trailing slashes removed, so
 * `http://t/announce/` and `http://t/announce` are one tracker. Entries that are neither strings
 * nor bytes come back as `undefined` so the caller can warn about them.
 */
export function normalizeAnnounceList (announce: unknown): Array<string | undefined> {
  const list: unknown[] = Array.isArray(announce) ? announce : [announce]
  const seen = new Set<string>()
  const out: Array<string | undefined> = []
  for (const item of list) {
    let s: string
    if (typeof item === 'string') s = item
    else if (item instanceof Uint8Array) s = utf8.decode(item)
    else { out.push(undefined); continue }
    s = s.trim()
    let end = s.length
    // Fold trailing slashes, but never eat into the "//" after the scheme.
    while (end > 0 && s.charCodeAt(end - 1) === 0x2f && !s.slice(0, end).endsWith('://')) end--
    s = s.slice(0, end)
    if (seen.has(s)) continue
    seen.add(s)
    out.push(s)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Warnings

/** A 'warning' the client emits: a tracker was unavailable, refused or sent bad data. */
export interface TrackerWarning extends Error {
  /** The tracker URL it concerns (absent for warnings about the client's own input). */
  announce?: string
}

/** An Error whose message names the tracker, with `announce` set. */
export function trackerWarning (announce: string | undefined, message: string, cause?: unknown): TrackerWarning {
  const err: TrackerWarning = new Error(announce === undefined ? message : `${message} (${announce})`)
  if (announce !== undefined) err.announce = announce
  if (cause !== undefined) (err as { cause?: unknown }).cause = cause
  return err
}

/**
 * What a tracker itself said (`failure reason`, `warning message`, a UDP error packet), as an
 * Error whose message is exactly that text, with `announce` set.
 */
export function trackerMessage (announce: string, text: string): TrackerWarning {
  const err: TrackerWarning = new Error(text)
  err.announce = announce
  return err
}

// ---------------------------------------------------------------------------------------------
// Peers of an announce answer

/**
 * The `"ip:port"` texts an answer's peers (compact addresses) give as 'peer' events: connectable
 * ones (port ≠ 0), each once, at most CLIENT_MAX_PEERS_PER_ANSWER. `total`: the distinct
 * connectable addresses the answer held, so a caller can tell the app that some were left out.
 */
export function answerPeers (peers: ReadonlyArray<{ addr: string }>): { addrs: string[], total: number } {
  const seen = new Set<string>()
  const addrs: string[] = []
  for (const p of peers) {
    const a = parseCompactAddr(p.addr)
    if (a === undefined || a.port === 0) continue
    const text = formatAddr(a.ip, a.port)
    if (seen.has(text)) continue
    seen.add(text)
    if (addrs.length < CLIENT_MAX_PEERS_PER_ANSWER) addrs.push(text)
  }
  return { addrs, total: seen.size }
}

/** The warning for an answer whose peers `answerPeers` cut short, else undefined. */
export function tooManyPeers (announce: string, got: { addrs: string[], total: number }): TrackerWarning | undefined {
  if (got.total <= got.addrs.length) return undefined
  return trackerWarning(announce, `tracker sent ${got.total} peers; only the first ${got.addrs.length} are used`)
}

// ---------------------------------------------------------------------------------------------
// Scrape results, as the tracker classes hand them to the owner

export interface ScrapeResult {
  announce: string
  /** Hex. */
  infoHash: string
  complete: number
  incomplete: number
  downloaded: number
}

/** The public form of a tracker's scrape entry for `infoHash` (binary). */
export function scrapeResult (announce: string, infoHash: BinaryString, e: { complete: number, incomplete: number, downloaded: number }): ScrapeResult {
  return { announce, infoHash: binaryToHex(infoHash), complete: e.complete, incomplete: e.incomplete, downloaded: e.downloaded }
}

/** Called once when a scrape has finished: the entries the tracker returned, or why it failed. */
export type ScrapeDone = (err: Error | null, results: ScrapeResult[]) => void

// ---------------------------------------------------------------------------------------------
// RequestTracker: announce scheduling for request/response transports (HTTP, UDP)

/** How an announce ended, as a transport reports it to `RequestTracker`. */
export type AnnounceOutcome =
  /** Answered; `interval`/`minInterval` in seconds when the tracker sent them. */
  | { ok: true, interval?: number, minInterval?: number }
  /**
   * Not answered, or refused (`failure reason`, UDP error): warn and retry with back-off.
   * `quiet`: given up on purpose (superseded by a newer announce, or a `stopped` nobody
   * answered): no warning and no retry.
   */
  | { ok: false, error: Error, quiet?: boolean }

/**
 * The event of a queued announce replaced by a newer one: the newer event when it has one, else
 * the older one's `started`/`completed` (a plain announce after `stopped` rejoins: none).
 */
function mergeEvent (older: AnnounceEvent | undefined, newer: AnnounceEvent | undefined): AnnounceEvent {
  if (newer !== undefined && newer !== EVENT_NONE) return newer
  return older === undefined || older === EVENT_STOPPED ? EVENT_NONE : older
}

/**
 * The announce life cycle shared by the HTTP and UDP trackers, so both behave the same:
 *
 * - One announce in flight per tracker; one more may wait behind it (a newer one replaces it,
 *   keeping the stronger event), so `start(); complete()` reach the tracker in that order.
 * - A `started` or `completed` that the tracker has not acknowledged is carried on the next
 *   plain (timer or `update()`) announce, so a failure never loses it.
 * - After an answer the next announce is scheduled after the tracker's `interval` (raised to
 *   `timeouts.intervalFloor`) or the one set with `setInterval`, never sooner than the tracker's
 *   `min interval` or MIN_REANNOUNCE_MS.
 * - After a failure: one 'warning', then a retry after an exponential back-off with jitter
 *   (`retryMin` doubling up to `retryMax`), reset by the next answer. A failed `stopped` is not
 *   retried; after `stopped` no more timer announces happen until the next announce.
 * - destroy(): timers cleared at once; an in-flight (or queued) `stopped` may finish within
 *   `destroyGrace`; everything else is cut off. No event is emitted after destroy.
 */
export abstract class RequestTracker implements TrackerConnection {
  readonly announceUrl: string
  destroyed = false
  protected readonly owner: TrackerOwner
  protected readonly timeouts: ClientTimeouts

  private timer: TimerHandle | undefined
  private userIntervalMs = 0
  private trackerIntervalMs = 0
  private minIntervalMs = 0
  private readonly backoff: Backoff
  private inFlight = false
  private queued: AnnounceOpts | undefined
  /** An acknowledged-pending `started`/`completed`, carried on later plain announces. */
  private pendingEvent: AnnounceEvent = EVENT_NONE
  /** True between a non-`stopped` announce and a `stopped` one: timer announces happen. */
  private joined = false

  constructor (owner: TrackerOwner, announceUrl: string, timeouts: ClientTimeouts) {
    this.owner = owner
    this.announceUrl = announceUrl
    this.timeouts = timeouts
    this.backoff = new Backoff(Math.max(1, timeouts.retryMin), Math.max(1, timeouts.retryMax))
  }

  /**
   * Send one announce and call `done` exactly once. Emit 'update' and 'peer' (unless destroyed)
   * before calling `done({ ok: true })`. `done` may be called after destroy (then it is ignored).
   */
  protected abstract sendAnnounce (opts: AnnounceOpts, done: (outcome: AnnounceOutcome) => void): void
  /** Scrape these (distinct) info hashes; the transport emits 'scrape'/'warning' and calls `done` once. */
  protected abstract sendScrape (hashes: BinaryString[], done: ScrapeDone): void
  /**
   * Release the transport: cut off every request except in-flight `stopped` announces, which get
   * until `graceMs`; call `cb` once everything is closed.
   */
  protected abstract shutdown (graceMs: number, cb: () => void): void

  announce (opts: AnnounceOpts): void {
    if (this.destroyed) return
    if (this.inFlight) {
      const q = { ...opts }
      q.event = mergeEvent(this.queued?.event, opts.event)
      this.queued = q
      return
    }
    this.dispatch(opts)
  }

  /** Scrape `opts.infoHashes` (default: the owner's), each once; `done` is called once if given. */
  scrape (opts?: ScrapeOpts, done?: ScrapeDone): void {
    const finish: ScrapeDone = (err, results) => { if (done !== undefined) done(err, results) }
    if (this.destroyed) {
      queueMicrotask(() => finish(new Error('tracker destroyed'), []))
      return
    }
    const all = opts?.infoHashes !== undefined && opts.infoHashes.length > 0 ? opts.infoHashes : [this.owner.infoHashBinary]
    this.sendScrape(Array.from(new Set(all)), finish)
  }

  setInterval (ms?: number): void {
    this.userIntervalMs = typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : 0
    // Re-arm a waiting re-announce with the new period (a back-off retry keeps its delay).
    if (this.joined && !this.inFlight && this.timer !== undefined && this.backoff.attempts === 0) {
      this.schedule(this.nextIntervalMs())
    }
  }

  destroy (cb?: (err?: Error | null) => void): void {
    if (this.destroyed) {
      if (cb !== undefined) queueMicrotask(() => cb(null))
      return
    }
    this.destroyed = true
    this.clearTimer()
    const queued = this.queued
    this.queued = undefined
    if (queued !== undefined && queued.event === EVENT_STOPPED) {
      // A stop waiting behind another announce goes out now, within the grace period.
      this.sendAnnounce(queued, () => {})
    }
    this.shutdown(this.timeouts.destroyGrace, () => { if (cb !== undefined) cb(null) })
  }

  /** Whether an announce is waiting behind the one in flight. */
  protected get hasQueuedAnnounce (): boolean {
    return this.queued !== undefined
  }

  /** Warn on the owner, unless destroyed. */
  protected warn (message: string, cause?: unknown): void {
    if (this.destroyed) return
    this.owner.emit('warning', trackerWarning(this.announceUrl, message, cause))
  }

  protected warnError (err: Error): void {
    if (this.destroyed) return
    this.owner.emit('warning', err)
  }

  private dispatch (opts: AnnounceOpts): void {
    this.clearTimer()
    let send = opts
    const event = opts.event ?? EVENT_NONE
    if (event === EVENT_NONE && this.pendingEvent !== EVENT_NONE) send = { ...opts, event: this.pendingEvent }
    else if (event === EVENT_STARTED || event === EVENT_COMPLETED) this.pendingEvent = event
    else if (event === EVENT_STOPPED) this.pendingEvent = EVENT_NONE
    const sent = send.event ?? EVENT_NONE
    this.joined = sent !== EVENT_STOPPED
    this.inFlight = true
    let called = false
    this.sendAnnounce(send, outcome => {
      if (called) return
      called = true
      this.inFlight = false
      if (this.destroyed) return
      this.settled(sent, outcome)
      const next = this.queued
      if (next !== undefined && !this.destroyed) {
        this.queued = undefined
        this.dispatch(next)
      }
    })
  }

  private settled (sent: AnnounceEvent, outcome: AnnounceOutcome): void {
    if (outcome.ok) {
      this.backoff.reset()
      if (sent === this.pendingEvent) this.pendingEvent = EVENT_NONE
      if (outcome.interval !== undefined && outcome.interval > 0) this.trackerIntervalMs = outcome.interval * 1000
      if (outcome.minInterval !== undefined) this.minIntervalMs = outcome.minInterval * 1000
      if (this.joined && this.queued === undefined) this.schedule(this.nextIntervalMs())
      return
    }
    if (outcome.quiet === true) return
    this.warnError(outcome.error)
    if (sent === EVENT_STOPPED || !this.joined || this.queued !== undefined) return
    this.schedule(this.backoff.next())
  }

  private nextIntervalMs (): number {
    const base = this.userIntervalMs > 0
      ? this.userIntervalMs
      : (this.trackerIntervalMs > 0 ? Math.max(this.trackerIntervalMs, this.timeouts.intervalFloor) : DEFAULT_CLIENT_INTERVAL_MS)
    return Math.max(base, this.minIntervalMs, MIN_REANNOUNCE_MS)
  }

  private schedule (ms: number): void {
    this.clearTimer()
    this.timer = unrefTimeout(() => {
      this.timer = undefined
      if (this.destroyed) return
      this.announce(this.owner.defaultAnnounceOpts())
    }, ms)
  }

  private clearTimer (): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }
}
