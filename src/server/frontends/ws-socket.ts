import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { EventEmitter } from 'node:events'
import { isUtf8 } from 'node:buffer'
import {
  WS_ACCEPT_GUID, WS_CLOSE_INVALID_PAYLOAD, WS_CLOSE_NORMAL, WS_CLOSE_PROTOCOL_ERROR, WS_CLOSE_TIMEOUT_MS,
  WS_CLOSE_TOO_BIG, WS_MAX_BUFFERED, WS_MAX_CONTROL_PAYLOAD, WS_MAX_FRAGMENTS, WS_MAX_FRAME, WS_MAX_MESSAGE
} from '../../constants.js'

/**
 * Our own RFC 6455 server side, used on the tracker's own HTTP server instead of the `ws`
 * package: a WS announce with 5 offers is 1 + 5 + 5 + 5 frames on 6 sockets, ~13 system calls,
 * so per-frame work is kept small and allocation-light. Frames are parsed straight from the socket's chunks
 * (client frames unmasked in place, 32 bits at a time), and every message queued for a socket in
 * one turn of the event loop goes out in one Buffer and one write (`flush`).
 *
 * Only what a tracker needs: text messages in (binary ones are reported, not decoded), text out,
 * ping/pong, the close handshake. No extension is negotiated (permessage-deflate is not offered),
 * so any reserved bit is a protocol error.
 */

export const OPEN = 1
export const CLOSING = 2
export const CLOSED = 3

const OP_CONT = 0x0
const OP_TEXT = 0x1
const OP_BINARY = 0x2
const OP_CLOSE = 0x8
const OP_PING = 0x9
const OP_PONG = 0xa

/** What a socket reports to its owner. */
export interface RawWsHandler<T> {
  /** A complete text message (valid UTF-8). */
  text (owner: T, text: string): void
  /** A complete binary message (the tracker protocol has none). */
  binary (owner: T): void
  pong (owner: T): void
  /** The client broke the protocol; the socket is being closed with `code`. */
  protocolError (owner: T, code: number, reason: string): void
  /** The TCP socket closed (once). */
  closed (owner: T): void
}

/** Why a handshake is refused: HTTP status and text; undefined when acceptable. */
export function checkHandshake (req: IncomingMessage): { status: number, message: string, headers?: string } | undefined {
  if (req.method !== 'GET') return { status: 405, message: 'Invalid HTTP method' }
  const upgrade = req.headers.upgrade
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return { status: 400, message: 'Invalid Upgrade header' }
  const key = req.headers['sec-websocket-key']
  if (key === undefined || !KEY_RE.test(key)) return { status: 400, message: 'Missing or invalid Sec-WebSocket-Key header' }
  const version = req.headers['sec-websocket-version']
  if (version !== '13' && version !== '8') {
    return { status: 400, message: 'Missing or invalid Sec-WebSocket-Version header', headers: 'Sec-WebSocket-Version: 13, 8\r\n' }
  }
  return undefined
}

/** A base64 encoding of 16 bytes (RFC 6455 §4.2.1). */
const KEY_RE = /^[+/0-9A-Za-z]{22}==$/
/** RFC 7230 token characters, for Sec-WebSocket-Protocol values. */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Writes a refusal and closes the socket (the upgrade did not happen). */
export function refuseHandshake (socket: Duplex, status: number, message: string, extraHeaders = ''): void {
  if (socket.writable) {
    socket.once('finish', () => socket.destroy())
    socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(message)}\r\n${extraHeaders}\r\n${message}`)
  } else socket.destroy()
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 405: 'Method Not Allowed', 429: 'Too Many Requests' }

/**
 * The 101 response's lines (status line first) for an acceptable handshake (`checkHandshake`
 * passed); `ws` users may add lines in a 'headers' listener, as with the `ws` package.
 */
export function handshakeHeaders (req: IncomingMessage): string[] {
  const accept = createHash('sha1').update(req.headers['sec-websocket-key']! + WS_ACCEPT_GUID).digest('base64')
  const out = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`]
  // Like `ws`: the first protocol the client offers is chosen (browsers refuse an answer without one).
  const protocols = req.headers['sec-websocket-protocol']
  if (protocols !== undefined) {
    const first = protocols.split(',')[0].trim()
    if (TOKEN_RE.test(first)) out.push(`Sec-WebSocket-Protocol: ${first}`)
  }
  return out
}

/** `code` may be sent in a close frame (RFC 6455 §7.4). */
export function isValidCloseCode (code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
}

const EMPTY = Buffer.alloc(0)

