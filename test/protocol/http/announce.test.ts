import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  decodeAnnounceQuery, decodeAnnounceResponse, encodeAnnounceQuery, encodeAnnounceResponse, encodeFailure,
  type AnnounceQueryInput, type AnnounceResponseInput, type HttpAnnounce
} from '../../../src/protocol/http/index.js'
import { percentEncodeBytes } from '../../../src/protocol/http/query.js'
import { bencode, type BEncodable } from '../../../src/protocol/common/bencode.js'
import { compactAddr } from '../../../src/protocol/common/address.js'
import {
  EVENT_COMPLETED, EVENT_NONE, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED, type PeerEntry
} from '../../../src/protocol/common/types.js'
import type { ErrorCode } from '../../../src/errors.js'
import { MAX_QUERY_PARAMS } from '../../../src/constants.js'

const latin1 = (u8: Uint8Array): string => Buffer.from(u8).toString('latin1')
/** Text after a UTF-8 round trip: lone surrogates become U+FFFD. */
const wellFormed = (s: string): string => new TextDecoder('utf-8', { ignoreBOM: true }).decode(new TextEncoder().encode(s))
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'))

/** An info hash with 0x00, 0x80 and 0xFF bytes and the query metacharacters & = % +. */
const HASH = '\x00\x80\xff\x12&=%+ \x7f' + 'abcdefghij'
const PEER_ID = '-XX0001-\xc3\xa9\x00\x01\x02\x03\xfe\xff\x80\x81\x82\x83'
const HASH_Q = percentEncodeBytes(HASH)
const PEER_Q = percentEncodeBytes(PEER_ID)
const BASE = `info_hash=${HASH_Q}&peer_id=${PEER_Q}&port=6881`

function nullProto (o: Record<string, string>): Record<string, string> {
  return Object.assign(Object.create(null) as Record<string, string>, o)
}

