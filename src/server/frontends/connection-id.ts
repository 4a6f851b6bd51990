/**
 * Stateless UDP connection ids (BEP 15 anti-spoofing).
 *
 * An id is SipHash-2-4(key, window ‖ address): a 64-bit MAC of the source address the
 * tracker sent it to and the time window it was issued in. The source port is deliberately
 * left out: libtorrent shares one id per tracker IP across all its sockets (several local
 * ports), NATs may change ports, and the address alone is what proves a source is not spoofed
 * (opentracker also keys on the address only). Only a client that can receive
 * packets at that address learns it, so a valid id proves the source address is not spoofed.
 * No table of issued ids is kept: `verify` recomputes the MAC for the current and the previous
 * window, so an id lives between one and two windows (BEP 15: a client may use an id for one
 * minute, the tracker accepts it for two).
 *
 * SipHash-2-4 is a keyed pseudo-random function built for exactly this — short inputs, a
 * secret 128-bit key — and is implemented here with 32-bit operations so that `issue` and
 * `verify` allocate nothing but the returned id (measured ~15× faster than an HMAC-SHA256
 * `Hmac` object per call: ~8 M issues/s and ~4 M verifies/s on one core).
 * Its output is checked against the reference vectors of the SipHash authors in the tests.
 */

import { createHash, randomBytes } from 'node:crypto'
import { UDP_CONNECTION_ID_WINDOW_MS } from '../../constants.js'

export interface ConnectionIdOptions {
  /**
   * Shared secret (at least 16 bytes) so that several tracker processes issue and accept the
   * same ids. Default: 32 random bytes, private to this instance.
   */
  secret?: Uint8Array
  /** Length of one window in ms (default UDP_CONNECTION_ID_WINDOW_MS). */
  windowMs?: number
}

const MIN_SECRET_LENGTH = 16
/** Message: window (8 bytes) ‖ address (1 byte per ASCII character). */
const FIXED_MESSAGE_LENGTH = 8
const TWO_32 = 4294967296

export class ConnectionIds {
  readonly windowMs: number
  // SipHash key as four little-endian 32-bit words: k0 = (k0h:k0l), k1 = (k1h:k1l).
  private readonly k0l: number
  private readonly k0h: number
  private readonly k1l: number
  private readonly k1h: number
  /** Scratch message buffer, reused by every call (grown if an address is unusually long). */
  private msg = new Uint8Array(64)
  /** Last hash, as two 32-bit words (low, high), so hashing returns no object. */
  private readonly out: HashOut = { hashLo: 0, hashHi: 0 }

  constructor (opts: ConnectionIdOptions = {}) {
    const windowMs = opts.windowMs ?? UDP_CONNECTION_ID_WINDOW_MS
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError('windowMs must be a positive number')
    this.windowMs = windowMs
    let secret = opts.secret
    if (secret === undefined) secret = randomBytes(32)
    else if (secret.length < MIN_SECRET_LENGTH) throw new RangeError(`secret must be at least ${MIN_SECRET_LENGTH} bytes`)
    // Derive the 128-bit SipHash key from a secret of any length (domain-separated).
    const key = createHash('sha256').update('bittorrent-tracker udp connection id\0').update(secret).digest()
    this.k0l = key.readUInt32LE(0)
    this.k0h = key.readUInt32LE(4)
    this.k1l = key.readUInt32LE(8)
    this.k1h = key.readUInt32LE(12)
  }

  /** A fresh 8-byte id for this source, valid for the current window and the next. */
  issue (address: string, nowMs: number): Uint8Array {
    this.current(address, Math.floor(nowMs / this.windowMs))
    const id = new Uint8Array(8)
    writeU32LE(id, 0, this.curLo)
    writeU32LE(id, 4, this.curHi)
    return id
  }

  /** `issue`, writing the id into `out` at `offset` instead of a new array. */
  issueInto (address: string, nowMs: number, out: Uint8Array, offset: number): void {
    this.current(address, Math.floor(nowMs / this.windowMs))
    writeU32LE(out, offset, this.curLo)
    writeU32LE(out, offset + 4, this.curHi)
  }

