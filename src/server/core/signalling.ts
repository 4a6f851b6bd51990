import {
  WS_MAX_OFFERS, WS_MAX_PENDING_OFFERS, WS_MAX_SWARMS_PER_SOCKET, WS_OFFER_TTL_MS
} from '../../constants.js'
import { trackerError } from '../../errors.js'
import type { TrackerError } from '../../errors.js'
import { EVENT_STOPPED } from '../../protocol/common/types.js'
import type { AnnounceRequest, BinaryString } from '../../protocol/common/types.js'
import { encodeAnnounceResponse, encodeAnswerJson, encodeOfferJson, encodeSignalTail } from '../../protocol/ws/codec.js'
import type { WsAnswerJson, WsOfferJson } from '../../protocol/ws/codec.js'
import { KIND_WS, WANT_WS } from '../store/store.js'
import type { SwarmStore } from '../store/store.js'
import { jitterInterval } from './jitter.js'
import { isSeeder } from './tracker.js'
import { isPromise, then } from './maybe.js'
import type { Maybe } from './maybe.js'

/** A message for one connection: the frontend only sends these. */
export type Delivery = [conn: number, message: string]

/**
 * Connection numbers carry the number of the node (process or worker) whose socket it is in
 * their high bits, so a peer found in a shared store (Redis, another worker's shard) can be
 * reached through a `SignalBus`. Node 0 is a tracker with no bus. Numbers stay below 2^53.
 */
export const CONN_NODE_FACTOR = 2 ** 32
export function nodeOfConn (conn: number): number { return Math.floor(conn / CONN_NODE_FACTOR) }

/** What one node hands another: an offer to remember and pass on, or an answer to pass on. */
export type RemoteSignal =
  | { t: 'offer', conn: number, fromConn: number, fromPeerId: BinaryString, toPeerId: BinaryString, infoHash: BinaryString, offerId: BinaryString, expires: number, message: string }
  | { t: 'answer', conn: number, message: string }

/**
 * Carries signals between nodes that share swarms (instances on one Redis, worker threads).
 * The transport is the bus's business; delivery is best effort, like WebRTC signalling itself.
 */
export interface SignalBus {
  /** This node's number, 1 ≤ node < 2^20. */
  readonly node: number
  send (node: number, signal: RemoteSignal): void
}


export type SignalResult = { ok: true, deliveries: Delivery[] } | { ok: false, error: TrackerError }

/** An offer relayed to a session, which that session may answer once. */
interface PendingOffer {
  fromConn: number
  fromPeerId: BinaryString
  /** The peer id the offer was delivered to (the only one that may answer it). */
  toPeerId: BinaryString
  infoHash: BinaryString
  expires: number
}

interface Session {
  /** Compact address of the socket's remote end (for statistics). */
  addr: BinaryString
  /** Swarm memberships: info hash + peer id (40 chars). One socket may carry several peer ids. */
  memberships: Set<string>
  /** Offers relayed to this session, keyed by sender peer id + offer id. */
  pending: Map<string, PendingOffer>
  /**
   * A peer id known to be bound to this session (cleared when its binding goes): most sockets
   * carry one peer id, so a string comparison spares the `bindings` lookup on every message.
   */
  bound: BinaryString | undefined
}

interface Binding { conn: number, refs: number }

/**
 * WebTorrent signalling: which socket is which peer, offer relay and answer routing. Pure logic
 * over the store; the WS frontend maps connection numbers to sockets and sends the deliveries.
 *
 * Rules: a peer id is bound to the first socket that announces it (until that socket leaves
 * every swarm), so no other socket can announce, stop or answer as it; each offer goes to a
 * different random ws peer of the swarm, never the sender; an answer is forwarded only for an
 * offer this tracker relayed to the answering peer, and only to the peer that made it.
 */
export class Signalling {
  private readonly sessions = new Map<number, Session>()
  private readonly bindings = new Map<BinaryString, Binding>()
  private nextSeq = 1

  constructor (
    private readonly store: SwarmStore,
    private readonly opts: { wsInterval: number, maxOffers?: number, maxSwarms?: number, intervalJitter?: number, bus?: SignalBus }
  ) {}

  /** Read when used: a bus may learn its node number after construction (from Redis, at start). */
  private get node (): number { return this.opts.bus?.node ?? 0 }

