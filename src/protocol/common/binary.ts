/**
 * Binary strings: one character per byte (code 0–255). Identities travel in this form so they
 * can be map keys and WebTorrent wire values without hex or Buffer round trips.
 * Browser-safe: Uint8Array only; Node's Buffer is used opportunistically, never required.
 */

import { ID_LENGTH } from '../../constants.js'

/** Node's Buffer has a native latin1 decoder; a plain Uint8Array does not. */
interface Latin1Sliceable { latin1Slice?: (start: number, end: number) => string }

/**
 * String.fromCharCode.apply spreads its argument on the stack, so long inputs go in chunks.
 * 8192 is far below every engine's argument limit.
 */
const APPLY_CHUNK = 8192

/**
 * Bytes `u8[start, end)` as a binary string. Out-of-range bounds are clamped, as in
 * `subarray`. Note: TextDecoder('latin1') is windows-1252 per the Encoding standard and would
 * remap 0x80–0x9F, so it is not used.
 */
export function bytesToBinary (u8: Uint8Array, start = 0, end = u8.length): string {
  const len = u8.length
  if (start < 0) start = 0
  if (end > len) end = len
  if (end <= start) return ''
  const slice = (u8 as Latin1Sliceable).latin1Slice
  if (typeof slice === 'function') return slice.call(u8, start, end)
  if (end - start <= APPLY_CHUNK) {
    return String.fromCharCode.apply(null, u8.subarray(start, end) as unknown as number[])
  }
  let out = ''
  for (let i = start; i < end; i += APPLY_CHUNK) {
    const stop = i + APPLY_CHUNK < end ? i + APPLY_CHUNK : end
    out += String.fromCharCode.apply(null, u8.subarray(i, stop) as unknown as number[])
  }
  return out
}

/**
 * A binary string back to bytes. Characters above 0xFF are not bytes: passing one is the
 * caller's bug, and it is silently truncated to its low 8 bits (Uint8Array assignment rules).
 * Check with `isBinary` first when the string comes from outside.
 */
export function binaryToBytes (s: string): Uint8Array {
  const n = s.length
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i)
  return out
}

/** Whether every character of `s` is a byte (code ≤ 0xFF). */
export function isBinary (s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false
  return true
}

/** Value of one hex digit character code, or -1. */
/** The value of one hex digit's char code (either case), or -1. */
export function hexNibble (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30 // 0-9
  c |= 0x20 // fold A-F onto a-f
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

/** Hex (either case) → binary string; undefined unless it is even-length hex. */
export function hexToBinary (hex: string): string | undefined {
  const n = hex.length
  if ((n & 1) !== 0) return undefined
  let out = ''
  for (let i = 0; i < n; i += 2) {
    const hi = hexNibble(hex.charCodeAt(i))
    const lo = hexNibble(hex.charCodeAt(i + 1))
    if (hi < 0 || lo < 0) return undefined
    out += String.fromCharCode((hi << 4) | lo)
  }
  return out
}

/** Two lowercase hex digits for each byte value; built once so encoding is a table lookup. */
const HEX_PAIRS: string[] = []
for (let i = 0; i < 256; i++) HEX_PAIRS.push((i < 16 ? '0' : '') + i.toString(16))

/** Binary string → lowercase hex. Characters above 0xFF use their low 8 bits (caller's bug). */
export function binaryToHex (s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) out += HEX_PAIRS[s.charCodeAt(i) & 0xff]
  return out
}

/** An info hash or peer id: a string of exactly 20 byte-valued characters. */
export function isId (s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== ID_LENGTH) return false
  for (let i = 0; i < ID_LENGTH; i++) if (s.charCodeAt(i) > 0xff) return false
  return true
}

/** Fatal so invalid UTF-8 is detected; ignoreBOM so a leading U+FEFF is kept, not eaten. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Bytes given as a binary string, read as text: UTF-8 when they are valid UTF-8, else one
 * character per byte (latin1). ASCII — the common case — costs one scan and no allocation.
 */
export function binaryToText (s: string): string {
  let ascii = true
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) { ascii = false; break }
  }
  if (ascii) return s
  try {
    return strictUtf8.decode(binaryToBytes(s))
  } catch {
    return s
  }
}
