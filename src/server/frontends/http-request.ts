/**
 * A strict reader of the one HTTP/1.1 request form trackers get in volume: `GET` or `HEAD`, an
 * origin-form target of visible ASCII, `HTTP/1.1`, CRLF line ends, one `Host`, no body. It says
 * only "this is that form" (and what the server needs from it) or "it is not": anything else —
 * other methods or versions, bodies (Content-Length, Transfer-Encoding), Expect, Upgrade, bare CR
 * or LF, NUL and other control bytes, non-ASCII, obs-fold, odd or repeated framing headers, too
 * many or too long headers — is left to a general HTTP parser (node:http), which answers or
 * refuses it by its own rules. So nothing here has to agree with node:http on edge cases: a
 * request is either plainly valid for both, or not this reader's to judge.
 */

import { HTTP_FAST_MAX_HEAD_BYTES, HTTP_FAST_MAX_HEADERS } from '../../constants.js'

const CR = 0x0d
const LF = 0x0a
const SP = 0x20
const HTAB = 0x09
const COLON = 0x3a
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')

/** What the server needs from a request head the reader accepted. */
export interface RequestHead {
  /** `HEAD` (else `GET`): the response carries no body. */
  head: boolean
  /** The request target, as node:http's `req.url`. */
  url: string
  /** `Connection: close`: answer, then close. */
  close: boolean
  /** X-Forwarded-For, repeated headers joined with ", " (as node:http joins them), or undefined. */
  forwardedFor: string | undefined
  /** Offsets of the header lines (first byte, and the byte after the last line's CRLF). */
  headersStart: number
  headersEnd: number
}

/** A fresh RequestHead to fill (one per connection: the reader reuses it). */
export function newRequestHead (): RequestHead {
  return { head: false, url: '', close: false, forwardedFor: undefined, headersStart: 0, headersEnd: 0 }
}

/** The offset just past the head's blank line (CRLFCRLF) at or after `from`, or -1. */
export function findHeadEnd (buf: Buffer, from: number): number {
  const i = buf.indexOf(CRLFCRLF, from)
  return i === -1 ? -1 : i + 4
}

/**
 * Whether the bytes of an incomplete head buf[start, end) already rule the fast form out (a byte
 * no valid head holds: NUL and other controls, bare LF, CR not before LF, non-ASCII; or too many
 * bytes), so they go to the general parser now instead of waiting for a blank line that may
 * never come. Bytes before `from` were checked by an earlier call (a head arriving in pieces is
 * checked once per byte, not once per piece).
 */
export function partialHeadRejected (buf: Buffer, start: number, end: number, from = start): boolean {
  if (end - start >= HTTP_FAST_MAX_HEAD_BYTES) return true
  for (let i = from; i < end; i++) {
    const c = buf[i]
    if (c >= SP && c < 0x7f) continue
    if (c === HTAB) continue
    if (c === CR) {
      if (i + 1 < end && buf[i + 1] !== LF) return true
      continue
    }
    if (c === LF) {
      if (i === start || buf[i - 1] !== CR) return true
      continue
    }
    return true
  }
  return false
}

// Header names the reader acts on, lower-case.
const H_HOST = 'host'
const H_CONNECTION = 'connection'
const H_XFF = 'x-forwarded-for'

/** tchar (RFC 9110 §5.6.2) by byte. */
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1

/** Whether buf[at, at + name.length) equals the lower-case `name`, ignoring ASCII case. */
function nameIs (buf: Buffer, at: number, len: number, name: string): boolean {
  if (len !== name.length) return false
  for (let i = 0; i < len; i++) {
    if ((buf[at + i] | 0x20) !== name.charCodeAt(i)) return false
  }
  return true
}

