/**
 * UDP tracker connection (BEP 15, with BEP 41 URL data). Node only: the one client file that
 * uses `node:dgram`. Packets are built and read by protocol/udp/codec.ts.
 *
 * - One socket per tracker, connected to it (so only its replies are read, and a closed port
 *   shows up at once as ECONNREFUSED), kept while the connection id is usable and closed after
 *   a minute without requests.
 * - A connection id is reused for up to one minute after it arrived (BEP 15); a request that
 *   times out drops it, so the retransmission starts over with a connect.
 * - Retransmission n waits `timeouts.udp · 2^n` (BEP 15: 15 · 2^n s), n up to
 *   `timeouts.udpRetransmits` (8); then the request fails and the announce back-off of
 *   RequestTracker takes over. The first timeout of a tracker that had been answering is one
 *   'warning'; from then on its requests do not keep Node's event loop alive.
 * - Replies are matched by transaction id; anything else is ignored.
 */
import dgram from 'node:dgram'
import { lookup } from 'node:dns'
import { UDP_CONNECTION_ID_WINDOW_MS, UDP_MAX_SCRAPE_HASHES } from '../constants.js'
import { ipFamily } from '../protocol/common/address.js'
import { EVENT_NONE, EVENT_STOPPED, type BinaryString } from '../protocol/common/types.js'
import {
  decodeUdpResponse, encodeAnnounceRequest, encodeConnectRequest, encodeScrapeRequest, type UdpResponse
} from '../protocol/udp/codec.js'
import {
  RequestTracker, answerPeers, parseTrackerUrl, resolveTimeouts, scrapeResult, tooManyPeers, trackerMessage, trackerWarning, unrefTimeout,
  type AnnounceOutcome, type ClientTimeouts, type ScrapeDone, type ScrapeResult, type TimerHandle, type TrackerUrl
} from './common.js'
import type { AnnounceOpts, TrackerOwner } from './tracker.js'

type Settled = { ok: true, response: UdpResponse } | { ok: false, error: Error, quiet?: boolean }

interface UdpRequest {
  kind: 'announce' | 'scrape'
  /** The request packet for a connection id and a transaction id. */
  build: (connectionId: Uint8Array, transactionId: number) => Uint8Array
  /** BEP 15's n: how many times it has timed out. */
  n: number
  /** Transaction id of the packet in flight (0: none). */
  tid: number
  stage: 'waiting' | 'connect' | 'action'
  /** The connection id the action packet carried. */
  usedConnectionId: Uint8Array | undefined
  timer: TimerHandle | undefined
  /** Keeps Node's event loop alive (until the first timeout). */
  holdsLoop: boolean
  /** A `stopped` announce: may finish during destroy's grace period; gives up quietly. */
  stop: boolean
  settle: (result: Settled) => void
}

function randomTid (): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]
}

function count (v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback
}

export class UdpTracker extends RequestTracker {
  private readonly target: TrackerUrl
  /** BEP 41 URL data: the announce URL's path and query (undefined when it has none). */
  private readonly urlData: BinaryString | undefined
  private socket: dgram.Socket | undefined
  private socketState: 'closed' | 'opening' | 'open' = 'closed'
  private peerLength: 6 | 18 = 6
  private connectionId: Uint8Array | undefined
  private connectionIdAt = 0
  /** Consecutive timeouts without any answer; a new request starts at this n. */
  private silence = 0
  private readonly byTid = new Map<number, UdpRequest>()
  private readonly active = new Set<UdpRequest>()
  private current: UdpRequest | undefined
  private idleTimer: TimerHandle | undefined
  private onDrained: (() => void) | undefined

  constructor (owner: TrackerOwner, announceUrl: string, timeouts: ClientTimeouts = resolveTimeouts(undefined)) {
    super(owner, announceUrl, timeouts)
    const parsed = parseTrackerUrl(announceUrl)
    if (!parsed.ok || parsed.url.protocol !== 'udp:') throw new TypeError(`not a UDP tracker URL: ${announceUrl}`)
    this.target = parsed.url
    this.urlData = parsed.url.target === '/' ? undefined : parsed.url.target
  }