  get size (): number { return this.sessions.size }

  open (addr: BinaryString): number {
    const conn = this.node * CONN_NODE_FACTOR + this.nextSeq++
    this.sessions.set(conn, { addr, memberships: new Set(), pending: new Map(), bound: undefined })
    return conn
  }

  isOpen (conn: number): boolean { return this.sessions.has(conn) }

  /** The socket closed: its peers leave every swarm they joined. Resolves once the store is done. */
  close (conn: number): Maybe<void> {
    const s = this.sessions.get(conn)
    if (s === undefined) return
    this.sessions.delete(conn)
    const pending: Array<Promise<unknown>> = []
    for (const m of s.memberships) {
      const peerId = m.slice(20)
      this.unbind(peerId)
      const r = this.store.remove(m.slice(0, 20), peerId, conn)
      if (typeof r !== 'boolean') pending.push(r)
    }
    s.memberships.clear()
    s.pending.clear()
    if (pending.length > 0) return Promise.all(pending).then(() => undefined)
  }

  /** The peer id `peerId` may be used by `conn`? */
  mayUse (conn: number, peerId: BinaryString): boolean {
    const s = this.sessions.get(conn)
    return s === undefined ? this.mayBind(conn, peerId) : this.sessionMayUse(s, conn, peerId)
  }

  private sessionMayUse (s: Session, conn: number, peerId: BinaryString): boolean {
    if (s.bound === peerId) return true
    const b = this.bindings.get(peerId)
    if (b === undefined) return true
    if (b.conn !== conn) return false
    s.bound = peerId
    return true
  }

  private mayBind (conn: number, peerId: BinaryString): boolean {
    const b = this.bindings.get(peerId)
    return b === undefined || b.conn === conn
  }

  announce (conn: number, req: AnnounceRequest, offers: readonly WsOfferJson[] | undefined, now: number): Maybe<SignalResult> {
    const s = this.sessions.get(conn)
    if (s === undefined) return { ok: true, deliveries: [] }
    if (!this.sessionMayUse(s, conn, req.peerId)) return { ok: false, error: trackerError('PEER_ID_BOUND') }
    const member = req.infoHash + req.peerId
    const joined = s.memberships.has(member)
    const stopping = req.event === EVENT_STOPPED
    if (!joined && !stopping && s.memberships.size >= (this.opts.maxSwarms ?? WS_MAX_SWARMS_PER_SOCKET)) {
      return { ok: false, error: trackerError('TOO_MANY_SWARMS') }
    }
    const maxOffers = this.opts.maxOffers ?? WS_MAX_OFFERS
    const numOffers = offers === undefined ? 0 : Math.min(offers.length, maxOffers)
    // Membership and binding change before the store answers, so a close that races an async
    // store still removes this peer.
    if (stopping) {
      if (joined) { s.memberships.delete(member); this.unbind(req.peerId) }
    } else if (!joined) {
      s.memberships.add(member)
      this.bind(req.peerId, conn)
    }
    // A store that refuses the announce (another node's socket holds this WS peer): the join
    // is undone, so this socket's close cannot remove the other's entry.
    const joining = !joined && !stopping
    let res
    try {
      res = this.store.announce({
        infoHash: req.infoHash,
        key: req.peerId,
        peerId: req.peerId,
        addr: s.addr,
        kind: KIND_WS,
        conn,
        event: req.event,
        seeder: isSeeder(req.left, req.event),
        numwant: stopping ? 0 : numOffers,
        want: WANT_WS
      }, now)
    } catch (err) {
      if (joining) this.undoJoin(s, member, req.peerId)
      throw err
    }
    if (joining && isPromise(res)) res = res.catch((err: unknown) => { this.undoJoin(s, member, req.peerId); throw err })
    return then(res, r => {
      const deliveries: Delivery[] = [[conn, encodeAnnounceResponse({
        infoHash: req.infoHash, interval: jitterInterval(this.opts.wsInterval, this.opts.intervalJitter ?? 0), complete: r.complete, incomplete: r.incomplete
      })]]
      const expires = now * 1000 + WS_OFFER_TTL_MS
      let tail: string | undefined // the offers' common end, encoded once
      for (let i = 0; i < r.peers.length && i < numOffers; i++) {
        const to = r.peers[i]
        const offer = offers![i]
        const target = this.sessions.get(to.conn)
        const message = encodeOfferJson({ infoHash: req.infoHash, fromPeerId: req.peerId, offerId: offer.offerId, sdpJson: offer.sdpJson },
          tail ??= encodeSignalTail(req.peerId, req.infoHash))
        // The store never returns the sender; another peer id on the sender's own (pooled) socket
        // is a peer like any other.
        if (target === undefined) {
          const bus = this.opts.bus
          const node = nodeOfConn(to.conn)
          if (bus === undefined || node === this.node) continue // a local socket that just closed
          bus.send(node, {
            t: 'offer',
            conn: to.conn,
            fromConn: conn,
            fromPeerId: req.peerId,
            toPeerId: to.peerId,
            infoHash: req.infoHash,
            offerId: offer.offerId,
            expires,
            message
          })
          continue
        }
        this.remember(target, req.peerId + offer.offerId, {
          fromConn: conn, fromPeerId: req.peerId, toPeerId: to.peerId, infoHash: req.infoHash, expires
        })
        deliveries.push([to.conn, message])
      }
      return { ok: true, deliveries } as const
    })
  }

