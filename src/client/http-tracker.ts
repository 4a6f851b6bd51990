/**
 * HTTP(S) tracker connection (BEP 3, 7, 23, 48) over `fetch`, so it runs in Node and in browsers.
 * Queries and responses go through the shared codecs in protocol/http; this file only does I/O,
 * timeouts and events. Browser-safe: no Node-only imports, no Buffer.
 */
import { CLIENT_MAX_TRACKER_ID_LENGTH, MAX_SCRAPE_HASHES } from '../constants.js'
import { binaryToHex } from '../protocol/common/binary.js'
import { EVENT_STOPPED, type BinaryString } from '../protocol/common/types.js'
import {
  announceToScrapeUrl, decodeAnnounceResponse, decodeScrapeResponse, encodeAnnounceQuery, encodeScrapeQuery
} from '../protocol/http/index.js'
import {
  IS_NODE, MAX_RESPONSE_BYTES, RequestTracker, answerPeers, resolveTimeouts, scrapeResult, tooManyPeers, trackerMessage, trackerWarning, unrefTimeout,
  type AnnounceOutcome, type ClientTimeouts, type ScrapeDone, type ScrapeResult, type TimerHandle
} from './common.js'
import { ANNOUNCE_OPT_NAMES } from './tracker.js'
import type { AnnounceOpts, TrackerOwner } from './tracker.js'


interface Pending {
  controller: AbortController
  /** A `stopped` announce: allowed to finish during destroy's grace period. */
  keepOnDestroy: boolean
}

type Reply = { ok: true, status: number, body: Uint8Array } | { ok: false, error: Error }

/** `url` with `query` appended (after `?`, or `&` when it has a query already); no fragment. */
function withQuery (url: string, query: string): string {
  const hash = url.indexOf('#')
  const base = hash >= 0 ? url.slice(0, hash) : url
  if (query.length === 0) return base
  const q = base.indexOf('?')
  if (q < 0) return `${base}?${query}`
  return q === base.length - 1 || base.endsWith('&') ? base + query : `${base}&${query}`
}

/** The body, up to `max` bytes (more is an error: no tracker answer is that big). */
async function readBody (res: Response, max: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? '')
  if (declared > max) throw new Error(`tracker response of ${declared} bytes is too large`)
  if (res.body === null) return new Uint8Array(0)
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.length
    if (total > max) {
      reader.cancel().catch(() => {})
      throw new Error(`tracker response over ${max} bytes`)
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.length }
  return out
}

/** Custom announce params (README `customParam`) as query values. */
function customParams (opts: AnnounceOpts): Record<string, string | number> | undefined {
  let extra: Record<string, string | number> | undefined
  for (const name of Object.keys(opts)) {
    if (ANNOUNCE_OPT_NAMES.has(name)) continue
    const v = opts[name]
    let value: string | number
    if (typeof v === 'string' || typeof v === 'number') value = v
    else if (typeof v === 'boolean' || typeof v === 'bigint') value = String(v)
    else continue
    if (extra === undefined) extra = {}
    extra[name] = value
  }
  return extra
}

function count (v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback
}

export class HttpTracker extends RequestTracker {
  /** BEP 48 scrape URL, or undefined when the announce URL has none. */
  readonly scrapeUrl: string | undefined
  /** The `tracker id` the tracker last sent; echoed back as `trackerid`. */
  private trackerId: string | undefined
  private readonly pending = new Set<Pending>()
  private onDrained: (() => void) | undefined

  constructor (owner: TrackerOwner, announceUrl: string, timeouts: ClientTimeouts = resolveTimeouts(undefined)) {
    super(owner, announceUrl, timeouts)
    this.scrapeUrl = announceToScrapeUrl(announceUrl)
  }

