import type { Redis } from 'ioredis'
import type { RemoteSignal, SignalBus } from './signalling.js'

/** Node numbers are below 2^20 so connection numbers (node · 2^32 + n) stay below 2^53. */
const NODE_LIMIT = 2 ** 20

/**
 * A SignalBus over Redis pub/sub: one channel per node (`channel(node)`), carrying a
 * RemoteSignal as JSON (binary strings pass through JSON unchanged). Node numbers come from one
 * shared counter (INCR at start), so instances sharing a Redis never collide while fewer than
 * 2^20 - 1 start between two wraps. Best effort, like WebRTC signalling: a signal published while
 * Redis is away is dropped (the peers' next announce makes new offers).
 */
export class RedisSignalBus implements SignalBus {
  node = 0
  private sub: Redis | undefined
  private closed = false

  constructor (
    private readonly pub: Redis,
    /** Channel name of a node (the store's `signalChannel`, so its sweeper sees who is alive). */
    private readonly channel: (node: number) => string,
    private readonly prefix: string,
    private readonly onSignal: (signal: RemoteSignal) => void
  ) {}

  /** Takes a node number and subscribes to its channel. `pub` must be connected. */
  async start (): Promise<void> {
    const n = await this.pub.incr(`${this.prefix}nodes`)
    this.node = ((n - 1) % (NODE_LIMIT - 1)) + 1
    if (this.closed) return // the server closed while starting
    const sub = this.pub.duplicate()
    this.sub = sub
    sub.on('error', () => {}) // reconnects by itself and resubscribes
    sub.on('message', (_channel: string, message: string) => {
      let signal: RemoteSignal
      try { signal = JSON.parse(message) as RemoteSignal } catch { return }
      if (isSignal(signal)) this.onSignal(signal)
    })
    if (sub.status === 'wait') await sub.connect()
    await sub.subscribe(this.channel(this.node))
    if (this.closed) sub.disconnect()
  }

  send (node: number, signal: RemoteSignal): void {
    if (this.closed) return
    this.pub.publish(this.channel(node), JSON.stringify(signal)).catch(() => { /* dropped: best effort */ })
  }

  close (): void {
    this.closed = true
    this.sub?.disconnect()
  }
}

/** Only what another instance could have sent (the channel is open to anyone with Redis access). */
function isSignal (v: unknown): v is RemoteSignal {
  if (typeof v !== 'object' || v === null) return false
  const s = v as Record<string, unknown>
  if (typeof s.conn !== 'number' || typeof s.message !== 'string') return false
  if (s.t === 'answer') return true
  return s.t === 'offer' && typeof s.fromConn === 'number' && typeof s.expires === 'number' &&
    typeof s.fromPeerId === 'string' && typeof s.toPeerId === 'string' && typeof s.infoHash === 'string' && typeof s.offerId === 'string'
}
