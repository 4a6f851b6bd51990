/**
 * Per-address abuse controls: token-bucket rate limits and a temporary ban for sources of bad
 * UDP connection ids. State lives in fixed-size typed arrays indexed through one Map, so an
 * address costs a Map entry and no object, there is no timer per entry, and a flood from many
 * (possibly spoofed) sources costs bounded memory: a full table forgets an old entry.
 */
import { RATE_LIMIT_EVICTION_PROBES, RATE_LIMIT_IPV6_PREFIX_BITS, RATE_LIMIT_MAX_ADDRESSES } from '../../constants.js'
import { OptionError } from '../../errors.js'
import { compactAddr } from '../../protocol/common/address.js'
import type { BinaryString } from '../../protocol/common/types.js'

/** `rate` requests per second on average, up to `burst` at once. */
export interface RateLimit {
  rate: number
  burst: number
}

/** A table key: an IPv4 address as its 32 bits, an IPv6 /64 as its 8 bytes (binary string). */
export type AddressKey = number | BinaryString

/**
 * The table key of an address. IPv4 (the common case, on the per-packet path) becomes an integer
 * read straight from the dotted quad: no string is made and the Map hashes a number. IPv6 is keyed
 * by its first 8 bytes, its /64, since one host usually holds a whole /64. undefined when invalid.
 */
export function addressKey (ip: string): AddressKey | undefined {
  if (ip.indexOf(':') === -1) {
    let v = 0
    let part = 0
    let digits = 0
    let dots = 0
    for (let i = 0; i < ip.length; i++) {
      const c = ip.charCodeAt(i)
      if (c === 46) {
        if (digits === 0 || ++dots > 3) return undefined
        v = (v << 8) | part
        part = 0
        digits = 0
      } else if (c >= 48 && c <= 57 && digits < 3) {
        part = part * 10 + c - 48
        digits++
        if (part > 255) return undefined
      } else {
        return undefined
      }
    }
    if (dots !== 3 || digits === 0) return undefined
    return (v << 8) | part
  }
  if (parseIpv6Groups(ip)) {
    const g = V6
    // IPv4-mapped written in hex (::ffff:102:304) is the IPv4 address, as everywhere else.
    if ((g[0] | g[1] | g[2] | g[3] | g[4]) === 0 && g[5] === 0xffff) return (g[6] << 16) | g[7]
    return String.fromCharCode(g[0] >> 8, g[0] & 0xff, g[1] >> 8, g[1] & 0xff, g[2] >> 8, g[2] & 0xff, g[3] >> 8, g[3] & 0xff)
  }
  // Dotted IPv4 tails and anything unusual: the general parser decides.
  return slowAddressKey(ip)
}

export function slowAddressKey (ip: string): AddressKey | undefined {
  const c = compactAddr(ip, 0)
  if (c === undefined) return undefined
  if (c.length === 6) return (c.charCodeAt(0) << 24) | (c.charCodeAt(1) << 16) | (c.charCodeAt(2) << 8) | c.charCodeAt(3)
  return c.slice(0, RATE_LIMIT_IPV6_PREFIX_BITS / 8)
}

/** Scratch groups of the last IPv6 address parsed (reused: no allocation per packet). */
const V6 = new Uint16Array(8)

/**
 * Parses hex-only IPv6 text (`2001:db8::1`, no dotted tail, no zone) into V6. false for anything
 * else, which the general parser then handles.
 */
