/**
 * A WebTorrent WebSocket tracker (SPEC §4) for one Client: announces carrying WebRTC offers,
 * answers to the offers the tracker relays, and a 'peer' event for each data channel that opens.
 *
 * Browser-safe: the socket comes from the shared pool (socket-pool.ts), WebRTC from `owner.wrtc`
 * (Node: `@roamhq/wrtc`) or the browser's own. Every frame is written and read by the codec in
 * protocol/ws/codec.ts.
 *
 * Lifecycle of a peer:
 * - Offer we make: created with an announce, kept under its offer id until the answer comes
 *   (at most `wsTimeouts.offerMs`), then given `wsTimeouts.connectMs` to open its data channel.
 * - Offer we receive: answered through the tracker, then given `wsTimeouts.connectMs`.
 * Either way the owner sees the peer (owner.emit('peer', peer)) only once it is connected; from
 * then on it belongs to the user. Peers that fail or time out before that are destroyed here.
 */
import {
  CLIENT_ICE_GATHER_TIMEOUT_MS, CLIENT_MAX_TRACKER_ID_LENGTH, CLIENT_WS_CONNECT_TIMEOUT_MS, CLIENT_WS_MAX_OFFERS, CLIENT_WS_MAX_PENDING_PEERS,
  CLIENT_WS_OFFER_TIMEOUT_MS, DEFAULT_NUMWANT
} from '../constants.js'
import { bytesToBinary, binaryToHex } from '../protocol/common/binary.js'
import { EVENT_COMPLETED, EVENT_STOPPED } from '../protocol/common/types.js'
import type { BinaryString } from '../protocol/common/types.js'
import { encodeAnnounceRequest, encodeAnswerRequest, encodeScrapeRequest } from '../protocol/ws/codec.js'
import type { WsAnnounceReply, WsRelayedSignal, WsServerMessage } from '../protocol/ws/codec.js'
import {
  DEFAULT_CLIENT_INTERVAL_MS, MAX_TIMER_MS, MIN_REANNOUNCE_MS, resolveTimeouts, scrapeResult, trackerWarning, unrefTimeout
} from './common.js'
import type { ClientTimeouts, ScrapeDone, TimerHandle } from './common.js'
import { Peer, resolveWebRtc } from './peer.js'
import type { SignalData, WebRtcImpl } from './peer.js'
import { acquireSocket } from './socket-pool.js'
import type { PoolUser, SharedSocket } from './socket-pool.js'
import { ANNOUNCE_OPT_NAMES } from './tracker.js'
import type { AnnounceOpts, ScrapeOpts, TrackerConnection, TrackerOwner } from './tracker.js'

/**
 * Timeouts of the peer lifecycle, in ms. Mutable so tests can make them short.
 * - offerMs: an offer with no answer by then is dropped. Our tracker forgets a relayed offer after
 *   60 s (WS_OFFER_TTL_MS), so an answer cannot come later than that anyway.
 * - connectMs: after the offer/answer exchange, ICE + DTLS + SCTP must finish by then.
 * - gatherMs: longest wait for ICE gathering before a description is sent as it is.
 */
export const wsTimeouts = {
  offerMs: CLIENT_WS_OFFER_TIMEOUT_MS,
  connectMs: CLIENT_WS_CONNECT_TIMEOUT_MS,
  gatherMs: CLIENT_ICE_GATHER_TIMEOUT_MS
}
/** Announces kept while the socket is down; plain updates are merged, events are kept in order. */
const MAX_QUEUED_ANNOUNCES = 4
/** Used when the Client gives no `rtcConfig`: public STUN servers, as WebTorrent peers expect. */
const DEFAULT_RTC_CONFIG: RTCConfiguration = {
  iceServers: [{ urls: ['stun:stun.l.google.com:19302', 'stun:global.stun.twilio.com:3478'] }]
}

function randomId (): BinaryString {
  return bytesToBinary(globalThis.crypto.getRandomValues(new Uint8Array(20)))
}

interface PendingPeer {
  peer: Peer
  timer: TimerHandle | undefined
  /** Set while the peer is an offer of ours waiting for its answer. */
  offerId?: string
}

export class WebSocketTracker implements TrackerConnection, PoolUser {
  readonly announceUrl: string
  readonly infoHash: BinaryString
  readonly peerId: BinaryString
  readonly userAgent: string | undefined
  awaitingAnnounce = 0
  awaitingScrape = 0
  destroyed = false

