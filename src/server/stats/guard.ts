import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { OptionError } from '../../errors.js'

/**
 * Access control for the operator's endpoints (/stats, /stats.json, /metrics, and an admin API):
 * a bearer token and/or a list of address ranges. When both are set, a request must pass both.
 */
export interface GuardOptions {
  /** Required token: `Authorization: Bearer <token>` or `?token=<token>`. */
  token?: string
  /** Allowed client address ranges, CIDR (`10.0.0.0/8`, `::1/128`, a bare address = one host). */
  allow?: readonly string[]
}

/** 200: let it through; 401: token missing or wrong; 403: address not allowed. */
export type GuardVerdict = 200 | 401 | 403

/** A CIDR range as 16 bytes (IPv4 as IPv4-mapped IPv6) and a prefix length over those bytes. */
export interface Cidr {
  bytes: Buffer
  prefix: number
}

export class AccessGuard {
  private readonly tokenDigest: Buffer | undefined
  private readonly ranges: Cidr[] | undefined

  /** Throws a TypeError naming the entry when a range does not parse. */
  constructor (opts: GuardOptions = {}) {
    this.tokenDigest = opts.token !== undefined && opts.token !== '' ? digest(opts.token) : undefined
    if (opts.allow !== undefined) {
      this.ranges = opts.allow.map(s => {
        const c = parseCidr(s)
        if (c === undefined) throw new OptionError(`invalid address range: ${s}`)
        return c
      })
    }
  }

  /** Whether any check is configured (an open guard lets everything through). */
  get active (): boolean {
    return this.tokenDigest !== undefined || this.ranges !== undefined
  }

  /**
   * The verdict for a request from `ip` (the client address as the server sees it, after any
   * trusted proxy header). The address is checked first: a stranger learns nothing about tokens.
   */
  check (req: IncomingMessage, ip: string): GuardVerdict {
    if (this.ranges !== undefined) {
      const addr = parseIp(ip)
      if (addr === undefined || !this.ranges.some(r => inRange(addr, r))) return 403
    }
    if (this.tokenDigest !== undefined) {
      const given = requestToken(req)
      // Digests have equal lengths, so the comparison takes the same time whatever was sent.
      if (given === undefined || !timingSafeEqual(digest(given), this.tokenDigest)) return 401
    }
    return 200
  }
}

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** The token a request carries: the Authorization bearer, else the `token` query parameter. */
export function requestToken (req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth)
    if (m !== null) return m[1]
  }
  const url = req.url ?? ''
  const q = url.indexOf('?')
  if (q === -1) return undefined
  try {
    return new URLSearchParams(url.slice(q + 1)).get('token') ?? undefined
  } catch {
    return undefined
  }
}

/** Whether `addr` (16 bytes) is in `range`. */
export function inRange (addr: Buffer, range: Cidr): boolean {
  const full = range.prefix >>> 3
  for (let i = 0; i < full; i++) if (addr[i] !== range.bytes[i]) return false
  const rest = range.prefix & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return (addr[full] & mask) === (range.bytes[full] & mask)
}

/**
 * Parses `a.b.c.d/n`, `x:y::z/n` or a bare address (a host: /32 or /128). IPv4 ranges become
 * IPv4-mapped ranges (prefix + 96), so one comparison serves both families and an IPv4 client
 * seen on a dual-stack socket as `::ffff:a.b.c.d` matches its IPv4 range.
 */
export function parseCidr (s: string): Cidr | undefined {
  const slash = s.indexOf('/')
  const ipText = slash === -1 ? s : s.slice(0, slash)
  const v4 = parseIpv4(ipText)
  const bytes = v4 !== undefined ? mapped(v4) : parseIpv6(ipText)
  if (bytes === undefined) return undefined
  const max = v4 !== undefined ? 32 : 128
  let prefix = max
  if (slash !== -1) {
    const p = s.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined
    prefix = Number(p)
  }
  if (v4 !== undefined) prefix += 96
  // Host bits set below the prefix are cleared (10.1.2.3/8 means 10.0.0.0/8).
  const out = Buffer.alloc(16)
  bytes.copy(out)
  for (let bit = prefix; bit < 128; bit++) out[bit >>> 3] &= ~(0x80 >>> (bit & 7))
  return { bytes: out, prefix }
}

/** An IPv4 or IPv6 address (zone index ignored) as 16 bytes, IPv4 as IPv4-mapped. */
export function parseIp (s: string): Buffer | undefined {
  const pct = s.indexOf('%')
  const t = pct === -1 ? s : s.slice(0, pct)
  const v4 = parseIpv4(t)
  return v4 !== undefined ? mapped(v4) : parseIpv6(t)
}

function mapped (v4: Buffer): Buffer {
  const b = Buffer.alloc(16)
  b[10] = 0xff
  b[11] = 0xff
  v4.copy(b, 12)
  return b
}

/** Dotted quad, decimal only, no leading zeros (`010` is ambiguous: octal to some parsers). */
function parseIpv4 (s: string): Buffer | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  const b = Buffer.alloc(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i]
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined
    b[i] = Number(p)
  }
  return b
}

function parseIpv6 (s: string): Buffer | undefined {
  if (s.length < 2 || s.length > 45) return undefined
  const dbl = s.indexOf('::')
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return undefined
  const groups = (text: string): number[] | undefined => {
    if (text === '') return []
    const out: number[] = []
    const parts = text.split(':')
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p)
        if (v4 === undefined) return undefined
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2))
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined
        out.push(parseInt(p, 16))
      }
    }
    return out
  }
  let words: number[]
  if (dbl === -1) {
    const g = groups(s)
    if (g === undefined || g.length !== 8) return undefined
    words = g
  } else {
    const head = groups(s.slice(0, dbl))
    const tail = groups(s.slice(dbl + 2))
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  }
  const b = Buffer.alloc(16)
  for (let i = 0; i < 8; i++) b.writeUInt16BE(words[i], i * 2)
  return b
}
