import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import {
  UDP_MAX_PACKET,
  UDP_MAX_SCRAPE_HASHES,
  UDP_MAX_URL_DATA
} from '../../../src/constants.js'
import { TrackerError } from '../../../src/errors.js'
import type { ErrorCode } from '../../../src/errors.js'
import type { AnnounceEvent, PeerEntry } from '../../../src/protocol/common/types.js'
import {
  binaryString20,
  decodeUdpRequest,
  decodeUdpResponse,
  encodeAnnounceRequest,
  encodeAnnounceResponse,
  encodeConnectRequest,
  encodeConnectResponse,
  encodeError,
  encodeScrapeRequest,
  encodeScrapeResponse,
  udpOptionsFit,
  writeAnnounceResponseHeader,
  writeScrapeResponseHeader
} from '../../../src/protocol/udp/index.js'
import type { UdpAnnounceFields, UdpDecoded, UdpRequest, UdpResponse } from '../../../src/protocol/udp/index.js'

// ---- helpers ------------------------------------------------------------------------------

/** Bytes from hex fragments; spaces and everything after `#` on a line are ignored. */
function hex (annotated: string): Uint8Array {
  const digits = annotated.split('\n').map(l => l.replace(/#.*/, '')).join('').replace(/\s+/g, '')
  assert.equal(digits.length % 2, 0, 'odd number of hex digits')
  return Uint8Array.from(Buffer.from(digits, 'hex'))
}

function ascii (s: string): string {
  return Buffer.from(s, 'latin1').toString('hex')
}

function bin (bytes: Uint8Array | number[]): string {
  return Buffer.from(bytes).toString('latin1')
}

function binHex (s: string): string {
  return Buffer.from(s, 'latin1').toString('hex')
}

function cat (...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts))
}

function requestOk (d: UdpDecoded): UdpRequest {
  if (!d.ok) assert.fail(`decode failed: ${d.error.code} ${d.error.message}`)
  return d.value
}

function responseOk (d: ReturnType<typeof decodeUdpResponse>): UdpResponse {
  if (!d.ok) assert.fail(`decode failed: ${d.error.code} ${d.error.message}`)
  return d.value
}

function announceOf (d: UdpDecoded): Extract<UdpRequest, { action: 'announce' }> {
  const v = requestOk(d)
  assert.equal(v.action, 'announce')
  return v as Extract<UdpRequest, { action: 'announce' }>
}

function assertDropped (d: UdpDecoded, code: ErrorCode, transactionId?: number): void {
  assert.equal(d.ok, false)
  if (d.ok) return
  assert.ok(d.error instanceof TrackerError)
  assert.equal(d.error.code, code)
  assert.equal(d.reply, false)
  assert.equal(d.transactionId, transactionId)
  assert.equal('connectionId' in d, false)
}

function assertRefused (d: UdpDecoded, code: ErrorCode, transactionId: number, connectionIdHex: string): void {
  assert.equal(d.ok, false)
  if (d.ok) return
  assert.ok(d.error instanceof TrackerError)
  assert.equal(d.error.code, code)
  assert.equal(d.reply, true)
  if (!d.reply) return
  assert.equal(d.transactionId, transactionId)
  assert.equal(Buffer.from(d.connectionId).toString('hex'), connectionIdHex)
}

// ---- golden packets ------------------------------------------------------------------------

const CONNECT_REQUEST = hex(`
  00000417 27101980   # protocol_id   0x41727101980 (magic)
  00000000            # action        0 = connect
  12345678            # transaction_id
`)

const CONNECT_RESPONSE = hex(`
  00000000            # action        0 = connect
  12345678            # transaction_id
  a1a2a3a4 a5a6a7a8   # connection_id
`)

const CONNECTION_ID_HEX = 'a1a2a3a4a5a6a7a8'
const CONNECTION_ID = hex(CONNECTION_ID_HEX)

/** An info hash with bytes ≥ 0x80 (0x80, 0x81, … 0x93). */
const HASH_HIGH = bin(Array.from({ length: 20 }, (_, i) => 0x80 + i))
/** An info hash 0xff × 20. */
const HASH_FF = bin(new Array(20).fill(0xff))
const PEER_ID = '-TS0001-abcdefghijkl'

/** The 98 fixed bytes of the golden announce (BEP 15 offsets in the comments). */
const ANNOUNCE_FIXED = `
  a1a2a3a4 a5a6a7a8   #  0 connection_id
  00000001            #  8 action        1 = announce
  deadbeef            # 12 transaction_id
  80818283 84858687 88898a8b 8c8d8e8f 90919293   # 16 info_hash (bytes >= 0x80)
  ${ascii(PEER_ID)}   # 36 peer_id "-TS0001-abcdefghijkl"
  00000001 00000000   # 56 downloaded    2^32
  00000000 000003e8   # 64 left          1000
  ffffffff ffffffff   # 72 uploaded      2^64 - 1 (clamps to MAX_SAFE_INTEGER)
  00000002            # 80 event         2 = started
  00000000            # 84 ip            0 = use the sender's address
  cafebabe            # 88 key           3405691582
  ffffffff            # 92 num_want      -1 = default
  1ae1                # 96 port          6881
`

/** BEP 41 options: URLData split in two chunks, then two NOPs and EndOfOptions (BEP 41's second example's shape). */
const ANNOUNCE_REQUEST = hex(`${ANNOUNCE_FIXED}
  02 09 ${ascii('/announce')}      # 98 URLData, 9 bytes  "/announce"
  02 0c ${ascii('?passkey=abc')}   #    URLData, 12 bytes "?passkey=abc"
  01 01                            #    NOP, NOP
  00                               #    EndOfOptions
`)

