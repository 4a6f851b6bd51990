/**
 * UDP tracker wire format (BEP 15) with the announce-option extension of BEP 41, both directions.
 *
 * Pure and browser-safe: plain `Uint8Array`s, no `Buffer`, no `node:*`. All integers are
 * big-endian. Decoders never throw: hostile bytes come back as a tagged failure. Encoders are
 * given values the program built itself; they throw `RangeError` only on a programming error
 * (an id of the wrong length, peers of mixed address families).
 *
 * Request layout (offsets in bytes):
 *   every request   0 connection_id u64 | 8 action u32 | 12 transaction_id u32
 *   connect         connection_id is the magic protocol id 0x41727101980
 *   announce        16 info_hash[20] | 36 peer_id[20] | 56 downloaded u64 | 64 left u64 |
 *                   72 uploaded u64 | 80 event u32 | 84 ip u32 | 88 key u32 | 92 num_want i32 |
 *                   96 port u16 | 98 BEP 41 options…
 *   scrape          16 + 20·n info_hash[20]
 * Response layout:
 *   every response  0 action u32 | 4 transaction_id u32
 *   connect         8 connection_id u64
 *   announce        8 interval u32 | 12 leechers u32 | 16 seeders u32 | 20 + s·n peer (s = 6 or 18)
 *   scrape          8 + 12·n seeders u32, completed u32, leechers u32
 *   error           8 message (UTF-8)
 */

import {
  ID_LENGTH,
  UDP_ACTION_ANNOUNCE,
  UDP_ACTION_CONNECT,
  UDP_ACTION_ERROR,
  UDP_ACTION_SCRAPE,
  UDP_ANNOUNCE_MIN_LENGTH,
  UDP_CONNECT_LENGTH,
  UDP_HEADER_LENGTH,
  UDP_MAX_PACKET,
  UDP_MAX_SCRAPE_HASHES,
  UDP_MAX_URL_DATA,
  UDP_PROTOCOL_ID
} from '../../constants.js'
import type { TrackerError } from '../../errors.js'
import { trackerError } from '../../errors.js'
import type { AnnounceEvent, AnnounceRequest, BinaryString, PeerEntry, ScrapeEntry } from '../common/types.js'
import type { Result } from '../common/result.js'
import { fail, ok } from '../common/result.js'

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** Length of a UDP connection id, in bytes. */
export const CONNECTION_ID_LENGTH = 8

/** A request as the server sees it. */
export type UdpRequest =
  | { action: 'connect', transactionId: number }
  | {
    action: 'announce'
    /** An 8-byte view into the received packet (not a copy): verify it before the packet is reused. */
    connectionId: Uint8Array
    transactionId: number
    request: AnnounceRequest
    /**
     * BEP 41 URLData: the PATH and QUERY of the tracker URL the client used, e.g.
     * `/announce?passkey=abc`, as a binary string (one character per byte). '' when absent.
     */
    urlData: BinaryString
  }
  | { action: 'scrape', connectionId: Uint8Array, transactionId: number, infoHashes: BinaryString[] }

/**
 * Why a request could not be decoded, and whether the server may answer it.
 *
 * `reply: false` — drop the packet silently: it is too short, too long, a connect without the
 * magic protocol id, or an unknown action. Nothing in it can be trusted, and answering would
 * let a spoofed source use the tracker as a reflector.
 *
 * `reply: true` — the header of an announce or scrape was well formed but the body was not.
 * `connectionId` and `transactionId` are set; the frontend must still verify the connection id
 * (BEP 15's anti-spoofing proof) and only then may send `encodeError(transactionId, …)`.
 */
export type UdpDecodeFailure =
  | { ok: false, error: TrackerError, reply: false, transactionId?: number }
  | { ok: false, error: TrackerError, reply: true, transactionId: number, connectionId: Uint8Array }

export type UdpDecoded = { ok: true, value: UdpRequest } | UdpDecodeFailure

