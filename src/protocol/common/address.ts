/**
 * IP address text ⇄ compact peer form (BEP 23 for IPv4, BEP 7 for IPv6), parsed by hand so it
 * runs in browsers (no node:net).
 *
 * Policy:
 * - IPv4 is strict dotted quad: four decimal parts 0–255, no leading zeros ("01" is rejected,
 *   because inet_aton reads it as octal and the same text must not name two hosts), no
 *   shorthand forms ("127.1", hex parts).
 * - IPv6 follows RFC 4291 text (one "::" at most, 1–4 hex digits per group, optional dotted
 *   IPv4 tail in the last 32 bits) and is printed as RFC 5952: lowercase, no leading zeros,
 *   the first longest run of two or more zero groups as "::". Only the IPv4-mapped prefix
 *   ::ffff:0:0/96 is turned into IPv4 text; other embedded forms print as hex.
 * - Zone ids ("fe80::1%eth0") and brackets are rejected: a zone means nothing to a remote peer,
 *   and brackets belong to host:port syntax, not to an address.
 */
import { hexNibble } from './binary.js'

/** Longest valid text: six 4-digit groups, six colons and a 15-char IPv4 tail. */
const MAX_IPV6_TEXT = 45

/**
 * Parse dotted-quad IPv4 `s[from, to)` into `out[at..at+3]`. Returns false when invalid.
 * Writing into a caller's array lets the IPv6 parser reuse it for an embedded tail.
 */
function parseIpv4Into (s: string, from: number, to: number, out: number[], at: number): boolean {
  let part = 0
  let i = from
  while (part < 4) {
    const start = i
    let v = 0
    while (i < to) {
      const c = s.charCodeAt(i)
      if (c < 0x30 || c > 0x39) break
      v = v * 10 + (c - 0x30)
      i++
      if (i - start > 3) return false
    }
    const digits = i - start
    if (digits === 0 || v > 255) return false
    if (digits > 1 && s.charCodeAt(start) === 0x30) return false // leading zero
    out[at + part] = v
    part++
    if (part < 4) {
      if (i >= to || s.charCodeAt(i) !== 0x2e) return false // '.'
      i++
    }
  }
  return i === to
}

/** Parse IPv6 text into 8 groups. Returns false when invalid. */
function parseIpv6Into (s: string, g: number[]): boolean {
  const n = s.length
  if (n < 2 || n > MAX_IPV6_TEXT) return false
  let i = 0
  let count = 0
  let gap = -1 // group index where "::" stands, or -1
  if (s.charCodeAt(0) === 0x3a) { // leading ':' must be the start of "::"
    if (s.charCodeAt(1) !== 0x3a) return false
    gap = 0
    i = 2
  }
  while (i < n) {
    if (count === 8) return false
    const start = i
    let v = 0
    let h: number
    while (i < n && (h = hexNibble(s.charCodeAt(i))) >= 0) {
      v = (v << 4) | h
      i++
    }
    if (i < n && s.charCodeAt(i) === 0x2e) {
      // An IPv4 tail: re-read this part as decimal; it must end the text and fill 2 groups.
      if (count > 6) return false
      const q = [0, 0, 0, 0]
      if (!parseIpv4Into(s, start, n, q, 0)) return false
      g[count++] = (q[0] << 8) | q[1]
      g[count++] = (q[2] << 8) | q[3]
      i = n
      break
    }
    const digits = i - start
    if (digits === 0 || digits > 4) return false
    g[count++] = v
    if (i === n) break
    if (s.charCodeAt(i) !== 0x3a) return false
    i++
    if (i < n && s.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return false // a second "::"
      gap = count
      i++
    } else if (i === n) {
      return false // a single trailing ':'
    }
  }
  if (gap < 0) return count === 8
  if (count === 8) return false // "::" must stand for at least one zero group
  // Slide the groups after "::" to the end and zero-fill the hole.
  const tail = count - gap
  for (let k = 0; k < tail; k++) g[7 - k] = g[count - 1 - k]
  for (let k = gap; k < 8 - tail; k++) g[k] = 0
  return true
}

function isMappedV4 (g: number[]): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff
}

/** RFC 5952 text for 8 groups (the caller handles IPv4-mapped). */
function formatIpv6 (g: number[]): string {
  // Find the first longest run of ≥ 2 zero groups.
  let best = -1
  let bestLen = 1
  for (let k = 0; k < 8;) {
    if (g[k] !== 0) { k++; continue }
    let e = k
    while (e < 8 && g[e] === 0) e++
    if (e - k > bestLen) { best = k; bestLen = e - k }
    k = e
  }
  let out = ''
  for (let k = 0; k < 8; k++) {
    if (k === best) {
      out += '::'
      k += bestLen - 1
      continue
    }
    if (out.length > 0 && out.charCodeAt(out.length - 1) !== 0x3a) out += ':'
    out += g[k].toString(16)
  }
  return out
}

function v4Text (a: number, b: number, c: number, d: number): string {
  return `${a}.${b}.${c}.${d}`
}

/**
 * Validate and canonicalise an IP address: IPv4 as strict dotted quad, IPv6 as RFC 5952
 * text, IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as the IPv4 it carries. undefined when invalid.
 */