const EXPECTED_ANNOUNCE = {
  infoHash: HASH_HIGH,
  peerId: PEER_ID,
  port: 6881,
  uploaded: Number.MAX_SAFE_INTEGER,
  downloaded: 2 ** 32,
  left: 1000,
  event: 2 as AnnounceEvent,
  numwant: -1,
  compact: true,
  noPeerId: true,
  key: '3405691582'
}

const ANNOUNCE_RESPONSE_V4 = hex(`
  00000001            #  0 action        1 = announce
  deadbeef            #  4 transaction_id
  00000708            #  8 interval      1800 s
  00000003            # 12 leechers      3
  00000005            # 16 seeders       5
  01020304 1ae1       # 20 peer 1.2.3.4:6881
  fffe8000 ffff       # 26 peer 255.254.128.0:65535
`)

const PEERS_V4: PeerEntry[] = [
  { peerId: '', addr: bin([1, 2, 3, 4, 0x1a, 0xe1]) },
  { peerId: '', addr: bin([0xff, 0xfe, 0x80, 0, 0xff, 0xff]) }
]

const ANNOUNCE_RESPONSE_V6 = hex(`
  00000001            #  0 action        1 = announce
  00000007            #  4 transaction_id
  00000384            #  8 interval      900 s
  00000000            # 12 leechers      0
  00000002            # 16 seeders       2
  20010db8 00000000 00000000 00000001 c8d5   # 20 peer [2001:db8::1]:51413
  fe800000 00000000 00000000 000000ff 0001   # 38 peer [fe80::ff]:1
`)

const PEERS_V6: PeerEntry[] = [
  { peerId: '', addr: bin(hex('20010db8000000000000000000000001c8d5')) },
  { peerId: '', addr: bin(hex('fe8000000000000000000000000000ff0001')) }
]

const SCRAPE_REQUEST = hex(`
  a1a2a3a4 a5a6a7a8   #  0 connection_id
  00000002            #  8 action        2 = scrape
  00000063            # 12 transaction_id 99
  ffffffff ffffffff ffffffff ffffffff ffffffff   # 16 info_hash 1
  80818283 84858687 88898a8b 8c8d8e8f 90919293   # 36 info_hash 2
`)

const SCRAPE_RESPONSE = hex(`
  00000002            #  0 action        2 = scrape
  00000063            #  4 transaction_id 99
  0000000a 00000064 00000003   #  8 hash 1: seeders 10, completed 100, leechers 3
  00000000 00000001 00000002   # 20 hash 2: seeders 0, completed 1, leechers 2
`)

const ERROR_RESPONSE = hex(`
  00000003            #  0 action        3 = error
  00000063            #  4 transaction_id 99
  ${ascii('invalid info_hash')}   # 8 message
`)

// ---- golden bytes --------------------------------------------------------------------------

