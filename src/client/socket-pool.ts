/**
 * One WebSocket per tracker URL, shared by every WebSocketTracker in the process (WebSockets are
 * slow to open, and a browser limits how many it keeps). The pool counts its users: the socket
 * is closed when the last one leaves. A socket that drops while still in use is reopened after
 * an exponential back-off with jitter (`retryMin` doubling up to `retryMax`, common.ts), reset
 * once the tracker sends a valid message (not merely on open). A waiting reconnect does not keep
 * Node's event loop alive.
 *
 * Incoming frames are decoded once (protocol/ws/codec.ts) and routed to the users:
 * - announce replies and failures by info hash; when several users share an info hash, to the
 *   oldest one still waiting for a reply (frames carry no peer id), else to all of them;
 * - relayed offers to one user of that info hash that is in the swarm and is not the offer's
 *   sender (a relayed offer does not name its recipient, so with several users of one info hash
 *   the tracker's choice is not known);
 * - relayed answers to every user of that info hash (each keeps only answers to its own offers);
 * - scrape replies to the oldest user waiting for one.
 *
 * Browser-safe: the WebSocket comes from socket-impl.ts (`ws` in Node), which the browser bundle
 * replaces with the global WebSocket.
 */
import type { BinaryString } from '../protocol/common/types.js'
import { decodeWsResponse } from '../protocol/ws/codec.js'
import type { WsServerMessage } from '../protocol/ws/codec.js'
import { Backoff, trackerWarning, unrefTimeout } from './common.js'
import type { TimerHandle } from './common.js'
import { abortSocket, openSocket } from './socket-impl.js'

/** The part of the WebSocket API (W3C, which `ws` also implements) that the pool uses. */
export interface ClientSocket {
  readonly readyState: number
  readonly bufferedAmount: number
  send (data: string): void
  close (code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code?: number, reason?: string }) => void) | null
  onerror: ((ev: { message?: string, error?: unknown }) => void) | null
}

const CONNECTING = 0
const OPEN = 1

/** A user of a shared socket (a WebSocketTracker). */
export interface PoolUser {
  readonly infoHash: BinaryString
  readonly peerId: BinaryString
  readonly userAgent: string | undefined
  /** Announce replies this user waits for (counted by the user when it sends, by the pool when one arrives). */
  awaitingAnnounce: number
  /** Scrape replies this user waits for. */
  awaitingScrape: number
  /** In the swarm (announced, not stopped): relayed offers may go to it. */
  readonly acceptsOffers: boolean
  /** The socket is open (first time, or again after a reconnect). */
  onOpen (): void
  /** The socket closed or failed to open; a reconnect is scheduled. */
  onDown (err: Error): void
  onMessage (m: WsServerMessage): void
  onWarning (err: Error): void
}

/** How a shared socket retries and closes, in ms (from the Client's timeouts, see common.ts). */
export interface SocketPolicy {
  /** First reconnect delay; doubles per failed attempt (with jitter, see `backoffDelay`). */
  retryMin: number
  /** Longest reconnect delay. */
  retryMax: number
  /** Longest wait for the closing handshake when the last user leaves. */
  destroyGrace: number
}

const pool = new Map<string, SharedSocket>()

/** Number of tracker URLs with a shared socket (tests). */
export function poolSize (): number {
  return pool.size
}

/** The shared socket for `url`, with `user` added to its users. */
export function acquireSocket (url: string, user: PoolUser, policy: SocketPolicy): SharedSocket {
  let s = pool.get(url)
  if (s === undefined) {
    // The first user's User-Agent and timeouts serve everyone on the socket.
    s = new SharedSocket(url, user.userAgent, policy)
    pool.set(url, s)
    s.users.push(user)
    s.connect()
  } else {
    s.users.push(user)
    if (s.isOpen) queueMicrotask(() => { if (s!.users.includes(user) && s!.isOpen) user.onOpen() })
  }
  return s
}

export class SharedSocket {
  readonly users: PoolUser[] = []
  private socket: ClientSocket | null = null
  private readonly backoff: Backoff
  private reconnectTimer: TimerHandle | undefined
  private closed = false
  /** Times the socket opened (tests). */
  opens = 0

  constructor (readonly url: string, private readonly userAgent: string | undefined, private readonly policy: SocketPolicy) {
    this.backoff = new Backoff(Math.max(1, policy.retryMin), Math.max(1, policy.retryMax))
  }

  get isOpen (): boolean {
    return this.socket !== null && this.socket.readyState === OPEN
  }

  /** Send a frame if the socket is open; false if it is not. */
  send (text: string): boolean {
    const s = this.socket
    if (s === null || s.readyState !== OPEN) return false
    try {
      s.send(text)
      return true
    } catch {
      return false
    }
  }