function decoded (q: string): HttpAnnounce {
  const r = decodeAnnounceQuery(q)
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`)
  return r.value
}

function expectError (q: string, code: ErrorCode, message?: string): void {
  const r = decodeAnnounceQuery(q)
  assert.equal(r.ok, false, `expected ${code} for ${q}`)
  if (!r.ok) {
    assert.equal(r.error.code, code, q)
    if (message !== undefined) assert.equal(r.error.message, message)
  }
}

describe('decodeAnnounceQuery', () => {
  it('decodes a full client query', () => {
    assert.equal(HASH.length, 20)
    assert.equal(PEER_ID.length, 20)
    const q = `${BASE}&uploaded=123&downloaded=456&left=789&corrupt=0&key=AbC%2012&event=started` +
      '&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&ip=10.0.0.1&trackerid=t%C3%A9&passkey=s%C3%A9cret&raw=%E9'
    assert.deepEqual(decoded(q), {
      infoHash: HASH,
      peerId: PEER_ID,
      port: 6881,
      uploaded: 123,
      downloaded: 456,
      left: 789,
      event: EVENT_STARTED,
      numwant: 200,
      compact: true,
      noPeerId: true,
      key: 'AbC 12',
      ip: '10.0.0.1',
      trackerId: 'té',
      extra: nullProto({ corrupt: '0', supportcrypto: '1', passkey: 'sécret', raw: '\xe9' })
    })
  })
  it('applies defaults for absent params', () => {
    const r = decoded(BASE)
    assert.deepEqual(r, {
      infoHash: HASH,
      peerId: PEER_ID,
      port: 6881,
      uploaded: 0,
      downloaded: 0,
      left: Infinity,
      event: EVENT_NONE,
      numwant: -1,
      compact: false,
      noPeerId: false,
      extra: nullProto({})
    })
    assert.equal('key' in r, false)
    assert.equal('ip' in r, false)
    assert.equal('trackerId' in r, false)
  })
  it('maps events', () => {
    const table: Array<[string, number]> = [
      ['', EVENT_NONE], ['&event=', EVENT_NONE], ['&event=empty', EVENT_NONE], ['&event=started', EVENT_STARTED],
      ['&event=completed', EVENT_COMPLETED], ['&event=stopped', EVENT_STOPPED], ['&event=paused', EVENT_PAUSED],
      ['&event', EVENT_NONE]]
    for (const [suffix, event] of table) assert.equal(decoded(BASE + suffix).event, event, suffix)
  })
  it('compact and no_peer_id are true only for "1"', () => {
    for (const v of ['0', 'true', '', '01', 'yes']) {
      const r = decoded(`${BASE}&compact=${v}&no_peer_id=${v}`)
      assert.equal(r.compact, false, v)
      assert.equal(r.noPeerId, false, v)
    }
  })
  it('accepts numeric boundaries and leading zeros', () => {
    const max = Number.MAX_SAFE_INTEGER
    const r = decoded(`info_hash=${HASH_Q}&peer_id=${PEER_Q}&port=65535&uploaded=${max}&downloaded=0&left=0&numwant=0`)
    assert.equal(r.port, 65535)
    assert.equal(r.uploaded, max)
    assert.equal(r.downloaded, 0)
    assert.equal(r.left, 0)
    assert.equal(r.numwant, 0)
    assert.equal(decoded(`${BASE.replace('6881', '1')}&left=007`).port, 1)
    assert.equal(decoded(`${BASE}&left=007`).left, 7)
  })
  it('last repeat wins for scalar params', () => {
    const r = decoded(`${BASE}&port=7000&left=5&left=6&x=1&x=2`)
    assert.equal(r.port, 7000)
    assert.equal(r.left, 6)
    assert.equal(r.extra.x, '2')
  })
  it('puts hostile names in a null-prototype extra', () => {
    const r = decoded(`${BASE}&__proto__=x&constructor=y`)
    assert.equal(Object.getPrototypeOf(r.extra), null)
    assert.equal(r.extra.__proto__, 'x')
    assert.equal(r.extra.constructor, 'y')
  })
  it('accepts info hashes made of any bytes', () => {
    const all0 = '\x00'.repeat(20)
    const allFF = '\xff'.repeat(20)
    assert.equal(decoded(`info_hash=${percentEncodeBytes(all0)}&peer_id=${percentEncodeBytes(allFF)}&port=1`).infoHash, all0)
    assert.equal(decoded(`info_hash=${percentEncodeBytes(allFF)}&peer_id=${PEER_Q}&port=1`).infoHash, allFF)
    // Raw (unescaped) latin1 chars count as the bytes they stand for.
    assert.equal(decoded(`info_hash=${'\xe9'.repeat(20)}&peer_id=${PEER_Q}&port=1`).infoHash, '\xe9'.repeat(20))
  })

  describe('errors (one per code)', () => {
    it('INVALID_INFO_HASH: wrong length, repeated, missing', () => {
      expectError(`info_hash=${HASH_Q}%00&peer_id=${PEER_Q}&port=1`, 'INVALID_INFO_HASH', 'invalid info_hash: 21 bytes, need 20')
      expectError(`info_hash=abc&peer_id=${PEER_Q}&port=1`, 'INVALID_INFO_HASH')
      expectError(`info_hash=&peer_id=${PEER_Q}&port=1`, 'INVALID_INFO_HASH')
      // 20 UTF-8 chars are more than 20 bytes: must not pass.
      expectError(`info_hash=${encodeURIComponent('é'.repeat(20))}&peer_id=${PEER_Q}&port=1`, 'INVALID_INFO_HASH')
      expectError(`${BASE}&info_hash=${HASH_Q}`, 'INVALID_INFO_HASH', 'invalid info_hash: repeated')
      expectError(`peer_id=${PEER_Q}&port=1`, 'INVALID_INFO_HASH', 'invalid info_hash: missing')
    })
    it('INVALID_PEER_ID: wrong length, repeated, missing', () => {
      expectError(`info_hash=${HASH_Q}&peer_id=short&port=1`, 'INVALID_PEER_ID', 'invalid peer_id: 5 bytes, need 20')
      expectError(`${BASE}&peer_id=${PEER_Q}`, 'INVALID_PEER_ID', 'invalid peer_id: repeated')
      expectError(`info_hash=${HASH_Q}&port=1`, 'INVALID_PEER_ID', 'invalid peer_id: missing')
    })
    it('INVALID_PORT: out of range, not decimal, missing', () => {
      for (const p of ['0', '65536', '-1', '1.5', 'abc', '', ' 80', '0x50', '99999999999999999999']) {
        expectError(`info_hash=${HASH_Q}&peer_id=${PEER_Q}&port=${encodeURIComponent(p)}`, 'INVALID_PORT')
      }
      expectError(`info_hash=${HASH_Q}&peer_id=${PEER_Q}`, 'INVALID_PORT', 'invalid port: missing')
    })
    it('INVALID_EVENT', () => {
      for (const e of ['start', 'STARTED', 'none', '0', 'started%00']) expectError(`${BASE}&event=${e}`, 'INVALID_EVENT')
    })
    it('INVALID_NUMBER: each counter and numwant', () => {
      expectError(`${BASE}&uploaded=-1`, 'INVALID_NUMBER', 'invalid numeric parameter: uploaded')
      expectError(`${BASE}&downloaded=1e3`, 'INVALID_NUMBER', 'invalid numeric parameter: downloaded')
      expectError(`${BASE}&left=`, 'INVALID_NUMBER', 'invalid numeric parameter: left')
      expectError(`${BASE}&left=${Number.MAX_SAFE_INTEGER + 1}`, 'INVALID_NUMBER', 'invalid numeric parameter: left')
      expectError(`${BASE}&numwant=-1`, 'INVALID_NUMBER', 'invalid numeric parameter: numwant')
      expectError(`${BASE}&numwant=+5`, 'INVALID_NUMBER')
    })
    it('INVALID_QUERY', () => {
      expectError(`${BASE}&x=%zz`, 'INVALID_QUERY')
      expectError(`${BASE}&x=\u0100`, 'INVALID_QUERY')
    })
    it('TOO_MANY_PARAMS', () => {
      const many = Array.from({ length: MAX_QUERY_PARAMS }, (_, i) => `x${i}=1`).join('&')
      expectError(`${BASE}&${many}`, 'TOO_MANY_PARAMS')
    })
  })
})

// ---------------------------------------------------------------------------------------------

const A4 = compactAddr('1.2.3.4', 6881) as string // 01 02 03 04 1a e1
const B4 = compactAddr('10.0.0.1', 80) as string // 0a 00 00 01 00 50
const A6 = compactAddr('2001:db8::1', 443) as string // 20 01 0d b8 00…00 01 01 bb
const ID1 = 'peer-id-one-\x00\x80\xff\x01\x02\x03\x04\x05'
const ID2 = '-XX0001-abcdefghijkl'

describe('encodeAnnounceResponse', () => {
  it('compact: golden bytes (BEP 23 peers, BEP 7 peers6)', () => {
    const out = encodeAnnounceResponse({
      interval: 1800, minInterval: 900, complete: 2, incomplete: 1, compact: true,
      peers: [{ peerId: ID1, addr: A4 }, { peerId: ID2, addr: A6 }, { peerId: '', addr: B4 }]
    })
    const expected =
      'd' +
      '8:complete' + 'i2e' + // seeders
      '10:incomplete' + 'i1e' + // leechers
      '8:interval' + 'i1800e' + // seconds between announces
      '12:min interval' + 'i900e' +
      '5:peers' + '12:' + // 2 IPv4 peers × 6 bytes
        '\x01\x02\x03\x04' + '\x1a\xe1' + // 1.2.3.4 : 6881
        '\x0a\x00\x00\x01' + '\x00\x50' + // 10.0.0.1 : 80
      '6:peers6' + '18:' + // 1 IPv6 peer × 18 bytes
        '\x20\x01\x0d\xb8' + '\x00'.repeat(10) + '\x00\x01' + '\x01\xbb' + // 2001:db8::1 : 443
      'e'
    assert.equal(latin1(out), expected)
  })
  it('compact: peers always present, peers6 only when non-empty', () => {
    assert.equal(latin1(encodeAnnounceResponse({ interval: 60, complete: 0, incomplete: 0, compact: true, peers: [] })),
      'd8:completei0e10:incompletei0e8:intervali60e5:peers0:e')
    assert.equal(latin1(encodeAnnounceResponse({ interval: 60, complete: 0, incomplete: 1, compact: true, peers: [{ peerId: '', addr: A6 }] })),
      `d8:completei0e10:incompletei1e8:intervali60e5:peers0:6:peers618:${A6}e`)
  })
  it('compact: tracker id and warning (UTF-8) go last, in key order', () => {
    assert.equal(latin1(encodeAnnounceResponse({
      interval: 60, complete: 1, incomplete: 0, compact: true, peers: [{ peerId: '', addr: A4 }], trackerId: 'tid', warning: 'né'
    })), `d8:completei1e10:incompletei0e8:intervali60e5:peers6:${A4}10:tracker id3:tid15:warning message3:n\xc3\xa9e`)
  })
  it('skips peers whose addr is neither 6 nor 18 bytes', () => {
    const out = encodeAnnounceResponse({
      interval: 60, complete: 0, incomplete: 0, compact: true, peers: [{ peerId: '', addr: 'abc' }, { peerId: '', addr: A4 }, { peerId: '', addr: '' }]
    })
    assert.equal(latin1(out), `d8:completei0e10:incompletei0e8:intervali60e5:peers6:${A4}e`)
    const listed = encodeAnnounceResponse({ interval: 60, complete: 0, incomplete: 0, compact: false, peers: [{ peerId: ID1, addr: 'abc' }] })
    assert.equal(latin1(listed), 'd8:completei0e10:incompletei0e8:intervali60e5:peerslee')
  })
  it('non-compact: golden bytes, both families in one list', () => {
    const out = encodeAnnounceResponse({
      interval: 60, complete: 1, incomplete: 1, compact: false,
      peers: [{ peerId: ID1, addr: A4 }, { peerId: ID2, addr: A6 }]
    })
    assert.equal(latin1(out),
      'd8:completei1e10:incompletei1e8:intervali60e5:peersl' +
      `d2:ip7:1.2.3.47:peer id20:${ID1}4:porti6881ee` + // ip < peer id < port
      `d2:ip11:2001:db8::17:peer id20:${ID2}4:porti443ee` +
      'ee')
  })
  it('non-compact: no_peer_id leaves peer id out; a peer without a 20-byte id has none', () => {
    const out = encodeAnnounceResponse({
      interval: 60, complete: 1, incomplete: 1, compact: false, noPeerId: true,
      peers: [{ peerId: ID1, addr: A4 }]
    })
    assert.equal(latin1(out), 'd8:completei1e10:incompletei1e8:intervali60e5:peersld2:ip7:1.2.3.44:porti6881eeee')
    const noId = encodeAnnounceResponse({ interval: 60, complete: 0, incomplete: 0, compact: false, peers: [{ peerId: '', addr: B4 }], minInterval: 30, trackerId: 'x', warning: 'w' })
    assert.equal(latin1(noId), 'd8:completei0e10:incompletei0e8:intervali60e12:min intervali30e5:peersld2:ip8:10.0.0.14:porti80eee10:tracker id1:x15:warning message1:we')
  })
  it('throws TypeError on impossible counts', () => {
    const base: AnnounceResponseInput = { interval: 60, complete: 0, incomplete: 0, compact: true, peers: [] }
    for (const compact of [true, false]) {
      assert.throws(() => encodeAnnounceResponse({ ...base, compact, interval: 1.5 }), TypeError)
      assert.throws(() => encodeAnnounceResponse({ ...base, compact, complete: -1 }), TypeError)
      assert.throws(() => encodeAnnounceResponse({ ...base, compact, incomplete: NaN }), TypeError)
      assert.throws(() => encodeAnnounceResponse({ ...base, compact, minInterval: Infinity }), TypeError)
    }
  })
  it('property: the hand-written compact encoder equals the generic bencode', () => {
    fc.assert(fc.property(responseInputArb(true), (r) => {
      const v4 = r.peers.filter((p) => p.addr.length === 6).map((p) => p.addr).join('')
      const v6 = r.peers.filter((p) => p.addr.length === 18).map((p) => p.addr).join('')
      const generic: Record<string, BEncodable | undefined> = {
        complete: r.complete, incomplete: r.incomplete, interval: r.interval, 'min interval': r.minInterval,
        peers: bytes(v4), peers6: v6.length > 0 ? bytes(v6) : undefined, 'tracker id': r.trackerId, 'warning message': r.warning
      }
      assert.deepEqual(encodeAnnounceResponse(r), bencode(generic))
    }), { numRuns: 500 })
  })
})

describe('encodeFailure', () => {
  it('golden bytes', () => {
    assert.equal(latin1(encodeFailure('invalid info_hash')), 'd14:failure reason17:invalid info_hashe')
    assert.equal(latin1(encodeFailure('bad', { retryIn: 5 })), 'd14:failure reason3:bad8:retry ini5ee')
    assert.equal(latin1(encodeFailure('é')), 'd14:failure reason2:\xc3\xa9e')
  })
  it('decodes on the client side', () => {
    const r = decodeAnnounceResponse(encodeFailure('torrent not registered'))
    assert.deepEqual(r, { ok: true, value: { failure: 'torrent not registered', peers: [] } })
  })
})

// ---------------------------------------------------------------------------------------------

describe('encodeAnnounceQuery', () => {
  it('golden query string', () => {
    const q = encodeAnnounceQuery({
      infoHash: '\x00\x80\xff' + 'a'.repeat(17), peerId: '-XX0001-' + '\x01'.repeat(12), port: 6881,
      uploaded: 1, downloaded: 2, left: 3, event: EVENT_STARTED, numwant: 50, key: 'k 1', trackerId: 'tid',
      extra: { customParam: 'blah', n: 7, 'é x': 'ü' }
    })
    assert.equal(q,
      'info_hash=%00%80%FF' + 'a'.repeat(17) + '&peer_id=-XX0001-' + '%01'.repeat(12) +
      '&port=6881&uploaded=1&downloaded=2&left=3&event=started&numwant=50&compact=1&key=k%201&trackerid=tid' +
      '&customParam=blah&n=7&%C3%A9%20x=%C3%BC')
  })
  it('omits left when unknown (Infinity), event none and numwant < 0; compact=0 on request', () => {
    const q = encodeAnnounceQuery({
      infoHash: 'a'.repeat(20), peerId: 'b'.repeat(20), port: 1, uploaded: 0, downloaded: 0, left: Infinity,
      event: EVENT_NONE, numwant: -1, compact: false
    })
    assert.equal(q, `info_hash=${'a'.repeat(20)}&peer_id=${'b'.repeat(20)}&port=1&uploaded=0&downloaded=0&compact=0`)
  })
  it('writes each event by its wire name', () => {
    const base: AnnounceQueryInput = { infoHash: 'a'.repeat(20), peerId: 'b'.repeat(20), port: 1, uploaded: 0, downloaded: 0, left: 0 }
    assert.match(encodeAnnounceQuery({ ...base, event: EVENT_COMPLETED }), /&event=completed&/)
    assert.match(encodeAnnounceQuery({ ...base, event: EVENT_STOPPED }), /&event=stopped&/)
    assert.match(encodeAnnounceQuery({ ...base, event: EVENT_PAUSED }), /&event=paused&/)
    assert.doesNotMatch(encodeAnnounceQuery(base), /event/)
  })
  it('sanitises user counters and drops reserved or unusable extras', () => {
    const q = encodeAnnounceQuery({
      infoHash: 'a'.repeat(20), peerId: 'b'.repeat(20), port: 1, uploaded: 1.9, downloaded: -5, left: NaN,
      extra: { info_hash: 'x', left: 1, uploaded: 2, port: 3, ok: 1.5, bad: NaN, obj: {} as unknown as string, u: undefined as unknown as string, e: 1e21, neg: -2 }
    })
    assert.equal(q, `info_hash=${'a'.repeat(20)}&peer_id=${'b'.repeat(20)}&port=1&uploaded=1&downloaded=0&compact=1&ok=1.5&e=1e%2B21&neg=-2`)
    const big = encodeAnnounceQuery({ infoHash: 'a'.repeat(20), peerId: 'b'.repeat(20), port: 1, uploaded: 1e300, downloaded: 0, left: 0 })
    assert.match(big, new RegExp(`&uploaded=${Number.MAX_SAFE_INTEGER}&`))
  })
})

describe('decodeAnnounceResponse', () => {
  function decodedResponse (s: string | Uint8Array) {
    const r = decodeAnnounceResponse(typeof s === 'string' ? bytes(s) : s)
    if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`)
    return r.value
  }
  function responseError (s: string, pattern: RegExp): void {
    const r = decodeAnnounceResponse(bytes(s))
    assert.equal(r.ok, false)
    if (!r.ok) {
      assert.equal(r.error.code, 'INVALID_PACKET')
      assert.match(r.error.message, pattern)
    }
  }

  it('reads a compact response with peers6', () => {
    const v = decodedResponse(`d8:completei3e10:incompletei4e8:intervali1800e12:min intervali60e5:peers12:${A4}${B4}6:peers618:${A6}10:tracker id2:ab15:warning message2:hie`)
    assert.deepEqual(v, {
      complete: 3, incomplete: 4, interval: 1800, minInterval: 60, trackerId: 'ab', warning: 'hi',
      peers: [{ peerId: '', addr: A4 }, { peerId: '', addr: B4 }, { peerId: '', addr: A6 }]
    })
  })
  it('reads a dict peer list, canonicalising and skipping malformed entries', () => {
    const list =
      `d2:ip7:1.2.3.47:peer id20:${ID1}4:porti6881ee` + // ok
      'd2:ip15:::ffff:10.0.0.14:porti80ee' + // mapped → IPv4, no id
      'd2:ip11:2001:DB8::14:porti443e7:peer id3:abce' + // short id → ''
      'd2:ip11:example.com4:porti80ee' + // hostname: no compact form
      'd2:ip7:1.2.3.44:porti0ee' + // port 0
      'd2:ip7:1.2.3.44:porti65536ee' + // port too big
      'd2:ip7:1.2.3.44:port2:80e' + // port not an int
      'd4:porti80ee' + // no ip
      'i5e' + '3:abc' + 'le' // not dicts
    const v = decodedResponse(`d8:intervali60e5:peersl${list}ee`)
    assert.deepEqual(v, {
      interval: 60,
      peers: [{ peerId: ID1, addr: A4 }, { peerId: '', addr: B4 }, { peerId: '', addr: A6 }]
    })
  })
  it('skips compact entries with port 0', () => {
    const zero = '\x01\x02\x03\x04\x00\x00'
    assert.deepEqual(decodedResponse(`d5:peers12:${zero}${A4}e`).peers, [{ peerId: '', addr: A4 }])
  })
  it('ignores fields of the wrong type instead of failing', () => {
    assert.deepEqual(decodedResponse('d8:intervali-5e8:completei-1e10:incomplete1:x12:min interval3:abc10:tracker idi1e15:warning messagei2e5:peersi3ee'),
      { peers: [] })
    assert.deepEqual(decodedResponse('de'), { peers: [] })
  })
  it('a failure reason short-circuits', () => {
    assert.deepEqual(decodedResponse('d14:failure reason4:nope5:peers6:\x01\x02\x03\x04\x00\x01e'), { failure: 'nope', peers: [] })
  })
  it('INVALID_PACKET: compact lengths, non-dict, bad bencode', () => {
    responseError('d5:peers7:1234567e', /multiple of 6/)
    responseError(`d5:peers0:6:peers617:${A6.slice(1)}e`, /multiple of 18/)
    responseError('l5:peerse', /not a dict/)
    responseError('i1e', /not a dict/)
    responseError('d5:peers', /bencode/)
    responseError('', /bencode/)
    responseError('<html>502 Bad Gateway</html>', /bencode/)
    responseError('d14:failure reasoni5ee', /^malformed packet: failure reason is not a string$/)
    responseError('d14:failure reasonl4:nopee8:intervali60ee', /^malformed packet: failure reason is not a string$/)
  })
  it('peers6 may also be a list', () => {
    assert.deepEqual(decodedResponse('d6:peers6ld2:ip3:::14:porti1eeee').peers,
      [{ peerId: '', addr: compactAddr('::1', 1) }])
  })
})

