/**
 * Binary-safe bencode (BEP 3).
 *
 * Dict keys are binary strings both ways (one character per byte), so a raw 20-byte info hash
 * survives as a key — a UTF-8 key mapping would turn bytes ≥ 0x80 into two bytes on encode and
 * garble them on decode. Decoded dicts are objects with a null prototype: plain property access
 * for callers, and keys such as "__proto__" or "constructor" are ordinary own keys.
 */

import { BENCODE_MAX_DEPTH } from '../../constants.js'
import { trackerError } from '../../errors.js'
import { bytesToBinary } from './binary.js'
import { fail, ok, type Result } from './result.js'

/** A decoded dict: null-prototype object keyed by binary strings. */
export interface BDict { [key: string]: BValue }

/** What `bdecode` produces: byte strings stay bytes (views into the input, not copies). */
export type BValue = number | Uint8Array | BValue[] | BDict

/**
 * What `bencode` accepts. Strings are text (written as UTF-8); Uint8Array is raw bytes; object
 * keys are binary strings written one byte per character; undefined-valued keys are skipped.
 */
export type BEncodable =
  | number
  | string
  | Uint8Array
  | readonly BEncodable[]
  | { readonly [key: string]: BEncodable | undefined }

// ---------------------------------------------------------------------------------------------
// Encoding. Inputs come from our own code, so a value bencode cannot represent is a bug and
// throws a TypeError (hostile input only ever reaches the decoder).

const textEncoder = new TextEncoder()

/** UTF-8 length of `s` as TextEncoder writes it (a lone surrogate becomes U+FFFD, 3 bytes). */
export function utf8Length (s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length &&
      (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++ } else n += 3
  }
  return n
}

/** Bytes needed to write the decimal digits of a safe integer. */
function intLength (v: number): number {
  let n = v < 0 ? 2 : 1
  let a = v < 0 ? -v : v
  while (a >= 10) { a = Math.floor(a / 10); n++ }
  return n
}

/** A growable output buffer; starts small because most messages are. */
class Writer {
  buf = new Uint8Array(256)
  pos = 0

  ensure (n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
  }

  /** ASCII-only strings (digits, markers). */
  ascii (s: string): void {
    this.ensure(s.length)
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i)
  }

  result (): Uint8Array {
    return this.buf.slice(0, this.pos)
  }
}

function isPlainObject (v: object): boolean {
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** Encoding deeper than this is surely a cycle. */
const MAX_ENCODE_DEPTH = 256

function encodeInto (w: Writer, v: unknown, depth: number): void {
  if (depth > MAX_ENCODE_DEPTH) throw new TypeError('bencode: nesting too deep (cycle?)')
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new TypeError(`bencode: not a safe integer: ${v}`)
    w.ascii(`i${v}e`)
  } else if (typeof v === 'string') {
    const n = utf8Length(v)
    w.ascii(`${n}:`)
    w.ensure(n)
    textEncoder.encodeInto(v, w.buf.subarray(w.pos, w.pos + n))
    w.pos += n
  } else if (v instanceof Uint8Array) {
    w.ascii(`${v.length}:`)
    w.ensure(v.length)
    w.buf.set(v, w.pos)
    w.pos += v.length
  } else if (Array.isArray(v)) {
    w.ascii('l')
    for (const item of v) encodeInto(w, item, depth + 1)
    w.ascii('e')
  } else if (typeof v === 'object' && v !== null && isPlainObject(v)) {
    const obj = v as Record<string, unknown>
    // One char per byte, so code-unit order (the default sort) is raw byte order.
    const keys = Object.keys(obj).sort()
    w.ascii('d')
    for (const k of keys) {
      const item = obj[k]
      if (item === undefined) continue
      w.ascii(`${k.length}:`)
      w.ensure(k.length)
      for (let i = 0; i < k.length; i++) {
        const c = k.charCodeAt(i)
        if (c > 0xff) throw new TypeError('bencode: dict key is not a binary string')
        w.buf[w.pos++] = c
      }
      encodeInto(w, item, depth + 1)
    }
    w.ascii('e')
  } else {
    throw new TypeError(`bencode: cannot encode ${v === null ? 'null' : typeof v}`)
  }
}