  /**
   * Remove `user`; the last one out closes the socket. `cb` runs once that is done. If that user
   * still waits for an announce reply (a `stopped` sent just before destroy), the socket stays
   * open until the next frame arrives, within `destroyGrace`: a tracker answering into a closing
   * socket may report an error (the reference server does).
   */
  release (user: PoolUser, cb: () => void): void {
    const i = this.users.indexOf(user)
    if (i >= 0) this.users.splice(i, 1)
    if (this.users.length > 0 || this.closed) return queueMicrotask(cb)
    this.closed = true
    if (pool.get(this.url) === this) pool.delete(this.url)
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    const s = this.socket
    this.socket = null
    if (s === null) return queueMicrotask(cb)
    let timer: TimerHandle | undefined
    const finish = (): void => {
      clearTimeout(timer)
      s.onclose = null
      s.onopen = null
      s.onmessage = null
      // keep an error handler: `ws` throws an 'error' event nobody listens to
      s.onerror = () => {}
      cb()
    }
    s.onopen = null
    s.onmessage = null
    s.onerror = () => {}
    if (s.readyState === CONNECTING) {
      s.onclose = finish
      abortSocket(s)
      timer = setTimeout(finish, this.policy.destroyGrace)
      return
    }
    if (s.readyState === OPEN || s.readyState === 2 /* closing */) {
      s.onclose = finish
      const close = (): void => {
        s.onmessage = null
        try { s.close(1000) } catch {}
      }
      if (s.readyState === OPEN && user.awaitingAnnounce > 0) s.onmessage = close
      else close()
      timer = setTimeout(() => { abortSocket(s); finish() }, this.policy.destroyGrace)
      return
    }
    finish()
  }

  connect (): void {
    if (this.closed) return
    let socket: ClientSocket
    try {
      socket = openSocket(this.url, this.userAgent)
    } catch (err) {
      // A malformed URL: nothing to retry.
      const e = trackerWarning(this.url, `WebSocket tracker: ${err instanceof Error ? err.message : String(err)}`, err)
      for (const u of this.users.slice()) u.onDown(e)
      return
    }
    this.socket = socket
    let error: string | undefined
    let opened = false
    socket.onopen = () => {
      if (this.socket !== socket) return
      opened = true
      this.opens++
      for (const u of this.users.slice()) u.onOpen()
    }
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return
      if (typeof ev.data !== 'string') {
        return this.warnAll(trackerWarning(this.url, 'WebSocket tracker sent a binary message'))
      }
      this.route(ev.data)
    }
    socket.onerror = (ev) => {
      if (error === undefined) {
        const e = ev?.error
        error = e instanceof Error ? e.message : typeof ev?.message === 'string' && ev.message !== '' ? ev.message : 'socket error'
      }
    }
    socket.onclose = (ev) => {
      if (this.socket !== socket) return
      this.socket = null
      socket.onopen = null
      socket.onmessage = null
      const why = error ?? (opened ? `connection closed (code ${ev?.code ?? 'unknown'})` : 'could not connect')
      const e = trackerWarning(this.url, `WebSocket tracker: ${why}`)
      for (const u of this.users) { u.awaitingAnnounce = 0; u.awaitingScrape = 0 }
      for (const u of this.users.slice()) u.onDown(e)
      this.scheduleReconnect()
    }
  }

  private scheduleReconnect (): void {
    if (this.closed || this.users.length === 0) return
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = unrefTimeout(() => {
      this.reconnectTimer = undefined
      this.connect()
    }, this.backoff.next())
  }

  private warnAll (err: Error): void {
    for (const u of this.users.slice()) u.onWarning(err)
  }

  private route (text: string): void {
    const decoded = decodeWsResponse(text)
    if (!decoded.ok) {
      return this.warnAll(trackerWarning(this.url, `Invalid WebSocket tracker message: ${decoded.error.message}`))
    }
    // The back-off restarts only once the tracker has said something valid: one that accepts
    // the connection and drops it at once must not be reconnected to at the shortest delay forever.
    this.backoff.reset()
    const m = decoded.value
    switch (m.type) {
      case 'announce':
        return this.toWaiting(this.withHash(m.infoHash), 'awaitingAnnounce', m)
      case 'failure':
        if (m.infoHash !== undefined) {
          return this.toWaiting(this.withHash(m.infoHash), m.action === 'scrape' ? 'awaitingScrape' : 'awaitingAnnounce', m)
        }
        return this.toWaiting(this.users.slice(), m.action === 'scrape' ? 'awaitingScrape' : 'awaitingAnnounce', m)
      case 'offer': {
        // Never to the sender itself; with several candidates, the first one in the swarm.
        const u = this.withHash(m.infoHash).find(u => u.peerId !== m.peerId && u.acceptsOffers)
        if (u !== undefined) u.onMessage(m)
        return
      }
      case 'answer':
        for (const u of this.withHash(m.infoHash)) u.onMessage(m)
        return
      case 'scrape': {
        const u = this.users.find(u => u.awaitingScrape > 0)
        if (u !== undefined) { u.awaitingScrape--; u.onMessage(m) }
      }
    }
  }

  private withHash (infoHash: BinaryString): PoolUser[] {
    return this.users.filter(u => u.infoHash === infoHash)
  }

  /** To the oldest user waiting for this kind of reply; to all candidates if none waits. */
  private toWaiting (users: PoolUser[], counter: 'awaitingAnnounce' | 'awaitingScrape', m: WsServerMessage): void {
    const waiting = users.find(u => u[counter] > 0)
    if (waiting !== undefined) {
      waiting[counter]--
      waiting.onMessage(m)
      return
    }
    for (const u of users) u.onMessage(m)
  }
}