  protected sendAnnounce (opts: AnnounceOpts, done: (outcome: AnnounceOutcome) => void): void {
    const query = encodeAnnounceQuery({
      infoHash: this.owner.infoHashBinary,
      peerId: this.owner.peerIdBinary,
      port: this.owner.port,
      uploaded: count(opts.uploaded, 0),
      downloaded: count(opts.downloaded, 0),
      left: count(opts.left, Infinity),
      event: opts.event,
      numwant: typeof opts.numwant === 'number' ? opts.numwant : undefined,
      compact: !(opts.compact === 0 || opts.compact === false || opts.compact === '0'),
      trackerId: this.trackerId,
      extra: customParams(opts)
    })
    this.request(withQuery(this.announceUrl, query), opts.event === EVENT_STOPPED, reply => {
      if (!reply.ok) return done({ ok: false, error: reply.error })
      const decoded = decodeAnnounceResponse(reply.body)
      if (decoded.ok && decoded.value.failure !== undefined) {
        return done({ ok: false, error: trackerMessage(this.announceUrl, decoded.value.failure) })
      }
      if (reply.status !== 200) {
        return done({ ok: false, error: trackerWarning(this.announceUrl, `tracker answered HTTP ${reply.status}`) })
      }
      if (!decoded.ok) {
        return done({ ok: false, error: trackerWarning(this.announceUrl, `invalid announce response: ${decoded.error.message}`) })
      }
      const r = decoded.value
      if (this.destroyed) return done({ ok: true })
      if (r.trackerId !== undefined) {
        if (r.trackerId.length <= CLIENT_MAX_TRACKER_ID_LENGTH) this.trackerId = r.trackerId
        else this.warn(`tracker id of ${r.trackerId.length} characters ignored (the limit is ${CLIENT_MAX_TRACKER_ID_LENGTH})`)
      }
      if (r.warning !== undefined) this.warnError(trackerMessage(this.announceUrl, r.warning))
      this.owner.emit('update', { announce: this.announceUrl, infoHash: this.owner.infoHash, complete: r.complete ?? 0, incomplete: r.incomplete ?? 0 })
      const peers = answerPeers(r.peers)
      const capped = tooManyPeers(this.announceUrl, peers)
      if (capped !== undefined) this.warnError(capped)
      for (const addr of peers.addrs) {
        if (this.destroyed) break
        this.owner.emit('peer', addr)
      }
      done({ ok: true, interval: r.interval, minInterval: r.minInterval })
    })
  }

  protected sendScrape (hashes: BinaryString[], finish: ScrapeDone): void {
    const scrapeUrl = this.scrapeUrl
    if (scrapeUrl === undefined) {
      const err = trackerWarning(this.announceUrl, 'tracker has no scrape URL (BEP 48: the path must end in /announce…)')
      queueMicrotask(() => { this.warnError(err); finish(err, []) })
      return
    }
    const results: ScrapeResult[] = []
    let firstError: Error | null = null
    let left = Math.ceil(hashes.length / MAX_SCRAPE_HASHES)
    for (let i = 0; i < hashes.length; i += MAX_SCRAPE_HASHES) {
      const chunk = hashes.slice(i, i + MAX_SCRAPE_HASHES)
      this.request(withQuery(scrapeUrl, encodeScrapeQuery(chunk)), false, reply => {
        const err = this.onScrapeReply(chunk, reply, results)
        if (err !== null && firstError === null) firstError = err
        if (--left === 0) finish(results.length > 0 ? null : firstError, results)
      })
    }
  }

