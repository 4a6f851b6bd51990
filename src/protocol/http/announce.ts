/**
 * HTTP announce (BEP 3, compact peers BEP 23, IPv6 BEP 7): the server's query decoder and
 * response encoders, and the client's query encoder and response decoder.
 */

import { ID_LENGTH, MAX_PORT } from '../../constants.js'
import { trackerError } from '../../errors.js'
import { compactAddr, canonicalIp, parseCompactAddr } from '../common/address.js'
import { bbinary, bdecodeDict, bdict, bencode, blist, bstr, buint, bint, type BValue, type BEncodable } from '../common/bencode.js'
import { binaryToBytes, binaryToText, bytesToBinary } from '../common/binary.js'
import { fail, ok, type Result } from '../common/result.js'
import {
  EVENT_COMPLETED, EVENT_NONE, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED, EVENT_WIRE_NAMES,
  type AnnounceEvent, type AnnounceRequest, type BinaryString, type PeerEntry
} from '../common/types.js'
import { parseQuery, percentEncodeBytes, percentEncodeText } from './query.js'

/** A decoded HTTP announce: the common request plus every parameter it does not define. */
export type HttpAnnounce = AnnounceRequest & {
  /** Other params by name, text-decoded (UTF-8 when valid, else latin1); null prototype. */
  extra: Record<string, string>
}

const COMPACT_V4 = 6
const COMPACT_V6 = 18

/** A non-negative decimal integer ≤ MAX_SAFE_INTEGER (leading zeros allowed), else -1. */
function parseDecimal (s: string): number {
  const n = s.length
  if (n === 0) return -1
  let v = 0
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i) - 0x30
    if (c < 0 || c > 9) return -1
    v = v * 10 + c
    if (v > Number.MAX_SAFE_INTEGER) return -1
  }
  return v
}

function wireEvent (s: string): AnnounceEvent | -1 {
  switch (s) {
    case '': case 'empty': return EVENT_NONE
    case 'started': return EVENT_STARTED
    case 'completed': return EVENT_COMPLETED
    case 'stopped': return EVENT_STOPPED
    case 'paused': return EVENT_PAUSED
    default: return -1
  }
}

/** Name, value, name, value… (binary strings) as a null-prototype dict of text; later names win. */
function textDict (pairs: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null)
  if (pairs !== undefined) for (let i = 0; i < pairs.length; i += 2) out[binaryToText(pairs[i])] = binaryToText(pairs[i + 1])
  return out
}

/**
 * Decode the query string of an HTTP announce (without or with its leading `?`).
 * `info_hash`/`peer_id` must be 20 bytes and appear once; `port` 1–65535; byte counters and
 * `numwant` decimal integers ≤ MAX_SAFE_INTEGER (`left` absent → Infinity, others → 0,
 * `numwant` → -1). Other repeated params: the last one wins. Clamping is the caller's job.
 */