function parseIpv6Groups (ip: string): boolean {
  const len = ip.length
  let n = 0
  let gap = -1
  let i = 0
  if (len < 2) return false
  if (ip.charCodeAt(0) === 58) {
    if (ip.charCodeAt(1) !== 58) return false
    gap = 0
    i = 2
  }
  while (i < len) {
    let v = 0
    let digits = 0
    for (; i < len; i++) {
      const c = ip.charCodeAt(i)
      const h = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
      if (h < 0) break
      if (++digits > 4) return false
      v = (v << 4) | h
    }
    if (digits === 0 || n === 8) return false
    V6[n++] = v
    if (i === len) break
    if (ip.charCodeAt(i) !== 58) return false
    if (++i === len) return false
    if (ip.charCodeAt(i) === 58) {
      if (gap !== -1) return false
      gap = n
      i++
    }
  }
  if (gap === -1) return n === 8
  if (n === 8) return false
  const tail = n - gap
  for (let k = 1; k <= tail; k++) V6[8 - k] = V6[n - k]
  for (let k = gap; k < 8 - tail; k++) V6[k] = 0
  return true
}

/** Slot allocation and bounded eviction shared by the tables below. */
abstract class AddressTable {
  readonly capacity: number
  protected readonly slots = new Map<AddressKey, number>()

  constructor (capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('table size must be a positive integer')
    this.capacity = capacity
  }

  get size (): number { return this.slots.size }

  /** Whether the entry in `slot` still matters at `nowMs` (kept in preference when evicting). */
  protected abstract busy (slot: number, nowMs: number): boolean

  /** A slot for a new key: a fresh one, or one taken from an old entry when the table is full. */
  protected allocate (key: AddressKey, nowMs: number): number {
    const slots = this.slots
    let slot = slots.size
    if (slot >= this.capacity) {
      // Forget the oldest entry, passing over (and moving to the back) a few that are busy, so a
      // flood of new sources cannot easily flush out the addresses being limited right now.
      let victim: AddressKey | undefined
      for (let i = 0; i < RATE_LIMIT_EVICTION_PROBES; i++) {
        victim = slots.keys().next().value as AddressKey
        const s = slots.get(victim)!
        if (!this.busy(s, nowMs) || i === RATE_LIMIT_EVICTION_PROBES - 1) break
        slots.delete(victim)
        slots.set(victim, s)
      }
      slot = slots.get(victim!)!
      slots.delete(victim!)
    }
    slots.set(key, slot)
    return slot
  }
}

/** Token buckets keyed by address. */
export class RateLimiter extends AddressTable {
  private readonly perMs: number
  private readonly burst: number
  private readonly tokens: Float64Array
  private readonly stamp: Float64Array

  constructor (limit: RateLimit, capacity = RATE_LIMIT_MAX_ADDRESSES) {
    super(capacity)
    if (!(limit.rate > 0) || !Number.isFinite(limit.rate)) throw new RangeError('rate must be a positive number')
    if (!(limit.burst >= 1) || !Number.isFinite(limit.burst)) throw new RangeError('burst must be at least 1')
    this.perMs = limit.rate / 1000
    this.burst = limit.burst
    this.tokens = new Float64Array(capacity)
    this.stamp = new Float64Array(capacity)
  }

  /** Takes one token for `key`; false when its bucket is empty (the request must be refused). */
  allow (key: AddressKey, nowMs: number): boolean {
    const slot = this.slots.get(key)
    if (slot === undefined) {
      const s = this.allocate(key, nowMs)
      this.tokens[s] = this.burst - 1
      this.stamp[s] = nowMs
      return true
    }
    // A clock that stepped back refills nothing rather than going negative.
    const elapsed = nowMs > this.stamp[slot] ? nowMs - this.stamp[slot] : 0
    let t = this.tokens[slot] + elapsed * this.perMs
    if (t > this.burst) t = this.burst
    this.stamp[slot] = nowMs
    if (t < 1) {
      this.tokens[slot] = t
      return false
    }
    this.tokens[slot] = t - 1
    return true
  }

  protected busy (slot: number, nowMs: number): boolean {
    const elapsed = nowMs > this.stamp[slot] ? nowMs - this.stamp[slot] : 0
    return this.tokens[slot] + elapsed * this.perMs < 1
  }
}