// ---------------------------------------------------------------------------------------------
// Round trips and the never-throws sweep.

const idArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map(latin1)
const addrArb = fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 1, max: 65535 }))
  .map(([ip, port]) => compactAddr(ip, port) as string)
const peerArb: fc.Arbitrary<PeerEntry> = fc.record({ peerId: idArb, addr: addrArb })
const count = fc.nat({ max: 1e9 })
const text = fc.string({ unit: 'binary', maxLength: 12 })

function responseInputArb (compact: boolean): fc.Arbitrary<AnnounceResponseInput> {
  return fc.record({
    interval: count,
    minInterval: fc.option(count, { nil: undefined }),
    complete: count,
    incomplete: count,
    peers: fc.array(peerArb, { maxLength: 12 }),
    compact: fc.constant(compact),
    noPeerId: fc.boolean(),
    trackerId: fc.option(text, { nil: undefined }),
    warning: fc.option(text, { nil: undefined })
  })
}

/** What a client should read back from a response we encoded. */
function expectedClientView (r: AnnounceResponseInput) {
  const peers = r.compact
    ? [...r.peers.filter((p) => p.addr.length === 6), ...r.peers.filter((p) => p.addr.length === 18)].map((p) => ({ peerId: '', addr: p.addr }))
    : r.peers.map((p) => ({ peerId: r.noPeerId === true ? '' : p.peerId, addr: p.addr }))
  const out: Record<string, unknown> = { interval: r.interval, complete: r.complete, incomplete: r.incomplete, peers }
  if (r.minInterval !== undefined) out.minInterval = r.minInterval
  if (r.trackerId !== undefined) out.trackerId = wellFormed(r.trackerId)
  if (r.warning !== undefined) out.warning = wellFormed(r.warning)
  return out
}

