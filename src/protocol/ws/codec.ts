/**
 * WebTorrent WebSocket tracker codec (SPEC §4): JSON text frames, both directions.
 *
 * Pure and browser-safe: no node:* imports, no Buffer, no state. Info hashes, peer ids and
 * `to_peer_id` are 20-character binary strings (each character one byte, code 0–255); they are
 * kept in that form. SDP strings are passed through untouched.
 *
 * Decoders never throw: anything malformed comes back as `{ ok: false, error }` with a stable
 * `TrackerError.code`. Fields are read as own properties only, so a hostile `__proto__` key or a
 * polluted `Object.prototype` cannot change what is decoded. JSON `null` is treated like an absent
 * field everywhere (JSON has no `undefined`: the reference client's `left: Infinity` arrives as
 * `null`). Unknown extra fields are ignored, unless the caller asks for them (`keepExtra`): then
 * an announce's custom fields come back as `extra`, for the tracker's `filter` and events.
 *
 * Encoders build the frame text directly: every string goes through `JSON.stringify`, which
 * escapes quotes, backslashes and control characters and leaves bytes 0x7f–0xff as they are, so a
 * binary string survives `JSON.parse` unchanged.
 */

import {
  MAX_SCRAPE_HASHES,
  WS_MAX_OFFERS,
  WS_MAX_OFFER_ID_LENGTH,
  WS_MAX_SDP_LENGTH
} from '../../constants.js'
import { type ErrorCode, type TrackerError, trackerError } from '../../errors.js'
import { isId } from '../common/binary.js'
import { fail, ok, type Result } from '../common/result.js'
import { findSdpLiterals } from './json.js'
import type { SdpLiterals } from './json.js'
import {
  type AnnounceEvent,
  type AnnounceRequest,
  type BinaryString,
  type ScrapeEntry,
  EVENT_COMPLETED,
  EVENT_NONE,
  EVENT_PAUSED,
  EVENT_STARTED,
  EVENT_STOPPED,
  EVENT_WIRE_NAMES
} from '../common/types.js'

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

export type WsAction = 'announce' | 'scrape'

/** One WebRTC offer a peer asks the tracker to relay. */
export interface WsOffer {
  offerId: string
  sdp: string
}

/** An answer to a relayed offer, to be forwarded to `toPeerId`. */
export interface WsAnswer {
  toPeerId: BinaryString
  offerId: string
  sdp: string
}

/**
 * `WsOffer` with the SDP as its JSON string literal (`JSON.stringify(sdp)`, quotes included), as
 * `decodeWsRequestJson` gives it: the tracker forwards it without decoding it.
 */
export interface WsOfferJson {
  offerId: string
  sdpJson: string
}

/** `WsAnswer` with the SDP as its JSON string literal (see `WsOfferJson`). */
export interface WsAnswerJson {
  toPeerId: BinaryString
  offerId: string
  sdpJson: string
}

export interface WsAnnounceMessage {
  action: 'announce'
  /** `port` is 0, `compact` and `noPeerId` false: WS peers have neither. */
  request: AnnounceRequest
  /** Present when the message had an `offers` array (possibly empty). */
  offers?: WsOffer[]
  /** Present when the message had an `answer`. */
  answer?: WsAnswer
  /** With `keepExtra`: the fields that are not part of the protocol (custom params), if any. */
  extra?: Record<string, unknown>
}

export interface WsScrapeMessage {
  action: 'scrape'
  /** Empty: a full scrape (no `info_hash`, or an empty array). */
  infoHashes: BinaryString[]
}

/** A decoded client → tracker message. */
export type WsRequest = WsAnnounceMessage | WsScrapeMessage

/** `WsAnnounceMessage` as `decodeWsRequestJson` gives it: SDPs as JSON text. */
export interface WsAnnounceMessageJson {
  action: 'announce'
  request: AnnounceRequest
  offers?: WsOfferJson[]
  answer?: WsAnswerJson
  extra?: Record<string, unknown>
}

export type WsRequestJson = WsAnnounceMessageJson | WsScrapeMessage