// Scratch for the 32-bit mask word: its bytes are written in payload order, so the word is right
// whatever the machine's byte order.
const MASK_BYTES = new Uint8Array(4)
const MASK_WORD = new Int32Array(MASK_BYTES.buffer)
/** Payloads shorter than this are unmasked byte by byte (a typed-array view costs more). */
const UNMASK_WORDS_FROM = 32

/** XORs `b[s, e)` with the 4-byte `mask` (at `mask[m]`), in place. */
function unmask (b: Buffer, s: number, e: number, mask: Buffer, m: number): void {
  let i = s
  if (e - s >= UNMASK_WORDS_FROM) {
    const abs = b.byteOffset
    while (((abs + i) & 3) !== 0) { b[i] ^= mask[m + ((i - s) & 3)]; i++ }
    const words = (e - i) >>> 2
    const k = (i - s) & 3
    MASK_BYTES[0] = mask[m + k]
    MASK_BYTES[1] = mask[m + ((k + 1) & 3)]
    MASK_BYTES[2] = mask[m + ((k + 2) & 3)]
    MASK_BYTES[3] = mask[m + ((k + 3) & 3)]
    const w = MASK_WORD[0]
    const view = new Int32Array(b.buffer, abs + i, words)
    for (let j = 0; j < words; j++) view[j] ^= w
    i += words << 2
  }
  for (; i < e; i++) b[i] ^= mask[m + ((i - s) & 3)]
}

/** Bytes of a server frame header for a payload of `n` bytes. */
function headerSize (n: number): number { return n < 126 ? 2 : n < 65536 ? 4 : 10 }

/** Writes an unmasked FIN frame header at `off`; returns the payload's offset. */
function writeHeader (b: Buffer, off: number, opcode: number, n: number): number {
  b[off] = 0x80 | opcode
  if (n < 126) { b[off + 1] = n; return off + 2 }
  if (n < 65536) { b[off + 1] = 126; b[off + 2] = n >>> 8; b[off + 3] = n & 0xff; return off + 4 }
  b[off + 1] = 127
  b.writeUInt32BE(0, off + 2)
  b.writeUInt32BE(n, off + 6)
  return off + 10
}

/**
 * One accepted WebSocket on a TCP (or TLS) socket. `send` queues a text message; the owner calls
 * `flush` once per event-loop turn for the sockets that queued something.
 *
 * An EventEmitter for users of `server.ws`'s 'connection' event: it emits only 'close'
 * `(code, reason)` once, as a `ws` WebSocket does (1005: a close frame without a code, 1006: no
 * close frame). Messages go to the handler, not through events.
 */
export class RawWs<T> extends EventEmitter {
  readyState = OPEN
  /** The close code the client sent (1005: none in its frame; 1006: no close frame). */
  private closeCode = 1006
  private closeReason = EMPTY
  /** Messages queued since the last flush. */
  private out: string[] = []
  /** Header bytes of a frame split across reads (at most 14). */
  private hdr: Buffer | null = null
  private hdrLen = 0
  /** Payload of a frame split across reads, filled up to `plen`. */
  private pbuf: Buffer | null = null
  private plen = 0
  /** Opcode, FIN and mask (`pbuf`'s first 4 bytes are not it: kept apart) of the frame in `pbuf`. */
  private pop = 0
  private pfin = false
  private readonly pmask = Buffer.allocUnsafe(4)
  /** Offset of the mask key in the header `header` parsed last (in the buffer it was given). */
  private hdrLenMaskAt = 0
  /** A fragmented message being reassembled: its opcode (0: none), fragments and size. */
  private fragOp = 0
  private frags: Buffer[] = []
  private fragSize = 0
  private closeTimer: NodeJS.Timeout | undefined
  private ended = false

  constructor (readonly socket: Socket, readonly owner: T, private readonly handler: RawWsHandler<T>, head: Buffer) {
    super()
    socket.setNoDelay(true)
    socket.setTimeout(0)
    socket.on('data', (chunk: Buffer) => this.data(chunk))
    socket.on('error', () => socket.destroy())
    socket.on('end', () => this.onEnd())
    socket.on('close', () => this.onClose())
    if (head.length > 0) this.data(head)
  }

  /** Bytes written to the socket but not yet taken by the kernel. */
  get bufferedAmount (): number { return this.socket.writableLength }

  /** Queues a text message; false when it is not sent (not open). Call `flush` this turn. */
  send (message: string): boolean {
    if (this.readyState !== OPEN) return false
    return this.out.push(message) === 1
  }