/** A response as the client sees it. */
export type UdpResponse =
  | { action: 'connect', transactionId: number, connectionId: Uint8Array }
  | { action: 'announce', transactionId: number, interval: number, leechers: number, seeders: number, peers: PeerEntry[] }
  | { action: 'scrape', transactionId: number, entries: UdpScrapeResult[] }
  | { action: 'error', transactionId: number, message: string }

export interface UdpScrapeResult {
  /** Seeders. */
  complete: number
  /** Times the torrent was completed. */
  downloaded: number
  /** Leechers. */
  incomplete: number
}

/** The announce fields a client sends (an `AnnounceRequest` fits). */
export interface UdpAnnounceFields {
  infoHash: BinaryString
  peerId: BinaryString
  downloaded: number
  /** Infinity (size unknown) is sent as the largest u64. */
  left: number
  uploaded: number
  /** 0–3 as in BEP 15; `paused` (4) has no UDP number and is sent as 0 (none). */
  event: AnnounceEvent
  /** Dotted-quad IPv4 address to announce instead of the source; anything else sends 0. */
  ip?: string
  /** Decimal string or number, sent as u32 (taken modulo 2^32); absent or invalid sends 0. */
  key?: string | number
  /** Peers wanted; negative means "tracker default" and is sent as -1. */
  numwant: number
  port: number
}

export interface UdpAnnounceRequestInput {
  connectionId: Uint8Array
  transactionId: number
  request: UdpAnnounceFields
  /** BEP 41 URLData (PATH + QUERY) as a binary string; undefined sends no options at all. */
  urlData?: BinaryString
}

// ---------------------------------------------------------------------------------------------
// Private byte helpers (big-endian, no allocation)
// ---------------------------------------------------------------------------------------------

const TWO_32 = 4294967296
/** Largest high word whose u64 still fits a safe integer: (2^53 - 1) >>> 32. */
const SAFE_HIGH_MAX = 0x1fffff
const PROTOCOL_ID_HIGH = Number(UDP_PROTOCOL_ID >> 32n)
const PROTOCOL_ID_LOW = Number(UDP_PROTOCOL_ID & 0xffffffffn)

const BEP41_END_OF_OPTIONS = 0
const BEP41_NOP = 1
const BEP41_URL_DATA = 2
/** Most data bytes in one BEP 41 option (its length is one byte). */
const BEP41_MAX_OPTION_DATA = 255

const IPV4_COMPACT_LENGTH = 6
const IPV6_COMPACT_LENGTH = 18

function readU32 (b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
}

function readI32 (b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]
}

/** A u64 as a number; values above 2^53 - 1 clamp to Number.MAX_SAFE_INTEGER. */
function readU64Clamped (b: Uint8Array, o: number): number {
  const high = readU32(b, o)
  if (high > SAFE_HIGH_MAX) return Number.MAX_SAFE_INTEGER
  return high * TWO_32 + readU32(b, o + 4)
}

function writeU32 (b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24
  b[o + 1] = v >>> 16
  b[o + 2] = v >>> 8
  b[o + 3] = v
}

/** Writes a non-negative number as u64: NaN/negative → 0, Infinity or ≥ 2^64 → 2^64 - 1. */
function writeU64 (b: Uint8Array, o: number, v: number): void {
  if (!(v > 0)) {
    writeU32(b, o, 0)
    writeU32(b, o + 4, 0)
  } else if (v >= TWO_32 * TWO_32) {
    writeU32(b, o, 0xffffffff)
    writeU32(b, o + 4, 0xffffffff)
  } else {
    const whole = Math.floor(v)
    writeU32(b, o, Math.floor(whole / TWO_32))
    writeU32(b, o + 4, whole % TWO_32)
  }
}

/** A count for a u32 field: NaN/negative → 0, above 2^32 - 1 → 2^32 - 1, fractions dropped. */
function toU32 (v: number): number {
  if (!(v > 0)) return 0
  if (v >= 0xffffffff) return 0xffffffff
  return Math.floor(v)
}