describe('round trips', () => {
  it('client query encoder → server query decoder', () => {
    const extraArb = fc.dictionary(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }).filter((k) => !['info_hash', 'peer_id', 'port', 'uploaded', 'downloaded', 'left', 'event', 'numwant', 'compact', 'key', 'trackerid', 'ip', 'no_peer_id'].includes(k)),
      fc.string({ unit: 'binary', maxLength: 8 }), { maxKeys: 4 })
    const input = fc.record({
      infoHash: idArb,
      peerId: idArb,
      port: fc.integer({ min: 1, max: 65535 }),
      uploaded: fc.maxSafeNat(),
      downloaded: fc.maxSafeNat(),
      left: fc.oneof(fc.maxSafeNat(), fc.constant(Infinity)),
      event: fc.constantFrom(EVENT_NONE, EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED, EVENT_PAUSED),
      numwant: fc.option(fc.nat(1000), { nil: undefined }),
      compact: fc.boolean(),
      key: fc.option(fc.string({ unit: 'binary', maxLength: 8 }), { nil: undefined }),
      trackerId: fc.option(fc.string({ unit: 'binary', maxLength: 8 }), { nil: undefined }),
      extra: extraArb
    })
    fc.assert(fc.property(input, (p) => {
      const r = decoded(encodeAnnounceQuery(p))
      const want: Record<string, unknown> = {
        infoHash: p.infoHash, peerId: p.peerId, port: p.port, uploaded: p.uploaded, downloaded: p.downloaded,
        left: p.left, event: p.event, numwant: p.numwant ?? -1, compact: p.compact, noPeerId: false,
        extra: nullProto(Object.fromEntries(Object.entries(p.extra).map(([k, v]) => [wellFormed(k), wellFormed(v)])))
      }
      if (p.key !== undefined) want.key = wellFormed(p.key)
      if (p.trackerId !== undefined) want.trackerId = wellFormed(p.trackerId)
      assert.deepEqual(r, want)
    }), { numRuns: 1000 })
  })
  it('server response encoder → client response decoder (compact and not)', () => {
    fc.assert(fc.property(fc.boolean().chain(responseInputArb), (r) => {
      const v = decodeAnnounceResponse(encodeAnnounceResponse(r))
      assert.deepEqual(v, { ok: true, value: expectedClientView(r) })
    }), { numRuns: 1000 })
  })
})