/**
 * A request that could not be decoded, with what could be read of it, so the frontend can answer
 * `{ action, "failure reason", info_hash }` (see `encodeFailure`). `action` is set once the action
 * was recognised; `infoHash` once a single valid info hash was read.
 */
export interface WsDecodeFailure {
  ok: false
  error: TrackerError
  action?: WsAction
  infoHash?: BinaryString
}

/** What `decodeWsRequest` returns; a `Result<WsRequest>` that may carry more on failure. */
export type WsDecodeResult = { ok: true, value: WsRequest } | WsDecodeFailure

/** What `decodeWsRequestJson` returns. */
export type WsDecodeJsonResult = { ok: true, value: WsRequestJson } | WsDecodeFailure

/** Tracker → client: the reply to an announce. Fields the tracker left out are undefined. */
export interface WsAnnounceReply {
  type: 'announce'
  infoHash: BinaryString
  /** Seconds between announces (`interval`, else `min interval`). */
  interval?: number
  /** Seeders. */
  complete?: number
  /** Leechers. */
  incomplete?: number
  /** `tracker id`: to be echoed as `trackerid` in later announces. */
  trackerId?: string
  /** `warning message`. */
  warning?: string
}

/** Tracker → client: another peer's offer (`peerId` is the sender) or answer (the answerer). */
export interface WsRelayedSignal {
  type: 'offer' | 'answer'
  infoHash: BinaryString
  peerId: BinaryString
  offerId: string
  sdp: string
}

export interface WsScrapeReply {
  type: 'scrape'
  files: ScrapeEntry[]
}

export interface WsFailure {
  type: 'failure'
  reason: string
  action?: WsAction
  infoHash?: BinaryString
}

/** A decoded tracker → client message. */
export type WsServerMessage = WsAnnounceReply | WsRelayedSignal | WsScrapeReply | WsFailure

export interface WsAnnounceResponseFields {
  infoHash: BinaryString
  /** Seconds. */
  interval: number
  complete: number
  incomplete: number
}

export interface WsSignalFields {
  infoHash: BinaryString
  /** The peer the offer or answer comes from. */
  fromPeerId: BinaryString
  offerId: string
  sdp: string
}

/** `WsSignalFields` with the SDP as its JSON string literal (`JSON.stringify(sdp)`). */
export interface WsSignalJsonFields {
  infoHash: BinaryString
  fromPeerId: BinaryString
  offerId: string
  sdpJson: string
}

export interface WsAnnounceRequestFields {
  infoHash: BinaryString
  peerId: BinaryString
  uploaded: number
  downloaded: number
  /** Infinity (unknown) is sent by leaving `left` out: trackers read a missing `left` as unknown. */
  left: number
  /** EVENT_NONE or undefined: no `event` field. */
  event?: AnnounceEvent
  numwant: number
  offers?: ReadonlyArray<{ offerId: string, sdp: string }>
  trackerId?: string
  /**
   * Custom params (README `customParam`), sent as fields of their own, as the reference client
   * does. Names of protocol fields (`WS_ANNOUNCE_FIELDS`) are left out.
   */
  extra?: Readonly<Record<string, string | number | boolean>>
}