  override announce (opts: AnnounceOpts): void {
    super.announce(opts)
    // A newer announce does not wait behind one that is already retransmitting to a silent
    // tracker: that one is dropped and the newer one (carrying its event) goes out now.
    const cur = this.current
    if (cur !== undefined && cur.n >= 1 && this.hasQueuedAnnounce) {
      this.finish(cur, { ok: false, error: new Error('superseded'), quiet: true })
    }
  }

  protected sendAnnounce (opts: AnnounceOpts, done: (outcome: AnnounceOutcome) => void): void {
    const event = opts.event ?? EVENT_NONE
    const fields = {
      infoHash: this.owner.infoHashBinary,
      peerId: this.owner.peerIdBinary,
      downloaded: count(opts.downloaded, 0),
      left: count(opts.left, Infinity),
      uploaded: count(opts.uploaded, 0),
      event,
      numwant: typeof opts.numwant === 'number' ? opts.numwant : -1,
      port: this.owner.port
    }
    const req = this.newRequest('announce', (cid, tid) => encodeAnnounceRequest({
      connectionId: cid, transactionId: tid, request: fields, urlData: this.urlData
    }), event === EVENT_STOPPED, result => {
      if (this.current === req) this.current = undefined
      if (!result.ok) return done(result)
      const r = result.response
      if (r.action !== 'announce') return done({ ok: false, error: trackerWarning(this.announceUrl, 'unexpected UDP reply') })
      if (!this.destroyed) {
        this.owner.emit('update', { announce: this.announceUrl, infoHash: this.owner.infoHash, complete: r.seeders, incomplete: r.leechers })
        const peers = answerPeers(r.peers)
        const capped = tooManyPeers(this.announceUrl, peers)
        if (capped !== undefined) this.warnError(capped)
        for (const addr of peers.addrs) {
          if (this.destroyed) break
          this.owner.emit('peer', addr)
        }
      }
      done({ ok: true, interval: r.interval })
    })
    this.current = req
    this.start(req)
  }

  protected sendScrape (hashes: BinaryString[], finish: ScrapeDone): void {
    const results: ScrapeResult[] = []
    let firstError: Error | null = null
    let left = Math.ceil(hashes.length / UDP_MAX_SCRAPE_HASHES)
    for (let i = 0; i < hashes.length; i += UDP_MAX_SCRAPE_HASHES) {
      const chunk = hashes.slice(i, i + UDP_MAX_SCRAPE_HASHES)
      const req = this.newRequest('scrape', (cid, tid) => encodeScrapeRequest(cid, tid, chunk), false, result => {
        let err: Error | null = null
        if (!result.ok) {
          if (result.quiet !== true) err = result.error
        } else if (result.response.action !== 'scrape') {
          err = trackerWarning(this.announceUrl, 'unexpected UDP reply')
        } else {
          // Entries come in request order; a short reply covers the first hashes only.
          const entries = result.response.entries
          const n = Math.min(entries.length, chunk.length)
          for (let k = 0; k < n; k++) {
            const r = scrapeResult(this.announceUrl, chunk[k], entries[k])
            results.push(r)
            if (!this.destroyed) this.owner.emit('scrape', r)
          }
          if (n === 0) err = trackerWarning(this.announceUrl, 'tracker returned no scrape data')
        }
        if (err !== null) {
          if (firstError === null) firstError = err
          this.warnError(err)
        }
        if (--left === 0) finish(results.length > 0 ? null : firstError ?? new Error('scrape cancelled'), results)
      })
      this.start(req)
    }
  }

