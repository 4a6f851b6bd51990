import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import {
  MAX_SCRAPE_HASHES,
  WS_MAX_OFFERS,
  WS_MAX_OFFER_ID_LENGTH,
  WS_MAX_SDP_LENGTH
} from '../../../src/constants.js'
import { ERRORS, type ErrorCode, TrackerError } from '../../../src/errors.js'
import type { Result } from '../../../src/protocol/common/result.js'
import {
  EVENT_COMPLETED,
  EVENT_NONE,
  EVENT_PAUSED,
  EVENT_STARTED,
  EVENT_STOPPED,
  type AnnounceEvent,
  type AnnounceRequest,
  type ScrapeEntry
} from '../../../src/protocol/common/types.js'
import {
  type WsDecodeResult,
  type WsRequest,
  type WsServerMessage,
  decodeWsRequest,
  decodeWsResponse,
  encodeAnnounceRequest,
  encodeAnnounceResponse,
  encodeAnswer,
  encodeAnswerRequest,
  encodeFailure,
  encodeOffer,
  encodeScrapeRequest,
  encodeScrapeResponse
} from '../../../src/protocol/ws/index.js'

// ---- fixtures ------------------------------------------------------------------------------

/**
 * A 20-byte info hash exercising every kind of JSON escaping: control bytes (\u escapes, \n),
 * `"` and `\` (backslash escapes), `/` (not escaped), DEL and bytes ≥ 0x80 (raw).
 */
const IH = '\x12\x34\x56\x78\x9a\xbc\xde\xf0\x00\x1f"\\/\x7f\x80\xff\xe9ab\n'
/** IH exactly as JSON.stringify writes it. */
const IH_JSON = '"\\u00124Vx\x9a\xbc\xde\xf0\\u0000\\u001f\\"\\\\/\x7f\x80\xff\xe9ab\\n"'
const IH2 = 'bbbbbbbbbbbbbbbbbbbb'
const PEER = '-WW0001-abcdefghijkl'
const PEER2 = '-WW0001-mnopqrstuvwx'
const OID = 'offer-id-0123456789x'
const SDP = 'v=0\r\no=- 46 2 IN IP4 127.0.0.1\r\na=group:BUNDLE 0\r\n'
const SDP_JSON = '"v=0\\r\\no=- 46 2 IN IP4 127.0.0.1\\r\\na=group:BUNDLE 0\\r\\n"'

/** Ids that together hold every byte value 0–255 (the last one padded with 0xff). */
const ALL_BYTE_IDS: string[] = []
for (let start = 0; start < 256; start += 20) {
  let id = ''
  for (let b = start; b < start + 20; b++) id += String.fromCharCode(Math.min(b, 255))
  ALL_BYTE_IDS.push(id)
}
/** Only bytes ≥ 0x80. */
const HIGH_ID = Array.from({ length: 20 }, (_, i) => String.fromCharCode(0x80 + i * 6)).join('')

function announceRequest (over: Partial<AnnounceRequest> = {}): AnnounceRequest {
  return {
    infoHash: IH,
    peerId: PEER,
    port: 0,
    uploaded: 0,
    downloaded: 0,
    left: Infinity,
    event: EVENT_NONE,
    numwant: -1,
    compact: false,
    noPeerId: false,
    ...over
  }
}