export interface WsAnswerRequestFields {
  infoHash: BinaryString
  peerId: BinaryString
  toPeerId: BinaryString
  offerId: string
  sdp: string
  trackerId?: string
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type JsonObject = Record<string, unknown>

const hasOwn = Object.prototype.hasOwnProperty

/** The fields of an announce message that the protocol defines; any other is a custom param. */
export const WS_ANNOUNCE_FIELDS: ReadonlySet<string> = new Set([
  'action', 'info_hash', 'peer_id', 'uploaded', 'downloaded', 'left', 'event', 'numwant',
  'offers', 'answer', 'to_peer_id', 'offer_id', 'trackerid'
])

/** The value of an own property, or undefined (never an inherited one). */
function own (obj: JsonObject, key: string): unknown {
  return hasOwn.call(obj, key) ? obj[key] : undefined
}

function isObject (v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A plain decimal numeral: digits with an optional fraction, bounded so it stays finite. */
const NUMERIC_STRING = /^[0-9]{1,30}(?:\.[0-9]{1,30})?$/

/**
 * A non-negative finite number from a JSON number or numeric string; `fallback` when absent or
 * null; NaN when malformed.
 */
function readAmount (v: unknown, fallback: number): number {
  if (v === undefined || v === null) return fallback
  let n: number
  if (typeof v === 'number') n = v
  else if (typeof v === 'string' && NUMERIC_STRING.test(v)) n = Number(v)
  else return NaN
  if (!(n >= 0) || n === Infinity) return NaN
  return n + 0 // -0 → 0
}

function failure (code: ErrorCode, detail: string | undefined, action?: WsAction, infoHash?: BinaryString): WsDecodeFailure {
  const f: WsDecodeFailure = { ok: false, error: trackerError(code, detail) }
  if (action !== undefined) f.action = action
  if (infoHash !== undefined) f.infoHash = infoHash
  return f
}

function parseObject (text: string): JsonObject | undefined {
  if (typeof text !== 'string') return undefined
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return undefined
  }
  return isObject(data) ? data : undefined
}

/** A signal object `{ type, sdp }` of the expected type: its sdp, or why it is not acceptable. */
function readSdp (v: unknown, type: 'offer' | 'answer'): { sdp: string } | { bad: string } {
  if (!isObject(v)) return { bad: `${type} is not an object` }
  if (own(v, 'type') !== type) return { bad: `${type} type is not "${type}"` }
  const sdp = own(v, 'sdp')
  if (typeof sdp !== 'string') return { bad: `${type} sdp is not a string` }
  if (sdp.length > WS_MAX_SDP_LENGTH) return { bad: `${type} sdp longer than ${WS_MAX_SDP_LENGTH}` }
  return { sdp }
}

function isOfferId (v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= WS_MAX_OFFER_ID_LENGTH
}

/** The event named on the wire; undefined for an unknown name. */
function eventFromName (name: string): AnnounceEvent | undefined {
  switch (name) {
    case '': case 'update': return EVENT_NONE
    case 'started': return EVENT_STARTED
    case 'completed': return EVENT_COMPLETED
    case 'stopped': return EVENT_STOPPED
    case 'paused': return EVENT_PAUSED
    default: return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Server side: decode client messages
// ---------------------------------------------------------------------------------------------

/**
 * Decode one client → tracker text frame. Never throws. `keepExtra`: also return an announce's
 * custom fields (`extra`); off by default, as only a `filter` or event listener reads them.
 */
export function decodeWsRequest (text: string, keepExtra = false): WsDecodeResult {
  return decodeRequest(text, false, keepExtra) as unknown as WsDecodeResult
}

/**
 * `decodeWsRequest` for a tracker that forwards offers and answers: the same checks and
 * results, but each SDP comes as its JSON text (`sdpJson`, exactly what `JSON.stringify(sdp)`
 * gives), taken from the frame's text when it is already in that form. Never throws.
 */
export function decodeWsRequestJson (text: string, keepExtra = false): WsDecodeJsonResult {
  return decodeRequest(text, true, keepExtra) as unknown as WsDecodeJsonResult
}

function decodeRequest (text: string, sdpAsJson: boolean, keepExtra: boolean): { ok: true, value: AnyAnnounceMessage | WsScrapeMessage } | WsDecodeFailure {
  const data = parseObject(text)
  if (data === undefined) return failure('INVALID_JSON', undefined)
  const action = own(data, 'action')
  if (action === 'announce') return decodeAnnounce(data, sdpAsJson ? text : undefined, keepExtra)
  if (action === 'scrape') return decodeScrape(data)
  return failure('INVALID_ACTION', undefined)
}

/** Either form of announce message: `decodeAnnounce`'s `text` argument says which. */
interface AnyAnnounceMessage {
  action: 'announce'
  request: AnnounceRequest
  offers?: Array<WsOffer | WsOfferJson>
  answer?: WsAnswer | WsAnswerJson
  extra?: Record<string, unknown>
}

/**
 * `text` (the frame `data` was parsed from): SDPs as JSON text (`decodeWsRequestJson`), taken
 * from `text` where `findSdpLiterals` finds them; else decoded.
 */
function decodeAnnounce (data: JsonObject, text: string | undefined, keepExtra: boolean): { ok: true, value: AnyAnnounceMessage } | WsDecodeFailure {
  const A = 'announce'
  const infoHash = own(data, 'info_hash')
  if (!isId(infoHash)) return failure('INVALID_INFO_HASH', undefined, A)
  const peerId = own(data, 'peer_id')
  if (!isId(peerId)) return failure('INVALID_PEER_ID', undefined, A, infoHash)

  const uploaded = readAmount(own(data, 'uploaded'), 0)
  if (Number.isNaN(uploaded)) return failure('INVALID_NUMBER', 'uploaded', A, infoHash)
  const downloaded = readAmount(own(data, 'downloaded'), 0)
  if (Number.isNaN(downloaded)) return failure('INVALID_NUMBER', 'downloaded', A, infoHash)
  const left = readAmount(own(data, 'left'), Infinity)
  if (Number.isNaN(left)) return failure('INVALID_NUMBER', 'left', A, infoHash)
  const numwant = readAmount(own(data, 'numwant'), -1)
  if (!Number.isInteger(numwant)) return failure('INVALID_NUMBER', 'numwant', A, infoHash)

  const eventName = own(data, 'event')
  let event: AnnounceEvent = EVENT_NONE
  if (eventName !== undefined && eventName !== null) {
    const e = typeof eventName === 'string' ? eventFromName(eventName) : undefined
    if (e === undefined) return failure('INVALID_EVENT', undefined, A, infoHash)
    event = e
  }

  const request: AnnounceRequest = {
    infoHash,
    peerId,
    port: 0,
    uploaded,
    downloaded,
    left,
    event,
    numwant,
    compact: false,
    noPeerId: false
  }
  const trackerId = own(data, 'trackerid')
  if (typeof trackerId === 'string') request.trackerId = trackerId

  const message: AnyAnnounceMessage = { action: A, request }
  /** Found on first use (an announce without offers or answer needs none). */
  let literals: SdpLiterals | undefined

  const rawOffers = own(data, 'offers')
  if (rawOffers !== undefined && rawOffers !== null) {
    if (!Array.isArray(rawOffers)) return failure('INVALID_OFFER', 'offers is not an array', A, infoHash)
    if (rawOffers.length > WS_MAX_OFFERS) return failure('TOO_MANY_OFFERS', `more than ${WS_MAX_OFFERS}`, A, infoHash)
    const offers: Array<WsOffer | WsOfferJson> = new Array(rawOffers.length)
    for (let i = 0; i < rawOffers.length; i++) {
      const o: unknown = rawOffers[i]
      if (!isObject(o)) return failure('INVALID_OFFER', undefined, A, infoHash)
      const offerId = own(o, 'offer_id')
      if (!isOfferId(offerId)) return failure('INVALID_OFFER', 'bad offer_id', A, infoHash)
      const s = readSdp(own(o, 'offer'), 'offer')
      if ('bad' in s) return failure('INVALID_OFFER', s.bad, A, infoHash)
      if (text !== undefined) {
        literals ??= findSdpLiterals(text)
        offers[i] = { offerId, sdpJson: literals.offers[i] ?? str(s.sdp) }
      } else offers[i] = { offerId, sdp: s.sdp }
    }
    message.offers = offers
  }

  const rawAnswer = own(data, 'answer')
  if (rawAnswer !== undefined && rawAnswer !== null) {
    const s = readSdp(rawAnswer, 'answer')
    if ('bad' in s) return failure('INVALID_ANSWER', s.bad, A, infoHash)
    const toPeerId = own(data, 'to_peer_id')
    if (!isId(toPeerId)) return failure('INVALID_TO_PEER_ID', undefined, A, infoHash)
    const offerId = own(data, 'offer_id')
    if (!isOfferId(offerId)) return failure('INVALID_ANSWER', 'bad offer_id', A, infoHash)
    if (text !== undefined) {
      literals ??= findSdpLiterals(text)
      message.answer = { toPeerId, offerId, sdpJson: literals.answer ?? str(s.sdp) }
    } else message.answer = { toPeerId, offerId, sdp: s.sdp }
  }

  if (keepExtra) {
    const extra = extraFields(data)
    if (extra !== undefined) message.extra = extra
  }
  return { ok: true, value: message }
}

/**
 * The own fields of `data` that the protocol does not define, in a null-prototype object (so a
 * `__proto__` field is a plain entry); undefined when there are none.
 */
function extraFields (data: JsonObject): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined
  for (const k of Object.keys(data)) {
    if (WS_ANNOUNCE_FIELDS.has(k)) continue
    extra ??= Object.create(null) as Record<string, unknown>
    extra[k] = data[k]
  }
  return extra
}

function decodeScrape (data: JsonObject): { ok: true, value: WsScrapeMessage } | WsDecodeFailure {
  const A = 'scrape'
  const raw = own(data, 'info_hash')
  if (raw === undefined || raw === null) return { ok: true, value: { action: A, infoHashes: [] } }
  if (typeof raw === 'string') {
    if (!isId(raw)) return failure('INVALID_INFO_HASH', undefined, A)
    return { ok: true, value: { action: A, infoHashes: [raw] } }
  }
  if (!Array.isArray(raw)) return failure('INVALID_INFO_HASH', undefined, A)
  if (raw.length > MAX_SCRAPE_HASHES) return failure('TOO_MANY_HASHES', `more than ${MAX_SCRAPE_HASHES}`, A)
  const infoHashes: BinaryString[] = new Array(raw.length)
  for (let i = 0; i < raw.length; i++) {
    const h: unknown = raw[i]
    if (!isId(h)) return failure('INVALID_INFO_HASH', undefined, A)
    infoHashes[i] = h
  }
  return { ok: true, value: { action: A, infoHashes } }
}

// ---------------------------------------------------------------------------------------------
// Server side: encode tracker messages
// ---------------------------------------------------------------------------------------------

const str = JSON.stringify as (v: string) => string
/** Numbers as JSON (non-finite → null, so the frame is always valid JSON). */
const num = JSON.stringify as (v: number) => string

/** `{"action":"announce","interval","info_hash","complete","incomplete"}`. */
export function encodeAnnounceResponse (r: WsAnnounceResponseFields): string {
  return `{"action":"announce","interval":${num(r.interval)},"info_hash":${str(r.infoHash)},` +
    `"complete":${num(r.complete)},"incomplete":${num(r.incomplete)}}`
}

/** A relayed offer, ready to send as-is: `peer_id` is the offering peer. */
export function encodeOffer (s: WsSignalFields): string {
  return `{"action":"announce","offer":{"type":"offer","sdp":${str(s.sdp)}},"offer_id":${str(s.offerId)},` +
    `"peer_id":${str(s.fromPeerId)},"info_hash":${str(s.infoHash)}}`
}

/**
 * `encodeOffer` from the SDP's JSON text: the same frame, without encoding the SDP again. `tail`
 * (`encodeSignalTail` of the same peer and torrent) may be shared by one announce's offers.
 */
export function encodeOfferJson (s: WsSignalJsonFields, tail = encodeSignalTail(s.fromPeerId, s.infoHash)): string {
  return `{"action":"announce","offer":{"type":"offer","sdp":${s.sdpJson}},"offer_id":${str(s.offerId)}` + tail
}

/** The end of a relayed offer or answer frame from `fromPeerId` in `infoHash`'s swarm. */
export function encodeSignalTail (fromPeerId: BinaryString, infoHash: BinaryString): string {
  return `,"peer_id":${str(fromPeerId)},"info_hash":${str(infoHash)}}`
}

/** A forwarded answer: `peer_id` is the answering peer. */
export function encodeAnswer (s: WsSignalFields): string {
  return `{"action":"announce","answer":{"type":"answer","sdp":${str(s.sdp)}},"offer_id":${str(s.offerId)},` +
    `"peer_id":${str(s.fromPeerId)},"info_hash":${str(s.infoHash)}}`
}

/** `encodeAnswer` from the SDP's JSON text. */
export function encodeAnswerJson (s: WsSignalJsonFields): string {
  return `{"action":"announce","answer":{"type":"answer","sdp":${s.sdpJson}},"offer_id":${str(s.offerId)}` +
    encodeSignalTail(s.fromPeerId, s.infoHash)
}

/** `{"action":"scrape","files":{<info hash>:{complete,incomplete,downloaded}}}`, in entry order. */
export function encodeScrapeResponse (entries: readonly ScrapeEntry[]): string {
  let out = '{"action":"scrape","files":{'
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]
    if (i > 0) out += ','
    out += `${str(e.infoHash)}:{"complete":${num(e.complete)},"incomplete":${num(e.incomplete)},` +
      `"downloaded":${num(e.downloaded)}}`
  }
  return out + '}}'
}