  protected shutdown (graceMs: number, cb: () => void): void {
    let grace: TimerHandle | undefined
    const finish = (): void => {
      if (grace !== undefined) clearTimeout(grace)
      this.onDrained = undefined
      this.closeSocket(cb)
    }
    for (const req of Array.from(this.active)) {
      if (!req.stop) this.finish(req, { ok: false, error: new Error('tracker destroyed'), quiet: true })
    }
    if (this.active.size === 0) return finish()
    this.onDrained = finish
    grace = unrefTimeout(() => {
      grace = undefined
      for (const req of Array.from(this.active)) this.finish(req, { ok: false, error: new Error('tracker destroyed'), quiet: true })
    }, graceMs)
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  private newRequest (kind: UdpRequest['kind'], build: UdpRequest['build'], stop: boolean, settle: UdpRequest['settle']): UdpRequest {
    const n = Math.min(this.silence, this.timeouts.udpRetransmits)
    return { kind, build, n, tid: 0, stage: 'waiting', usedConnectionId: undefined, timer: undefined, holdsLoop: this.silence === 0, stop, settle }
  }

  private start (req: UdpRequest): void {
    this.active.add(req)
    if (this.idleTimer !== undefined) { clearTimeout(this.idleTimer); this.idleTimer = undefined }
    if (this.socketState === 'open') {
      this.updateRef()
      this.transmit(req)
    } else if (this.socketState === 'closed') {
      this.openSocket()
    }
  }

  /** Send the request's next packet: its action if a fresh connection id is at hand, else a connect. */
  private transmit (req: UdpRequest): void {
    const socket = this.socket
    if (socket === undefined || this.socketState !== 'open') return
    if (req.tid !== 0) this.byTid.delete(req.tid)
    let tid = randomTid()
    while (tid === 0 || this.byTid.has(tid)) tid = randomTid()
    req.tid = tid
    this.byTid.set(tid, req)
    let packet: Uint8Array
    const cid = this.connectionId
    if (cid !== undefined && Date.now() - this.connectionIdAt < UDP_CONNECTION_ID_WINDOW_MS) {
      req.stage = 'action'
      req.usedConnectionId = cid
      packet = req.build(cid, tid)
    } else {
      this.connectionId = undefined
      req.stage = 'connect'
      packet = encodeConnectRequest(tid)
    }
    if (req.timer !== undefined) clearTimeout(req.timer)
    const wait = this.timeouts.udp * 2 ** req.n
    req.timer = unrefTimeout(() => this.onTimeout(req, wait), wait)
    socket.send(packet, err => {
      if (err !== null && err !== undefined && this.active.has(req) && req.tid === tid) {
        this.finish(req, { ok: false, error: trackerWarning(this.announceUrl, `UDP send failed: ${err.message}`, err) })
      }
    })
  }

  private onTimeout (req: UdpRequest, waitedMs: number): void {
    req.timer = undefined
    if (!this.active.has(req)) return
    this.byTid.delete(req.tid)
    req.tid = 0
    // Silence after an action may mean the connection id went stale: connect again.
    if (req.stage === 'action' && req.usedConnectionId === this.connectionId) this.connectionId = undefined
    req.n++
    this.silence = Math.max(this.silence, req.n)
    if (req.stop) {
      // Leaving the swarm: the tracker will expire us anyway; no retries, no noise.
      return this.finish(req, { ok: false, error: new Error('stopped announce not answered'), quiet: true })
    }
    if (req.n > this.timeouts.udpRetransmits) {
      return this.finish(req, { ok: false, error: trackerWarning(this.announceUrl, `tracker did not answer after ${req.n} tries (BEP 15 back-off)`) })
    }
    if (req.holdsLoop) {
      req.holdsLoop = false
      this.warn(`tracker did not answer within ${waitedMs} ms; retransmitting with BEP 15 back-off`)
      this.updateRef()
    }
    this.transmit(req)
  }

  private finish (req: UdpRequest, result: Settled): void {
    if (!this.active.delete(req)) return
    if (req.timer !== undefined) { clearTimeout(req.timer); req.timer = undefined }
    if (req.tid !== 0) { this.byTid.delete(req.tid); req.tid = 0 }
    try {
      req.settle(result)
    } finally {
      if (this.active.size === 0) this.onIdle()
      else this.updateRef()
    }
  }

  private onIdle (): void {
    if (this.onDrained !== undefined) return this.onDrained()
    this.updateRef()
    if (this.destroyed || this.socketState === 'closed') return
    // Keep the socket (and so the connection id, which the tracker may bind to its port) while
    // the id is usable; then let both go.
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer)
    this.idleTimer = unrefTimeout(() => {
      this.idleTimer = undefined
      if (this.active.size === 0) this.closeSocket(() => {})
    }, UDP_CONNECTION_ID_WINDOW_MS)
  }

  // -------------------------------------------------------------------------------------------
  // Socket

