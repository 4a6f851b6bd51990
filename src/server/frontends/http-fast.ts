/**
 * The fast path of the plain-HTTP tracker: announce and scrape requests read straight off the
 * TCP socket (http-request.ts), answered with one `socket.write` per batch of responses.
 * node:http costs more CPU per request than the whole tracker logic (its parser callbacks,
 * IncomingMessage/ServerResponse objects, header bookkeeping); this path keeps only what a
 * tracker response needs.
 *
 * It sits inside the node:http server, which stays `server.http` (it listens, emits
 * 'listening'/'close', owns `address()`, 'upgrade', 'clientError'): `attachFastHttp` takes over
 * the server's 'connection' handling, and hands a connection to node:http's own handler — bytes
 * already read pushed back with `unshift` — as soon as a request is not the fast form (any other
 * route, method, version, a body, an Upgrade, anything malformed or over the limits). From then
 * on node:http serves that connection exactly as it would have, refusals included. The
 * hand-off waits until every fast response before it is written, so pipelined answers stay in
 * order.
 */

import type { Server as HttpServer } from 'node:http'
import type { Socket } from 'node:net'
import {
  HTTP_FAST_MAX_BUFFERED_BYTES, HTTP_FAST_MAX_HEAD_BYTES, HTTP_FAST_MAX_PIPELINED, HTTP_FAST_SWEEP_MS
} from '../../constants.js'
import { canonicalIp } from '../../protocol/common/address.js'
import type { HttpExchange, HttpFrontend } from './http.js'
import { stripZone } from './http.js'
import { findHeadEnd, headersObject, newRequestHead, parseRequestHead, partialHeadRejected } from './http-request.js'
import type { RequestHead } from './http-request.js'

/** What the server decides per request: whether the fast path may answer it. */
export interface FastHttpOptions {
  /**
   * Whether a request for this target may be answered here. false hands it (and its
   * connection) to node:http. Called per request; keep it cheap.
   */
  accepts: (url: string) => 'announce' | 'scrape' | undefined
  /** Extra header lines (each ending in CRLF, already validated) written in every response. */
  headers?: string
}

/** The fast path on one node:http server: its live connections, for drain and close. */
export interface FastHttp {
  /** Connections the fast path holds now (handed-off ones are node:http's). */
  readonly connections: number
}

type ConnectionListener = (this: HttpServer, socket: Socket) => void

// The fixed part of every response (node:http's header order and spelling for these; the
// server's extra headers go first, where node:http puts headers set before the handler's).
const STATUS_LINE = 'HTTP/1.1 200 OK\r\n'
const HEAD_FIXED = 'Content-Type: text/plain; charset=ISO-8859-1\r\n' +
  'Access-Control-Allow-Origin: *\r\nCache-Control: no-store\r\nDate: '

let dateSecond = -1
let dateText = ''
/** The Date header's value, made once a second (as node:http caches it). */
function httpDate (now: number): string {
  const s = Math.floor(now / 1000)
  if (s !== dateSecond) {
    dateSecond = s
    dateText = new Date(s * 1000).toUTCString()
  }
  return dateText
}

/** One request's answer slot: filled by the frontend, written in request order. */
class FastExchange implements HttpExchange {
  body: Uint8Array | null = null
  constructor (
    private readonly conn: FastConnection,
    readonly url: string,
    readonly head: boolean,
    readonly close: boolean,
    private readonly xff: string | undefined,
    private readonly raw: Buffer,
    private readonly hs: number,
    private readonly he: number
  ) {}

  socketIp (): string | undefined { return this.conn.ip() }
  forwardedFor (): string | undefined { return this.xff }
  headers (): Record<string, string | string[] | undefined> { return headersObject(this.raw, this.hs, this.he) }

  send (body: Uint8Array): void {
    if (this.body !== null) return
    this.body = body
    this.conn.answered()
  }
}

const enum State { Reading, HandingOff, Gone }

class FastConnection {
  /** Bytes read and not yet parsed (an incomplete head, or pipelined requests held back). */
  private pending: Buffer | null = null
  /** Bytes of `pending` already searched for the head's end and checked (partialHeadRejected). */
  private scanned = 0
  /** A buffer of ours with room to append to `pending` in place (a slow client's head). */
  private spare: Buffer | null = null
  /** Requests read and not yet answered and written, in order. */
  private readonly queue: FastExchange[] = []
  /** When the current idle period began (ms), for the keep-alive timeout. */
  since = Date.now()
  /** When the incomplete head in `pending` began (ms), for the headers timeout. */
  headSince = 0
  private state = State.Reading
  /** A `Connection: close` request (or the end of the client's stream) was read: read no more. */
  private closing = false
  private ended = false
  private parsing = false
  private pausedForWrite = false
  private pausedForQueue = false
  private cachedIp: string | undefined | null = null
  private readonly headOut: RequestHead = newRequestHead()