/** `{"action","failure reason","info_hash"}`, leaving out what is undefined. */
export function encodeFailure (reason: string, action?: WsAction, infoHash?: BinaryString): string {
  let out = '{'
  if (action !== undefined) out += `"action":${str(action)},`
  out += `"failure reason":${str(reason)}`
  if (infoHash !== undefined) out += `,"info_hash":${str(infoHash)}`
  return out + '}'
}

// ---------------------------------------------------------------------------------------------
// Client side: encode client messages
// ---------------------------------------------------------------------------------------------

/**
 * An announce, with offers if given. `left: Infinity` is left out rather than sent as `null`:
 * the reference tracker reads `null` as 0 (a seeder) but a missing `left` as unknown.
 */
export function encodeAnnounceRequest (r: WsAnnounceRequestFields): string {
  let out = `{"action":"announce","info_hash":${str(r.infoHash)},"peer_id":${str(r.peerId)},` +
    `"uploaded":${num(r.uploaded)},"downloaded":${num(r.downloaded)}`
  if (r.left !== Infinity) out += `,"left":${num(r.left)}`
  if (r.event !== undefined && r.event !== EVENT_NONE) out += `,"event":${str(EVENT_WIRE_NAMES[r.event])}`
  out += `,"numwant":${num(r.numwant)}`
  if (r.offers !== undefined) {
    out += ',"offers":['
    for (let i = 0; i < r.offers.length; i++) {
      const o = r.offers[i]
      if (i > 0) out += ','
      out += `{"offer":{"type":"offer","sdp":${str(o.sdp)}},"offer_id":${str(o.offerId)}}`
    }
    out += ']'
  }
  if (r.trackerId !== undefined) out += `,"trackerid":${str(r.trackerId)}`
  if (r.extra !== undefined) {
    for (const k of Object.keys(r.extra)) {
      if (WS_ANNOUNCE_FIELDS.has(k)) continue
      const v = r.extra[k]
      if (typeof v === 'string') out += `,${str(k)}:${str(v)}`
      else if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) out += `,${str(k)}:${String(v)}`
    }
  }
  return out + '}'
}