  /** Writes every queued message: one Buffer, one write. */
  flush (): void {
    const out = this.out
    const n = out.length
    if (n === 0) return
    if (!this.socket.writable) { out.length = 0; return }
    let b: Buffer
    if (n === 1) {
      // The common case (an offer to a peer): no length list.
      const len = Buffer.byteLength(out[0], 'utf8')
      b = Buffer.allocUnsafe(headerSize(len) + len)
      b.write(out[0], writeHeader(b, 0, OP_TEXT, len), len, 'utf8')
    } else {
      let size = 0
      const lens: number[] = new Array(n)
      for (let i = 0; i < n; i++) {
        const len = Buffer.byteLength(out[i], 'utf8')
        lens[i] = len
        size += headerSize(len) + len
      }
      b = Buffer.allocUnsafe(size)
      let off = 0
      for (let i = 0; i < n; i++) {
        off = writeHeader(b, off, OP_TEXT, lens[i])
        off += b.write(out[i], off, lens[i], 'utf8')
      }
    }
    out.length = 0
    this.socket.write(b)
  }

  ping (): void {
    if (this.readyState !== OPEN) return
    this.control(OP_PING, EMPTY)
  }

  /** Starts the close handshake: queued messages, then our close frame. */
  close (code: number = WS_CLOSE_NORMAL, reason = ''): void {
    if (this.readyState !== OPEN) return
    this.flush()
    this.readyState = CLOSING
    this.control(OP_CLOSE, closePayload(code, reason))
    this.armCloseTimer()
  }

  /** Closes the TCP socket now, without a handshake. */
  terminate (): void {
    this.out = []
    this.readyState = CLOSED
    this.socket.destroy()
  }

  private control (opcode: number, payload: Buffer): void {
    const b = Buffer.allocUnsafe(2 + payload.length)
    b[0] = 0x80 | opcode
    b[1] = payload.length
    payload.copy(b, 2)
    if (this.socket.writable) this.socket.write(b)
  }

  /** Fails the connection (RFC 6455 §7.1.7): close frame with `code`, then the TCP close. */
  private fail (code: number, reason: string): void {
    if (this.readyState === CLOSED) return
    const wasOpen = this.readyState === OPEN
    this.out = []
    this.readyState = CLOSED
    this.resetParser()
    if (wasOpen) this.control(OP_CLOSE, closePayload(code, reason))
    this.endSocket()
    this.handler.protocolError(this.owner, code, reason)
  }

  private endSocket (): void {
    if (!this.ended) { this.ended = true; this.socket.end() }
    this.armCloseTimer()
  }

  private armCloseTimer (): void {
    if (this.closeTimer !== undefined) return
    this.closeTimer = setTimeout(() => this.socket.destroy(), WS_CLOSE_TIMEOUT_MS)
    this.closeTimer.unref()
  }

  private onEnd (): void {
    // The client half-closed: nothing more will come; finish our side too.
    this.readyState = CLOSED
    this.endSocket()
  }