/** Bytes → binary string (one character per byte). */
function bytesToBinaryString (b: Uint8Array, start: number, end: number): BinaryString {
  // Ids (20 bytes, two per announce) in one call: one flat string instead of 20 concatenations
  // (~3x faster with the Map lookup that follows, and less garbage).
  if (end - start === 20) return binaryString20(b, start)
  let s = ''
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i])
  return s
}

/** Binary string → bytes at `o`. Throws on a character above 0xff (a programming error). */
function writeBinaryString (b: Uint8Array, o: number, s: BinaryString): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff) throw new RangeError('binary string has a character above 0xff')
    b[o + i] = c
  }
}

function checkConnectionId (id: Uint8Array): void {
  if (id.length !== CONNECTION_ID_LENGTH) throw new RangeError('connection id must be 8 bytes')
}

function checkId (s: BinaryString, what: string): void {
  if (s.length !== ID_LENGTH) throw new RangeError(`${what} must be a ${ID_LENGTH}-character binary string`)
}

/** `a.b.c.d` → u32, or 0 when `s` is not a dotted-quad IPv4 address. */
function parseIPv4 (s: string | undefined): number {
  if (s === undefined) return 0
  const parts = s.split('.')
  if (parts.length !== 4) return 0
  let v = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return 0
    const n = Number(p)
    if (n > 255) return 0
    v = v * 256 + n
  }
  return v
}

function keyToU32 (key: string | number | undefined): number {
  if (key === undefined) return 0
  const n = typeof key === 'number' ? key : (/^\d+$/.test(key) ? Number(key) : NaN)
  if (!Number.isFinite(n) || n < 0) return 0
  return Math.floor(n) % TWO_32
}

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8')

// ---------------------------------------------------------------------------------------------
// Server side: decode requests
// ---------------------------------------------------------------------------------------------

function drop (error: TrackerError, transactionId?: number): UdpDecodeFailure {
  return transactionId === undefined
    ? { ok: false, error, reply: false }
    : { ok: false, error, reply: false, transactionId }
}

function refuse (error: TrackerError, transactionId: number, connectionId: Uint8Array): UdpDecodeFailure {
  return { ok: false, error, reply: true, transactionId, connectionId }
}

/**
 * Decodes one datagram received by the tracker. Never throws.
 *
 * Length rules follow BEP 15 ("do not expect packets to be exactly of a certain size"): a
 * connect may be longer than 16 bytes and an announce longer than 98 (BEP 41 options follow);
 * a scrape is the header plus whole 20-byte hashes.
 */
export function decodeUdpRequest (msg: Uint8Array): UdpDecoded {
  const len = msg.length
  if (len < UDP_HEADER_LENGTH) {
    return drop(trackerError('INVALID_PACKET', `${len} bytes is shorter than a request header`))
  }
  const action = readU32(msg, 8)
  const transactionId = readU32(msg, 12)
  if (len > UDP_MAX_PACKET) {
    return drop(trackerError('INVALID_PACKET', `${len} bytes is longer than any request`), transactionId)
  }

  if (action === UDP_ACTION_CONNECT) {
    if (readU32(msg, 0) !== PROTOCOL_ID_HIGH || readU32(msg, 4) !== PROTOCOL_ID_LOW) {
      return drop(trackerError('INVALID_PACKET', 'connect without the protocol id'), transactionId)
    }
    return { ok: true, value: { action: 'connect', transactionId } }
  }

  if (action === UDP_ACTION_ANNOUNCE) return decodeAnnounce(msg, transactionId)
  if (action === UDP_ACTION_SCRAPE) return decodeScrape(msg, transactionId)
  return drop(trackerError('INVALID_ACTION', String(action)), transactionId)
}