function value<T> (r: Result<T> | WsDecodeResult): T {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`)
  return r.value as T
}

function assertFails (r: Result<unknown> | WsDecodeResult, code: ErrorCode): TrackerError {
  assert.equal(r.ok, false, `expected ${code}, got ok: ${JSON.stringify(r.ok && r.value)}`)
  if (r.ok) throw new Error('unreachable')
  assert.ok(r.error instanceof TrackerError)
  assert.equal(r.error.code, code)
  assert.ok(r.error.message.startsWith(ERRORS[code]), r.error.message)
  return r.error
}

/** A request-side failure, with exactly the context it should carry. */
function assertRequestFails (text: string, code: ErrorCode, action?: 'announce' | 'scrape', infoHash?: string): void {
  const r = decodeWsRequest(text)
  assertFails(r, code)
  if (r.ok) return
  // own reads: one test pollutes Object.prototype on purpose
  assert.equal(Object.hasOwn(r, 'action') ? r.action : undefined, action, 'failure action')
  assert.equal(Object.hasOwn(r, 'infoHash') ? r.infoHash : undefined, infoHash, 'failure infoHash')
  assert.equal(Object.hasOwn(r, 'action'), action !== undefined)
  assert.equal(Object.hasOwn(r, 'infoHash'), infoHash !== undefined)
}

const j = JSON.stringify

/** A valid announce as an object, with fields overridden or (value undefined) removed. */
function announceObj (over: Record<string, unknown> = {}): Record<string, unknown> {
  const o: Record<string, unknown> = {
    action: 'announce',
    info_hash: IH,
    peer_id: PEER,
    uploaded: 0,
    downloaded: 0,
    left: 100,
    numwant: 5
  }
  for (const k of Object.keys(over)) {
    if (over[k] === undefined) delete o[k]
    else o[k] = over[k]
  }
  return o
}

const offer = (sdp: unknown = SDP, offerId: unknown = OID): unknown => ({ offer: { type: 'offer', sdp }, offer_id: offerId })
const answerObj = (over: Record<string, unknown> = {}): Record<string, unknown> =>
  announceObj({ uploaded: undefined, downloaded: undefined, left: undefined, numwant: undefined, to_peer_id: PEER2, answer: { type: 'answer', sdp: SDP }, offer_id: OID, ...over })

// ---- arbitraries ---------------------------------------------------------------------------

const byteChar = fc.integer({ min: 0, max: 255 }).map(b => String.fromCharCode(b))
const arbId = fc.string({ unit: byteChar, minLength: 20, maxLength: 20 })
const arbAmount = fc.oneof(fc.nat(), fc.double({ min: 0, noNaN: true, noDefaultInfinity: true })).map(n => n + 0)
const arbSdp = fc.string({ unit: 'binary', maxLength: 300 })
const arbOfferId = fc.oneof(fc.string({ unit: byteChar, minLength: 20, maxLength: 20 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: WS_MAX_OFFER_ID_LENGTH }))
const arbEvent = fc.constantFrom<AnnounceEvent>(EVENT_NONE, EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED, EVENT_PAUSED)

// =============================================================================================

describe('ws codec: golden frames, tracker → client', () => {
  it('IH_JSON is what JSON.stringify makes of IH', () => {
    assert.equal(IH.length, 20)
    assert.equal(j(IH), IH_JSON)
    assert.equal(JSON.parse(IH_JSON), IH)
  })

  it('announce response', () => {
    assert.equal(encodeAnnounceResponse({ infoHash: IH, interval: 120, complete: 3, incomplete: 4 }),
      `{"action":"announce","interval":120,"info_hash":${IH_JSON},"complete":3,"incomplete":4}`)
  })

  it('relayed offer: peer_id is the sender', () => {
    assert.equal(encodeOffer({ infoHash: IH, fromPeerId: PEER, offerId: OID, sdp: SDP }),
      `{"action":"announce","offer":{"type":"offer","sdp":${SDP_JSON}},"offer_id":"${OID}",` +
      `"peer_id":"${PEER}","info_hash":${IH_JSON}}`)
  })

  it('forwarded answer: peer_id is the answerer', () => {
    assert.equal(encodeAnswer({ infoHash: IH, fromPeerId: PEER2, offerId: OID, sdp: SDP }),
      `{"action":"announce","answer":{"type":"answer","sdp":${SDP_JSON}},"offer_id":"${OID}",` +
      `"peer_id":"${PEER2}","info_hash":${IH_JSON}}`)
  })

  it('scrape response: files keyed by binary info hash, in entry order', () => {
    assert.equal(encodeScrapeResponse([
      { infoHash: IH2, complete: 1, incomplete: 2, downloaded: 3 },
      { infoHash: IH, complete: 0, incomplete: 0, downloaded: 0 }
    ]), `{"action":"scrape","files":{"${IH2}":{"complete":1,"incomplete":2,"downloaded":3},` +
      `${IH_JSON}:{"complete":0,"incomplete":0,"downloaded":0}}}`)
    assert.equal(encodeScrapeResponse([]), '{"action":"scrape","files":{}}')
  })

  it('failure: absent fields left out', () => {
    assert.equal(encodeFailure('invalid JSON'), '{"failure reason":"invalid JSON"}')
    assert.equal(encodeFailure('bad "x"', 'scrape'), '{"action":"scrape","failure reason":"bad \\"x\\""}')
    assert.equal(encodeFailure('disallowed torrent', 'announce', IH),
      `{"action":"announce","failure reason":"disallowed torrent","info_hash":${IH_JSON}}`)
    assert.equal(encodeFailure('r', undefined, IH2), `{"failure reason":"r","info_hash":"${IH2}"}`)
  })

  it('non-finite numbers still make valid JSON (null)', () => {
    assert.equal(encodeAnnounceResponse({ infoHash: IH2, interval: NaN, complete: Infinity, incomplete: 0 }),
      `{"action":"announce","interval":null,"info_hash":"${IH2}","complete":null,"incomplete":0}`)
  })
})

describe('ws codec: golden frames, client → tracker', () => {
  it('announce with event, offers and tracker id', () => {
    assert.equal(encodeAnnounceRequest({
      infoHash: IH,
      peerId: PEER,
      uploaded: 10,
      downloaded: 20,
      left: 30,
      event: EVENT_STARTED,
      numwant: 2,
      offers: [{ offerId: OID, sdp: SDP }, { offerId: 'o2', sdp: '' }],
      trackerId: 'tid'
    }), `{"action":"announce","info_hash":${IH_JSON},"peer_id":"${PEER}","uploaded":10,"downloaded":20,` +
      `"left":30,"event":"started","numwant":2,"offers":[{"offer":{"type":"offer","sdp":${SDP_JSON}},` +
      `"offer_id":"${OID}"},{"offer":{"type":"offer","sdp":""},"offer_id":"o2"}],"trackerid":"tid"}`)
  })

  it('announce: left Infinity and no event are left out; empty offers kept', () => {
    assert.equal(encodeAnnounceRequest({
      infoHash: IH2, peerId: PEER, uploaded: 0, downloaded: 0, left: Infinity, event: EVENT_NONE, numwant: 0, offers: []
    }), `{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","uploaded":0,"downloaded":0,` +
      '"numwant":0,"offers":[]}')
    assert.equal(encodeAnnounceRequest({
      infoHash: IH2, peerId: PEER, uploaded: 1, downloaded: 2, left: 0, event: EVENT_STOPPED, numwant: 50
    }), `{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","uploaded":1,"downloaded":2,` +
      '"left":0,"event":"stopped","numwant":50}')
  })

  it('announce: custom params are fields of their own after the protocol\'s; protocol names are not overwritten', () => {
    const text = encodeAnnounceRequest({
      infoHash: IH2,
      peerId: PEER,
      uploaded: 0,
      downloaded: 0,
      left: 5,
      numwant: 0,
      trackerId: 't',
      extra: { passkey: 'k"\\é', n: 7.5, yes: true, no: false, 'a b': '', numwant: 99, info_hash: 'x', offers: 'x', answer: 'x', to_peer_id: 'x', offer_id: 'x', action: 'x', trackerid: 'x' }
    })
    assert.equal(text, `{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","uploaded":0,"downloaded":0,` +
      '"left":5,"numwant":0,"trackerid":"t","passkey":"k\\"\\\\é","n":7.5,"yes":true,"no":false,"a b":""}')
    // What the tracker side reads back as custom fields: exactly these.
    const m = value<WsRequest>(decodeWsRequest(text, true))
    assert.equal(m.action, 'announce')
    if (m.action !== 'announce') return
    assert.deepEqual({ ...m.extra }, { passkey: 'k"\\é', n: 7.5, yes: true, no: false, 'a b': '' })
  })

  it('announce: non-finite numbers and non-scalar custom values are left out', () => {
    assert.equal(encodeAnnounceRequest({
      infoHash: IH2, peerId: PEER, uploaded: 0, downloaded: 0, left: Infinity, numwant: 0,
      extra: { a: NaN, b: Infinity, c: 1 } as Record<string, number>
    }), `{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","uploaded":0,"downloaded":0,"numwant":0,"c":1}`)
    const odd = { a: { x: 1 }, b: [1], c: null, d: undefined, e: 'ok' } as unknown as Record<string, string>
    assert.equal(encodeAnnounceRequest({ infoHash: IH2, peerId: PEER, uploaded: 0, downloaded: 0, left: Infinity, numwant: 0, extra: odd }),
      `{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","uploaded":0,"downloaded":0,"numwant":0,"e":"ok"}`)
  })

  it('answer', () => {
    assert.equal(encodeAnswerRequest({ infoHash: IH, peerId: PEER, toPeerId: PEER2, offerId: OID, sdp: SDP }),
      `{"action":"announce","info_hash":${IH_JSON},"peer_id":"${PEER}","to_peer_id":"${PEER2}",` +
      `"answer":{"type":"answer","sdp":${SDP_JSON}},"offer_id":"${OID}"}`)
    assert.equal(encodeAnswerRequest({ infoHash: IH2, peerId: PEER, toPeerId: PEER2, offerId: 'o', sdp: 's', trackerId: 't' }),
      `{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","to_peer_id":"${PEER2}",` +
      '"answer":{"type":"answer","sdp":"s"},"offer_id":"o","trackerid":"t"}')
  })

  it('scrape: none (full scrape), one, several', () => {
    assert.equal(encodeScrapeRequest([]), '{"action":"scrape"}')
    assert.equal(encodeScrapeRequest([IH]), `{"action":"scrape","info_hash":[${IH_JSON}]}`)
    assert.equal(encodeScrapeRequest([IH2, IH]), `{"action":"scrape","info_hash":["${IH2}",${IH_JSON}]}`)
  })
})