  private onClose (): void {
    this.readyState = CLOSED
    this.out = []
    this.resetParser()
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer)
    this.handler.closed(this.owner)
    this.emit('close', this.closeCode, this.closeReason)
  }

  private resetParser (): void {
    this.hdr = null
    this.hdrLen = 0
    this.pbuf = null
    this.frags = []
    this.fragOp = 0
    this.fragSize = 0
  }

  /** Parses every complete frame in `chunk`; keeps an incomplete one's bytes for the next read. */
  private data (chunk: Buffer): void {
    let pos = 0
    const len = chunk.length
    // A frame's payload split across reads: fill it first.
    if (this.pbuf !== null) {
      const need = this.pbuf.length - this.plen
      const take = need < len ? need : len
      chunk.copy(this.pbuf, this.plen, 0, take)
      this.plen += take
      pos = take
      if (this.plen < this.pbuf.length) return
      const p = this.pbuf
      this.pbuf = null
      unmask(p, 0, p.length, this.pmask, 0)
      if (!this.frame(this.pfin, this.pop, p, 0, p.length)) return
    }
    // A header split across reads: complete it from this chunk, then parse it from `hdr`.
    if (this.hdr !== null) {
      const h = this.hdr
      while (pos < len) {
        h[this.hdrLen++] = chunk[pos++]
        if (this.hdrLen >= 2 && this.hdrLen === frameHeaderSize(h, 0)) break
      }
      if (this.hdrLen < 2 || this.hdrLen < frameHeaderSize(h, 0)) return
      this.hdr = null
      const r = this.header(h, 0, this.hdrLen)
      if (r < 0) return
      this.hdrLen = 0
      // Payload: all in this chunk, or start filling `pbuf`.
      if (len - pos >= r) {
        unmask(chunk, pos, pos + r, h, this.hdrLenMaskAt)
        if (!this.frame(this.pfin, this.pop, chunk, pos, pos + r)) return
        pos += r
      } else {
        h.copy(this.pmask, 0, this.hdrLenMaskAt, this.hdrLenMaskAt + 4)
        this.startPayload(chunk, pos, r)
        return
      }
    }
    while (pos < len) {
      if (len - pos < 2 || len - pos < frameHeaderSize(chunk, pos)) {
        this.hdr = Buffer.allocUnsafe(14)
        this.hdrLen = chunk.copy(this.hdr, 0, pos, len)
        return
      }
      const hs = frameHeaderSize(chunk, pos)
      const r = this.header(chunk, pos, hs)
      if (r < 0) return
      const start = pos + hs
      if (len - start >= r) {
        unmask(chunk, start, start + r, chunk, start - 4)
        if (!this.frame(this.pfin, this.pop, chunk, start, start + r)) return
        pos = start + r
      } else {
        chunk.copy(this.pmask, 0, start - 4, start)
        this.startPayload(chunk, start, r)
        return
      }
    }
  }

  private startPayload (chunk: Buffer, from: number, size: number): void {
    this.pbuf = Buffer.allocUnsafe(size)
    this.plen = chunk.copy(this.pbuf, 0, from, chunk.length)
  }

  /**
   * Checks the header at `b[at, at + hs)`: sets `pop`, `pfin`, `hdrLenMaskAt` and returns the
   * payload length, or -1 after failing the connection.
   */
  private header (b: Buffer, at: number, hs: number): number {
    const b0 = b[at]
    const b1 = b[at + 1]
    const fin = (b0 & 0x80) !== 0
    const op = b0 & 0x0f
    if ((b0 & 0x70) !== 0) { this.fail(WS_CLOSE_PROTOCOL_ERROR, 'reserved bits set'); return -1 }
    if ((b1 & 0x80) === 0) { this.fail(WS_CLOSE_PROTOCOL_ERROR, 'client frame not masked'); return -1 }
    let n = b1 & 0x7f
    if (n === 126) n = (b[at + 2] << 8) | b[at + 3]
    else if (n === 127) {
      const hi = b.readUInt32BE(at + 2)
      if (hi !== 0) { this.fail(hi >= 0x80000000 ? WS_CLOSE_PROTOCOL_ERROR : WS_CLOSE_TOO_BIG, 'Max payload size exceeded'); return -1 }
      n = b.readUInt32BE(at + 6)
    }
    if (op >= OP_CLOSE) {
      if (op > OP_PONG) { this.fail(WS_CLOSE_PROTOCOL_ERROR, `reserved opcode ${op}`); return -1 }
      if (!fin) { this.fail(WS_CLOSE_PROTOCOL_ERROR, 'fragmented control frame'); return -1 }
      if (n > WS_MAX_CONTROL_PAYLOAD) { this.fail(WS_CLOSE_PROTOCOL_ERROR, 'control frame too long'); return -1 }
    } else {
      if (op > OP_BINARY) { this.fail(WS_CLOSE_PROTOCOL_ERROR, `reserved opcode ${op}`); return -1 }
      if (op === OP_CONT ? this.fragOp === 0 : this.fragOp !== 0) {
        this.fail(WS_CLOSE_PROTOCOL_ERROR, op === OP_CONT ? 'continuation without a message' : 'new message inside a fragmented one')
        return -1
      }
      if (n > WS_MAX_FRAME || this.fragSize + n > WS_MAX_MESSAGE) { this.fail(WS_CLOSE_TOO_BIG, 'Max payload size exceeded'); return -1 }
    }
    this.pop = op
    this.pfin = fin
    this.hdrLenMaskAt = at + hs - 4
    return n
  }

  /** One complete, unmasked frame's payload `b[s, e)`. False: stop parsing (the connection failed or closed). */
  private frame (fin: boolean, op: number, b: Buffer, s: number, e: number): boolean {
    if (this.readyState === CLOSED) return false
    if (op === OP_TEXT || op === OP_BINARY || op === OP_CONT) {
      if (!fin) {
        if (op !== OP_CONT) this.fragOp = op
        if (this.frags.length >= WS_MAX_FRAGMENTS) { this.fail(WS_CLOSE_TOO_BIG, 'too many fragments'); return false }
        this.frags.push(Buffer.from(b.subarray(s, e))) // a copy: the chunk is not kept
        this.fragSize += e - s
        return true
      }
      if (op === OP_CONT) {
        op = this.fragOp
        this.frags.push(b.subarray(s, e))
        b = Buffer.concat(this.frags)
        s = 0
        e = b.length
        this.frags = []
        this.fragOp = 0
        this.fragSize = 0
      }
      // After our close frame, data is read (to reach the client's close) but not acted on.
      if (this.readyState !== OPEN) return true
      if (op === OP_BINARY) { this.handler.binary(this.owner); return (this.readyState as number) !== CLOSED }
      const text = utf8Text(b, s, e)
      // Invalid UTF-8 decodes to U+FFFD; only then is the exact check needed.
      if (text.indexOf('\uFFFD') !== -1 && !isUtf8(b.subarray(s, e))) {
        this.fail(WS_CLOSE_INVALID_PAYLOAD, 'invalid UTF-8')
        return false
      }
      this.handler.text(this.owner, text)
      return (this.readyState as number) !== CLOSED
    }
    if (op === OP_PING) {
      // A client that pings and never reads would grow our write buffer without bound: over the
      // limit its pings go unanswered (RFC 6455 §5.5.3 lets a pong answer only the latest ping).
      if (this.readyState === OPEN && this.socket.writableLength <= WS_MAX_BUFFERED) this.control(OP_PONG, b.subarray(s, e))
      return true
    }
    if (op === OP_PONG) {
      this.handler.pong(this.owner)
      return true
    }
    // Close: check the code and reason, answer with the same code (if we have not closed first).
    const n = e - s
    let code = 0
    if (n === 1) { this.fail(WS_CLOSE_PROTOCOL_ERROR, 'close frame of 1 byte'); return false }
    if (n >= 2) {
      code = (b[s] << 8) | b[s + 1]
      if (!isValidCloseCode(code)) { this.fail(WS_CLOSE_PROTOCOL_ERROR, `invalid close code ${code}`); return false }
      if (!isUtf8(b.subarray(s + 2, e))) { this.fail(WS_CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 close reason'); return false }
      this.closeReason = Buffer.from(b.subarray(s + 2, e))
    }
    this.closeCode = n === 0 ? 1005 : code
    if (this.readyState === OPEN) {
      this.flush()
      this.control(OP_CLOSE, code === 0 ? EMPTY : closePayload(code, ''))
    }
    this.readyState = CLOSED
    this.resetParser()
    this.endSocket()
    return false
  }
}

/** Where a signalling frame's SDP starts (ASCII, so never inside a multi-byte character). */
const SDP_KEY = Buffer.from('"sdp":"')
/** Frames shorter than this are decoded in one piece. */
const PIECEWISE_FROM = 512

/**
 * The UTF-8 text of `b[s, e)`, the same as `b.toString('utf8', s, e)` (invalid sequences
 * included: pieces are cut at ASCII bytes), faster for signalling frames. V8 decodes ASCII fast
 * only up to the first other byte, and a frame's binary ids (bytes ≥ 0x80) come before its SDPs
 * (most of its bytes, ASCII), so the frame is decoded in pieces, each starting at an SDP.
 */
export function utf8Text (b: Buffer, s: number, e: number): string {
  if (e - s < PIECEWISE_FROM) return b.toString('utf8', s, e)
  let cut = b.indexOf(SDP_KEY, s)
  if (cut === -1 || cut >= e) return b.toString('utf8', s, e)
  let text = b.toString('utf8', s, cut)
  for (;;) {
    const next = b.indexOf(SDP_KEY, cut + SDP_KEY.length)
    if (next === -1 || next >= e) return text + b.toString('utf8', cut, e)
    text += b.toString('utf8', cut, next)
    cut = next
  }
}

/**
 * Header bytes of the client frame at `b[at]`, from its second byte. Without the mask bit there
 * is no mask key, so an unmasked frame is refused as soon as its length is read.
 */
function frameHeaderSize (b: Buffer, at: number): number {
  const b1 = b[at + 1]
  const n = b1 & 0x7f
  return (n < 126 ? 2 : n === 126 ? 4 : 10) + ((b1 & 0x80) !== 0 ? 4 : 0)
}

function closePayload (code: number, reason: string): Buffer {
  const r = Buffer.from(reason, 'utf8').subarray(0, WS_MAX_CONTROL_PAYLOAD - 2)
  const b = Buffer.allocUnsafe(2 + r.length)
  b.writeUInt16BE(code, 0)
  r.copy(b, 2)
  return b
}