  /** An answer from `conn` (as `peerId`) to an offer relayed to it. Nothing goes back to the sender. */
  answer (conn: number, infoHash: BinaryString, peerId: BinaryString, answer: WsAnswerJson, now: number): SignalResult {
    const s = this.sessions.get(conn)
    if (s === undefined) return { ok: true, deliveries: [] }
    if (!this.sessionMayUse(s, conn, peerId)) return { ok: false, error: trackerError('PEER_ID_BOUND') }
    const key = answer.toPeerId + answer.offerId
    const p = s.pending.get(key)
    if (p === undefined || p.infoHash !== infoHash || p.toPeerId !== peerId || p.expires < now * 1000) {
      return { ok: false, error: trackerError('UNKNOWN_OFFER') }
    }
    s.pending.delete(key)
    const message = encodeAnswerJson({ infoHash, fromPeerId: peerId, offerId: answer.offerId, sdpJson: answer.sdpJson })
    const node = nodeOfConn(p.fromConn)
    if (node !== this.node && this.opts.bus !== undefined) {
      this.opts.bus.send(node, { t: 'answer', conn: p.fromConn, message })
      return { ok: true, deliveries: [] }
    }
    if (!this.sessions.has(p.fromConn)) return { ok: false, error: trackerError('UNKNOWN_PEER') }
    return { ok: true, deliveries: [[p.fromConn, message]] }
  }

  /**
   * A signal from another node for one of this node's sessions: an offer is remembered (so the
   * session may answer it once) and passed on; an answer is passed on. Unknown sessions (closed
   * meanwhile) get nothing.
   */
  receive (signal: RemoteSignal): Delivery[] {
    const target = this.sessions.get(signal.conn)
    if (target === undefined) return []
    if (signal.t === 'offer') {
      this.remember(target, signal.fromPeerId + signal.offerId, {
        fromConn: signal.fromConn, fromPeerId: signal.fromPeerId, toPeerId: signal.toPeerId, infoHash: signal.infoHash, expires: signal.expires
      })
    }
    return [[signal.conn, signal.message]]
  }

  private remember (target: Session, key: string, p: PendingOffer): void {
    target.pending.delete(key) // re-insert at the end of the insertion order
    target.pending.set(key, p)
    if (target.pending.size > WS_MAX_PENDING_OFFERS) {
      target.pending.delete(target.pending.keys().next().value!)
    }
  }

  /** Takes back a join the store refused (unless the socket closed meanwhile, which undid it). */
  private undoJoin (s: Session, member: string, peerId: BinaryString): void {
    if (s.memberships.delete(member)) this.unbind(peerId)
  }

  private bind (peerId: BinaryString, conn: number): void {
    const b = this.bindings.get(peerId)
    if (b === undefined) this.bindings.set(peerId, { conn, refs: 1 })
    else b.refs++
  }

  private unbind (peerId: BinaryString): void {
    const b = this.bindings.get(peerId)
    if (b !== undefined && --b.refs <= 0) {
      this.bindings.delete(peerId)
      const s = this.sessions.get(b.conn)
      if (s !== undefined && s.bound === peerId) s.bound = undefined
    }
  }
}