describe('ws codec: decoding client frames (golden)', () => {
  it('an announce as the reference client sends it (left null, offers)', () => {
    const text = `{"numwant":2,"uploaded":0,"downloaded":0,"left":null,"event":"started","action":"announce",` +
      `"info_hash":${IH_JSON},"peer_id":"${PEER}","offers":[{"offer":{"type":"offer","sdp":${SDP_JSON}},` +
      `"offer_id":"${OID}"},{"offer":{"type":"offer","sdp":"x","extra":1},"offer_id":"o2"}]}`
    assert.deepEqual(decodeWsRequest(text), {
      ok: true,
      value: {
        action: 'announce',
        request: announceRequest({ event: EVENT_STARTED, numwant: 2 }),
        offers: [{ offerId: OID, sdp: SDP }, { offerId: 'o2', sdp: 'x' }]
      }
    })
  })

  it('an answer as the reference client sends it', () => {
    const text = `{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","to_peer_id":"${PEER2}",` +
      `"answer":{"type":"answer","sdp":${SDP_JSON}},"offer_id":"${OID}","trackerid":"abc"}`
    assert.deepEqual(decodeWsRequest(text), {
      ok: true,
      value: {
        action: 'announce',
        request: announceRequest({ infoHash: IH2, trackerId: 'abc' }),
        answer: { toPeerId: PEER2, offerId: OID, sdp: SDP }
      }
    })
  })

  it('numbers: JSON numbers and numeric strings; absent and null take defaults; -0 → 0', () => {
    assert.deepEqual(value<WsRequest>(decodeWsRequest(j(announceObj({ uploaded: '123', downloaded: 4.5, left: '0.5', numwant: '7' })))),
      { action: 'announce', request: announceRequest({ uploaded: 123, downloaded: 4.5, left: 0.5, numwant: 7 }) })
    assert.deepEqual(value<WsRequest>(decodeWsRequest(j(announceObj({ uploaded: undefined, downloaded: null, left: undefined, numwant: undefined })))),
      { action: 'announce', request: announceRequest() })
    assert.deepEqual(value<WsRequest>(decodeWsRequest(j(announceObj({ numwant: null, left: 0 })))),
      { action: 'announce', request: announceRequest({ left: 0 }) })
    const r = value<WsRequest>(decodeWsRequest(`{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","uploaded":-0,"numwant":0}`))
    assert.ok(r.action === 'announce')
    assert.ok(Object.is(r.request.uploaded, 0))
    assert.equal(r.request.numwant, 0)
    const big = value<WsRequest>(decodeWsRequest(j(announceObj({ uploaded: 1e300, numwant: 1e21 }))))
    assert.ok(big.action === 'announce' && big.request.uploaded === 1e300 && big.request.numwant === 1e21)
  })

  it('events by name; null/absent/""/update → none', () => {
    const cases: Array<[unknown, AnnounceEvent]> = [
      ['started', EVENT_STARTED], ['completed', EVENT_COMPLETED], ['stopped', EVENT_STOPPED],
      ['paused', EVENT_PAUSED], ['update', EVENT_NONE], ['', EVENT_NONE], [null, EVENT_NONE], [undefined, EVENT_NONE]
    ]
    for (const [name, event] of cases) {
      const r = value<WsRequest>(decodeWsRequest(j(announceObj({ event: name }))))
      assert.ok(r.action === 'announce')
      assert.equal(r.request.event, event, String(name))
    }
  })

  it('offers/answer null → absent; empty offers → []; offers and answer together are both kept', () => {
    assert.deepEqual(value<WsRequest>(decodeWsRequest(j(announceObj({ offers: null, answer: null })))),
      { action: 'announce', request: announceRequest({ left: 100, numwant: 5 }) })
    assert.deepEqual(value<WsRequest>(decodeWsRequest(j(announceObj({ offers: [] })))),
      { action: 'announce', request: announceRequest({ left: 100, numwant: 5 }), offers: [] })
    assert.deepEqual(value<WsRequest>(decodeWsRequest(j(answerObj({ offers: [offer()] })))), {
      action: 'announce',
      request: announceRequest(),
      offers: [{ offerId: OID, sdp: SDP }],
      answer: { toPeerId: PEER2, offerId: OID, sdp: SDP }
    })
  })

  it('unknown fields ignored; trackerid kept only when a string', () => {
    assert.deepEqual(value<WsRequest>(decodeWsRequest(j(announceObj({ port: 'x', compact: 1, ip: 5, key: [], trackerid: 7, zz: { a: 1 } })))),
      { action: 'announce', request: announceRequest({ left: 100, numwant: 5 }) })
  })

  it('keepExtra: an announce\'s custom fields come back as `extra`, JSON values as sent', () => {
    const text = `{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}","offers":[],"trackerid":"t",` +
      '"passkey":"k","n":-1.5,"b":true,"z":null,"o":{"a":[1]},"__proto__":{"x":1}}'
    const m = value<WsRequest>(decodeWsRequest(text, true))
    if (m.action !== 'announce') return assert.fail('not an announce')
    assert.deepEqual(m.request, announceRequest({ infoHash: IH2, trackerId: 't' }))
    assert.deepEqual(m.offers, [])
    const extra = m.extra!
    // A null-prototype object: "__proto__" is an ordinary entry, nothing inherited.
    assert.equal(Object.getPrototypeOf(extra), null)
    assert.deepEqual(Object.keys(extra), ['passkey', 'n', 'b', 'z', 'o', '__proto__'])
    assert.deepEqual([extra.passkey, extra.n, extra.b, extra.z, extra.o, extra.__proto__], ['k', -1.5, true, null, { a: [1] }, { x: 1 }])
    // No custom field: no `extra`; scrapes never have one; off by default.
    assert.deepEqual(value<WsRequest>(decodeWsRequest(j(announceObj()), true)), { action: 'announce', request: announceRequest({ left: 100, numwant: 5 }) })
    assert.equal('extra' in value<WsRequest>(decodeWsRequest(text)), false)
    assert.deepEqual(value<WsRequest>(decodeWsRequest(`{"action":"scrape","info_hash":"${IH2}","passkey":"k"}`, true)), { action: 'scrape', infoHashes: [IH2] })
    // A custom field does not make a malformed announce acceptable.
    assert.equal(decodeWsRequest(j(announceObj({ numwant: 'x', passkey: 'k' })), true).ok, false)
  })

  it('scrape: single id, array, absent, null, empty array', () => {
    assert.deepEqual(decodeWsRequest(`{"action":"scrape","info_hash":${IH_JSON}}`), { ok: true, value: { action: 'scrape', infoHashes: [IH] } })
    assert.deepEqual(decodeWsRequest(`{"action":"scrape","info_hash":["${IH2}",${IH_JSON}]}`), { ok: true, value: { action: 'scrape', infoHashes: [IH2, IH] } })
    for (const text of ['{"action":"scrape"}', '{"action":"scrape","info_hash":null}', '{"action":"scrape","info_hash":[]}']) {
      assert.deepEqual(decodeWsRequest(text), { ok: true, value: { action: 'scrape', infoHashes: [] } }, text)
    }
  })

  it('reads own properties only: a polluted Object.prototype changes nothing', () => {
    const proto = Object.prototype as Record<string, unknown>
    const keys = ['action', 'info_hash', 'peer_id', 'offers', 'answer', 'to_peer_id', 'offer_id', 'type', 'sdp', 'left', 'failure reason']
    try {
      proto.action = 'announce'
      proto.info_hash = IH
      proto.peer_id = PEER
      proto.offers = [offer()]
      proto.answer = { type: 'answer', sdp: 'x' }
      proto.to_peer_id = PEER2
      proto.offer_id = OID
      proto.type = 'offer'
      proto.sdp = 'x'
      proto.left = 5
      proto['failure reason'] = 'polluted'
      assertRequestFails('{}', 'INVALID_ACTION')
      assertRequestFails('{"action":"announce"}', 'INVALID_INFO_HASH', 'announce')
      assert.deepEqual(value<WsRequest>(decodeWsRequest(`{"action":"announce","info_hash":"${IH2}","peer_id":"${PEER}"}`)),
        { action: 'announce', request: announceRequest({ infoHash: IH2 }) })
      assertRequestFails(j(announceObj({ offers: [{}] })), 'INVALID_OFFER', 'announce', IH)
      assertFails(decodeWsResponse('{}'), 'INVALID_ACTION')
    } finally {
      for (const k of keys) Reflect.deleteProperty(proto, k)
    }
  })

  it('an own "__proto__" key is an ordinary (ignored or rejected) field', () => {
    // JSON.parse makes "__proto__" an own data property; it must not act as a prototype.
    assertRequestFails(`{"__proto__":{"action":"announce"}}`, 'INVALID_ACTION')
    assertRequestFails(j(announceObj({ offers: [JSON.parse(`{"__proto__":{"offer":{"type":"offer","sdp":"x"},"offer_id":"o"}}`)] })),
      'INVALID_OFFER', 'announce', IH)
    assertRequestFails(j(announceObj({ offers: [{ offer: JSON.parse('{"__proto__":{"type":"offer","sdp":"x"}}'), offer_id: 'o' }] })),
      'INVALID_OFFER', 'announce', IH)
    assert.deepEqual(value<WsRequest>(decodeWsRequest(`{"__proto__":{"x":1},"action":"scrape","info_hash":"${IH2}"}`)),
      { action: 'scrape', infoHashes: [IH2] })
  })
})