/** Encode a value; throws TypeError for values bencode cannot represent (see BEncodable). */
export function bencode (value: BEncodable): Uint8Array {
  const w = new Writer()
  encodeInto(w, value, 0)
  return w.result()
}

/** Length in bytes of `i<v>e` (for callers that write bencode by hand). */
export function bintLength (v: number): number {
  return intLength(v) + 2
}

// ---------------------------------------------------------------------------------------------
// Decoding. Never throws: every failure is an INVALID_PACKET result naming the byte offset.

export interface BdecodeOptions {
  /** Deepest list/dict nesting accepted (default BENCODE_MAX_DEPTH). */
  maxDepth?: number
  /** Longest input accepted, in bytes (default: no limit; callers bound their bodies). */
  maxLength?: number
}

interface Cursor {
  b: Uint8Array
  pos: number
  maxDepth: number
  err: string
}

const CH_0 = 0x30
const CH_9 = 0x39
const CH_COLON = 0x3a
const CH_MINUS = 0x2d
const CH_D = 0x64
const CH_E = 0x65
const CH_I = 0x69
const CH_L = 0x6c

function decodeInt (c: Cursor): number | undefined {
  const b = c.b
  let i = c.pos + 1 // past 'i'
  let neg = false
  if (b[i] === CH_MINUS) { neg = true; i++ }
  const start = i
  let v = 0
  while (i < b.length && b[i] >= CH_0 && b[i] <= CH_9) {
    v = v * 10 + (b[i] - CH_0)
    if (v > Number.MAX_SAFE_INTEGER) { c.pos = start; c.err = 'integer out of safe range'; return undefined }
    i++
  }
  if (i === start) { c.pos = i; c.err = 'integer without digits'; return undefined }
  if (b[start] === CH_0 && (i - start > 1 || neg)) {
    c.pos = start
    c.err = neg ? 'negative zero' : 'integer with leading zero'
    return undefined
  }
  if (i >= b.length || b[i] !== CH_E) { c.pos = i; c.err = 'unterminated integer'; return undefined }
  c.pos = i + 1
  return neg ? -v : v
}

function decodeBytes (c: Cursor): Uint8Array | undefined {
  const b = c.b
  const start = c.pos
  let i = start
  let len = 0
  while (i < b.length && b[i] >= CH_0 && b[i] <= CH_9) {
    len = len * 10 + (b[i] - CH_0)
    // Longer than the whole input: stop before the number can grow without bound.
    if (len > b.length) { c.err = 'string longer than input'; return undefined }
    i++
  }
  if (i === start) { c.err = 'expected a value'; return undefined }
  if (b[start] === CH_0 && i - start > 1) { c.err = 'string length with leading zero'; return undefined }
  if (i >= b.length || b[i] !== CH_COLON) { c.pos = i; c.err = 'expected ":" after string length'; return undefined }
  i++
  if (len > b.length - i) { c.err = 'string longer than input'; return undefined }
  c.pos = i + len
  return b.subarray(i, i + len)
}