  /** Emit the chunk's results (or a warning); returns the warning, if any. */
  private onScrapeReply (chunk: BinaryString[], reply: Reply, results: ScrapeResult[]): Error | null {
    let err: Error | null = null
    if (!reply.ok) {
      err = reply.error
    } else {
      const decoded = decodeScrapeResponse(reply.body)
      if (decoded.ok && decoded.value.failure !== undefined) err = trackerMessage(this.announceUrl, decoded.value.failure)
      else if (reply.status !== 200) err = trackerWarning(this.announceUrl, `tracker answered HTTP ${reply.status} to scrape`)
      else if (!decoded.ok) err = trackerWarning(this.announceUrl, `invalid scrape response: ${decoded.error.message}`)
      else {
        const wanted = new Set(chunk)
        let found = 0
        for (const f of decoded.value.files) {
          // Only hashes asked for: a tracker that ignores info_hash and sends a full scrape
          // must not flood the listener.
          if (!wanted.delete(f.infoHash)) continue
          found++
          const r = scrapeResult(this.announceUrl, f.infoHash, f)
          results.push(r)
          if (!this.destroyed) this.owner.emit('scrape', r)
        }
        // BEP 48 lets a tracker leave out hashes it does not know; only "nothing at all" warns.
        if (found === 0) err = trackerWarning(this.announceUrl, `tracker returned no scrape data for ${chunk.length === 1 ? binaryToHex(chunk[0]) : `${chunk.length} info hashes`}`)
      }
    }
    if (err !== null) this.warnError(err)
    return err
  }

  protected shutdown (graceMs: number, cb: () => void): void {
    let grace: TimerHandle | undefined
    const finish = (): void => {
      if (grace !== undefined) clearTimeout(grace)
      this.onDrained = undefined
      queueMicrotask(cb)
    }
    for (const p of this.pending) if (!p.keepOnDestroy) p.controller.abort()
    if (this.pending.size === 0) return finish()
    this.onDrained = finish
    let kept = false
    for (const p of this.pending) if (p.keepOnDestroy) kept = true
    if (kept) {
      grace = unrefTimeout(() => {
        grace = undefined
        for (const p of this.pending) p.controller.abort()
      }, graceMs)
    }
  }

  /** One GET with the request timeout; `cb` once with the status and body, or the failure. */
  private request (url: string, keepOnDestroy: boolean, cb: (reply: Reply) => void): void {
    const controller = new AbortController()
    const entry: Pending = { controller, keepOnDestroy }
    this.pending.add(entry)
    const timeoutMs = this.timeouts.request
    let timedOut = false
    const timer = unrefTimeout(() => { timedOut = true; controller.abort() }, timeoutMs)
    const headers: Record<string, string> = {}
    if (IS_NODE) {
      // Browsers choose these themselves (and ignore them here). In Node, a closed connection
      // leaves no idle keep-alive socket behind once the client is destroyed.
      headers.connection = 'close'
      if (this.owner.userAgent !== undefined) headers['user-agent'] = this.owner.userAgent
    }
    const settle = (reply: Reply): void => {
      clearTimeout(timer)
      this.pending.delete(entry)
      try {
        cb(reply)
      } finally {
        if (this.pending.size === 0 && this.onDrained !== undefined) this.onDrained()
      }
    }
    let response: Response
    fetch(url, { signal: controller.signal, headers, redirect: 'follow', cache: 'no-store' })
      .then(res => { response = res; return readBody(res, MAX_RESPONSE_BYTES) })
      .then(body => settle({ ok: true, status: response.status, body }), (err: unknown) => {
        const error = timedOut
          ? trackerWarning(this.announceUrl, `tracker did not answer within ${timeoutMs} ms`)
          : trackerWarning(this.announceUrl, `tracker request failed: ${describe(err)}`, err)
        // A body refused unread (too large) would otherwise keep its connection open for as
        // long as the tracker likes: aborting closes it.
        controller.abort()
        settle({ ok: false, error })
      })
  }
}

function describe (err: unknown): string {
  if (err instanceof Error) {
    // fetch wraps network errors as "fetch failed" with the useful part in `cause`.
    const cause = (err as { cause?: unknown }).cause
    if (cause instanceof Error && cause.message !== '') {
      const code = (cause as { code?: unknown }).code
      return typeof code === 'string' && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message
    }
    return err.message
  }
  return String(err)
}