describe('ws codec: decoding tracker frames (golden)', () => {
  it('announce reply as the reference tracker sends it', () => {
    assert.deepEqual(decodeWsResponse(`{"complete":1,"incomplete":2,"action":"announce","info_hash":${IH_JSON},"interval":120}`),
      { ok: true, value: { type: 'announce', infoHash: IH, interval: 120, complete: 1, incomplete: 2 } })
  })

  it('announce reply: tracker id, warning, min interval fallback, absent numbers left out', () => {
    assert.deepEqual(decodeWsResponse(`{"action":"announce","info_hash":"${IH2}","min interval":60,"tracker id":"t1","warning message":"w"}`),
      { ok: true, value: { type: 'announce', infoHash: IH2, interval: 60, trackerId: 't1', warning: 'w' } })
    assert.deepEqual(decodeWsResponse(`{"action":"announce","info_hash":"${IH2}","interval":"30","complete":null,"tracker id":5,"warning message":{}}`),
      { ok: true, value: { type: 'announce', infoHash: IH2, interval: 30 } })
  })

  it('relayed offer and answer', () => {
    assert.deepEqual(decodeWsResponse(`{"action":"announce","offer":{"type":"offer","sdp":${SDP_JSON}},"offer_id":"${OID}","peer_id":"${PEER}","info_hash":${IH_JSON}}`),
      { ok: true, value: { type: 'offer', infoHash: IH, peerId: PEER, offerId: OID, sdp: SDP } })
    assert.deepEqual(decodeWsResponse(`{"action":"announce","answer":{"type":"answer","sdp":"a"},"offer_id":"o","peer_id":"${PEER2}","info_hash":"${IH2}"}`),
      { ok: true, value: { type: 'answer', infoHash: IH2, peerId: PEER2, offerId: 'o', sdp: 'a' } })
  })

  it('scrape reply (flags ignored, missing counts → 0, empty/absent files → [])', () => {
    assert.deepEqual(decodeWsResponse(`{"action":"scrape","files":{"${IH2}":{"complete":1,"incomplete":2,"downloaded":3},${IH_JSON}:{"complete":4}},"flags":{"min_request_interval":600}}`),
      { ok: true, value: { type: 'scrape', files: [{ infoHash: IH2, complete: 1, incomplete: 2, downloaded: 3 }, { infoHash: IH, complete: 4, incomplete: 0, downloaded: 0 }] } })
    assert.deepEqual(decodeWsResponse('{"action":"scrape","files":{}}'), { ok: true, value: { type: 'scrape', files: [] } })
    assert.deepEqual(decodeWsResponse('{"action":"scrape"}'), { ok: true, value: { type: 'scrape', files: [] } })
  })

  it('failures: bare, with action and info hash, with junk action/info_hash dropped', () => {
    assert.deepEqual(decodeWsResponse('{"failure reason":"invalid JSON"}'), { ok: true, value: { type: 'failure', reason: 'invalid JSON' } })
    assert.deepEqual(decodeWsResponse(`{"action":"announce","failure reason":"nope","info_hash":${IH_JSON}}`),
      { ok: true, value: { type: 'failure', reason: 'nope', action: 'announce', infoHash: IH } })
    assert.deepEqual(decodeWsResponse('{"action":"connect","failure reason":"x","info_hash":"short"}'),
      { ok: true, value: { type: 'failure', reason: 'x' } })
    assert.deepEqual(decodeWsResponse('{"action":"scrape","failure reason":"x","info_hash":null,"files":5}'),
      { ok: true, value: { type: 'failure', reason: 'x', action: 'scrape' } })
  })
})