function decodeAnnounce (msg: Uint8Array, transactionId: number): UdpDecoded {
  const connectionId = msg.subarray(0, CONNECTION_ID_LENGTH)
  if (msg.length < UDP_ANNOUNCE_MIN_LENGTH) {
    return refuse(trackerError('INVALID_PACKET', `announce of ${msg.length} bytes, need ${UDP_ANNOUNCE_MIN_LENGTH}`), transactionId, connectionId)
  }

  const event = readU32(msg, 80)
  if (event > 3) return refuse(trackerError('INVALID_EVENT', String(event)), transactionId, connectionId)
  const port = (msg[96] << 8) | msg[97]
  if (port === 0) return refuse(trackerError('INVALID_PORT', '0'), transactionId, connectionId)

  const urlData = decodeOptions(msg)
  if (urlData === undefined) {
    return refuse(trackerError('URL_TOO_LONG', `BEP 41 URL data over ${UDP_MAX_URL_DATA} bytes`), transactionId, connectionId)
  }

  const numwant = readI32(msg, 92)
  const request: AnnounceRequest = {
    infoHash: bytesToBinaryString(msg, 16, 36),
    peerId: bytesToBinaryString(msg, 36, 56),
    port,
    uploaded: readU64Clamped(msg, 72),
    downloaded: readU64Clamped(msg, 56),
    left: readU64Clamped(msg, 64),
    event: event as AnnounceEvent,
    numwant: numwant < 0 ? -1 : numwant,
    compact: true,
    noPeerId: true,
    key: String(readU32(msg, 88))
  }
  if (msg[84] !== 0 || msg[85] !== 0 || msg[86] !== 0 || msg[87] !== 0) {
    request.ip = `${msg[84]}.${msg[85]}.${msg[86]}.${msg[87]}`
  }
  return { ok: true, value: { action: 'announce', connectionId, transactionId, request, urlData } }
}

/**
 * Walks the BEP 41 options after byte 98 and returns the concatenated URLData payloads, or
 * undefined when they exceed UDP_MAX_URL_DATA bytes (refused rather than cut: a cut passkey
 * or query would be silently wrong).
 *
 * Per BEP 41: 0 (EndOfOptions) stops; 1 (NOP) is one byte; every type ≥ 2 has a length byte,
 * so an unknown type is skipped over (BEP 41 requires future options to carry a length
 * precisely so that today's parsers can do this). An option whose length byte or data runs
 * past the end of the packet is truncated: it and anything after it are ignored.
 */
function decodeOptions (msg: Uint8Array): BinaryString | undefined {
  let urlData = ''
  const len = msg.length
  let i = UDP_ANNOUNCE_MIN_LENGTH
  while (i < len) {
    const type = msg[i]
    if (type === BEP41_END_OF_OPTIONS) break
    if (type === BEP41_NOP) { i += 1; continue }
    if (i + 1 >= len) break
    const dataStart = i + 2
    const dataEnd = dataStart + msg[i + 1]
    if (dataEnd > len) break
    if (type === BEP41_URL_DATA) {
      if (urlData.length + (dataEnd - dataStart) > UDP_MAX_URL_DATA) return undefined
      urlData += bytesToBinaryString(msg, dataStart, dataEnd)
    }
    i = dataEnd
  }
  return urlData
}

/**
 * Whether the BEP 41 options of the announce at [off, off + len) of `msg` would decode (their
 * URLData within UDP_MAX_URL_DATA): the check of `decodeOptions` without building the string,
 * for servers that have no use for the URL data.
 */
export function udpOptionsFit (msg: Uint8Array, off: number, len: number): boolean {
  let urlBytes = 0
  const end = off + len
  let i = off + UDP_ANNOUNCE_MIN_LENGTH
  while (i < end) {
    const type = msg[i]
    if (type === BEP41_END_OF_OPTIONS) break
    if (type === BEP41_NOP) { i += 1; continue }
    if (i + 1 >= end) break
    const dataEnd = i + 2 + msg[i + 1]
    if (dataEnd > end) break
    if (type === BEP41_URL_DATA) {
      urlBytes += dataEnd - i - 2
      if (urlBytes > UDP_MAX_URL_DATA) return false
    }
    i = dataEnd
  }
  return true
}

