/**
 * Query strings as BYTES. `info_hash` and `peer_id` are raw 20-byte values percent-encoded
 * byte by byte (BEP 3); decoding them through UTF-8 (as URLSearchParams and
 * decodeURIComponent do) corrupts or rejects every byte ≥ 0x80. Names and values come out as
 * binary strings (one char per byte); turning text params into JS text is the caller's choice.
 */

import { MAX_QUERY_PARAMS } from '../../constants.js'
import { trackerError } from '../../errors.js'
import type { BinaryString } from '../common/types.js'
import { hexNibble } from '../common/binary.js'
import { fail, ok, type Result } from '../common/result.js'

export interface QueryParam {
  name: BinaryString
  value: BinaryString
}

const PERCENT = 0x25
const PLUS = 0x2b
const AMP = 0x26
const EQUALS = 0x3d

/**
 * Percent-decode `s[from, to)` to a binary string; `+` is a space (form encoding, in names and
 * values alike). On a bad escape or a character above 0xFF, returns that offset instead. Characters 0x80–0xFF in
 * the raw string are kept as the bytes they stand for: Node hands over request targets that way
 * (latin1), so a client that sends unescaped bytes still works.
 */
function decodeComponent (s: string, from: number, to: number): string | number {
  let plain = true
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff) return i
    if (c === PERCENT || c === PLUS) plain = false
  }
  if (plain) return s.slice(from, to)
  let out = ''
  let run = from // start of the pending run of literal characters
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c === PERCENT) {
      const hi = i + 2 < to ? hexNibble(s.charCodeAt(i + 1)) : -1
      const lo = hi >= 0 ? hexNibble(s.charCodeAt(i + 2)) : -1
      if (lo < 0) return i
      out += s.slice(run, i) + String.fromCharCode((hi << 4) | lo)
      i += 2
      run = i + 1
    } else if (c === PLUS) {
      out += s.slice(run, i) + ' '
      run = i + 1
    }
  }
  return out + s.slice(run, to)
}

/**
 * Split and percent-decode a query string (a leading `?` is skipped). Empty segments
 * (`a=1&&b=2`, a trailing `&`) are ignored; `name` without `=` has the value ''. Order and
 * repeats are kept. Errors: INVALID_QUERY (bad `%` escape, character above 0xFF),
 * TOO_MANY_PARAMS (more than `maxParams`, checked before decoding the extra one).
 */
export function parseQuery (query: string, maxParams: number = MAX_QUERY_PARAMS): Result<QueryParam[]> {
  if (typeof query !== 'string') return fail(trackerError('INVALID_QUERY', 'not a string'))
  const params: QueryParam[] = []
  const n = query.length
  let i = n > 0 && query.charCodeAt(0) === 0x3f ? 1 : 0
  while (i < n) {
    // One pass over the segment to find its '=' and '&': no rescans on hostile input.
    const start = i
    let eq = -1
    while (i < n) {
      const c = query.charCodeAt(i)
      if (c === AMP) break
      if (c === EQUALS && eq < 0) eq = i
      i++
    }
    const end = i
    i++ // past '&'
    if (end === start) continue
    if (params.length >= maxParams) {
      return fail(trackerError('TOO_MANY_PARAMS', `more than ${maxParams}`))
    }
    const nameEnd = eq < 0 ? end : eq
    const name = decodeComponent(query, start, nameEnd)
    if (typeof name === 'number') return fail(badQuery(name))
    const value = eq < 0 ? '' : decodeComponent(query, eq + 1, end)
    if (typeof value === 'number') return fail(badQuery(value))
    params.push({ name, value })
  }
  return ok(params)
}

function badQuery (offset: number) {
  return trackerError('INVALID_QUERY', `bad escape or character at offset ${offset}`)
}

/** Each byte's encoding: unreserved characters (RFC 3986) as themselves, all else %XX. */
const ENCODED: string[] = []
for (let b = 0; b < 256; b++) {
  const unreserved = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) ||
    b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e
  ENCODED.push(unreserved ? String.fromCharCode(b) : '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase())
}

/**
 * Percent-encode bytes, given as a Uint8Array or a binary string, leaving only A–Z a–z 0–9
 * `-` `.` `_` `~` as they are. (A binary string's characters above 0xFF are the caller's bug;
 * their low 8 bits are used.)
 */
export function percentEncodeBytes (input: Uint8Array | BinaryString): string {
  let out = ''
  if (typeof input === 'string') {
    for (let i = 0; i < input.length; i++) out += ENCODED[input.charCodeAt(i) & 0xff]
  } else {
    for (let i = 0; i < input.length; i++) out += ENCODED[input[i]]
  }
  return out
}

const textEncoder = new TextEncoder()

/** Percent-encode text as its UTF-8 bytes (unlike encodeURIComponent, never throws). */
export function percentEncodeText (s: string): string {
  let ascii = true
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) { ascii = false; break }
  return percentEncodeBytes(ascii ? s : textEncoder.encode(s))
}