describe('ws codec: round trips', () => {
  it('every byte value survives every encoder → decoder pair', () => {
    for (const id of [...ALL_BYTE_IDS, HIGH_ID]) {
      assert.equal(id.length, 20)
      assert.equal(JSON.parse(j(id)), id)
      assert.deepEqual(value(decodeWsRequest(encodeAnnounceRequest({ infoHash: id, peerId: id, uploaded: 1, downloaded: 2, left: 3, numwant: 4, offers: [{ offerId: id, sdp: id }] }))),
        { action: 'announce', request: announceRequest({ infoHash: id, peerId: id, uploaded: 1, downloaded: 2, left: 3, numwant: 4 }), offers: [{ offerId: id, sdp: id }] })
      assert.deepEqual(value(decodeWsRequest(encodeAnswerRequest({ infoHash: id, peerId: id, toPeerId: id, offerId: id, sdp: id }))),
        { action: 'announce', request: announceRequest({ infoHash: id, peerId: id }), answer: { toPeerId: id, offerId: id, sdp: id } })
      assert.deepEqual(value(decodeWsRequest(encodeScrapeRequest([id]))), { action: 'scrape', infoHashes: [id] })
      assert.deepEqual(value(decodeWsResponse(encodeAnnounceResponse({ infoHash: id, interval: 1, complete: 2, incomplete: 3 }))),
        { type: 'announce', infoHash: id, interval: 1, complete: 2, incomplete: 3 })
      assert.deepEqual(value(decodeWsResponse(encodeOffer({ infoHash: id, fromPeerId: id, offerId: id, sdp: id }))),
        { type: 'offer', infoHash: id, peerId: id, offerId: id, sdp: id })
      assert.deepEqual(value(decodeWsResponse(encodeAnswer({ infoHash: id, fromPeerId: id, offerId: id, sdp: id }))),
        { type: 'answer', infoHash: id, peerId: id, offerId: id, sdp: id })
      assert.deepEqual(value(decodeWsResponse(encodeScrapeResponse([{ infoHash: id, complete: 1, incomplete: 2, downloaded: 3 }]))),
        { type: 'scrape', files: [{ infoHash: id, complete: 1, incomplete: 2, downloaded: 3 }] })
      assert.deepEqual(value(decodeWsResponse(encodeFailure(id, 'announce', id))),
        { type: 'failure', reason: id, action: 'announce', infoHash: id })
    }
    // all 256 at once in one scrape request/response
    assert.deepEqual(value(decodeWsRequest(encodeScrapeRequest(ALL_BYTE_IDS))), { action: 'scrape', infoHashes: ALL_BYTE_IDS })
  })

  it('announce request: client encoder → server decoder (property)', () => {
    fc.assert(fc.property(
      arbId, arbId, arbAmount, arbAmount, fc.oneof(arbAmount, fc.constant(Infinity)), arbEvent, fc.nat(),
      fc.option(fc.array(fc.record({ offerId: arbOfferId, sdp: arbSdp }).map(o => ({ ...o })), { maxLength: WS_MAX_OFFERS }), { nil: undefined }),
      fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
      (infoHash, peerId, uploaded, downloaded, left, event, numwant, offers, trackerId) => {
        const text = encodeAnnounceRequest({ infoHash, peerId, uploaded, downloaded, left, event, numwant, offers, trackerId })
        const expected: WsRequest = {
          action: 'announce',
          request: announceRequest({ infoHash, peerId, uploaded, downloaded, left, event, numwant })
        }
        if (trackerId !== undefined) expected.request.trackerId = trackerId
        if (offers !== undefined) expected.offers = offers
        assert.deepEqual(decodeWsRequest(text), { ok: true, value: expected })
      }))
  })

  it('answer request: client encoder → server decoder (property)', () => {
    fc.assert(fc.property(arbId, arbId, arbId, arbOfferId, arbSdp, (infoHash, peerId, toPeerId, offerId, sdp) => {
      assert.deepEqual(decodeWsRequest(encodeAnswerRequest({ infoHash, peerId, toPeerId, offerId, sdp })), {
        ok: true,
        value: { action: 'announce', request: announceRequest({ infoHash, peerId }), answer: { toPeerId, offerId, sdp } }
      })
    }))
  })

  it('scrape request: client encoder → server decoder (property)', () => {
    fc.assert(fc.property(fc.array(arbId, { maxLength: MAX_SCRAPE_HASHES }), infoHashes => {
      assert.deepEqual(decodeWsRequest(encodeScrapeRequest(infoHashes)), { ok: true, value: { action: 'scrape', infoHashes } })
    }))
  })

  it('tracker encoders → client decoder (property)', () => {
    fc.assert(fc.property(arbId, arbId, arbOfferId, arbSdp, fc.nat(), fc.nat(), fc.nat(),
      (infoHash, peerId, offerId, sdp, a, b, c) => {
        assert.deepEqual(decodeWsResponse(encodeAnnounceResponse({ infoHash, interval: a, complete: b, incomplete: c })),
          { ok: true, value: { type: 'announce', infoHash, interval: a, complete: b, incomplete: c } })
        assert.deepEqual(decodeWsResponse(encodeOffer({ infoHash, fromPeerId: peerId, offerId, sdp })),
          { ok: true, value: { type: 'offer', infoHash, peerId, offerId, sdp } })
        assert.deepEqual(decodeWsResponse(encodeAnswer({ infoHash, fromPeerId: peerId, offerId, sdp })),
          { ok: true, value: { type: 'answer', infoHash, peerId, offerId, sdp } })
      }))
  })

  it('scrape response and failure: tracker encoder → client decoder (property)', () => {
    // fc.record makes null-prototype objects; the decoder makes plain ones
    const arbEntry = fc.record({ infoHash: arbId, complete: fc.nat(), incomplete: fc.nat(), downloaded: fc.nat() }).map(e => ({ ...e }))
    fc.assert(fc.property(fc.uniqueArray(arbEntry, { selector: e => e.infoHash, maxLength: 30 }), (files: ScrapeEntry[]) => {
      assert.deepEqual(decodeWsResponse(encodeScrapeResponse(files)), { ok: true, value: { type: 'scrape', files } })
    }))
    fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.option(fc.constantFrom('announce' as const, 'scrape' as const), { nil: undefined }),
      fc.option(arbId, { nil: undefined }), (reason, action, infoHash) => {
        const expected: WsServerMessage = { type: 'failure', reason }
        if (action !== undefined) expected.action = action
        if (infoHash !== undefined) expected.infoHash = infoHash
        assert.deepEqual(decodeWsResponse(encodeFailure(reason, action, infoHash)), { ok: true, value: expected })
      }))
  })

  it('encoders emit exactly the documented keys in order for any input (property)', () => {
    fc.assert(fc.property(arbId, arbId, arbOfferId, arbSdp, (infoHash, peerId, offerId, sdp) => {
      assert.deepEqual(Object.keys(JSON.parse(encodeOffer({ infoHash, fromPeerId: peerId, offerId, sdp }))),
        ['action', 'offer', 'offer_id', 'peer_id', 'info_hash'])
      assert.deepEqual(JSON.parse(encodeAnswer({ infoHash, fromPeerId: peerId, offerId, sdp })),
        { action: 'announce', answer: { type: 'answer', sdp }, offer_id: offerId, peer_id: peerId, info_hash: infoHash })
      assert.equal(encodeOffer({ infoHash, fromPeerId: peerId, offerId, sdp }),
        j({ action: 'announce', offer: { type: 'offer', sdp }, offer_id: offerId, peer_id: peerId, info_hash: infoHash }))
    }))
  })
})