  private openSocket (): void {
    this.socketState = 'opening'
    const host = this.target.hostname
    const family = ipFamily(host)
    if (family !== 0) return this.createSocket(host, family)
    lookup(host, (err, address, fam) => {
      if (this.socketState !== 'opening' || this.socket !== undefined) return
      if (err !== null) return this.failOpening(trackerWarning(this.announceUrl, `cannot resolve ${host}: ${err.message}`, err))
      this.createSocket(address, fam === 6 ? 6 : 4)
    })
  }

  private createSocket (address: string, family: 4 | 6): void {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4')
    this.socket = socket
    this.peerLength = family === 6 ? 18 : 6
    socket.on('message', msg => this.onMessage(socket, msg))
    socket.on('error', err => this.onSocketError(socket, err))
    try {
      socket.connect(this.target.port, address, () => {
        if (this.socket !== socket) return
        this.socketState = 'open'
        this.updateRef()
        for (const req of Array.from(this.active)) if (req.stage === 'waiting') this.transmit(req)
      })
    } catch (err) {
      this.failOpening(trackerWarning(this.announceUrl, `cannot open UDP socket: ${(err as Error).message}`, err))
    }
  }

  private failOpening (error: Error): void {
    this.closeSocket(() => {})
    for (const req of Array.from(this.active)) this.finish(req, { ok: false, error })
  }

  private onSocketError (socket: dgram.Socket, err: Error): void {
    if (this.socket !== socket) return
    if (this.socketState === 'opening') {
      return this.failOpening(trackerWarning(this.announceUrl, `cannot reach tracker: ${err.message}`, err))
    }
    // On a connected socket an ICMP "port unreachable" arrives as ECONNREFUSED: the tracker is
    // not there. Every request in flight fails now rather than at its timeout.
    this.connectionId = undefined
    const error = trackerWarning(this.announceUrl, `tracker unreachable: ${err.message}`, err)
    for (const req of Array.from(this.active)) {
      if (req.stage !== 'waiting') this.finish(req, req.stop ? { ok: false, error, quiet: true } : { ok: false, error })
    }
  }

  private onMessage (socket: dgram.Socket, msg: Uint8Array): void {
    if (this.socket !== socket || msg.length < 8) return
    const tid = ((msg[4] << 24) | (msg[5] << 16) | (msg[6] << 8) | msg[7]) >>> 0
    const req = this.byTid.get(tid)
    if (req === undefined) return // not ours (late, duplicated or forged): ignore
    this.silence = 0
    const decoded = decodeUdpResponse(msg, this.peerLength)
    if (!decoded.ok) {
      return this.finish(req, { ok: false, error: trackerWarning(this.announceUrl, `invalid UDP reply: ${decoded.error.message}`) })
    }
    const r = decoded.value
    if (r.action === 'error') {
      return this.finish(req, { ok: false, error: trackerMessage(this.announceUrl, r.message) })
    }
    if (req.stage === 'connect') {
      if (r.action !== 'connect') return this.finish(req, { ok: false, error: trackerWarning(this.announceUrl, `UDP reply ${r.action} to a connect`) })
      this.connectionId = r.connectionId
      this.connectionIdAt = Date.now()
      if (req.timer !== undefined) { clearTimeout(req.timer); req.timer = undefined }
      return this.transmit(req)
    }
    if (r.action !== req.kind) {
      return this.finish(req, { ok: false, error: trackerWarning(this.announceUrl, `UDP reply ${r.action} to a ${req.kind}`) })
    }
    this.finish(req, { ok: true, response: r })
  }

  /** The socket keeps Node alive only while a request that has not timed out yet is pending. */
  private updateRef (): void {
    const socket = this.socket
    if (socket === undefined) return
    let hold = false
    for (const req of this.active) if (req.holdsLoop) { hold = true; break }
    try {
      if (hold) socket.ref()
      else socket.unref()
    } catch { /* closed */ }
  }

  private closeSocket (cb: () => void): void {
    if (this.idleTimer !== undefined) { clearTimeout(this.idleTimer); this.idleTimer = undefined }
    const socket = this.socket
    this.socket = undefined
    this.socketState = 'closed'
    this.connectionId = undefined
    if (socket === undefined) return queueMicrotask(cb)
    try {
      socket.close(() => cb())
    } catch {
      queueMicrotask(cb)
    }
  }
}