describe('UDP codec — golden bytes (BEP 15 / BEP 41)', () => {
  it('connect request: encode and decode', () => {
    assert.deepEqual(encodeConnectRequest(0x12345678), CONNECT_REQUEST)
    assert.deepEqual(requestOk(decodeUdpRequest(CONNECT_REQUEST)), { action: 'connect', transactionId: 0x12345678 })
  })

  it('connect response: encode and decode', () => {
    assert.deepEqual(encodeConnectResponse(0x12345678, CONNECTION_ID), CONNECT_RESPONSE)
    const r = responseOk(decodeUdpResponse(CONNECT_RESPONSE, 6))
    assert.equal(r.action, 'connect')
    if (r.action !== 'connect') return
    assert.equal(r.transactionId, 0x12345678)
    assert.deepEqual(r.connectionId, CONNECTION_ID)
  })

  it('announce request with BEP 41 URLData split over two options, NOPs and EndOfOptions', () => {
    const a = announceOf(decodeUdpRequest(ANNOUNCE_REQUEST))
    assert.equal(a.transactionId, 0xdeadbeef)
    assert.equal(Buffer.from(a.connectionId).toString('hex'), CONNECTION_ID_HEX)
    assert.deepEqual(a.request, EXPECTED_ANNOUNCE)
    assert.equal(a.urlData, '/announce?passkey=abc')
  })

  it('announce request: the client encoder sends one URLData chunk then EndOfOptions', () => {
    const expected = hex(`${ANNOUNCE_FIXED.replace('ffffffff ffffffff   # 72', '001fffff ffffffff   # 72')}
      02 15 ${ascii('/announce?passkey=abc')}   # 98 URLData, 21 bytes
      00                                        #    EndOfOptions
    `)
    const encoded = encodeAnnounceRequest({
      connectionId: CONNECTION_ID,
      transactionId: 0xdeadbeef,
      request: { ...EXPECTED_ANNOUNCE },
      urlData: '/announce?passkey=abc'
    })
    assert.deepEqual(encoded, expected)
  })

  it('announce request without urlData has no options (98 bytes); empty urlData is "02 00 00"', () => {
    const base = { connectionId: CONNECTION_ID, transactionId: 1, request: { ...EXPECTED_ANNOUNCE } }
    assert.equal(encodeAnnounceRequest(base).length, 98)
    const empty = encodeAnnounceRequest({ ...base, urlData: '' })
    assert.equal(Buffer.from(empty.subarray(98)).toString('hex'), '020000')
    assert.equal(announceOf(decodeUdpRequest(empty)).urlData, '')
  })

  it('announce response, 2 IPv4 peers', () => {
    assert.deepEqual(encodeAnnounceResponse(0xdeadbeef, 1800, 3, 5, PEERS_V4), ANNOUNCE_RESPONSE_V4)
    assert.deepEqual(responseOk(decodeUdpResponse(ANNOUNCE_RESPONSE_V4, 6)), {
      action: 'announce', transactionId: 0xdeadbeef, interval: 1800, leechers: 3, seeders: 5, peers: PEERS_V4
    })
  })

  it('announce response, 2 IPv6 peers', () => {
    assert.deepEqual(encodeAnnounceResponse(7, 900, 0, 2, PEERS_V6), ANNOUNCE_RESPONSE_V6)
    assert.deepEqual(responseOk(decodeUdpResponse(ANNOUNCE_RESPONSE_V6, 18)), {
      action: 'announce', transactionId: 7, interval: 900, leechers: 0, seeders: 2, peers: PEERS_V6
    })
  })

  it('announce response with no peers is the 20-byte header', () => {
    const r = encodeAnnounceResponse(1, 60, 0, 0, [])
    assert.equal(r.length, 20)
    assert.deepEqual(responseOk(decodeUdpResponse(r, 18)), {
      action: 'announce', transactionId: 1, interval: 60, leechers: 0, seeders: 0, peers: []
    })
  })

  it('scrape request with 2 hashes (bytes >= 0x80)', () => {
    assert.deepEqual(encodeScrapeRequest(CONNECTION_ID, 99, [HASH_FF, HASH_HIGH]), SCRAPE_REQUEST)
    const v = requestOk(decodeUdpRequest(SCRAPE_REQUEST))
    assert.equal(v.action, 'scrape')
    if (v.action !== 'scrape') return
    assert.equal(v.transactionId, 99)
    assert.equal(Buffer.from(v.connectionId).toString('hex'), CONNECTION_ID_HEX)
    assert.deepEqual(v.infoHashes.map(binHex), [binHex(HASH_FF), binHex(HASH_HIGH)])
    assert.deepEqual(v.infoHashes, [HASH_FF, HASH_HIGH])
  })

  it('scrape response in BEP 15 order: seeders, completed, leechers', () => {
    const encoded = encodeScrapeResponse(99, [
      { infoHash: HASH_FF, complete: 10, downloaded: 100, incomplete: 3 },
      { infoHash: HASH_HIGH, complete: 0, downloaded: 1, incomplete: 2 }
    ])
    assert.deepEqual(encoded, SCRAPE_RESPONSE)
    assert.deepEqual(responseOk(decodeUdpResponse(SCRAPE_RESPONSE, 6)), {
      action: 'scrape',
      transactionId: 99,
      entries: [{ complete: 10, downloaded: 100, incomplete: 3 }, { complete: 0, downloaded: 1, incomplete: 2 }]
    })
  })

  it('error packet', () => {
    assert.deepEqual(encodeError(99, 'invalid info_hash'), ERROR_RESPONSE)
    assert.deepEqual(responseOk(decodeUdpResponse(ERROR_RESPONSE, 6)), { action: 'error', transactionId: 99, message: 'invalid info_hash' })
  })

  it('error message is UTF-8', () => {
    const e = encodeError(1, 'für')
    assert.equal(Buffer.from(e.subarray(8)).toString('hex'), '66c3bc72')
    assert.deepEqual(responseOk(decodeUdpResponse(e, 6)), { action: 'error', transactionId: 1, message: 'für' })
  })
})

// ---- announce request details ------------------------------------------------------------------

function announceWith (patch: Record<number, number[]>, options = ''): Uint8Array {
  const b = hex(ANNOUNCE_FIXED + options)
  for (const [offset, bytes] of Object.entries(patch)) b.set(bytes, Number(offset))
  return b
}