/** The 20 bytes at `o` as a binary string (an info hash or peer id), in one flat string. */
export function binaryString20 (b: Uint8Array, o: number): BinaryString {
  return String.fromCharCode(
    b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5], b[o + 6], b[o + 7], b[o + 8], b[o + 9],
    b[o + 10], b[o + 11], b[o + 12], b[o + 13], b[o + 14], b[o + 15], b[o + 16], b[o + 17], b[o + 18], b[o + 19])
}

function decodeScrape (msg: Uint8Array, transactionId: number): UdpDecoded {
  const connectionId = msg.subarray(0, CONNECTION_ID_LENGTH)
  const body = msg.length - UDP_HEADER_LENGTH
  if (body === 0) {
    return refuse(trackerError('FULL_SCRAPE_DISABLED'), transactionId, connectionId)
  }
  if (body % ID_LENGTH !== 0) {
    return refuse(trackerError('INVALID_INFO_HASH', `scrape body of ${body} bytes is not whole 20-byte hashes`), transactionId, connectionId)
  }
  const count = body / ID_LENGTH
  if (count > UDP_MAX_SCRAPE_HASHES) {
    return refuse(trackerError('TOO_MANY_HASHES', `${count} > ${UDP_MAX_SCRAPE_HASHES}`), transactionId, connectionId)
  }
  const infoHashes: BinaryString[] = new Array(count)
  for (let n = 0, o = UDP_HEADER_LENGTH; n < count; n++, o += ID_LENGTH) {
    infoHashes[n] = bytesToBinaryString(msg, o, o + ID_LENGTH)
  }
  return { ok: true, value: { action: 'scrape', connectionId, transactionId, infoHashes } }
}

// ---------------------------------------------------------------------------------------------
// Server side: encode responses
// ---------------------------------------------------------------------------------------------

/** Connect response: action 0, transaction id, connection id (16 bytes). */
export function encodeConnectResponse (transactionId: number, connectionId: Uint8Array): Uint8Array {
  checkConnectionId(connectionId)
  const out = new Uint8Array(16)
  writeU32(out, 0, UDP_ACTION_CONNECT)
  writeU32(out, 4, transactionId)
  out.set(connectionId, 8)
  return out
}

/**
 * Announce response: 20-byte header then the peers' compact addresses. `interval` is in
 * seconds. All peers must be of one family (`addr` 6 characters for IPv4, 18 for IPv6) — the
 * family of the request; the caller also caps their number (MAX_UDP_PEERS).
 */
export function encodeAnnounceResponse (
  transactionId: number, interval: number, leechers: number, seeders: number, peers: readonly PeerEntry[]
): Uint8Array {
  const stride = peers.length === 0 ? 0 : peers[0].addr.length
  if (stride !== 0 && stride !== IPV4_COMPACT_LENGTH && stride !== IPV6_COMPACT_LENGTH) {
    throw new RangeError(`compact peer address must be 6 or 18 bytes, got ${stride}`)
  }
  const out = new Uint8Array(20 + stride * peers.length)
  writeU32(out, 0, UDP_ACTION_ANNOUNCE)
  writeU32(out, 4, transactionId)
  writeU32(out, 8, toU32(interval))
  writeU32(out, 12, toU32(leechers))
  writeU32(out, 16, toU32(seeders))
  let o = 20
  for (let n = 0; n < peers.length; n++, o += stride) {
    const addr = peers[n].addr
    if (addr.length !== stride) throw new RangeError('peers of mixed address families in one UDP reply')
    writeBinaryString(out, o, addr)
  }
  return out
}

/**
 * The 20-byte header of an announce response, written at `o` of `out` (the peers follow at
 * o + 20): for servers that write replies in place. Same fields as `encodeAnnounceResponse`.
 */
export function writeAnnounceResponseHeader (
  out: Uint8Array, o: number, transactionId: number, interval: number, leechers: number, seeders: number
): void {
  writeU32(out, o, UDP_ACTION_ANNOUNCE)
  writeU32(out, o + 4, transactionId)
  writeU32(out, o + 8, toU32(interval))
  writeU32(out, o + 12, toU32(leechers))
  writeU32(out, o + 16, toU32(seeders))
}