export function decodeAnnounceQuery (query: string): Result<HttpAnnounce> {
  const parsed = parseQuery(query)
  if (!parsed.ok) return parsed
  let infoHash: string | undefined
  let peerId: string | undefined
  let port = -1
  let uploaded = 0
  let downloaded = 0
  let left = Infinity
  let event: AnnounceEvent = EVENT_NONE
  let numwant = -1
  let compact = false
  let noPeerId = false
  let key: string | undefined
  let ip: string | undefined
  let trackerId: string | undefined
  // Other params are collected, and the object made after the loop: a keyed store of a fresh
  // name into a dictionary inside this loop kept V8 from ever optimizing this function.
  let others: string[] | undefined

  for (const { name, value } of parsed.value) {
    switch (name) {
      case 'info_hash':
        if (infoHash !== undefined) return fail(trackerError('INVALID_INFO_HASH', 'repeated'))
        if (value.length !== ID_LENGTH) return fail(trackerError('INVALID_INFO_HASH', `${value.length} bytes, need ${ID_LENGTH}`))
        infoHash = value
        break
      case 'peer_id':
        if (peerId !== undefined) return fail(trackerError('INVALID_PEER_ID', 'repeated'))
        if (value.length !== ID_LENGTH) return fail(trackerError('INVALID_PEER_ID', `${value.length} bytes, need ${ID_LENGTH}`))
        peerId = value
        break
      case 'port':
        port = parseDecimal(value)
        if (port < 1 || port > MAX_PORT) return fail(trackerError('INVALID_PORT'))
        break
      case 'uploaded':
        uploaded = parseDecimal(value)
        if (uploaded < 0) return fail(trackerError('INVALID_NUMBER', 'uploaded'))
        break
      case 'downloaded':
        downloaded = parseDecimal(value)
        if (downloaded < 0) return fail(trackerError('INVALID_NUMBER', 'downloaded'))
        break
      case 'left':
        left = parseDecimal(value)
        if (left < 0) return fail(trackerError('INVALID_NUMBER', 'left'))
        break
      case 'numwant':
        numwant = parseDecimal(value)
        if (numwant < 0) return fail(trackerError('INVALID_NUMBER', 'numwant'))
        break
      case 'event': {
        const e = wireEvent(value)
        if (e < 0) return fail(trackerError('INVALID_EVENT'))
        event = e as AnnounceEvent
        break
      }
      case 'compact':
        compact = value === '1'
        break
      case 'no_peer_id':
        noPeerId = value === '1'
        break
      case 'key':
        key = binaryToText(value)
        break
      case 'ip':
        ip = binaryToText(value)
        break
      case 'trackerid':
        trackerId = binaryToText(value)
        break
      default:
        if (others === undefined) others = []
        others.push(name, value)
    }
  }
  if (infoHash === undefined) return fail(trackerError('INVALID_INFO_HASH', 'missing'))
  if (peerId === undefined) return fail(trackerError('INVALID_PEER_ID', 'missing'))
  if (port < 0) return fail(trackerError('INVALID_PORT', 'missing'))

  const extra = textDict(others)
  const req: HttpAnnounce = { infoHash, peerId, port, uploaded, downloaded, left, event, numwant, compact, noPeerId, extra }
  if (key !== undefined) req.key = key
  if (ip !== undefined) req.ip = ip
  if (trackerId !== undefined) req.trackerId = trackerId
  return ok(req)
}

// ---------------------------------------------------------------------------------------------
// Server: responses. Inputs come from the server itself, so impossible values (a negative or
// fractional count) are bugs and throw a TypeError rather than reach the wire.

export interface AnnounceResponseInput {
  /** Seconds. */
  interval: number
  /** Seconds; omitted when undefined. */
  minInterval?: number
  complete: number
  incomplete: number
  /** Entries whose `addr` is neither 6 nor 18 characters are skipped. */
  peers: PeerEntry[]
  compact: boolean
  /** Non-compact only: leave out `peer id` (BEP 3 `no_peer_id`). */
  noPeerId?: boolean
  trackerId?: string
  warning?: string
}

const textEncoder = new TextEncoder()

function count (v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`announce response: bad ${what}: ${v}`)
  return v
}

/**
 * Bencode an announce response; keys in byte order: complete, incomplete, interval,
 * min interval, peers, peers6, tracker id, warning message.
 * Compact: `peers` is always present (6 bytes per IPv4 peer, possibly empty); `peers6` (18 bytes
 * per IPv6 peer) only when there is one. Non-compact: `peers` lists `{ip, peer id, port}`
 * dicts of both families.
 */
export function encodeAnnounceResponse (r: AnnounceResponseInput): Uint8Array {
  return r.compact ? encodeCompact(r) : encodeListed(r)
}

/** Writes straight into one buffer: a peer costs a few byte copies, no objects. */
function encodeCompact (r: AnnounceResponseInput): Uint8Array {
  let n4 = 0
  let n6 = 0
  for (const p of r.peers) {
    const len = p.addr.length
    if (len === COMPACT_V4) n4++
    else if (len === COMPACT_V6) n6++
  }
  let head = `d8:completei${count(r.complete, 'complete')}e10:incompletei${count(r.incomplete, 'incomplete')}e` +
    `8:intervali${count(r.interval, 'interval')}e`
  if (r.minInterval !== undefined) head += `12:min intervali${count(r.minInterval, 'minInterval')}e`
  head += `5:peers${n4 * COMPACT_V4}:`
  const mid = n6 > 0 ? `6:peers6${n6 * COMPACT_V6}:` : ''
  const tid = r.trackerId !== undefined ? textEncoder.encode(r.trackerId) : undefined
  const warn = r.warning !== undefined ? textEncoder.encode(r.warning) : undefined
  const tidHead = tid !== undefined ? `10:tracker id${tid.length}:` : ''
  const warnHead = warn !== undefined ? `15:warning message${warn.length}:` : ''

  const size = head.length + n4 * COMPACT_V4 + mid.length + n6 * COMPACT_V6 +
    tidHead.length + (tid?.length ?? 0) + warnHead.length + (warn?.length ?? 0) + 1
  const out = new Uint8Array(size)
  let pos = writeAscii(out, 0, head)
  if (n4 > 0) {
    for (const p of r.peers) {
      const a = p.addr
      if (a.length !== COMPACT_V4) continue
      for (let j = 0; j < COMPACT_V4; j++) out[pos++] = a.charCodeAt(j)
    }
  }
  if (n6 > 0) {
    pos = writeAscii(out, pos, mid)
    for (const p of r.peers) {
      const a = p.addr
      if (a.length !== COMPACT_V6) continue
      for (let j = 0; j < COMPACT_V6; j++) out[pos++] = a.charCodeAt(j)
    }
  }
  if (tid !== undefined) { pos = writeAscii(out, pos, tidHead); out.set(tid, pos); pos += tid.length }
  if (warn !== undefined) { pos = writeAscii(out, pos, warnHead); out.set(warn, pos); pos += warn.length }
  out[pos] = 0x65 // 'e'
  return out
}