describe('ws codec: every error code, with failure context', () => {
  it('INVALID_JSON: not JSON, or not an object', () => {
    for (const text of ['', ' ', 'not json', '{', '{"action":"announce"', '[]', '[{"action":"scrape"}]', 'null', '42', '"announce"', 'true', '\ufeff{}']) {
      assertRequestFails(text, 'INVALID_JSON')
      assertFails(decodeWsResponse(text), 'INVALID_JSON')
    }
    // hostile non-string input from untyped callers
    assertRequestFails(undefined as unknown as string, 'INVALID_JSON')
    assertFails(decodeWsResponse({} as unknown as string), 'INVALID_JSON')
  })

  it('INVALID_ACTION', () => {
    for (const text of ['{}', '{"action":"connect"}', '{"action":1}', '{"action":["announce"]}', '{"action":"ANNOUNCE"}', '{"action":null}']) {
      assertRequestFails(text, 'INVALID_ACTION')
      assertFails(decodeWsResponse(text), 'INVALID_ACTION')
    }
  })

  it('INVALID_INFO_HASH (announce and scrape)', () => {
    const bad: unknown[] = [undefined, null, '', 'a'.repeat(19), 'a'.repeat(21), '\u0100'.repeat(20), 'a'.repeat(19) + '\u20ac', 20, ['a'.repeat(20)], { x: 1 }]
    for (const ih of bad) assertRequestFails(j(announceObj({ info_hash: ih })), 'INVALID_INFO_HASH', 'announce')
    for (const ih of bad.slice(2)) {
      if (Array.isArray(ih)) continue
      assertRequestFails(j({ action: 'scrape', info_hash: ih }), 'INVALID_INFO_HASH', 'scrape')
      assertRequestFails(j({ action: 'scrape', info_hash: [IH, ih] }), 'INVALID_INFO_HASH', 'scrape')
    }
    assertRequestFails(j({ action: 'scrape', info_hash: [null] }), 'INVALID_INFO_HASH', 'scrape')
  })

  it('INVALID_PEER_ID carries action and info hash', () => {
    for (const pid of [undefined, null, 'short', 'x'.repeat(21), '\u0100'.repeat(20), 1, {}, []]) {
      assertRequestFails(j(announceObj({ peer_id: pid })), 'INVALID_PEER_ID', 'announce', IH)
    }
  })

  it('INVALID_NUMBER for each numeric field', () => {
    const bad: unknown[] = [-1, '-1', 'abc', '', ' 1', '1e3', '0x10', '1.', 'Infinity', 'NaN', true, {}, [], [1], '1'.repeat(31)]
    for (const field of ['uploaded', 'downloaded', 'left', 'numwant']) {
      for (const v of bad) {
        const e = assertFails(decodeWsRequest(j(announceObj({ [field]: v }))), 'INVALID_NUMBER')
        assert.equal(e.message, `${ERRORS.INVALID_NUMBER}: ${field}`)
      }
      // 1e400 parses to Infinity
      assertRequestFails(j(announceObj()).replace(/}$/, `,"${field}":1e400}`), 'INVALID_NUMBER', 'announce', IH)
    }
    for (const v of [2.5, '2.5', 1e-7]) assertRequestFails(j(announceObj({ numwant: v })), 'INVALID_NUMBER', 'announce', IH)
  })

  it('INVALID_EVENT', () => {
    for (const ev of ['start', 'Started', 'none', ' started', 2, true, {}, ['started']]) {
      assertRequestFails(j(announceObj({ event: ev })), 'INVALID_EVENT', 'announce', IH)
    }
  })

  it('INVALID_OFFER', () => {
    const badOffers: unknown[] = [
      {}, 'x', 1, true, // offers not an array
      [null], [1], ['x'], [[]], // element not an object
      [{ offer_id: OID }], // no offer
      [{ offer: null, offer_id: OID }], [{ offer: 'sdp', offer_id: OID }], [{ offer: [], offer_id: OID }],
      [{ offer: { sdp: SDP }, offer_id: OID }], [{ offer: { type: 'answer', sdp: SDP }, offer_id: OID }],
      [{ offer: { type: 'offer' }, offer_id: OID }], [offer(null)], [offer(1)], [offer({})],
      [{ offer: { type: 'offer', sdp: SDP } }], [offer(SDP, null)], [offer(SDP, 1)], [offer(SDP, '')], [offer(SDP, [OID])],
      [offer(), offer(5)] // a later offer bad
    ]
    for (const offers of badOffers) assertRequestFails(j(announceObj({ offers })), 'INVALID_OFFER', 'announce', IH)
  })

  it('INVALID_ANSWER', () => {
    const bad: Array<Record<string, unknown>> = [
      { answer: 'x' }, { answer: 1 }, { answer: [] }, { answer: {} }, { answer: { type: 'offer', sdp: SDP } },
      { answer: { type: 'answer' } }, { answer: { type: 'answer', sdp: 7 } },
      { offer_id: undefined }, { offer_id: 3 }, { offer_id: '' }, { offer_id: null }
    ]
    for (const over of bad) assertRequestFails(j(answerObj(over)), 'INVALID_ANSWER', 'announce', IH)
  })

  it('INVALID_TO_PEER_ID when an answer has no valid to_peer_id', () => {
    for (const to of [undefined, null, 'x', 'y'.repeat(21), '\u0101'.repeat(20), 5, [PEER2]]) {
      assertRequestFails(j(answerObj({ to_peer_id: to })), 'INVALID_TO_PEER_ID', 'announce', IH)
    }
    // without an answer, to_peer_id is not looked at
    assert.equal(decodeWsRequest(j(announceObj({ to_peer_id: 5 }))).ok, true)
  })

  it('error checks run in wire order: info hash before peer id before numbers', () => {
    assertRequestFails(j(announceObj({ info_hash: 1, peer_id: 1, left: -1 })), 'INVALID_INFO_HASH', 'announce')
    assertRequestFails(j(announceObj({ peer_id: 1, left: -1 })), 'INVALID_PEER_ID', 'announce', IH)
  })

  it('client side: INVALID_INFO_HASH, INVALID_PEER_ID, INVALID_OFFER, INVALID_ANSWER, INVALID_NUMBER, INVALID_JSON', () => {
    const sig = (o: Record<string, unknown>): string => j({ action: 'announce', offer: { type: 'offer', sdp: 's' }, offer_id: 'o', peer_id: PEER, info_hash: IH, ...o })
    assertFails(decodeWsResponse('{"action":"announce","interval":5}'), 'INVALID_INFO_HASH')
    assertFails(decodeWsResponse(sig({ info_hash: 'x' })), 'INVALID_INFO_HASH')
    assertFails(decodeWsResponse(sig({ peer_id: undefined })), 'INVALID_PEER_ID')
    assertFails(decodeWsResponse(sig({ peer_id: 'x' })), 'INVALID_PEER_ID')
    assertFails(decodeWsResponse(sig({ offer: { type: 'answer', sdp: 's' } })), 'INVALID_OFFER')
    assertFails(decodeWsResponse(sig({ offer: 'x' })), 'INVALID_OFFER')
    assertFails(decodeWsResponse(sig({ offer_id: '' })), 'INVALID_OFFER')
    assertFails(decodeWsResponse(sig({ offer: undefined, answer: { type: 'answer' } })), 'INVALID_ANSWER')
    assertFails(decodeWsResponse(sig({ offer: undefined, answer: { type: 'answer', sdp: 's' }, offer_id: 'x'.repeat(WS_MAX_OFFER_ID_LENGTH + 1) })), 'INVALID_ANSWER')
    for (const field of ['interval', 'complete', 'incomplete']) {
      for (const v of [-1, 'x', true, {}]) {
        const e = assertFails(decodeWsResponse(j({ action: 'announce', info_hash: IH, [field]: v })), 'INVALID_NUMBER')
        assert.equal(e.message, `${ERRORS.INVALID_NUMBER}: ${field}`)
      }
    }
    assertFails(decodeWsResponse(j({ action: 'scrape', files: { [IH]: { complete: -1 } } })), 'INVALID_NUMBER')
    assertFails(decodeWsResponse(j({ action: 'scrape', files: { short: { complete: 1 } } })), 'INVALID_INFO_HASH')
    assertFails(decodeWsResponse(j({ action: 'scrape', files: { [IH]: 5 } })), 'INVALID_JSON')
    assertFails(decodeWsResponse(j({ action: 'scrape', files: [] })), 'INVALID_JSON')
    assertFails(decodeWsResponse(j({ action: 'announce', 'failure reason': 5 })), 'INVALID_JSON')
  })
})