  private readonly owner: TrackerOwner
  private readonly socket: SharedSocket
  private readonly webrtc: WebRtcImpl | undefined
  private readonly rtcConfig: RTCConfiguration
  /** Offers of ours waiting for an answer, by offer id. */
  private readonly offers = new Map<string, PendingPeer>()
  /** Every peer set up here and not connected yet (offers included). */
  private readonly pending = new Set<PendingPeer>()
  /** Announces not sent yet, in call order; `sending` while one is being built (offers gathering). */
  private readonly queue: AnnounceOpts[] = []
  private sending = false
  /** Scrapes asked for while the socket was down: sent once it is open. */
  private readonly queuedScrapes: Array<{ hashes: BinaryString[], done: ScrapeDone | undefined }> = []
  /** The scrapes sent, oldest first (the tracker answers them in order): what each asked for. */
  private readonly scrapesSent: Array<{ hashes: ReadonlySet<BinaryString>, done: ScrapeDone | undefined }> = []
  private trackerId: string | undefined
  /** The user's interval (setInterval) and the tracker's, in ms; the user's wins. */
  private userIntervalMs: number | undefined
  private trackerIntervalMs: number | undefined
  private intervalMs = 0
  private intervalTimer: ReturnType<typeof setInterval> | undefined
  /** Announced and not stopped: a reconnect announces again. */
  private active = false
  /** Shortest interval a tracker may set (ClientTimeouts.intervalFloor). */
  private readonly intervalFloor: number
  private warnedNoWebRtc = false

  /**
   * `timeouts`: the Client's (common.ts); this class uses `retryMin`/`retryMax` (reconnect
   * back-off) and `destroyGrace` (closing handshake) — of the first tracker on a shared socket.
   */
  constructor (owner: TrackerOwner, announceUrl: string, timeouts?: Partial<ClientTimeouts>) {
    this.owner = owner
    this.announceUrl = announceUrl
    this.infoHash = owner.infoHashBinary
    this.peerId = owner.peerIdBinary
    this.userAgent = owner.userAgent
    this.webrtc = resolveWebRtc(owner.wrtc)
    this.rtcConfig = (owner.rtcConfig ?? DEFAULT_RTC_CONFIG) as RTCConfiguration
    const t = resolveTimeouts(timeouts)
    this.intervalFloor = t.intervalFloor
    this.socket = acquireSocket(announceUrl, this, { retryMin: t.retryMin, retryMax: t.retryMax, destroyGrace: t.destroyGrace })
  }

  // ---- TrackerConnection ----

  announce (opts: AnnounceOpts): void {
    if (this.destroyed) return
    if (opts.event === EVENT_STOPPED) {
      this.active = false
      this.stopTimer()
      this.dropOffers()
    } else {
      this.active = true
      this.schedule()
    }
    this.enqueue(opts)
    this.pump()
  }

  /** Scrape; results come as 'scrape' events, and to `done` once (with an error if it failed). */
  scrape (opts?: ScrapeOpts, done?: ScrapeDone): void {
    if (this.destroyed) {
      if (done !== undefined) queueMicrotask(() => done(trackerWarning(this.announceUrl, 'tracker destroyed'), []))
      return
    }
    const hashes = opts?.infoHashes !== undefined && opts.infoHashes.length > 0 ? opts.infoHashes : [this.infoHash]
    if (!this.sendScrape(hashes, done)) this.queuedScrapes.push({ hashes, done })
  }

  setInterval (ms?: number): void {
    if (this.destroyed) return
    this.userIntervalMs = ms !== undefined && ms > 0 ? ms : undefined
    this.schedule()
  }

  destroy (cb?: (err?: Error | null) => void): void {
    if (this.destroyed) {
      if (cb !== undefined) queueMicrotask(() => cb(null))
      return
    }
    // A `stopped` still queued (behind offers being gathered) goes out now, before the socket is
    // released; whatever else is queued is dropped.
    const stop = this.queue.find(o => o.event === EVENT_STOPPED)
    if (stop !== undefined) this.sendAnnounce(stop, [])
    this.destroyed = true
    this.active = false
    this.stopTimer()
    this.queue.length = 0
    this.failScrapes(trackerWarning(this.announceUrl, 'tracker destroyed'))
    for (const p of this.pending) this.drop(p)
    this.socket.release(this, () => { if (cb !== undefined) cb(null) })
  }