/** The 8-byte header of a scrape response at `o` of `out` (12-byte entries follow). */
export function writeScrapeResponseHeader (out: Uint8Array, o: number, transactionId: number): void {
  writeU32(out, o, UDP_ACTION_SCRAPE)
  writeU32(out, o + 4, transactionId)
}

/** Scrape response: per hash, in request order, seeders, completed, leechers (BEP 15 order). */
export function encodeScrapeResponse (transactionId: number, entries: readonly ScrapeEntry[]): Uint8Array {
  const out = new Uint8Array(8 + 12 * entries.length)
  writeU32(out, 0, UDP_ACTION_SCRAPE)
  writeU32(out, 4, transactionId)
  let o = 8
  for (const e of entries) {
    writeU32(out, o, toU32(e.complete))
    writeU32(out, o + 4, toU32(e.downloaded))
    writeU32(out, o + 8, toU32(e.incomplete))
    o += 12
  }
  return out
}

/** Error response: action 3, transaction id, message as UTF-8. */
export function encodeError (transactionId: number, message: string): Uint8Array {
  const text = utf8Encoder.encode(message)
  const out = new Uint8Array(8 + text.length)
  writeU32(out, 0, UDP_ACTION_ERROR)
  writeU32(out, 4, transactionId)
  out.set(text, 8)
  return out
}

// ---------------------------------------------------------------------------------------------
// Client side: encode requests
// ---------------------------------------------------------------------------------------------

/** Connect request: protocol id, action 0, transaction id (16 bytes). */
export function encodeConnectRequest (transactionId: number): Uint8Array {
  const out = new Uint8Array(UDP_CONNECT_LENGTH)
  writeU32(out, 0, PROTOCOL_ID_HIGH)
  writeU32(out, 4, PROTOCOL_ID_LOW)
  writeU32(out, 8, UDP_ACTION_CONNECT)
  writeU32(out, 12, transactionId)
  return out
}

/**
 * Announce request: the 98 fixed bytes, then — when `urlData` is given — BEP 41 URLData options
 * of at most 255 bytes each and an EndOfOptions byte. An empty `urlData` sends one empty
 * URLData option, which BEP 41 defines as "supported, but the URL had no path or query".
 */
export function encodeAnnounceRequest (input: UdpAnnounceRequestInput): Uint8Array {
  const { connectionId, transactionId, request: r, urlData } = input
  checkConnectionId(connectionId)
  checkId(r.infoHash, 'info_hash')
  checkId(r.peerId, 'peer_id')

  let optionsLength = 0
  if (urlData !== undefined) {
    const chunks = Math.max(1, Math.ceil(urlData.length / BEP41_MAX_OPTION_DATA))
    optionsLength = urlData.length + 2 * chunks + 1
  }
  const out = new Uint8Array(UDP_ANNOUNCE_MIN_LENGTH + optionsLength)
  out.set(connectionId, 0)
  writeU32(out, 8, UDP_ACTION_ANNOUNCE)
  writeU32(out, 12, transactionId)
  writeBinaryString(out, 16, r.infoHash)
  writeBinaryString(out, 36, r.peerId)
  writeU64(out, 56, r.downloaded)
  writeU64(out, 64, r.left)
  writeU64(out, 72, r.uploaded)
  writeU32(out, 80, r.event >= 0 && r.event <= 3 ? r.event : 0)
  writeU32(out, 84, parseIPv4(r.ip))
  writeU32(out, 88, keyToU32(r.key))
  writeU32(out, 92, r.numwant < 0 || !Number.isFinite(r.numwant) ? -1 : Math.min(Math.floor(r.numwant), 0x7fffffff))
  out[96] = r.port >>> 8
  out[97] = r.port

  if (urlData !== undefined) {
    let o = UDP_ANNOUNCE_MIN_LENGTH
    let from = 0
    do {
      const chunk = urlData.slice(from, from + BEP41_MAX_OPTION_DATA)
      out[o] = BEP41_URL_DATA
      out[o + 1] = chunk.length
      writeBinaryString(out, o + 2, chunk)
      o += 2 + chunk.length
      from += BEP41_MAX_OPTION_DATA
    } while (from < urlData.length)
    out[o] = BEP41_END_OF_OPTIONS
  }
  return out
}