// Header names whose presence means the request is not the fast form (framing, protocol
// switches, expectations): a general parser must see them.
const HANDED_OFF = ['content-length', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings', 'te', 'trailer']

/**
 * Reads the head in buf[start, end) (end just past its CRLFCRLF) into `out`. Returns false when
 * it is not the fast form (see the module comment); `out` is then undefined in part.
 */
export function parseRequestHead (buf: Buffer, start: number, end: number, out: RequestHead): boolean {
  if (end - start > HTTP_FAST_MAX_HEAD_BYTES) return false
  let i = start
  // Method.
  if (buf[i] === 0x47 && buf[i + 1] === 0x45 && buf[i + 2] === 0x54 && buf[i + 3] === SP) {
    out.head = false
    i += 4
  } else if (buf[i] === 0x48 && buf[i + 1] === 0x45 && buf[i + 2] === 0x41 && buf[i + 3] === 0x44 && buf[i + 4] === SP) {
    out.head = true
    i += 5
  } else {
    return false
  }
  // Target: origin-form, visible ASCII only.
  if (buf[i] !== 0x2f) return false
  const t0 = i
  while (i < end) {
    const c = buf[i]
    if (c === SP) break
    if (c <= SP || c >= 0x7f) return false
    i++
  }
  const t1 = i
  // " HTTP/1.1\r\n"
  if (i + 11 > end || buf[i] !== SP || buf[i + 1] !== 0x48 || buf[i + 2] !== 0x54 || buf[i + 3] !== 0x54 || buf[i + 4] !== 0x50 ||
    buf[i + 5] !== 0x2f || buf[i + 6] !== 0x31 || buf[i + 7] !== 0x2e || buf[i + 8] !== 0x31 || buf[i + 9] !== CR || buf[i + 10] !== LF) {
    return false
  }
  i += 11
  out.headersStart = i
  let hosts = 0
  let connections = 0
  let headers = 0
  out.close = false
  out.forwardedFor = undefined
  // Header lines up to the blank line at end - 2.
  const last = end - 2
  while (i < last) {
    if (++headers > HTTP_FAST_MAX_HEADERS) return false
    // Name: tchar+ then ':' (no space before it; obs-fold lines start with SP/HTAB and fail here).
    const n0 = i
    while (i < last) {
      const c = buf[i]
      if (c === COLON) break
      if (c >= 0x80 || TCHAR[c] === 0) return false
      i++
    }
    const nameLen = i - n0
    if (nameLen === 0 || i >= last) return false
    i++
    // Value: leading and trailing SP/HTAB are not part of it; visible ASCII, SP and HTAB inside.
    while (i < last && (buf[i] === SP || buf[i] === HTAB)) i++
    const v0 = i
    while (i < last) {
      const c = buf[i]
      if (c === CR) break
      if ((c < SP && c !== HTAB) || c >= 0x7f) return false
      i++
    }
    if (buf[i] !== CR || buf[i + 1] !== LF) return false
    let v1 = i
    while (v1 > v0 && (buf[v1 - 1] === SP || buf[v1 - 1] === HTAB)) v1--
    i += 2
    const first = buf[n0] | 0x20
    if (first === 0x68 && nameIs(buf, n0, nameLen, H_HOST)) {
      hosts++
    } else if (first === 0x63 && nameIs(buf, n0, nameLen, H_CONNECTION)) {
      if (++connections > 1) return false
      if (nameIs(buf, v0, v1 - v0, 'close')) out.close = true
      else if (!nameIs(buf, v0, v1 - v0, 'keep-alive')) return false
    } else if (first === 0x78 && nameIs(buf, n0, nameLen, H_XFF)) {
      const v = buf.toString('latin1', v0, v1)
      out.forwardedFor = out.forwardedFor === undefined ? v : `${out.forwardedFor}, ${v}`
    } else {
      for (const h of HANDED_OFF) if (nameIs(buf, n0, nameLen, h)) return false
    }
  }
  if (i !== last || hosts !== 1) return false
  out.headersEnd = i
  out.url = buf.toString('latin1', t0, t1)
  return true
}

// Headers node:http keeps the first of when repeated (its `matchKnownFields` list).
const FIRST_WINS = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag',
  'last-modified', 'server', 'age', 'expires'
])

/**
 * The header lines in buf[start, end) (each `name: value\r\n`, already checked by
 * parseRequestHead) as node:http's `req.headers`: lower-case names, repeated headers joined
 * with ", " (`cookie` with "; ", `set-cookie` an array, the FIRST_WINS ones keep the first).
 */
export function headersObject (buf: Buffer, start: number, end: number): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {}
  let i = start
  while (i < end) {
    const colon = buf.indexOf(COLON, i)
    const name = buf.toString('latin1', i, colon).toLowerCase()
    let v0 = colon + 1
    while (buf[v0] === SP || buf[v0] === HTAB) v0++
    const eol = buf.indexOf(CR, v0)
    let v1 = eol
    while (v1 > v0 && (buf[v1 - 1] === SP || buf[v1 - 1] === HTAB)) v1--
    const value = buf.toString('latin1', v0, v1)
    i = eol + 2
    // A name that would reach Object.prototype is not a header anyone reads.
    if (name === '__proto__') continue
    const had = Object.hasOwn(out, name) ? out[name] : undefined
    if (name === 'set-cookie') {
      if (had === undefined) out[name] = [value]
      else (had as string[]).push(value)
    } else if (had === undefined) {
      out[name] = value
    } else if (!FIRST_WINS.has(name)) {
      out[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`
    }
  }
  return out
}