  get acceptsOffers (): boolean {
    return this.active && !this.destroyed
  }

  /**
   * Peers being set up and not connected yet, our unanswered offers included, and those that
   * failed before their deadline (they hold their slot until then) (diagnostics, tests).
   */
  get pendingPeers (): number {
    return this.pending.size
  }

  // ---- PoolUser: called by the shared socket ----

  onOpen (): void {
    if (this.destroyed) return
    // After a reconnect the tracker has forgotten us: announce again.
    if (this.active && this.queue.length === 0 && !this.sending) this.queue.push(this.owner.defaultAnnounceOpts())
    for (const q of this.queuedScrapes.splice(0)) this.sendScrape(q.hashes, q.done)
    this.pump()
  }

  onDown (err: Error): void {
    if (this.destroyed) return
    // Offers and scrapes sent over the lost socket can no longer be answered.
    this.dropOffers()
    this.owner.emit('warning', err)
    const sent = this.scrapesSent.splice(0)
    for (const { done } of sent) if (done !== undefined) done(err, [])
  }

  onWarning (err: Error): void {
    if (!this.destroyed) this.owner.emit('warning', err)
  }

  onMessage (m: WsServerMessage): void {
    if (this.destroyed) return
    switch (m.type) {
      case 'announce': return this.onAnnounceReply(m)
      case 'offer': return this.onOffer(m)
      case 'answer': return this.onAnswer(m)
      case 'scrape': {
        const sent = this.scrapesSent.shift()
        // Only the torrents asked for, each once: a tracker answering with its whole database
        // (or the same hash twice) must not flood the listener.
        const wanted = new Set(sent?.hashes)
        const results = m.files.filter(f => wanted.delete(f.infoHash)).map(f => scrapeResult(this.announceUrl, f.infoHash, f))
        for (const r of results) this.owner.emit('scrape', r)
        if (sent?.done !== undefined) sent.done(null, results)
        return
      }
      case 'failure': {
        const err = trackerWarning(this.announceUrl, m.reason)
        this.owner.emit('warning', err)
        if (m.action === 'scrape') {
          const done = this.scrapesSent.shift()?.done
          if (done !== undefined) done(err, [])
        }
      }
    }
  }

  // ---- announces ----

  /** Queue an announce; plain updates waiting behind another plain update replace it. */
  private enqueue (opts: AnnounceOpts): void {
    const q = this.queue
    const last = q.length > 0 ? q[q.length - 1] : undefined
    const plain = (o: AnnounceOpts): boolean => o.event === undefined || o.event === 0
    if (last !== undefined && plain(last) && plain(opts)) q[q.length - 1] = opts
    else q.push(opts)
    while (q.length > MAX_QUEUED_ANNOUNCES) {
      const i = q.findIndex(plain)
      q.splice(i >= 0 ? i : 0, 1)
    }
  }

  /**
   * Send queued announces one at a time, in order, while the socket is open. An announce without
   * offers goes out at once; one with offers after they have gathered (the next waits for it).
   */
  private pump (): void {
    while (!this.sending && !this.destroyed && this.socket.isOpen && this.queue.length > 0) {
      const opts = this.queue.shift()!
      const count = this.offerCount(opts)
      if (count === 0) {
        if (!this.sendAnnounce(opts, [])) { this.queue.unshift(opts); return }
        continue
      }
      this.sending = true
      this.makeOffers(count).then(offers => {
        this.sending = false
        if (this.destroyed) return
        if (!this.sendAnnounce(opts, offers)) {
          // The socket went down while the offers were gathering: try again once it is back.
          for (const o of offers) this.drop(o.pending)
          this.queue.unshift(opts)
        }
        this.pump()
      })
    }
  }

  private sendAnnounce (opts: AnnounceOpts, offers: ReadonlyArray<{ offerId: string, sdp: string }>): boolean {
    const text = encodeAnnounceRequest({
      infoHash: this.infoHash,
      peerId: this.peerId,
      uploaded: opts.uploaded ?? 0,
      downloaded: opts.downloaded ?? 0,
      left: opts.left ?? Infinity,
      event: opts.event,
      numwant: offers.length,
      offers: offers.length > 0 ? offers : undefined,
      trackerId: this.trackerId,
      extra: customFields(opts)
    })
    if (!this.socket.send(text)) return false
    this.awaitingAnnounce++
    return true
  }