function writeAscii (out: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i)
  return pos
}

function encodeListed (r: AnnounceResponseInput): Uint8Array {
  const peers: BEncodable[] = []
  for (const p of r.peers) {
    const a = parseCompactAddr(p.addr)
    if (a === undefined) continue
    const entry: Record<string, BEncodable> = { ip: a.ip, port: a.port }
    if (r.noPeerId !== true && p.peerId.length === ID_LENGTH) entry['peer id'] = binaryToBytes(p.peerId)
    peers.push(entry)
  }
  return bencode({
    complete: count(r.complete, 'complete'),
    incomplete: count(r.incomplete, 'incomplete'),
    interval: count(r.interval, 'interval'),
    'min interval': r.minInterval === undefined ? undefined : count(r.minInterval, 'minInterval'),
    peers,
    'tracker id': r.trackerId,
    'warning message': r.warning
  })
}

/**
 * `d14:failure reason<reason>e`, plus BEP 31 `retry in` (minutes) when given. Sent with
 * HTTP 200: clients read the body, not the status.
 */
export function encodeFailure (reason: string, opts?: { retryIn?: number }): Uint8Array {
  return bencode({ 'failure reason': reason, 'retry in': opts?.retryIn })
}

// ---------------------------------------------------------------------------------------------
// Client: query encoder and response decoder.

export interface AnnounceQueryInput {
  infoHash: BinaryString
  peerId: BinaryString
  port: number
  uploaded: number
  downloaded: number
  /** Infinity (unknown) leaves `left` out, which the server reads as Infinity again. */
  left: number
  event?: AnnounceEvent
  numwant?: number
  /** Default true: every tracker since BEP 23 understands compact, and it is smaller. */
  compact?: boolean
  key?: string
  trackerId?: string
  /** Custom params (README `customParam`); names the encoder writes itself are skipped. */
  extra?: Record<string, string | number>
}

/** Params the encoder writes; an `extra` entry with one of these names would duplicate it. */
const RESERVED = new Set(['info_hash', 'peer_id', 'port', 'uploaded', 'downloaded', 'left', 'event', 'numwant', 'compact', 'key', 'trackerid'])

/** Client-supplied counters may be fractional or out of range: send a valid decimal anyway. */
function decimal (v: number): string {
  if (!(v >= 0)) return '0'
  return String(Math.floor(Math.min(v, Number.MAX_SAFE_INTEGER)))
}

/** The announce query string, without the leading `?`. */
export function encodeAnnounceQuery (p: AnnounceQueryInput): string {
  let q = `info_hash=${percentEncodeBytes(p.infoHash)}&peer_id=${percentEncodeBytes(p.peerId)}` +
    `&port=${decimal(p.port)}&uploaded=${decimal(p.uploaded)}&downloaded=${decimal(p.downloaded)}`
  if (Number.isFinite(p.left)) q += `&left=${decimal(p.left)}`
  if (p.event !== undefined && p.event !== EVENT_NONE) {
    const name = EVENT_WIRE_NAMES[p.event]
    if (name !== undefined) q += `&event=${name}`
  }
  if (p.numwant !== undefined && p.numwant >= 0) q += `&numwant=${decimal(p.numwant)}`
  q += p.compact === false ? '&compact=0' : '&compact=1'
  if (p.key !== undefined) q += `&key=${percentEncodeText(p.key)}`
  if (p.trackerId !== undefined) q += `&trackerid=${percentEncodeText(p.trackerId)}`
  if (p.extra !== undefined) {
    for (const name of Object.keys(p.extra)) {
      if (RESERVED.has(name)) continue
      const v: unknown = p.extra[name]
      if (typeof v === 'number') {
        // String(1e21) is "1e+21": the '+' must be escaped or it reads back as a space.
        if (Number.isFinite(v)) q += `&${percentEncodeText(name)}=${percentEncodeText(String(v))}`
      } else if (typeof v === 'string') {
        q += `&${percentEncodeText(name)}=${percentEncodeText(v)}`
      }
    }
  }
  return q
}