describe('never throws', () => {
  it('decodeAnnounceQuery on random and mutated queries', () => {
    const valid = `${BASE}&uploaded=1&downloaded=2&left=3&event=started&numwant=5&compact=1&key=k&x=%FF`
    const mutated = fc.array(fc.tuple(fc.nat(), fc.constantFrom('%', '&', '=', '+', '\xff', '\u0100', '0', 'port=', 'info_hash=', 'event=x', '%4')), { maxLength: 4 })
      .map((edits) => {
        let s = valid
        for (const [at, ins] of edits) { const i = at % (s.length + 1); s = s.slice(0, i) + ins + s.slice(i + 1) }
        return s
      })
    fc.assert(fc.property(fc.oneof(mutated, fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 })), (q) => {
      const r = decodeAnnounceQuery(q)
      if (r.ok) {
        assert.equal(r.value.infoHash.length, 20)
        assert.equal(r.value.peerId.length, 20)
        assert.ok(r.value.port >= 1 && r.value.port <= 65535)
      } else {
        assert.ok(['INVALID_INFO_HASH', 'INVALID_PEER_ID', 'INVALID_PORT', 'INVALID_EVENT', 'INVALID_NUMBER', 'INVALID_QUERY', 'TOO_MANY_PARAMS'].includes(r.error.code))
      }
    }), { numRuns: 5000 })
  })
  it('decodeAnnounceResponse on random and mutated bodies', () => {
    const mutated = fc.tuple(fc.boolean().chain(responseInputArb), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }))
      .map(([r, edits]) => {
        const b = encodeAnnounceResponse(r)
        for (const [at, byte] of edits) if (b.length > 0) b[at % b.length] = byte
        return b
      })
    fc.assert(fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 100 })), (b) => {
      const r = decodeAnnounceResponse(b)
      if (r.ok) for (const p of r.value.peers) assert.ok(p.addr.length === 6 || p.addr.length === 18)
      else assert.equal(r.error.code, 'INVALID_PACKET')
    }), { numRuns: 5000 })
  })
})