describe('UDP codec — announce request fields', () => {
  it('maps events 0..3', () => {
    for (const e of [0, 1, 2, 3]) {
      assert.equal(announceOf(decodeUdpRequest(announceWith({ 80: [0, 0, 0, e] }))).request.event, e)
    }
  })

  it('ip field: 0 → undefined, otherwise a dotted quad', () => {
    assert.equal('ip' in announceOf(decodeUdpRequest(announceWith({}))).request, false)
    assert.equal(announceOf(decodeUdpRequest(announceWith({ 84: [10, 0, 0, 1] }))).request.ip, '10.0.0.1')
    assert.equal(announceOf(decodeUdpRequest(announceWith({ 84: [255, 255, 255, 255] }))).request.ip, '255.255.255.255')
  })

  it('key is the u32 as a decimal string', () => {
    assert.equal(announceOf(decodeUdpRequest(announceWith({ 88: [0, 0, 0, 0] }))).request.key, '0')
    assert.equal(announceOf(decodeUdpRequest(announceWith({ 88: [0xff, 0xff, 0xff, 0xff] }))).request.key, '4294967295')
  })

  it('num_want: negative → -1, otherwise as sent', () => {
    const nw = (b: number[]): number => announceOf(decodeUdpRequest(announceWith({ 92: b }))).request.numwant
    assert.equal(nw([0xff, 0xff, 0xff, 0xff]), -1)
    assert.equal(nw([0xff, 0xff, 0xff, 0xfb]), -1)
    assert.equal(nw([0x80, 0, 0, 0]), -1)
    assert.equal(nw([0, 0, 0, 0]), 0)
    assert.equal(nw([0, 0, 0, 50]), 50)
    assert.equal(nw([0x7f, 0xff, 0xff, 0xff]), 0x7fffffff)
  })

  it('u64 counters: exact up to 2^53 - 1, clamped above', () => {
    const left = (b: number[]): number => announceOf(decodeUdpRequest(announceWith({ 64: b }))).request.left
    assert.equal(left([0, 0, 0, 0, 0, 0, 0, 0]), 0)
    assert.equal(left([0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Number.MAX_SAFE_INTEGER)
    assert.equal(left([0, 0x20, 0, 0, 0, 0, 0, 0]), Number.MAX_SAFE_INTEGER)
    assert.equal(left([0x80, 0, 0, 0, 0, 0, 0, 1]), Number.MAX_SAFE_INTEGER)
    assert.equal(left([0, 0, 0, 1, 0, 0, 0, 1]), 2 ** 32 + 1)
  })

  it('port 65535 is accepted', () => {
    assert.equal(announceOf(decodeUdpRequest(announceWith({ 96: [0xff, 0xff] }))).request.port, 65535)
  })

  it('connectionId is an 8-byte view into the packet, not a copy; works at a non-zero byteOffset', () => {
    const backing = new Uint8Array(ANNOUNCE_REQUEST.length + 13)
    backing.set(ANNOUNCE_REQUEST, 13)
    const msg = backing.subarray(13)
    const a = announceOf(decodeUdpRequest(msg))
    assert.equal(a.connectionId.length, 8)
    assert.equal(a.connectionId.buffer, backing.buffer)
    assert.equal(a.connectionId.byteOffset, 13)
    assert.equal(a.urlData, '/announce?passkey=abc')
    assert.deepEqual(a.request, EXPECTED_ANNOUNCE)
  })

  it('a longer connect request (BEP 15: do not assume sizes) is still a connect', () => {
    assert.deepEqual(requestOk(decodeUdpRequest(cat(CONNECT_REQUEST, hex('00 11 22')))), { action: 'connect', transactionId: 0x12345678 })
  })
})

describe('UDP codec — BEP 41 options', () => {
  const url = (options: string): string => announceOf(decodeUdpRequest(hex(ANNOUNCE_FIXED + options))).urlData

  it('no options → empty URL data', () => {
    assert.equal(url(''), '')
  })

  it("BEP 41's first example: 0x2, 0xC, '/dir?a=b&c=d'", () => {
    assert.equal(url(`02 0c ${ascii('/dir?a=b&c=d')}`), '/dir?a=b&c=d')
  })

  it("BEP 41's second example: the same followed by NOP, NOP, EndOfOptions", () => {
    assert.equal(url(`02 0c ${ascii('/dir?a=b&c=d')} 01 01 00`), '/dir?a=b&c=d')
  })

  it("BEP 41's empty URLData (0x2, 0x0)", () => {
    assert.equal(url('02 00'), '')
  })

  it('an unknown option type with a length byte is skipped, as BEP 41 requires', () => {
    assert.equal(url(`02 02 ${ascii('/a')} 07 03 ${ascii('xyz')} 01 02 02 ${ascii('?b')}`), '/a?b')
    assert.equal(url(`ff 00 02 02 ${ascii('/c')}`), '/c')
  })

  it('EndOfOptions stops parsing: later options are ignored', () => {
    assert.equal(url(`02 02 ${ascii('/a')} 00 02 02 ${ascii('/b')}`), '/a')
  })

  it('a truncated option is ignored with everything after it', () => {
    assert.equal(url(`02 02 ${ascii('/a')} 02 0a ${ascii('/bc')}`), '/a')
    assert.equal(url(`02 02 ${ascii('/a')} 02`), '/a')
    assert.equal(url(`02 02 ${ascii('/a')} 07`), '/a')
    assert.equal(url('02 ff 00 00'), '')
  })

  it('URL data bytes >= 0x80 are kept as one character per byte', () => {
    assert.equal(binHex(url('02 03 2f 80 ff')), '2f80ff')
  })

  it(`URL data of exactly UDP_MAX_URL_DATA (${UDP_MAX_URL_DATA}) bytes is accepted; one more is URL_TOO_LONG (reply: true)`, () => {
    const data = 'x'.repeat(UDP_MAX_URL_DATA)
    const base = { connectionId: CONNECTION_ID, transactionId: 5, request: { ...EXPECTED_ANNOUNCE } }
    assert.equal(announceOf(decodeUdpRequest(encodeAnnounceRequest({ ...base, urlData: data }))).urlData, data)
    assertRefused(decodeUdpRequest(encodeAnnounceRequest({ ...base, urlData: data + 'y' })), 'URL_TOO_LONG', 5, CONNECTION_ID_HEX)
  })

  it('the client splits long URL data into 255-byte URLData options', () => {
    const data = bin(Array.from({ length: 600 }, (_, i) => (i * 7) & 0xff))
    const p = encodeAnnounceRequest({ connectionId: CONNECTION_ID, transactionId: 5, request: { ...EXPECTED_ANNOUNCE }, urlData: data })
    assert.equal(p.length, 98 + (2 + 255) + (2 + 255) + (2 + 90) + 1)
    assert.deepEqual([p[98], p[99]], [2, 255])
    assert.deepEqual([p[98 + 257], p[99 + 257]], [2, 255])
    assert.deepEqual([p[98 + 514], p[99 + 514]], [2, 90])
    assert.equal(p[p.length - 1], 0)
    assert.equal(announceOf(decodeUdpRequest(p)).urlData, data)
  })

  it('a 255-byte URL is one option; 256 bytes are two', () => {
    const enc = (n: number): Uint8Array => encodeAnnounceRequest({ connectionId: CONNECTION_ID, transactionId: 5, request: { ...EXPECTED_ANNOUNCE }, urlData: 'u'.repeat(n) })
    assert.equal(enc(255).length, 98 + 2 + 255 + 1)
    assert.equal(enc(256).length, 98 + 2 + 255 + 2 + 1 + 1)
  })
})

describe('UDP codec — in-place helpers (servers writing replies into their own buffers)', () => {
  /** `packet` copied at `off` of a larger buffer with other bytes around it. */
  const embed = (packet: Uint8Array, off: number): Uint8Array => {
    const b = new Uint8Array(off + packet.length + 9).fill(0x02)
    b.set(packet, off)
    return b
  }

  it('udpOptionsFit agrees with decodeUdpRequest on every option layout, at any offset', () => {
    const layouts = ['', '02 0c 2f 64 69 72 3f 61 3d 62 26 63 3d 64 01 01 00', '02 00', '07 03 78 79 7a 02 02 2f 61',
      '02 02 2f 61 02 0a 2f 62 63', '02', '02 ff 00 00', '00 02 05 61 61 61 61 61']
    for (const options of layouts) {
      const p = hex(ANNOUNCE_FIXED + options)
      const fits = decodeUdpRequest(p).ok
      assert.equal(fits, true)
      assert.equal(udpOptionsFit(embed(p, 5), 5, p.length), true, options)
    }
    const base = { connectionId: CONNECTION_ID, transactionId: 5, request: { ...EXPECTED_ANNOUNCE } }
    for (const n of [0, 1, 254, 255, 256, UDP_MAX_URL_DATA - 1, UDP_MAX_URL_DATA, UDP_MAX_URL_DATA + 1, UDP_MAX_URL_DATA + 300]) {
      const p = encodeAnnounceRequest({ ...base, urlData: 'u'.repeat(n) })
      assert.equal(udpOptionsFit(embed(p, 3), 3, p.length), decodeUdpRequest(p).ok, `${n} bytes of URL data`)
      assert.equal(udpOptionsFit(p, 0, p.length), n <= UDP_MAX_URL_DATA)
    }
  })

  it('binaryString20 reads 20 bytes as one character each', () => {
    const b = Uint8Array.from({ length: 30 }, (_, i) => (i * 37 + 200) & 0xff)
    assert.equal(binaryString20(b, 5), String.fromCharCode(...b.subarray(5, 25)))
  })

  it('the header writers give the bytes the encoders give', () => {
    const peers: PeerEntry[] = [{ peerId: '', addr: '\x7f\x00\x00\x01\x1a\xe1' }]
    const full = encodeAnnounceResponse(0xdeadbeef, 1800, 7, 2 ** 40, peers)
    const out = new Uint8Array(30).fill(0x55)
    writeAnnounceResponseHeader(out, 4, 0xdeadbeef, 1800, 7, 2 ** 40)
    assert.deepEqual([...out.subarray(4, 24)], [...full.subarray(0, 20)])
    assert.deepEqual([...out.subarray(0, 4), ...out.subarray(24)], new Array(10).fill(0x55))
    const scrape = encodeScrapeResponse(42, [])
    const out2 = new Uint8Array(12).fill(0x55)
    writeScrapeResponseHeader(out2, 2, 42)
    assert.deepEqual([...out2.subarray(2, 10)], [...scrape])
    assert.deepEqual([...out2.subarray(0, 2), ...out2.subarray(10)], [0x55, 0x55, 0x55, 0x55])
  })
})

// ---- failures ----------------------------------------------------------------------------------

describe('UDP codec — request failures (code and reply flag)', () => {
  it('shorter than 16 bytes → INVALID_PACKET, no reply, no transaction id', () => {
    for (let n = 0; n < 16; n++) assertDropped(decodeUdpRequest(CONNECT_REQUEST.subarray(0, n)), 'INVALID_PACKET')
  })

  it('longer than UDP_MAX_PACKET → INVALID_PACKET, no reply', () => {
    const big = new Uint8Array(UDP_MAX_PACKET + 1)
    big.set(ANNOUNCE_REQUEST)
    assertDropped(decodeUdpRequest(big), 'INVALID_PACKET', 0xdeadbeef)
    const max = new Uint8Array(UDP_MAX_PACKET)
    max.set(ANNOUNCE_REQUEST)
    assert.equal(decodeUdpRequest(max).ok, true)
  })

  it('connect without the magic protocol id → INVALID_PACKET, no reply', () => {
    const bad = CONNECT_REQUEST.slice()
    bad[7] ^= 1
    assertDropped(decodeUdpRequest(bad), 'INVALID_PACKET', 0x12345678)
    const zero = CONNECT_REQUEST.slice()
    zero.fill(0, 0, 8)
    assertDropped(decodeUdpRequest(zero), 'INVALID_PACKET', 0x12345678)
  })

  it('unknown action (including 3 = error, which clients never send) → INVALID_ACTION, no reply', () => {
    for (const action of [3, 4, 0x100, 0xffffffff]) {
      const p = ANNOUNCE_REQUEST.slice()
      p.set([action >>> 24, (action >>> 16) & 0xff, (action >>> 8) & 0xff, action & 0xff], 8)
      assertDropped(decodeUdpRequest(p), 'INVALID_ACTION', 0xdeadbeef)
    }
  })

  it('announce shorter than 98 bytes → INVALID_PACKET, reply allowed, with ids', () => {
    for (const n of [16, 17, 50, 97]) {
      assertRefused(decodeUdpRequest(ANNOUNCE_REQUEST.subarray(0, n)), 'INVALID_PACKET', 0xdeadbeef, CONNECTION_ID_HEX)
    }
  })

  it('announce event 4 and above → INVALID_EVENT, reply allowed', () => {
    for (const e of [[0, 0, 0, 4], [0, 0, 1, 0], [0xff, 0xff, 0xff, 0xff]]) {
      assertRefused(decodeUdpRequest(announceWith({ 80: e })), 'INVALID_EVENT', 0xdeadbeef, CONNECTION_ID_HEX)
    }
  })

  it('announce port 0 → INVALID_PORT, reply allowed', () => {
    assertRefused(decodeUdpRequest(announceWith({ 96: [0, 0] })), 'INVALID_PORT', 0xdeadbeef, CONNECTION_ID_HEX)
  })

  it('scrape with no hash → FULL_SCRAPE_DISABLED (BEP 15 has no full scrape), reply allowed', () => {
    assertRefused(decodeUdpRequest(SCRAPE_REQUEST.subarray(0, 16)), 'FULL_SCRAPE_DISABLED', 99, CONNECTION_ID_HEX)
  })

  it('scrape with a trailing partial hash → INVALID_INFO_HASH, reply allowed', () => {
    for (const n of [17, 35, 37, 55]) {
      assertRefused(decodeUdpRequest(SCRAPE_REQUEST.subarray(0, n)), 'INVALID_INFO_HASH', 99, CONNECTION_ID_HEX)
    }
  })

  it(`scrape with ${UDP_MAX_SCRAPE_HASHES} hashes is fine; ${UDP_MAX_SCRAPE_HASHES + 1} → TOO_MANY_HASHES, reply allowed`, () => {
    const hashes = Array.from({ length: UDP_MAX_SCRAPE_HASHES }, (_, i) => bin(new Array(20).fill(i + 0x70)))
    const p = encodeScrapeRequest(CONNECTION_ID, 99, hashes)
    const v = requestOk(decodeUdpRequest(p))
    assert.equal(v.action === 'scrape' && v.infoHashes.length, UDP_MAX_SCRAPE_HASHES)
    const over = cat(p, new Uint8Array(20))
    assertRefused(decodeUdpRequest(over), 'TOO_MANY_HASHES', 99, CONNECTION_ID_HEX)
  })
})

describe('UDP codec — response failures (client side)', () => {
  const code = (msg: Uint8Array, peerLength: 6 | 18 = 6): string => {
    const r = decodeUdpResponse(msg, peerLength)
    assert.equal(r.ok, false)
    return r.ok ? '' : r.error.code
  }

  it('shorter than 8 bytes → INVALID_PACKET', () => {
    for (let n = 0; n < 8; n++) assert.equal(code(CONNECT_RESPONSE.subarray(0, n)), 'INVALID_PACKET')
  })

  it('connect response shorter than 16 bytes → INVALID_PACKET', () => {
    assert.equal(code(CONNECT_RESPONSE.subarray(0, 15)), 'INVALID_PACKET')
  })

  it('announce response shorter than 20 bytes → INVALID_PACKET', () => {
    assert.equal(code(ANNOUNCE_RESPONSE_V4.subarray(0, 19)), 'INVALID_PACKET')
  })

  it('peer bytes not a multiple of the peer length → INVALID_PACKET', () => {
    assert.equal(code(ANNOUNCE_RESPONSE_V4.subarray(0, 27)), 'INVALID_PACKET')
    assert.equal(code(ANNOUNCE_RESPONSE_V4, 18), 'INVALID_PACKET') // 12 peer bytes read as IPv6
    assert.equal(code(ANNOUNCE_RESPONSE_V6.subarray(0, 20 + 18 + 6), 18), 'INVALID_PACKET')
  })

  it('scrape response not whole 12-byte entries → INVALID_PACKET', () => {
    assert.equal(code(SCRAPE_RESPONSE.subarray(0, 8 + 11)), 'INVALID_PACKET')
    assert.deepEqual(responseOk(decodeUdpResponse(SCRAPE_RESPONSE.subarray(0, 8), 6)), { action: 'scrape', transactionId: 99, entries: [] })
  })

  it('unknown action → INVALID_ACTION', () => {
    const p = ERROR_RESPONSE.slice()
    p[3] = 4
    assert.equal(code(p), 'INVALID_ACTION')
  })

  it('error message with invalid UTF-8 decodes with replacement characters, never throws', () => {
    const r = responseOk(decodeUdpResponse(cat(ERROR_RESPONSE.subarray(0, 8), hex('ff fe 41')), 6))
    assert.equal(r.action === 'error' && r.message, '\ufffd\ufffdA')
  })

  it('the connection id of a connect response is a copy (safe to cache)', () => {
    const buf = CONNECT_RESPONSE.slice()
    const r = responseOk(decodeUdpResponse(buf, 6))
    buf.fill(0)
    assert.equal(r.action === 'connect' && Buffer.from(r.connectionId).toString('hex'), CONNECTION_ID_HEX)
  })
})

describe('UDP codec — encoder guards (programming errors throw RangeError)', () => {
  it('connection id must be 8 bytes', () => {
    assert.throws(() => encodeConnectResponse(1, new Uint8Array(7)), RangeError)
    assert.throws(() => encodeScrapeRequest(new Uint8Array(9), 1, [HASH_FF]), RangeError)
  })

  it('scrape request needs 1..74 hashes of 20 bytes', () => {
    assert.throws(() => encodeScrapeRequest(CONNECTION_ID, 1, []), RangeError)
    assert.throws(() => encodeScrapeRequest(CONNECTION_ID, 1, new Array(UDP_MAX_SCRAPE_HASHES + 1).fill(HASH_FF)), RangeError)
    assert.throws(() => encodeScrapeRequest(CONNECTION_ID, 1, ['short']), RangeError)
  })

  it('announce response peers must be one family of 6 or 18 bytes', () => {
    assert.throws(() => encodeAnnounceResponse(1, 1, 0, 0, [PEERS_V4[0], PEERS_V6[0]]), RangeError)
    assert.throws(() => encodeAnnounceResponse(1, 1, 0, 0, [{ peerId: '', addr: 'abcd' }]), RangeError)
  })

  it('binary strings may not hold characters above 0xff', () => {
    const request = { ...EXPECTED_ANNOUNCE, infoHash: '\u0100'.repeat(20) }
    assert.throws(() => encodeAnnounceRequest({ connectionId: CONNECTION_ID, transactionId: 1, request }), RangeError)
  })

  it('announce request counters and fields are clamped into their wire ranges', () => {
    const request: UdpAnnounceFields = {
      ...EXPECTED_ANNOUNCE, left: Infinity, uploaded: -5, downloaded: NaN, numwant: 1e12, event: 4, key: 'not-a-number', ip: '::1'
    }
    const p = encodeAnnounceRequest({ connectionId: CONNECTION_ID, transactionId: 1, request })
    assert.equal(Buffer.from(p.subarray(56, 98)).toString('hex'),
      '0000000000000000' + // downloaded NaN → 0
      'ffffffffffffffff' + // left Infinity → 2^64 - 1
      '0000000000000000' + // uploaded -5 → 0
      '00000000' + // event paused → none
      '00000000' + // ip not IPv4 → 0
      '00000000' + // key not decimal → 0
      '7fffffff' + // num_want capped at i32 max
      '1ae1')
  })

  it('response counts are clamped to u32', () => {
    const r = encodeAnnounceResponse(1, -1, 2 ** 40, 1.7, [])
    assert.equal(Buffer.from(r.subarray(8, 20)).toString('hex'), '00000000' + 'ffffffff' + '00000001')
  })
})

// ---- round trips (property based) -----------------------------------------------------------

const arbBinary = (min: number, max: number): fc.Arbitrary<string> =>
  fc.uint8Array({ minLength: min, maxLength: max }).map(b => bin(b))
const arbId = arbBinary(20, 20)
const arbU32 = fc.integer({ min: 0, max: 0xffffffff })

describe('UDP codec — round trips', () => {
  it('client announce encoder → server decoder', () => {
    fc.assert(fc.property(
      fc.record({
        connectionId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
        transactionId: arbU32,
        infoHash: arbId,
        peerId: arbId,
        downloaded: fc.maxSafeNat(),
        left: fc.maxSafeNat(),
        uploaded: fc.maxSafeNat(),
        event: fc.constantFrom<AnnounceEvent>(0, 1, 2, 3),
        ip: fc.option(fc.ipV4(), { nil: undefined }),
        key: arbU32,
        numwant: fc.integer({ min: -1, max: 0x7fffffff }),
        port: fc.integer({ min: 1, max: 65535 }),
        urlData: fc.option(arbBinary(0, UDP_MAX_URL_DATA), { nil: undefined })
      }),
      (x) => {
        const packet = encodeAnnounceRequest({
          connectionId: x.connectionId,
          transactionId: x.transactionId,
          request: { ...x, key: String(x.key) },
          urlData: x.urlData
        })
        const a = announceOf(decodeUdpRequest(packet))
        assert.deepEqual(a.connectionId, x.connectionId)
        assert.equal(a.transactionId, x.transactionId)
        assert.equal(a.urlData, x.urlData ?? '')
        const expected: Record<string, unknown> = {
          infoHash: x.infoHash,
          peerId: x.peerId,
          port: x.port,
          uploaded: x.uploaded,
          downloaded: x.downloaded,
          left: x.left,
          event: x.event,
          numwant: x.numwant,
          compact: true,
          noPeerId: true,
          key: String(x.key)
        }
        if (x.ip !== undefined && x.ip !== '0.0.0.0') expected.ip = x.ip
        assert.deepEqual(a.request, expected)
      }
    ))
  })

  it('client scrape encoder → server decoder', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 8, maxLength: 8 }), arbU32, fc.array(arbId, { minLength: 1, maxLength: UDP_MAX_SCRAPE_HASHES }),
      (connectionId, transactionId, infoHashes) => {
        const v = requestOk(decodeUdpRequest(encodeScrapeRequest(connectionId, transactionId, infoHashes)))
        assert.deepEqual(v, { action: 'scrape', connectionId, transactionId, infoHashes })
      }
    ))
  })

  it('connect request and response', () => {
    fc.assert(fc.property(arbU32, fc.uint8Array({ minLength: 8, maxLength: 8 }), (transactionId, connectionId) => {
      assert.deepEqual(requestOk(decodeUdpRequest(encodeConnectRequest(transactionId))), { action: 'connect', transactionId })
      assert.deepEqual(responseOk(decodeUdpResponse(encodeConnectResponse(transactionId, connectionId), 6)),
        { action: 'connect', transactionId, connectionId })
    }))
  })

  it('server announce encoder → client decoder, IPv4 and IPv6', () => {
    fc.assert(fc.property(
      arbU32, arbU32, arbU32, arbU32, fc.constantFrom<6 | 18>(6, 18), fc.array(fc.uint8Array({ minLength: 18, maxLength: 18 }), { maxLength: 74 }),
      (transactionId, interval, leechers, seeders, peerLength, raw) => {
        const peers = raw.map(b => ({ peerId: '', addr: bin(b.subarray(0, peerLength)) }))
        const packet = encodeAnnounceResponse(transactionId, interval, leechers, seeders, peers)
        assert.equal(packet.length, 20 + peerLength * peers.length)
        assert.deepEqual(responseOk(decodeUdpResponse(packet, peerLength)),
          { action: 'announce', transactionId, interval, leechers, seeders, peers })
      }
    ))
  })

  it('server scrape encoder → client decoder', () => {
    fc.assert(fc.property(
      arbU32, fc.array(fc.record({ infoHash: arbId, complete: arbU32, downloaded: arbU32, incomplete: arbU32 }), { maxLength: 74 }),
      (transactionId, entries) => {
        assert.deepEqual(responseOk(decodeUdpResponse(encodeScrapeResponse(transactionId, entries), 6)), {
          action: 'scrape',
          transactionId,
          entries: entries.map(e => ({ complete: e.complete, downloaded: e.downloaded, incomplete: e.incomplete }))
        })
      }
    ))
  })

  it('error encoder → client decoder (any well-formed Unicode)', () => {
    fc.assert(fc.property(arbU32, fc.string({ unit: 'grapheme', maxLength: 100 }), (transactionId, message) => {
      assert.deepEqual(responseOk(decodeUdpResponse(encodeError(transactionId, message), 18)), { action: 'error', transactionId, message })
    }))
  })
})