  /** How many offers an announce carries: none with stopped/completed, none without WebRTC. */
  private offerCount (opts: AnnounceOpts): number {
    if (opts.event === EVENT_STOPPED || opts.event === EVENT_COMPLETED) return 0
    const wanted = Math.min(
      Math.max(0, Math.floor(opts.numwant ?? DEFAULT_NUMWANT)),
      CLIENT_WS_MAX_OFFERS,
      CLIENT_WS_MAX_PENDING_PEERS - this.pending.size
    )
    if (!(wanted > 0)) return 0
    if (this.webrtc === undefined) {
      if (!this.warnedNoWebRtc) {
        this.warnedNoWebRtc = true
        this.owner.emit('warning', trackerWarning(this.announceUrl, 'No WebRTC implementation (pass `wrtc` in Node): announcing without offers'))
      }
      return 0
    }
    return wanted
  }

  /** Make `count` offers; resolves once each has its description (or has failed). */
  private makeOffers (count: number): Promise<Array<{ offerId: string, sdp: string, pending: PendingPeer }>> {
    const made: Array<Promise<{ offerId: string, sdp: string, pending: PendingPeer } | undefined>> = []
    for (let i = 0; i < count; i++) {
      const p = this.createPeer(true)
      if (p === undefined) break
      const offerId = randomId()
      p.offerId = offerId
      this.offers.set(offerId, p)
      this.arm(p, wsTimeouts.offerMs)
      made.push(new Promise(resolve => {
        const onSignal = (s: SignalData): void => { p.peer.removeListener('close', onClose); resolve({ offerId, sdp: s.sdp, pending: p }) }
        const onClose = (): void => { p.peer.removeListener('signal', onSignal); resolve(undefined) }
        p.peer.once('signal', onSignal)
        p.peer.once('close', onClose)
      }))
    }
    return Promise.all(made).then(all => all.filter(o => o !== undefined && !o.pending.peer.destroyed) as Array<{ offerId: string, sdp: string, pending: PendingPeer }>)
  }

  private onAnnounceReply (m: WsAnnounceReply): void {
    if (m.warning !== undefined) this.owner.emit('warning', trackerWarning(this.announceUrl, m.warning))
    if (m.trackerId !== undefined) {
      if (m.trackerId.length <= CLIENT_MAX_TRACKER_ID_LENGTH) this.trackerId = m.trackerId
      else this.owner.emit('warning', trackerWarning(this.announceUrl, `tracker id of ${m.trackerId.length} characters ignored (the limit is ${CLIENT_MAX_TRACKER_ID_LENGTH})`))
    }
    if (m.interval !== undefined && m.interval > 0) {
      this.trackerIntervalMs = m.interval * 1000
      this.schedule()
    }
    if (m.complete !== undefined || m.incomplete !== undefined) {
      this.owner.emit('update', {
        announce: this.announceUrl,
        infoHash: binaryToHex(m.infoHash),
        complete: m.complete ?? 0,
        incomplete: m.incomplete ?? 0
      })
    }
  }

  // ---- timed announces ----

  private schedule (): void {
    // Every timed announce makes new WebRTC offers: a tracker's tiny `interval` is raised to
    // intervalFloor, and nothing (not even setInterval(0)) goes below MIN_REANNOUNCE_MS.
    const tracker = this.trackerIntervalMs === undefined ? undefined : Math.max(this.trackerIntervalMs, this.intervalFloor)
    const ms = Math.min(MAX_TIMER_MS, Math.max(MIN_REANNOUNCE_MS, this.userIntervalMs ?? tracker ?? DEFAULT_CLIENT_INTERVAL_MS))
    if (this.destroyed || !this.active) return this.stopTimer()
    if (ms === this.intervalMs && this.intervalTimer !== undefined) return
    this.stopTimer()
    this.intervalMs = ms
    this.intervalTimer = setInterval(() => {
      if (!this.destroyed && this.active) this.announce(this.owner.defaultAnnounceOpts())
    }, ms)
    ;(this.intervalTimer as { unref?: () => void }).unref?.()
  }

  private stopTimer (): void {
    clearInterval(this.intervalTimer)
    this.intervalTimer = undefined
    this.intervalMs = 0
  }

  // ---- peers ----

