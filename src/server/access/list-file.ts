/**
 * The text format of an info-hash access list: one info hash per line, as 40 hex characters or
 * 32 base32 characters (RFC 4648, as in some magnet links); `#` starts a comment; blank lines
 * and surrounding spaces are ignored. Pure: text in, a Set of 20-byte binary strings out.
 */
import type { BinaryString } from '../../protocol/common/types.js'

export type ParsedList = { ok: true, hashes: Set<BinaryString> } | { ok: false, line: number, error: string }

const HEX = /^[0-9a-fA-F]{40}$/
const BASE32 = /^[A-Za-z2-7]{32}$/

export function parseInfoHashList (text: string): ParsedList {
  const hashes = new Set<BinaryString>()
  let line = 0
  let start = 0
  while (start <= text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    line++
    let s = text.slice(start, end)
    start = end + 1
    const hash = s.indexOf('#')
    if (hash !== -1) s = s.slice(0, hash)
    s = s.trim()
    if (s === '') continue
    if (HEX.test(s)) hashes.add(Buffer.from(s, 'hex').toString('latin1'))
    else if (BASE32.test(s)) hashes.add(base32ToBinary(s))
    else return { ok: false, line, error: `not an info hash (40 hex or 32 base32 characters): ${JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s)}` }
  }
  return { ok: true, hashes }
}

/** 32 base32 characters (already checked) → 20 bytes as a binary string. */
function base32ToBinary (s: string): BinaryString {
  const out = Buffer.alloc(20)
  let bits = 0
  let value = 0
  let o = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) | 0x20 // lower case; digits are unaffected
    value = (value << 5) | (c >= 0x61 ? c - 0x61 : c - 0x32 + 26)
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[o++] = (value >>> bits) & 0xff
    }
  }
  return out.toString('latin1')
}