// ---- never throws --------------------------------------------------------------------------

/** Checks the shape of any decode result, and that the decoder did not throw. */
function checkRequestDecode (msg: Uint8Array): void {
  let d: UdpDecoded
  try {
    d = decodeUdpRequest(msg)
  } catch (err) {
    assert.fail(`decodeUdpRequest threw on ${Buffer.from(msg).toString('hex')}: ${String(err)}`)
  }
  if (d.ok) return
  assert.ok(d.error instanceof TrackerError)
  assert.equal(typeof d.reply, 'boolean')
  if (d.reply) {
    assert.equal(d.connectionId.length, 8)
    assert.ok(Number.isInteger(d.transactionId) && d.transactionId >= 0 && d.transactionId <= 0xffffffff)
    assert.ok(msg.length >= 16)
  }
}

function checkResponseDecode (msg: Uint8Array): void {
  for (const peerLength of [6, 18] as const) {
    let r
    try {
      r = decodeUdpResponse(msg, peerLength)
    } catch (err) {
      assert.fail(`decodeUdpResponse threw on ${Buffer.from(msg).toString('hex')}: ${String(err)}`)
    }
    if (!r.ok) assert.ok(r.error instanceof TrackerError)
  }
}

/** A tiny deterministic PRNG so failures reproduce. */
function prng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) & 0xff
  }
}