  private createPeer (initiator: boolean): PendingPeer | undefined {
    let peer: Peer
    try {
      peer = new Peer({ initiator, config: this.rtcConfig, wrtc: this.webrtc, gatherTimeoutMs: wsTimeouts.gatherMs })
    } catch (err) {
      this.owner.emit('warning', trackerWarning(this.announceUrl, `WebRTC: ${err instanceof Error ? err.message : String(err)}`, err))
      return undefined
    }
    const p: PendingPeer = { peer, timer: undefined }
    this.pending.add(p)
    const onError = (err: Error): void => {
      if (!this.destroyed) this.owner.emit('warning', trackerWarning(this.announceUrl, `WebRTC connection error: ${err.message}`, err))
    }
    const onClose = (): void => {
      peer.removeListener('error', onError)
      peer.removeListener('connect', onConnect)
      if (p.timer === undefined) return this.forget(p)
      // A peer that failed keeps its slot until its deadline: otherwise a tracker relaying a
      // stream of unusable offers would have us build (and fail) WebRTC connections as fast as
      // it can send them. An answer can no longer reach it.
      if (p.offerId !== undefined) this.offers.delete(p.offerId)
      p.offerId = undefined
    }
    const onConnect = (): void => {
      peer.removeListener('error', onError)
      peer.removeListener('close', onClose)
      this.forget(p)
      if (this.destroyed) return peer.destroy()
      // From here on the peer is the user's: errors are theirs to listen for.
      this.owner.emit('peer', peer)
    }
    peer.on('error', onError)
    peer.once('close', onClose)
    peer.once('connect', onConnect)
    return p
  }

  private onOffer (m: WsRelayedSignal): void {
    if (!this.active || this.pending.size >= CLIENT_WS_MAX_PENDING_PEERS || this.webrtc === undefined) return
    const p = this.createPeer(false)
    if (p === undefined) return
    p.peer.id = binaryToHex(m.peerId)
    this.arm(p, wsTimeouts.connectMs)
    p.peer.once('signal', (s: SignalData) => {
      if (this.destroyed) return
      const sent = this.socket.send(encodeAnswerRequest({
        infoHash: this.infoHash,
        peerId: this.peerId,
        toPeerId: m.peerId,
        offerId: m.offerId,
        sdp: s.sdp,
        trackerId: this.trackerId
      }))
      if (!sent) this.drop(p)
    })
    p.peer.signal({ type: 'offer', sdp: m.sdp })
  }

  private onAnswer (m: WsRelayedSignal): void {
    const p = this.offers.get(m.offerId)
    if (p === undefined) return // not ours, or too late
    this.offers.delete(m.offerId)
    p.offerId = undefined
    p.peer.id = binaryToHex(m.peerId)
    this.arm(p, wsTimeouts.connectMs)
    p.peer.signal({ type: 'answer', sdp: m.sdp })
  }

  /** (Re)start the deadline by which `p` must connect. */
  private arm (p: PendingPeer, ms: number): void {
    clearTimeout(p.timer)
    p.timer = unrefTimeout(() => { p.timer = undefined; this.drop(p) }, ms)
  }

  /** Destroy the offers still waiting for an answer. */
  private dropOffers (): void {
    for (const p of this.offers.values()) this.drop(p)
  }

  private drop (p: PendingPeer): void {
    this.forget(p)
    p.peer.destroy()
  }

  private forget (p: PendingPeer): void {
    clearTimeout(p.timer)
    p.timer = undefined
    if (p.offerId !== undefined) this.offers.delete(p.offerId)
    this.pending.delete(p)
  }

  private sendScrape (hashes: BinaryString[], done: ScrapeDone | undefined): boolean {
    if (!this.socket.send(encodeScrapeRequest(hashes))) return false
    this.awaitingScrape++
    this.scrapesSent.push({ hashes: new Set(hashes), done })
    return true
  }

  private failScrapes (err: Error): void {
    const waiting = [...this.scrapesSent.splice(0), ...this.queuedScrapes.splice(0)].map(q => q.done)
    for (const done of waiting) if (done !== undefined) done(err, [])
  }
}

/**
 * Custom announce params (README `customParam`) as JSON fields: strings, finite numbers and
 * booleans keep their type (the reference client sends them so); other values are left out.
 */
function customFields (opts: AnnounceOpts): Record<string, string | number | boolean> | undefined {
  let extra: Record<string, string | number | boolean> | undefined
  for (const name of Object.keys(opts)) {
    if (ANNOUNCE_OPT_NAMES.has(name)) continue
    const v = opts[name]
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) continue
    extra ??= {}
    extra[name] = v
  }
  return extra
}