/** Bad UDP connection ids: `max` within `windowMs` and the address is ignored for `banMs`. */
export interface StrikeLimit {
  max: number
  windowMs: number
  banMs: number
}

/** Counts strikes per address and bans an address that collects too many in one window. */
export class StrikeTable extends AddressTable {
  private readonly limit: StrikeLimit
  private readonly count: Uint32Array
  private readonly windowStart: Float64Array
  private readonly bannedUntil: Float64Array

  constructor (limit: StrikeLimit, capacity = RATE_LIMIT_MAX_ADDRESSES) {
    super(capacity)
    if (!Number.isInteger(limit.max) || limit.max < 1) throw new RangeError('max must be a positive integer')
    if (!(limit.windowMs > 0) || !(limit.banMs > 0)) throw new RangeError('windowMs and banMs must be positive')
    this.limit = limit
    this.count = new Uint32Array(capacity)
    this.windowStart = new Float64Array(capacity)
    this.bannedUntil = new Float64Array(capacity)
  }

  /** Whether `key` is being ignored at `nowMs`. */
  banned (key: AddressKey, nowMs: number): boolean {
    const slot = this.slots.get(key)
    return slot !== undefined && this.bannedUntil[slot] > nowMs
  }

  /** Records one strike; true when this strike starts a ban. */
  strike (key: AddressKey, nowMs: number): boolean {
    let slot = this.slots.get(key)
    if (slot === undefined) {
      slot = this.allocate(key, nowMs)
      this.count[slot] = 0
      this.windowStart[slot] = nowMs
      this.bannedUntil[slot] = 0
    } else if (nowMs - this.windowStart[slot] >= this.limit.windowMs || nowMs < this.windowStart[slot]) {
      this.count[slot] = 0
      this.windowStart[slot] = nowMs
    }
    if (++this.count[slot] < this.limit.max) return false
    this.count[slot] = 0
    this.windowStart[slot] = nowMs
    this.bannedUntil[slot] = nowMs + this.limit.banMs
    return true
  }

  protected busy (slot: number, nowMs: number): boolean {
    return this.bannedUntil[slot] > nowMs || (this.count[slot] > 0 && nowMs - this.windowStart[slot] < this.limit.windowMs)
  }
}

/** An address range `addr/bits` as bytes, for matching trusted proxies. */
interface Cidr { bytes: string, bits: number }

/**
 * Parses `1.2.3.4/32`, `::1/128`, `10.0.0.0/8` or a bare address (a single host). Throws a
 * RangeError naming the bad entry.
 */
export function parseCidr (text: string): Cidr {
  const slash = text.indexOf('/')
  const ip = (slash === -1 ? text : text.slice(0, slash)).trim()
  const c = compactAddr(ip, 0)
  if (c === undefined) throw new OptionError(`invalid address in proxy list: ${text}`)
  const bytes = c.slice(0, c.length - 2)
  const max = bytes.length * 8
  const bits = slash === -1 ? max : Number(text.slice(slash + 1))
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (slash !== -1 && text.slice(slash + 1).trim() === '')) {
    throw new OptionError(`invalid prefix length in proxy list: ${text}`)
  }
  return { bytes, bits }
}

/** Whether an address falls in any of the ranges (same family only; IPv4-mapped IPv6 counts as IPv4). */
export function cidrMatcher (list: readonly string[]): (ip: string) => boolean {
  const ranges = list.map(parseCidr)
  return (ip: string): boolean => {
    const c = compactAddr(ip, 0)
    if (c === undefined) return false
    const bytes = c.slice(0, c.length - 2)
    for (const r of ranges) {
      if (r.bytes.length === bytes.length && prefixEqual(r.bytes, bytes, r.bits)) return true
    }
    return false
  }
}

function prefixEqual (a: string, b: string, bits: number): boolean {
  const full = bits >> 3
  for (let i = 0; i < full; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false
  const rest = bits & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return (a.charCodeAt(full) & mask) === (b.charCodeAt(full) & mask)
}