  // The socket listeners, kept to be removed at hand-off (others' listeners stay).
  readonly listeners = {
    data: (chunk: Buffer): void => this.onData(chunk),
    end: (): void => this.onEnd(),
    drain: (): void => this.onDrain(),
    close: (): void => this.onClose(),
    error: (err: Error): void => this.fast.clientError(this.socket, err)
  }

  constructor (readonly socket: Socket, private readonly fast: FastHttpImpl) {}

  ip (): string | undefined {
    if (this.cachedIp === null) this.cachedIp = canonicalIp(stripZone(this.socket.remoteAddress ?? ''))
    return this.cachedIp
  }

  /** Idle: no request begun, none awaiting an answer (drain may close it). */
  get idle (): boolean { return this.pending === null && this.queue.length === 0 && this.state === State.Reading }
  get headBegun (): boolean { return this.pending !== null && this.queue.length === 0 && this.state === State.Reading }

  onData (chunk: Buffer): void {
    if (this.state !== State.Reading) {
      // Paused for a hand-off: nothing should arrive, but keep it for node:http if it does.
      if (this.state === State.HandingOff) this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk])
      return
    }
    if (this.pending === null) return this.consume(chunk, 0)
    this.consume(this.append(this.pending, chunk), this.scanned)
  }

  /**
   * `pending` + `chunk`, grown geometrically in a buffer of ours: a head sent in many small
   * pieces costs linear, not quadratic, copying.
   */
  private append (pending: Buffer, chunk: Buffer): Buffer {
    this.pending = null
    const n = pending.length + chunk.length
    let spare = this.spare
    if (spare !== null && pending.buffer === spare.buffer && pending.byteOffset === spare.byteOffset && n <= spare.length) {
      chunk.copy(spare, pending.length)
      return spare.subarray(0, n)
    }
    spare = this.spare = Buffer.allocUnsafeSlow(Math.max(n * 2, 1024))
    pending.copy(spare, 0)
    chunk.copy(spare, pending.length)
    return spare.subarray(0, n)
  }

  /**
   * Parses and serves the complete requests in `data`, keeps the rest. `scanned`: bytes at the
   * start of `data` (an incomplete head) already searched and checked.
   */
  private consume (data: Buffer, scanned: number): void {
    const fast = this.fast
    const head = this.headOut
    let pos = 0
    let incomplete = false
    this.parsing = true
    while (pos < data.length && this.state === State.Reading) {
      if (this.closing) {
        // Bytes after a `Connection: close` request are never read (as node:http does).
        pos = data.length
        break
      }
      if (this.queue.length >= HTTP_FAST_MAX_PIPELINED) {
        this.pausedForQueue = true
        this.socket.pause()
        break
      }
      // A CRLFCRLF may straddle the old and new bytes; a CR checked last time needs its next byte.
      const end = findHeadEnd(data, pos === 0 && scanned > 3 ? scanned - 3 : pos)
      if (end === -1) {
        incomplete = true
        if (partialHeadRejected(data, pos, data.length, pos === 0 && scanned > 1 ? scanned - 1 : pos)) this.handOff(data.subarray(pos))
        break
      }
      const route = parseRequestHead(data, pos, end, head) && fast.enabled() ? fast.opts.accepts(head.url) : undefined
      if (route === undefined) {
        this.handOff(data.subarray(pos))
        break
      }
      const x = new FastExchange(this, head.url, head.head, head.close, head.forwardedFor, data, head.headersStart, head.headersEnd)
      this.queue.push(x)
      if (head.close) this.closing = true
      pos = end
      try {
        fast.frontend.serve(x, route)
      } catch (err) {
        // The frontend answers its own failures; an exception here is a bug: end the connection.
        this.parsing = false
        this.socket.destroy(err as Error)
        return
      }
    }
    this.parsing = false
    if (this.state === State.Reading && pos < data.length && !this.closing) {
      this.pending = pos === 0 ? data : data.subarray(pos)
      this.scanned = incomplete ? this.pending.length : 0
      if (pos > 0 || scanned === 0) this.headSince = Date.now()
      // Requests parsed from our buffer keep references into it: it is theirs now.
      if (pos > 0) this.spare = null
    } else {
      this.spare = null
    }
    this.flush()
  }

  /** A response slot was filled: write what is ready (at once unless still parsing a batch). */
  answered (): void {
    if (!this.parsing) this.flush()
  }

  /** Writes the answered responses at the queue's head, in one write. */
  private flush (): void {
    const q = this.queue
    if (this.state === State.Gone) { q.length = 0; return }
    let n = 0
    while (n < q.length && q[n].body !== null) n++
    if (n > 0) {
      const socket = this.socket
      // A server that stopped listening (drain, close) closes each connection after its answer.
      const stopping = !this.fast.server.listening
      const kat = this.fast.server.keepAliveTimeout
      const date = httpDate(Date.now())
      let closeAfter = false
      let size = 0
      const heads: string[] = new Array(n)
      for (let i = 0; i < n; i++) {
        const x = q[i]
        const close = x.close || ((stopping || this.ended) && i === n - 1 && n === q.length)
        if (close) closeAfter = true
        const body = x.body!
        let h = this.fast.headPrefix + date + (close ? '\r\nConnection: close\r\n' : kat > 0 ? `\r\nConnection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(kat / 1000)}\r\n` : '\r\nConnection: keep-alive\r\n')
        // node:http answers HEAD without a body or its length.
        h += x.head ? '\r\n' : `Content-Length: ${body.length}\r\n\r\n`
        heads[i] = h
        size += h.length + (x.head ? 0 : body.length)
        if (close) { n = i + 1; break }
      }
      const out = Buffer.allocUnsafe(size)
      let off = 0
      for (let i = 0; i < n; i++) {
        const x = q[i]
        off += out.write(heads[i], off, 'latin1')
        if (!x.head) {
          out.set(x.body!, off)
          off += x.body!.length
        }
      }
      q.splice(0, n)
      socket.write(out)
      if (closeAfter) {
        this.closeAfterWrite()
        return
      }
      if (socket.writableLength > HTTP_FAST_MAX_BUFFERED_BYTES && !this.pausedForWrite) {
        this.pausedForWrite = true
        // Listened to only while needed: one listener less per connection.
        socket.once('drain', this.listeners.drain)
        socket.pause()
      }
    }
    if (q.length > 0) return
    if (this.state === State.HandingOff) return this.completeHandOff()
    if (this.ended) return this.closeAfterWrite()
    if (this.pending === null) this.since = Date.now()
    if (this.pausedForQueue) {
      this.pausedForQueue = false
      if (!this.pausedForWrite) this.socket.resume()
      const rest = this.pending
      if (rest !== null) {
        this.pending = null
        this.consume(rest, 0)
      }
    }
  }

  private closeAfterWrite (): void {
    this.state = State.Gone
    this.pending = null
    this.fast.forget(this)
    const socket = this.socket
    // Written through to the kernel: closing the descriptor now still delivers it, then FIN,
    // and spares a shutdown request and the wait for the client's FIN. Else after the flush.
    if (socket.writableLength === 0) socket.destroy()
    else socket.end(() => socket.destroy())
  }

  onDrain (): void {
    if (!this.pausedForWrite) return
    this.pausedForWrite = false
    if (!this.pausedForQueue && this.state === State.Reading) this.socket.resume()
  }

  /** The client sent FIN: answer what was read, then close (node:http does the same). */
  onEnd (): void {
    if (this.state !== State.Reading) return
    this.ended = true
    if (this.pending !== null && this.queue.length === 0) {
      // An incomplete request at EOF: node:http's parser would refuse it; let it.
      const rest = this.pending
      this.pending = null
      this.fast.eofError(this, rest)
      return
    }
    if (this.queue.length === 0) this.closeAfterWrite()
  }

  onClose (): void {
    this.state = State.Gone
    this.pending = null
    this.queue.length = 0
    this.fast.forget(this)
  }

  /** Gives the connection to node:http once the fast answers before `rest` are written. */
  private handOff (rest: Buffer): void {
    this.state = State.HandingOff
    this.pending = rest
    if (this.queue.length > 0) {
      this.socket.pause()
      return
    }
    // Called from consume: flush() there completes it.
  }

  private completeHandOff (): void {
    const rest = this.pending
    this.pending = null
    this.state = State.Gone
    this.fast.handOff(this, rest)
  }

  /** Timed out waiting for the rest of a head (slowloris): node:http's 408 path. */
  timeout (): void {
    this.state = State.Gone
    this.pending = null
    this.fast.forget(this)
    this.fast.clientError(this.socket, Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }))
  }
}