/** An answer to an offer relayed from `toPeerId`. */
export function encodeAnswerRequest (r: WsAnswerRequestFields): string {
  let out = `{"action":"announce","info_hash":${str(r.infoHash)},"peer_id":${str(r.peerId)},` +
    `"to_peer_id":${str(r.toPeerId)},"answer":{"type":"answer","sdp":${str(r.sdp)}},` +
    `"offer_id":${str(r.offerId)}`
  if (r.trackerId !== undefined) out += `,"trackerid":${str(r.trackerId)}`
  return out + '}'
}

/** A scrape for the given info hashes; none → a full scrape (no `info_hash` field). */
export function encodeScrapeRequest (infoHashes: readonly BinaryString[]): string {
  if (infoHashes.length === 0) return '{"action":"scrape"}'
  let out = '{"action":"scrape","info_hash":['
  for (let i = 0; i < infoHashes.length; i++) {
    if (i > 0) out += ','
    out += str(infoHashes[i])
  }
  return out + ']}'
}

// ---------------------------------------------------------------------------------------------
// Client side: decode tracker messages
// ---------------------------------------------------------------------------------------------

/**
 * Decode one tracker → client text frame. Never throws.
 *
 * A frame with a `failure reason` is a failure whatever else it holds (`action` and `info_hash`
 * are kept when valid, dropped otherwise: trackers send a bare failure for unparseable requests).
 * Otherwise an announce frame with `offer` is a relayed offer, with `answer` a relayed answer,
 * and else an announce reply.
 */