export function canonicalIp (ip: string): string | undefined {
  if (typeof ip !== 'string') return undefined
  if (ip.indexOf(':') < 0) {
    const q = [0, 0, 0, 0]
    return parseIpv4Into(ip, 0, ip.length, q, 0) ? v4Text(q[0], q[1], q[2], q[3]) : undefined
  }
  const g = [0, 0, 0, 0, 0, 0, 0, 0]
  if (!parseIpv6Into(ip, g)) return undefined
  if (isMappedV4(g)) return v4Text(g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff)
  return formatIpv6(g)
}

/**
 * 4 or 6 for a valid address, 0 otherwise. The family is that of the canonical form, so an
 * IPv4-mapped IPv6 address is 4 (it is stored and sent as IPv4).
 */
export function ipFamily (ip: string): 4 | 6 | 0 {
  if (typeof ip !== 'string') return 0
  if (ip.indexOf(':') < 0) {
    const q = [0, 0, 0, 0]
    return parseIpv4Into(ip, 0, ip.length, q, 0) ? 4 : 0
  }
  const g = [0, 0, 0, 0, 0, 0, 0, 0]
  if (!parseIpv6Into(ip, g)) return 0
  return isMappedV4(g) ? 4 : 6
}

function validPort (port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 0xffff
}

/**
 * Compact form of ip:port as a binary string: 4 address bytes + 2 port bytes (6) for IPv4 and
 * IPv4-mapped IPv6, 16 + 2 (18) for IPv6; big-endian (BEP 23, BEP 7). undefined when the
 * address is invalid or the port is not an integer 0–65535 (0 is representable; whether it is
 * acceptable is the caller's policy).
 */
export function compactAddr (ip: string, port: number): string | undefined {
  if (typeof ip !== 'string' || !validPort(port)) return undefined
  const ph = port >> 8
  const pl = port & 0xff
  if (ip.indexOf(':') < 0) {
    const q = [0, 0, 0, 0]
    if (!parseIpv4Into(ip, 0, ip.length, q, 0)) return undefined
    return String.fromCharCode(q[0], q[1], q[2], q[3], ph, pl)
  }
  const g = [0, 0, 0, 0, 0, 0, 0, 0]
  if (!parseIpv6Into(ip, g)) return undefined
  if (isMappedV4(g)) return String.fromCharCode(g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff, ph, pl)
  return String.fromCharCode(
    g[0] >> 8, g[0] & 0xff, g[1] >> 8, g[1] & 0xff, g[2] >> 8, g[2] & 0xff, g[3] >> 8, g[3] & 0xff,
    g[4] >> 8, g[4] & 0xff, g[5] >> 8, g[5] & 0xff, g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff,
    ph, pl
  )
}

export interface ParsedAddr {
  ip: string
  port: number
  family: 4 | 6
}

/**
 * Decode a 6- or 18-character compact address. The ip is canonical text, so an 18-byte entry
 * holding an IPv4-mapped address comes back as IPv4 with family 4. undefined for any other
 * length or for characters above 0xFF.
 */
export function parseCompactAddr (addr: string): ParsedAddr | undefined {
  if (typeof addr !== 'string') return undefined
  const n = addr.length
  if (n !== 6 && n !== 18) return undefined
  for (let i = 0; i < n; i++) if (addr.charCodeAt(i) > 0xff) return undefined
  const port = (addr.charCodeAt(n - 2) << 8) | addr.charCodeAt(n - 1)
  if (n === 6) {
    return { ip: v4Text(addr.charCodeAt(0), addr.charCodeAt(1), addr.charCodeAt(2), addr.charCodeAt(3)), port, family: 4 }
  }
  const g = [0, 0, 0, 0, 0, 0, 0, 0]
  for (let k = 0; k < 8; k++) g[k] = (addr.charCodeAt(2 * k) << 8) | addr.charCodeAt(2 * k + 1)
  if (isMappedV4(g)) return { ip: v4Text(g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff), port, family: 4 }
  return { ip: formatIpv6(g), port, family: 6 }
}

/** `1.2.3.4:5` or `[::1]:5`, the form events and logs use. Does not validate. */
export function formatAddr (ip: string, port: number): string {
  return ip.indexOf(':') >= 0 ? `[${ip}]:${port}` : `${ip}:${port}`
}

/**
 * Canonical text of a raw address: 4 bytes (IPv4) or 16 bytes (IPv6, IPv4-mapped given as the
 * IPv4 it carries) at `offset` — the same text `canonicalIp` gives for that address.
 */
export function ipFromBytes (b: Uint8Array, offset: number, family: 4 | 6): string {
  if (family === 4) return v4Text(b[offset], b[offset + 1], b[offset + 2], b[offset + 3])
  const g = [0, 0, 0, 0, 0, 0, 0, 0]
  for (let k = 0; k < 8; k++) g[k] = (b[offset + 2 * k] << 8) | b[offset + 2 * k + 1]
  if (isMappedV4(g)) return v4Text(g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff)
  return formatIpv6(g)
}