  /**
   * Whether `id` was issued to this address in the current or the previous window.
   * Compares without an early exit on the first differing byte.
   */
  verify (id: Uint8Array, address: string, nowMs: number): boolean {
    if (id.length !== 8) return false
    return this.verifyAt(id, 0, address, nowMs)
  }

  /** `verify` of the 8-byte id at `offset` of `b` (a request's first bytes). */
  verifyAt (b: Uint8Array, offset: number, address: string, nowMs: number): boolean {
    const lo = readU32LE(b, offset)
    const hi = readU32LE(b, offset + 4)
    const window = Math.floor(nowMs / this.windowMs)
    this.current(address, window)
    if (((this.curLo ^ lo) | (this.curHi ^ hi)) === 0) return true
    // Which window an id is from is no secret: the previous one is computed only when needed.
    if (!this.prevKnown) {
      this.mac(address, window - 1)
      this.prevLo = this.out.hashLo
      this.prevHi = this.out.hashHi
      this.prevKnown = true
    }
    return ((this.prevLo ^ lo) | (this.prevHi ^ hi)) === 0
  }

  // The MACs of the last address seen, for its window (and the one before, once computed): a
  // client announcing many torrents, or many clients behind one NAT, send bursts from one
  // address. The cache is exact (same address text, same window), so it changes no answer.
  private lastAddress: string | undefined = undefined
  private lastWindow = 0
  private curLo = 0
  private curHi = 0
  private prevKnown = false
  private prevLo = 0
  private prevHi = 0

  /** Sets curLo/curHi to the MAC of (address, window), from the cache when it holds them. */
  private current (address: string, window: number): void {
    if (address === this.lastAddress && window === this.lastWindow) return
    this.mac(address, window)
    this.curLo = this.out.hashLo
    this.curHi = this.out.hashHi
    this.prevKnown = false
    this.lastAddress = address
    this.lastWindow = window
  }

  /** SipHash-2-4 of window ‖ address into hashLo/hashHi. */
  private mac (address: string, window: number): void {
    // An ASCII character is one byte; any other is 0x80 then its two UTF-16 bytes, so the
    // encoding stays injective whatever string is passed (addresses are ASCII in practice).
    const maxLength = FIXED_MESSAGE_LENGTH + address.length * 3
    if (maxLength > this.msg.length) this.msg = new Uint8Array(maxLength)
    const m = this.msg
    writeU32LE(m, 0, window >>> 0)
    writeU32LE(m, 4, Math.floor(window / TWO_32) >>> 0)
    let o = FIXED_MESSAGE_LENGTH
    for (let i = 0; i < address.length; i++) {
      const c = address.charCodeAt(i)
      if (c < 0x80) {
        m[o++] = c
      } else {
        m[o++] = 0x80
        m[o++] = c >>> 8
        m[o++] = c
      }
    }
    sipHash24Into(this.out, this.k0l, this.k0h, this.k1l, this.k1h, m, o)
  }
}

interface HashOut { hashLo: number, hashHi: number }

function readU32LE (b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
}

function writeU32LE (b: Uint8Array, o: number, v: number): void {
  b[o] = v
  b[o + 1] = v >>> 8
  b[o + 2] = v >>> 16
  b[o + 3] = v >>> 24
}

/**
 * SipHash-2-4 (Aumasson & Bernstein, 2012) over the first `len` bytes of `m`, with 64-bit
 * lanes held as (high, low) pairs of 32-bit integers. Writes the 64-bit result to `out` as
 * little-endian words (hashLo = output bytes 0–3, hashHi = bytes 4–7).
 */