function decodeValue (c: Cursor, depth: number): BValue | undefined {
  const b = c.b
  if (c.pos >= b.length) { c.err = 'unexpected end of input'; return undefined }
  const ch = b[c.pos]
  if (ch === CH_I) return decodeInt(c)
  if (ch === CH_L) {
    if (depth >= c.maxDepth) { c.err = 'nesting too deep'; return undefined }
    c.pos++
    const list: BValue[] = []
    while (c.pos < b.length && b[c.pos] !== CH_E) {
      const item = decodeValue(c, depth + 1)
      if (item === undefined) return undefined
      list.push(item)
    }
    if (c.pos >= b.length) { c.err = 'unterminated list'; return undefined }
    c.pos++
    return list
  }
  if (ch === CH_D) {
    if (depth >= c.maxDepth) { c.err = 'nesting too deep'; return undefined }
    c.pos++
    const dict: BDict = Object.create(null)
    while (c.pos < b.length && b[c.pos] !== CH_E) {
      const keyAt = c.pos
      const kb = decodeBytes(c)
      if (kb === undefined) {
        if (c.err === 'expected a value') c.err = 'dict key is not a string'
        return undefined
      }
      const key = bytesToBinary(kb)
      // Unsorted keys are tolerated (liberal in what we accept); duplicates are ambiguous.
      if (dict[key] !== undefined) { c.pos = keyAt; c.err = 'duplicate dict key'; return undefined }
      const item = decodeValue(c, depth + 1)
      if (item === undefined) return undefined
      dict[key] = item
    }
    if (c.pos >= b.length) { c.err = 'unterminated dict'; return undefined }
    c.pos++
    return dict
  }
  return decodeBytes(c)
}

/**
 * Decode exactly one bencoded value filling `bytes`. Byte strings are zero-copy views into
 * `bytes`; dicts are null-prototype objects keyed by binary strings; integers are numbers
 * (leading zeros, "-0" and magnitudes beyond Number.MAX_SAFE_INTEGER are errors). Dict keys
 * may come in any order but not twice. Trailing bytes are an error.
 */
export function bdecode (bytes: Uint8Array, opts?: BdecodeOptions): Result<BValue> {
  if (!(bytes instanceof Uint8Array)) return fail(trackerError('INVALID_PACKET', 'bencode: input is not bytes'))
  const maxLength = opts?.maxLength
  if (maxLength !== undefined && bytes.length > maxLength) {
    return fail(trackerError('INVALID_PACKET', `bencode: input longer than ${maxLength} bytes`))
  }
  const c: Cursor = { b: bytes, pos: 0, maxDepth: opts?.maxDepth ?? BENCODE_MAX_DEPTH, err: '' }
  const value = decodeValue(c, 0)
  if (value === undefined) return fail(trackerError('INVALID_PACKET', `bencode: ${c.err} at byte ${c.pos}`))
  if (c.pos !== bytes.length) return fail(trackerError('INVALID_PACKET', `bencode: trailing data at byte ${c.pos}`))
  return ok(value)
}

// ---------------------------------------------------------------------------------------------
// Accessors: narrow a decoded value, undefined when it has another type.

/** Not fatal: a tracker's text with a bad byte still reads, with U+FFFD in its place. */
const lenientUtf8 = new TextDecoder('utf-8', { ignoreBOM: true })

/** A byte string read as UTF-8 text. */
export function bstr (v: BValue | undefined): string | undefined {
  return v instanceof Uint8Array ? lenientUtf8.decode(v) : undefined
}

/** A byte string as a binary string (one char per byte). */
export function bbinary (v: BValue | undefined): string | undefined {
  return v instanceof Uint8Array ? bytesToBinary(v) : undefined
}

export function bbytes (v: BValue | undefined): Uint8Array | undefined {
  return v instanceof Uint8Array ? v : undefined
}

export function bint (v: BValue | undefined): number | undefined {
  return typeof v === 'number' ? v : undefined
}

/** An integer ≥ 0 (counts, intervals), else undefined. */
export function buint (v: BValue | undefined): number | undefined {
  return typeof v === 'number' && v >= 0 ? v : undefined
}

export function blist (v: BValue | undefined): BValue[] | undefined {
  return Array.isArray(v) ? v : undefined
}

export function bdict (v: BValue | undefined): BDict | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) ? v : undefined
}

/** `bytes` decoded as a dict (a tracker's response body); a non-dict is INVALID_PACKET "`what` is not a dict". */
export function bdecodeDict (bytes: Uint8Array, what: string): Result<BDict> {
  const decoded = bdecode(bytes)
  if (!decoded.ok) return decoded
  const d = bdict(decoded.value)
  return d === undefined ? fail(trackerError('INVALID_PACKET', `${what} is not a dict`)) : ok(d)
}