export function decodeWsResponse (text: string): Result<WsServerMessage> {
  const data = parseObject(text)
  if (data === undefined) return fail(trackerError('INVALID_JSON'))
  const action = own(data, 'action')

  const reason = own(data, 'failure reason')
  if (reason !== undefined && reason !== null) {
    if (typeof reason !== 'string') return fail(trackerError('INVALID_JSON', 'failure reason is not a string'))
    const f: WsFailure = { type: 'failure', reason }
    if (action === 'announce' || action === 'scrape') f.action = action
    const ih = own(data, 'info_hash')
    if (isId(ih)) f.infoHash = ih
    return ok(f)
  }

  if (action === 'announce') return decodeAnnounceResponse(data)
  if (action === 'scrape') return decodeScrapeResponse(data)
  return fail(trackerError('INVALID_ACTION'))
}

function decodeAnnounceResponse (data: JsonObject): Result<WsServerMessage> {
  const infoHash = own(data, 'info_hash')
  if (!isId(infoHash)) return fail(trackerError('INVALID_INFO_HASH'))

  for (const type of ['offer', 'answer'] as const) {
    const signal = own(data, type)
    if (signal === undefined || signal === null) continue
    const code = type === 'offer' ? 'INVALID_OFFER' : 'INVALID_ANSWER'
    const s = readSdp(signal, type)
    if ('bad' in s) return fail(trackerError(code, s.bad))
    const peerId = own(data, 'peer_id')
    if (!isId(peerId)) return fail(trackerError('INVALID_PEER_ID'))
    const offerId = own(data, 'offer_id')
    if (!isOfferId(offerId)) return fail(trackerError(code, 'bad offer_id'))
    return ok({ type, infoHash, peerId, offerId, sdp: s.sdp })
  }

  const reply: WsAnnounceReply = { type: 'announce', infoHash }
  let rawInterval = own(data, 'interval')
  if (rawInterval === undefined || rawInterval === null) rawInterval = own(data, 'min interval')
  const interval = readAmount(rawInterval, -1)
  const complete = readAmount(own(data, 'complete'), -1)
  const incomplete = readAmount(own(data, 'incomplete'), -1)
  if (Number.isNaN(interval)) return fail(trackerError('INVALID_NUMBER', 'interval'))
  if (Number.isNaN(complete)) return fail(trackerError('INVALID_NUMBER', 'complete'))
  if (Number.isNaN(incomplete)) return fail(trackerError('INVALID_NUMBER', 'incomplete'))
  // -1: the field was absent (a present value is never negative)
  if (interval >= 0) reply.interval = interval
  if (complete >= 0) reply.complete = complete
  if (incomplete >= 0) reply.incomplete = incomplete
  const trackerId = own(data, 'tracker id')
  if (typeof trackerId === 'string') reply.trackerId = trackerId
  const warning = own(data, 'warning message')
  if (typeof warning === 'string') reply.warning = warning
  return ok(reply)
}

function decodeScrapeResponse (data: JsonObject): Result<WsServerMessage> {
  const files = own(data, 'files')
  if (files === undefined || files === null) return ok({ type: 'scrape', files: [] })
  if (!isObject(files)) return fail(trackerError('INVALID_JSON', 'files is not an object'))
  const keys = Object.keys(files)
  const entries: ScrapeEntry[] = new Array(keys.length)
  for (let i = 0; i < keys.length; i++) {
    const infoHash = keys[i]
    if (!isId(infoHash)) return fail(trackerError('INVALID_INFO_HASH'))
    const f = files[infoHash]
    if (!isObject(f)) return fail(trackerError('INVALID_JSON', 'scrape entry is not an object'))
    const complete = readAmount(own(f, 'complete'), 0)
    const incomplete = readAmount(own(f, 'incomplete'), 0)
    const downloaded = readAmount(own(f, 'downloaded'), 0)
    if (Number.isNaN(complete) || Number.isNaN(incomplete) || Number.isNaN(downloaded)) {
      return fail(trackerError('INVALID_NUMBER', 'scrape entry'))
    }
    entries[i] = { infoHash, complete, incomplete, downloaded }
  }
  return ok({ type: 'scrape', files: entries })
}