describe('ws codec: limits, each at the bound and one past it', () => {
  it(`offers: ${WS_MAX_OFFERS} accepted, ${WS_MAX_OFFERS + 1} → TOO_MANY_OFFERS`, () => {
    const offers = Array.from({ length: WS_MAX_OFFERS }, (_, i) => offer(SDP, `o${i}`))
    const r = value<WsRequest>(decodeWsRequest(j(announceObj({ offers }))))
    assert.ok(r.action === 'announce')
    assert.equal(r.offers?.length, WS_MAX_OFFERS)
    assert.equal(r.offers?.[WS_MAX_OFFERS - 1].offerId, `o${WS_MAX_OFFERS - 1}`)
    // too many is reported before looking at the (here invalid) elements
    assertRequestFails(j(announceObj({ offers: [...offers, 'junk'] })), 'TOO_MANY_OFFERS', 'announce', IH)
  })

  it(`sdp: ${WS_MAX_SDP_LENGTH} characters accepted, one more → INVALID_OFFER / INVALID_ANSWER`, () => {
    const max = 'a'.repeat(WS_MAX_SDP_LENGTH)
    const r = value<WsRequest>(decodeWsRequest(j(announceObj({ offers: [offer(max)] }))))
    assert.ok(r.action === 'announce' && r.offers?.[0].sdp === max)
    assertRequestFails(j(announceObj({ offers: [offer(max + 'a')] })), 'INVALID_OFFER', 'announce', IH)
    const a = value<WsRequest>(decodeWsRequest(j(answerObj({ answer: { type: 'answer', sdp: max } }))))
    assert.ok(a.action === 'announce' && a.answer?.sdp === max)
    assertRequestFails(j(answerObj({ answer: { type: 'answer', sdp: max + 'a' } })), 'INVALID_ANSWER', 'announce', IH)
    // the client decoder applies the same bound
    assert.equal(decodeWsResponse(encodeOffer({ infoHash: IH, fromPeerId: PEER, offerId: OID, sdp: max })).ok, true)
    assertFails(decodeWsResponse(encodeOffer({ infoHash: IH, fromPeerId: PEER, offerId: OID, sdp: max + 'a' })), 'INVALID_OFFER')
    assertFails(decodeWsResponse(encodeAnswer({ infoHash: IH, fromPeerId: PEER, offerId: OID, sdp: max + 'a' })), 'INVALID_ANSWER')
  })

  it(`offer_id: ${WS_MAX_OFFER_ID_LENGTH} characters accepted, one more rejected`, () => {
    const max = 'o'.repeat(WS_MAX_OFFER_ID_LENGTH)
    const r = value<WsRequest>(decodeWsRequest(j(announceObj({ offers: [offer(SDP, max)] }))))
    assert.ok(r.action === 'announce' && r.offers?.[0].offerId === max)
    assertRequestFails(j(announceObj({ offers: [offer(SDP, max + 'o')] })), 'INVALID_OFFER', 'announce', IH)
    const a = value<WsRequest>(decodeWsRequest(j(answerObj({ offer_id: max }))))
    assert.ok(a.action === 'announce' && a.answer?.offerId === max)
    assertRequestFails(j(answerObj({ offer_id: max + 'o' })), 'INVALID_ANSWER', 'announce', IH)
  })

  it(`scrape: ${MAX_SCRAPE_HASHES} hashes accepted, ${MAX_SCRAPE_HASHES + 1} → TOO_MANY_HASHES`, () => {
    const hashes = Array.from({ length: MAX_SCRAPE_HASHES }, (_, i) => String(i).padStart(20, 'h'))
    assert.deepEqual(decodeWsRequest(j({ action: 'scrape', info_hash: hashes })), { ok: true, value: { action: 'scrape', infoHashes: hashes } })
    assertRequestFails(j({ action: 'scrape', info_hash: [...hashes, IH] }), 'TOO_MANY_HASHES', 'scrape')
  })
})

// ---- never throws -----------------------------------------------------------------------------

function wellFormed (r: Result<unknown> | WsDecodeResult): void {
  if (r.ok) {
    assert.equal(typeof r.value, 'object')
  } else {
    assert.ok(r.error instanceof TrackerError)
    assert.ok(Object.hasOwn(ERRORS, r.error.code), r.error.code)
  }
}

function decodeBoth (text: string): void {
  wellFormed(decodeWsRequest(text))
  wellFormed(decodeWsResponse(text))
}

let deepObj: unknown = {}
for (let i = 0; i < 2000; i++) deepObj = { a: deepObj, type: 'offer', sdp: 'x' }
const DEEP_ARRAY_TEXT = '['.repeat(100000) + ']'.repeat(100000)