class FastHttpImpl implements FastHttp {
  private readonly live = new Set<FastConnection>()
  private sweeper: NodeJS.Timeout | undefined
  /** The head up to the Date value: status line, extra headers, fixed headers. */
  readonly headPrefix: string

  constructor (
    readonly server: HttpServer,
    readonly frontend: HttpFrontend,
    readonly opts: FastHttpOptions,
    private readonly nodeListener: ConnectionListener
  ) {
    this.headPrefix = STATUS_LINE + (opts.headers ?? '') + HEAD_FIXED
  }

  get connections (): number { return this.live.size }

  /**
   * node:http options that the fast path does not implement turn it off (per request): a
   * request cap per socket, a header size limit below the fast path's own (node:http would
   * refuse heads the fast path reads), joined duplicate headers (`filter` sees the headers).
   */
  enabled (): boolean {
    const s = this.server as HttpServer & { maxHeaderSize?: number, joinDuplicateHeaders?: boolean }
    return (s.maxRequestsPerSocket === 0 || s.maxRequestsPerSocket === null || s.maxRequestsPerSocket === undefined) &&
      (s.maxHeaderSize === undefined || s.maxHeaderSize >= HTTP_FAST_MAX_HEAD_BYTES) && s.joinDuplicateHeaders !== true
  }