describe('UDP codec — never throws', () => {
  it('random bytes of every length 0..200, with every action in place', () => {
    const rand = prng(1)
    for (let len = 0; len <= 200; len++) {
      for (let k = 0; k < 8; k++) {
        const msg = new Uint8Array(len)
        for (let i = 0; i < len; i++) msg[i] = rand()
        checkRequestDecode(msg)
        checkResponseDecode(msg)
        for (const action of [0, 1, 2, 3]) {
          const req = msg.slice()
          if (len >= 12) req.set([0, 0, 0, action], 8)
          if (len >= 8 && action === 0) req.set(CONNECT_REQUEST.subarray(0, 8))
          checkRequestDecode(req)
          const res = msg.slice()
          if (len >= 4) res.set([0, 0, 0, action], 0)
          checkResponseDecode(res)
        }
      }
    }
  })

  it('mutations of valid packets of every action: byte changes, truncation, extension', () => {
    const rand = prng(2)
    const requests = [CONNECT_REQUEST, ANNOUNCE_REQUEST, SCRAPE_REQUEST, hex(ANNOUNCE_FIXED + '02 05 2f 61 62 63 64 07 01 ff 01 00')]
    const responses = [CONNECT_RESPONSE, ANNOUNCE_RESPONSE_V4, ANNOUNCE_RESPONSE_V6, SCRAPE_RESPONSE, ERROR_RESPONSE]
    for (const [packets, check] of [[requests, checkRequestDecode], [responses, checkResponseDecode]] as const) {
      for (const p of packets) {
        for (let n = 0; n <= p.length; n++) check(p.subarray(0, n))
        for (let i = 0; i < p.length; i++) {
          for (const v of [0, 1, 2, 0x7f, 0x80, 0xff, rand()]) {
            const m = p.slice()
            m[i] = v
            check(m)
          }
        }
        for (let extra = 1; extra <= 40; extra++) {
          const tail = new Uint8Array(extra)
          for (let i = 0; i < extra; i++) tail[i] = rand()
          check(cat(p, tail))
        }
      }
    }
  })

  it('arbitrary byte arrays (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (msg) => {
      checkRequestDecode(msg)
      checkResponseDecode(msg)
    }), { numRuns: 2000 })
  })
})