const HOSTILE: unknown[] = [
  null, true, false, 0, -1, 1.5, 1e308, -1e308, '', 'x', '0', '-1', 'announce', 'offer', 'answer',
  'x'.repeat(200000), '\u0000'.repeat(20), '\u00ff'.repeat(20), '\u0100'.repeat(20), '\ud800'.repeat(20),
  [], [null], [1, 'a', {}], Array.from({ length: 1000 }, () => ({ offer: { type: 'offer', sdp: 'x' }, offer_id: 'o' })),
  {}, { type: 'offer', sdp: 5 }, { type: 'answer', sdp: 'x' }, deepObj,
  JSON.parse('{"__proto__":{"type":"offer","sdp":"x","offer_id":"o"}}'),
  JSON.parse('{"__proto__":null,"constructor":{"prototype":{"polluted":1}}}')
]

type Path = Array<string | number>

/** Every path to a value inside a JSON tree (not the root). */
function paths (v: unknown, prefix: Path = []): Path[] {
  const out: Path[] = []
  if (Array.isArray(v)) {
    v.forEach((x, i) => { out.push([...prefix, i], ...paths(x, [...prefix, i])) })
  } else if (typeof v === 'object' && v !== null) {
    for (const k of Object.keys(v)) out.push([...prefix, k], ...paths((v as Record<string, unknown>)[k], [...prefix, k]))
  }
  return out
}

/** Every path to an object node, the root included. */
function objectPaths (v: unknown): Path[] {
  return [[], ...paths(v)].filter(p => {
    const n = at(v, p)
    return typeof n === 'object' && n !== null && !Array.isArray(n)
  })
}

function at (v: unknown, p: Path): unknown {
  let n = v
  for (const k of p) n = (n as Record<string | number, unknown>)[k]
  return n
}

function clone (v: unknown): unknown {
  return JSON.parse(j(v))
}

/** `msg` with the value at `p` replaced (or, with `remove`, deleted), as JSON text. */
function mutate (msg: unknown, p: Path, replacement: unknown, remove = false): string {
  const c = clone(msg)
  const parent = at(c, p.slice(0, -1)) as Record<string | number, unknown>
  const key = p[p.length - 1]
  if (remove) {
    if (Array.isArray(parent)) parent.splice(key as number, 1)
    else Reflect.deleteProperty(parent, key)
  } else {
    Object.defineProperty(parent, key, { value: replacement, enumerable: true, writable: true, configurable: true })
  }
  return j(c)
}

/** `msg` with an own "__proto__" key added to the object at `p`, as JSON text. */
function withProtoKey (msg: unknown, p: Path, v: unknown): string {
  const c = clone(msg)
  Object.defineProperty(at(c, p), '__proto__', { value: v, enumerable: true, writable: true, configurable: true })
  return j(c)
}

const VALID_MESSAGES: unknown[] = [
  announceObj({ event: 'started', offers: [offer(), offer('y', 'o2')], trackerid: 't' }),
  answerObj(),
  { action: 'scrape', info_hash: [IH, IH2] },
  { action: 'scrape', info_hash: IH },
  { action: 'announce', interval: 120, info_hash: IH, complete: 1, incomplete: 2, 'tracker id': 't', 'warning message': 'w' },
  { action: 'announce', offer: { type: 'offer', sdp: SDP }, offer_id: OID, peer_id: PEER, info_hash: IH },
  { action: 'announce', answer: { type: 'answer', sdp: SDP }, offer_id: OID, peer_id: PEER, info_hash: IH },
  { action: 'scrape', files: { [IH]: { complete: 1, incomplete: 2, downloaded: 3 } } },
  { action: 'announce', 'failure reason': 'x', info_hash: IH }
]

describe('ws codec: never throws', () => {
  it('the valid messages decode (baseline for the mutations below)', () => {
    for (const [i, m] of VALID_MESSAGES.entries()) {
      const r = i < 4 ? decodeWsRequest(j(m)) : decodeWsResponse(j(m))
      assert.equal(r.ok, true, j(m))
    }
  })

  it('every field of every valid message replaced by each hostile value, or removed', () => {
    let n = 0
    for (const m of VALID_MESSAGES) {
      for (const p of paths(m)) {
        for (const h of HOSTILE) { decodeBoth(mutate(m, p, h)); n++ }
        decodeBoth(mutate(m, p, undefined, true)); n++
      }
      for (const p of objectPaths(m)) {
        for (const h of HOSTILE) { decodeBoth(withProtoKey(m, p, h)); n++ }
      }
    }
    assert.ok(n > 2000, `ran ${n} mutations`)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.equal(Object.getPrototypeOf({}), Object.prototype)
  })

  it('a hostile offer in place of a valid one is rejected with the right code', () => {
    const m = VALID_MESSAGES[0]
    for (const h of HOSTILE) {
      if (typeof h === 'object' && h !== null && !Array.isArray(h) && Object.hasOwn(h, 'offer_id')) continue
      assertRequestFails(mutate(m, ['offers', 1], h), 'INVALID_OFFER', 'announce', IH)
    }
  })

  it('deeply nested input', () => {
    decodeBoth(DEEP_ARRAY_TEXT)
    decodeBoth(j(deepObj))
    decodeBoth(`{"action":"announce","info_hash":${IH_JSON},"peer_id":"${PEER}","offers":${DEEP_ARRAY_TEXT}}`)
    assertRequestFails(`{"action":"announce","info_hash":${IH_JSON},"peer_id":"${PEER}","offers":[${DEEP_ARRAY_TEXT}]}`, 'INVALID_OFFER', 'announce', IH)
  })

  it('arbitrary strings (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 500 }), decodeBoth), { numRuns: 2000 })
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'{}[]":,0123456789.-eE nultrfas\\'.split('')), maxLength: 200 }), decodeBoth), { numRuns: 2000 })
  })

  it('arbitrary JSON values, alone and as the body of an announce/scrape (property)', () => {
    fc.assert(fc.property(fc.jsonValue(), v => { decodeBoth(j(v)) }), { numRuns: 1000 })
    const body = fc.dictionary(
      fc.constantFrom('action', 'info_hash', 'peer_id', 'to_peer_id', 'offer_id', 'offers', 'offer', 'answer', 'uploaded',
        'downloaded', 'left', 'numwant', 'event', 'trackerid', 'files', 'interval', 'complete', 'incomplete',
        'failure reason', 'warning message', 'tracker id', '__proto__', 'constructor'),
      fc.oneof(fc.jsonValue(), arbId, fc.constantFrom(...HOSTILE.slice(0, 25))))
    fc.assert(fc.property(body, fc.constantFrom('announce', 'scrape'), (b, action) => {
      decodeBoth(j({ ...b, action }))
    }), { numRuns: 2000 })
  })

  it('random field of a valid message replaced by an arbitrary JSON value (property)', () => {
    const cases = VALID_MESSAGES.flatMap(m => paths(m).map(p => [m, p] as const))
    fc.assert(fc.property(fc.constantFrom(...cases), fc.jsonValue(), ([m, p], v) => {
      decodeBoth(mutate(m, p, v))
    }), { numRuns: 3000 })
  })
})