export interface AnnounceResponse {
  /** The tracker refused (`failure reason`); nothing else is read then. */
  failure?: string
  warning?: string
  /** Seconds. */
  interval?: number
  /** Seconds. */
  minInterval?: number
  complete?: number
  incomplete?: number
  trackerId?: string
  /** Compact peers carry no peer id: `peerId` is '' then (and when a dict gave none). */
  peers: PeerEntry[]
}

/** Append compact entries of `size` bytes; false when the string is not a whole number of them. */
function readCompact (bytes: Uint8Array, size: number, out: PeerEntry[]): boolean {
  if (bytes.length % size !== 0) return false
  for (let i = 0; i < bytes.length; i += size) {
    // Port 0 cannot be connected to: drop it as the list form does.
    if (bytes[i + size - 2] === 0 && bytes[i + size - 1] === 0) continue
    out.push({ peerId: '', addr: bytesToBinary(bytes, i, i + size) })
  }
  return true
}

/**
 * Dict-form peers (`ip` as text, `port`, optional `peer id`). A malformed entry — a hostname
 * (it has no compact form), a bad port, a non-dict — is skipped, not fatal.
 */
function readListed (list: BValue[], out: PeerEntry[]): void {
  for (const item of list) {
    const d = bdict(item)
    if (d === undefined) continue
    const text = bstr(d.ip)
    const port = bint(d.port)
    if (text === undefined || port === undefined || port < 1 || port > MAX_PORT) continue
    const ip = canonicalIp(text)
    if (ip === undefined) continue
    const addr = compactAddr(ip, port)
    if (addr === undefined) continue
    const id = bbinary(d['peer id'])
    out.push({ peerId: id !== undefined && id.length === ID_LENGTH ? id : '', addr })
  }
}

function readPeers (v: BValue | undefined, size: number, out: PeerEntry[]): boolean {
  if (v instanceof Uint8Array) return readCompact(v, size, out)
  const list = blist(v)
  if (list !== undefined) readListed(list, out)
  return true
}

/**
 * Decode an announce response body. Accepts compact `peers`/`peers6` and dict lists;
 * malformed list entries are skipped; a compact string that is not a whole number of entries
 * is INVALID_PACKET, as is anything that is not a bencoded dict. Non-integer or negative
 * numeric fields are left out rather than failing the response.
 */
export function decodeAnnounceResponse (bytes: Uint8Array): Result<AnnounceResponse> {
  const decoded = bdecodeDict(bytes, 'announce response')
  if (!decoded.ok) return decoded
  const d = decoded.value
  const out: AnnounceResponse = { peers: [] }
  const failure = bstr(d['failure reason'])
  if (failure !== undefined) {
    out.failure = failure
    return ok(out)
  }
  // A refusal of the wrong type is still a refusal, not an answer with every field missing.
  if (d['failure reason'] !== undefined) return fail(trackerError('INVALID_PACKET', 'failure reason is not a string'))
  const warning = bstr(d['warning message'])
  if (warning !== undefined) out.warning = warning
  const interval = buint(d.interval)
  if (interval !== undefined) out.interval = interval
  const minInterval = buint(d['min interval'])
  if (minInterval !== undefined) out.minInterval = minInterval
  const complete = buint(d.complete)
  if (complete !== undefined) out.complete = complete
  const incomplete = buint(d.incomplete)
  if (incomplete !== undefined) out.incomplete = incomplete
  const trackerId = bstr(d['tracker id'])
  if (trackerId !== undefined) out.trackerId = trackerId
  if (!readPeers(d.peers, COMPACT_V4, out.peers)) {
    return fail(trackerError('INVALID_PACKET', 'compact peers length is not a multiple of 6'))
  }
  if (!readPeers(d.peers6, COMPACT_V6, out.peers)) {
    return fail(trackerError('INVALID_PACKET', 'compact peers6 length is not a multiple of 18'))
  }
  return ok(out)
}