  onConnection (socket: Socket): void {
    // A socket timeout set on the server is node:http's to apply.
    if (this.server.timeout > 0 || !this.enabled()) {
      this.nodeListener.call(this.server, socket)
      return
    }
    const c = new FastConnection(socket, this)
    this.live.add(c)
    const l = c.listeners
    socket.on('data', l.data)
    socket.on('end', l.end)
    socket.on('close', l.close)
    socket.on('error', l.error)
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), HTTP_FAST_SWEEP_MS)
      this.sweeper.unref()
    }
  }

  forget (c: FastConnection): void {
    this.live.delete(c)
    if (this.live.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  /** As node:http: a socket error or a refused request goes to 'clientError' (or is ended). */
  clientError (socket: Socket, err: Error): void {
    if (this.server.listenerCount('clientError') > 0) {
      this.server.emit('clientError', err, socket)
    } else {
      socket.destroy(err)
    }
  }

  /** Passes the connection to node:http's own handler with the bytes not yet parsed. */
  handOff (c: FastConnection, rest: Buffer | null): void {
    this.forget(c)
    const socket = c.socket
    const l = c.listeners
    socket.removeListener('data', l.data)
    socket.removeListener('end', l.end)
    socket.removeListener('drain', l.drain)
    socket.removeListener('close', l.close)
    socket.removeListener('error', l.error)
    if (socket.destroyed) return
    // node:http would otherwise read the handle directly, past the bytes unshifted here.
    const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle
    if (handle !== undefined && handle !== null) handle._consumed = true
    if (rest !== null && rest.length > 0) socket.unshift(rest)
    this.nodeListener.call(this.server, socket)
    if (socket.isPaused()) socket.resume()
  }

  /** An incomplete request at the end of the client's stream: node:http's parser refuses it. */
  eofError (c: FastConnection, rest: Buffer): void {
    this.forget(c)
    const err = Object.assign(new Error('Parse Error: Invalid EOF state'), { code: 'HPE_INVALID_EOF_STATE', bytesParsed: rest.length })
    this.clientError(c.socket, err)
  }

  /** Idle keep-alive connections past keepAliveTimeout close; heads slower than headersTimeout get 408. */
  private sweep (): void {
    const now = Date.now()
    const kat = this.server.keepAliveTimeout
    const hto = this.server.headersTimeout
    for (const c of this.live) {
      if (c.idle) {
        if (kat > 0 && now - c.since >= kat) {
          this.forget(c)
          c.socket.destroy()
        }
      } else if (c.headBegun && hto > 0 && now - c.headSince >= hto) {
        c.timeout()
      }
    }
  }

  /** Ends the idle connections (node:http's closeIdleConnections does the same for its own). */
  closeIdle (): void {
    for (const c of this.live) {
      if (c.idle) {
        this.forget(c)
        c.socket.destroy()
      }
    }
  }

  closeAll (): void {
    for (const c of this.live) {
      this.forget(c)
      c.socket.destroy()
    }
  }
}

/**
 * Puts the fast path in front of node:http on `server` (a plain http.Server). Returns undefined,
 * changing nothing, when this Node's http.Server does not have the 'connection' handler it
 * expects. `closeIdleConnections`/`closeAllConnections` of the server cover the fast path's
 * connections too, so drain and close work unchanged.
 */
export function attachFastHttp (server: HttpServer, frontend: HttpFrontend, opts: FastHttpOptions): FastHttp | undefined {
  const nodeListener = server.listeners('connection').find(f => f.name === 'connectionListener') as ConnectionListener | undefined
  if (nodeListener === undefined) return undefined
  const fast = new FastHttpImpl(server, frontend, opts, nodeListener)
  server.removeListener('connection', nodeListener)
  server.on('connection', (socket: Socket) => fast.onConnection(socket))
  const closeIdle = server.closeIdleConnections
  const closeAll = server.closeAllConnections
  server.closeIdleConnections = function (this: HttpServer) {
    fast.closeIdle()
    closeIdle.call(this)
  }
  server.closeAllConnections = function (this: HttpServer) {
    fast.closeAll()
    closeAll.call(this)
  }
  return fast
}