/** Scrape request: header then 1..UDP_MAX_SCRAPE_HASHES 20-byte info hashes. */
export function encodeScrapeRequest (connectionId: Uint8Array, transactionId: number, infoHashes: readonly BinaryString[]): Uint8Array {
  checkConnectionId(connectionId)
  if (infoHashes.length === 0 || infoHashes.length > UDP_MAX_SCRAPE_HASHES) {
    throw new RangeError(`a UDP scrape carries 1 to ${UDP_MAX_SCRAPE_HASHES} info hashes, got ${infoHashes.length}`)
  }
  const out = new Uint8Array(UDP_HEADER_LENGTH + ID_LENGTH * infoHashes.length)
  out.set(connectionId, 0)
  writeU32(out, 8, UDP_ACTION_SCRAPE)
  writeU32(out, 12, transactionId)
  let o = UDP_HEADER_LENGTH
  for (const h of infoHashes) {
    checkId(h, 'info_hash')
    writeBinaryString(out, o, h)
    o += ID_LENGTH
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Client side: decode responses
// ---------------------------------------------------------------------------------------------

/**
 * Decodes one datagram received from a tracker. Never throws. `peerLength` is the compact
 * peer size for the address family the request went over (6 for IPv4, 18 for IPv6). The
 * caller matches `transactionId` against the request it sent.
 */
export function decodeUdpResponse (msg: Uint8Array, peerLength: 6 | 18): Result<UdpResponse> {
  const len = msg.length
  if (len < 8) return fail(trackerError('INVALID_PACKET', `${len} bytes is shorter than a response header`))
  const action = readU32(msg, 0)
  const transactionId = readU32(msg, 4)

  switch (action) {
    case UDP_ACTION_CONNECT: {
      if (len < 16) return fail(trackerError('INVALID_PACKET', `connect response of ${len} bytes, need 16`))
      return ok({ action: 'connect', transactionId, connectionId: msg.slice(8, 16) })
    }
    case UDP_ACTION_ANNOUNCE: {
      if (len < 20) return fail(trackerError('INVALID_PACKET', `announce response of ${len} bytes, need 20`))
      if ((len - 20) % peerLength !== 0) {
        return fail(trackerError('INVALID_PACKET', `${len - 20} peer bytes is not a multiple of ${peerLength}`))
      }
      const count = (len - 20) / peerLength
      const peers: PeerEntry[] = new Array(count)
      for (let n = 0, o = 20; n < count; n++, o += peerLength) {
        peers[n] = { peerId: '', addr: bytesToBinaryString(msg, o, o + peerLength) }
      }
      return ok({
        action: 'announce',
        transactionId,
        interval: readU32(msg, 8),
        leechers: readU32(msg, 12),
        seeders: readU32(msg, 16),
        peers
      })
    }
    case UDP_ACTION_SCRAPE: {
      if ((len - 8) % 12 !== 0) {
        return fail(trackerError('INVALID_PACKET', `scrape response body of ${len - 8} bytes is not whole 12-byte entries`))
      }
      const count = (len - 8) / 12
      const entries: UdpScrapeResult[] = new Array(count)
      for (let n = 0, o = 8; n < count; n++, o += 12) {
        entries[n] = { complete: readU32(msg, o), downloaded: readU32(msg, o + 4), incomplete: readU32(msg, o + 8) }
      }
      return ok({ action: 'scrape', transactionId, entries })
    }
    case UDP_ACTION_ERROR:
      return ok({ action: 'error', transactionId, message: utf8Decoder.decode(msg.subarray(8)) })
    default:
      return fail(trackerError('INVALID_ACTION', String(action)))
  }
}