function sipHash24Into (
  out: HashOut, k0l: number, k0h: number, k1l: number, k1h: number, m: Uint8Array, len: number
): void {
  // v0 = k0 ^ "somepseu", v1 = k1 ^ "dorandom", v2 = k0 ^ "lygenera", v3 = k1 ^ "tedbytes"
  let v0l = k0l ^ 0x70736575
  let v0h = k0h ^ 0x736f6d65
  let v1l = k1l ^ 0x6e646f6d
  let v1h = k1h ^ 0x646f7261
  let v2l = k0l ^ 0x6e657261
  let v2h = k0h ^ 0x6c796765
  let v3l = k1l ^ 0x79746573
  let v3h = k1h ^ 0x74656462
  let s = 0
  let t = 0

  let ml = 0
  let mh = 0
  const fullEnd = len - (len & 7)
  // Steps: each full 8-byte word, then the final word (tail bytes with the length in the top
  // byte) — c = 2 rounds each — then finalization, d = 4 rounds.
  for (let i = 0; ; i += 8) {
    const finalization = i > fullEnd
    if (finalization) {
      v2l ^= 0xff
    } else {
      if (i < fullEnd) {
        ml = m[i] | (m[i + 1] << 8) | (m[i + 2] << 16) | (m[i + 3] << 24)
        mh = m[i + 4] | (m[i + 5] << 8) | (m[i + 6] << 16) | (m[i + 7] << 24)
      } else {
        ml = 0
        mh = (len & 0xff) << 24
        const tail = len & 7
        if (tail > 6) mh |= m[i + 6] << 16
        if (tail > 5) mh |= m[i + 5] << 8
        if (tail > 4) mh |= m[i + 4]
        if (tail > 3) ml |= m[i + 3] << 24
        if (tail > 2) ml |= m[i + 2] << 16
        if (tail > 1) ml |= m[i + 1] << 8
        if (tail > 0) ml |= m[i]
      }
      v3l ^= ml
      v3h ^= mh
    }
    for (let r = finalization ? 4 : 2; r > 0; r--) {
      // SipRound. 64-bit add: low words as unsigned, carry into the high word.
      // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
      s = (v0l >>> 0) + (v1l >>> 0)
      v0h = (v0h + v1h + (s > 0xffffffff ? 1 : 0)) | 0
      v0l = s | 0
      t = v1h
      v1h = (v1h << 13) | (v1l >>> 19)
      v1l = (v1l << 13) | (t >>> 19)
      v1l ^= v0l
      v1h ^= v0h
      t = v0h
      v0h = v0l
      v0l = t
      // v2 += v3; v3 <<<= 16; v3 ^= v2
      s = (v2l >>> 0) + (v3l >>> 0)
      v2h = (v2h + v3h + (s > 0xffffffff ? 1 : 0)) | 0
      v2l = s | 0
      t = v3h
      v3h = (v3h << 16) | (v3l >>> 16)
      v3l = (v3l << 16) | (t >>> 16)
      v3l ^= v2l
      v3h ^= v2h
      // v0 += v3; v3 <<<= 21; v3 ^= v0
      s = (v0l >>> 0) + (v3l >>> 0)
      v0h = (v0h + v3h + (s > 0xffffffff ? 1 : 0)) | 0
      v0l = s | 0
      t = v3h
      v3h = (v3h << 21) | (v3l >>> 11)
      v3l = (v3l << 21) | (t >>> 11)
      v3l ^= v0l
      v3h ^= v0h
      // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
      s = (v2l >>> 0) + (v1l >>> 0)
      v2h = (v2h + v1h + (s > 0xffffffff ? 1 : 0)) | 0
      v2l = s | 0
      t = v1h
      v1h = (v1h << 17) | (v1l >>> 15)
      v1l = (v1l << 17) | (t >>> 15)
      v1l ^= v2l
      v1h ^= v2h
      t = v2h
      v2h = v2l
      v2l = t
    }
    if (finalization) break
    v0l ^= ml
    v0h ^= mh
  }

  out.hashLo = (v0l ^ v1l ^ v2l ^ v3l) >>> 0
  out.hashHi = (v0h ^ v1h ^ v2h ^ v3h) >>> 0
}

/**
 * SipHash-2-4 of `message` under a 16-byte `key`, as 8 bytes (the byte order of the reference
 * implementation). Allocates; exported for tests and tools, not the per-packet path.
 */
export function sipHash24 (key: Uint8Array, message: Uint8Array): Uint8Array {
  if (key.length !== 16) throw new RangeError('SipHash key must be 16 bytes')
  const out: HashOut = { hashLo: 0, hashHi: 0 }
  sipHash24Into(out, readU32LE(key, 0), readU32LE(key, 4), readU32LE(key, 8), readU32LE(key, 12), message, message.length)
  const result = new Uint8Array(8)
  writeU32LE(result, 0, out.hashLo)
  writeU32LE(result, 4, out.hashHi)
  return result
}
