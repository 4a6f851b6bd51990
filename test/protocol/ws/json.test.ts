/**
 * The tracker forwards SDPs as the JSON text found in the client's frame (findSdpLiterals via
 * decodeWsRequestJson). Whatever the frame, the result must be exactly decodeWsRequest's with
 * each SDP as JSON.stringify(sdp), and a forwarded frame byte for byte the one encodeOffer /
 * encodeAnswer build from the decoded SDP.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'

import { WS_MAX_SDP_LENGTH } from '../../../src/constants.js'
import {
  decodeWsRequest, decodeWsRequestJson, encodeAnswer, encodeAnswerJson, encodeOffer, encodeOfferJson
} from '../../../src/protocol/ws/codec.js'
import type { WsDecodeJsonResult, WsDecodeResult } from '../../../src/protocol/ws/codec.js'
import { findSdpLiterals } from '../../../src/protocol/ws/json.js'

const IH = '\x12\x34\x56\x78\x9a\xbc\xde\xf0\x00\x1f"\\/\x7f\x80\xff\xe9ab\n'
const PEER = '-WW0001-abcdefghijkl'
const PEER2 = '-WW0001-mnopqrstuvwx'
const OID = 'offer-id-0123456789x'
const SDP = 'v=0\r\no=- 46 2 IN IP4 127.0.0.1\r\na=group:BUNDLE 0\r\n'
const j = JSON.stringify

/** decodeWsRequest's result with each SDP as JSON text: what decodeWsRequestJson must return. */
function expected (r: WsDecodeResult): unknown {
  if (!r.ok || r.value.action !== 'announce') return r
  const v: Record<string, unknown> = { action: 'announce', request: r.value.request }
  if (r.value.offers !== undefined) v.offers = r.value.offers.map(o => ({ offerId: o.offerId, sdpJson: j(o.sdp) }))
  if (r.value.answer !== undefined) {
    const a = r.value.answer
    v.answer = { toPeerId: a.toPeerId, offerId: a.offerId, sdpJson: j(a.sdp) }
  }
  return { ok: true, value: v }
}

function same (text: string): WsDecodeJsonResult {
  const got = decodeWsRequestJson(text)
  assert.deepEqual(got, expected(decodeWsRequest(text)), text)
  return got
}

const head = `"action":"announce","info_hash":${j(IH)},"peer_id":${j(PEER)}`
const offer = (sdpText: string, oid = j(OID)): string => `{"offer":{"type":"offer","sdp":${sdpText}},"offer_id":${oid}}`
const announce = (...offers: string[]): string => `{${head},"offers":[${offers.join(',')}]}`
const answer = (sdpText: string, extra = ''): string =>
  `{${head},"to_peer_id":${j(PEER2)},"answer":{"type":"answer","sdp":${sdpText}},"offer_id":${j(OID)}${extra}}`

describe('findSdpLiterals', () => {
  it('gives the literal text of each offer and of the answer, quotes included', () => {
    const text = announce(offer(j(SDP)), offer(j('x')), offer(j(SDP + 'b')))
    assert.deepEqual(findSdpLiterals(text), { offers: [j(SDP), '"x"', j(SDP + 'b')], answer: undefined })
    assert.deepEqual(findSdpLiterals(answer(j(SDP))), { offers: [], answer: j(SDP) })
    // Not taken from the text: an escape JSON.stringify writes otherwise (\/ \u), an escaped
    // backslash before u or /, any \u (even one stringify writes the same), lone surrogates
    // anywhere: those SDPs are re-encoded.
    for (const lit of ['"a\\/b"', '"\\u0041"', '"\\u001F"', '"\\u0008"', '"\\u0000"', '"\\\\u"', '"\\\\/"', '"\\ud83d\\ude00"']) {
      assert.deepEqual(findSdpLiterals(announce(offer(lit))), { offers: [undefined], answer: undefined }, lit)
    }
    assert.deepEqual(findSdpLiterals(answer('"\ud800"')), { offers: [], answer: undefined })
    assert.deepEqual(findSdpLiterals(`{${head},"x":"\udc00",` + answer(j(SDP)).slice(1)), { offers: [], answer: undefined })
    // Kept: escapes stringify writes the same way, raw unicode, surrogate pairs.
    for (const sdp of ['"\\\\ \\" \\b \\f \\n \\r \\t"', '"é€😀 \u2028\u2029\x7f"', '""']) {
      assert.deepEqual(findSdpLiterals(announce(offer(sdp))), { offers: [sdp], answer: undefined }, sdp)
      assert.equal(j(JSON.parse(sdp)), sdp)
    }
  })

  it('resolves duplicate and escaped keys as JSON.parse does', () => {
    // The last "sdp" of an object wins, an escaped key counts, an escaped quote does not end a key.
    assert.deepEqual(findSdpLiterals(`{${head},"answer":{"type":"answer","sdp":"A","sdp":"B"}}`).answer, '"B"')
    assert.deepEqual(findSdpLiterals(`{${head},"answer":{"type":"answer","sdp":"A","\\u0073dp":"B"}}`).answer, '"B"')
    assert.deepEqual(findSdpLiterals(`{${head},"answer":{"type":"answer","sdp":"A","x\\"sdp":"B"}}`).answer, '"A"')
    assert.deepEqual(findSdpLiterals(`{${head},"answer":{"sdp":"A"},"\\u0061nswer":{"sdp":"C"}}`).answer, '"C"')
    // A later offers array replaces the earlier one (entries past its end are never read).
    assert.deepEqual(findSdpLiterals(`{"offers":[${offer('"A"')},${offer('"B"')}],"offers":[${offer('"C"')}]}`).offers, ['"C"', '"B"'])
    // SDP keys elsewhere are not on either path.
    assert.deepEqual(findSdpLiterals(`{"sdp":"0","x":{"answer":{"sdp":"1"}},"offers":[{"sdp":"2","offer":{"x":{"sdp":"3"}}},[{"offer":{"sdp":"4"}}]],"answer":[{"sdp":"5"}]}`),
      { offers: [], answer: undefined })
    // Backslash runs before quotes: "a\\" ends at its last quote; "\\\"sdp\":" is inside a string.
    assert.deepEqual(findSdpLiterals(`{"n":"\\\\","answer":{"sdp":"a\\\\","m":"\\\\\\"sdp\\":\\"no"}}`).answer, '"a\\\\"')
  })
})

describe('decodeWsRequestJson', () => {
  it('is decodeWsRequest with the SDP as JSON text, on odd but valid and on invalid frames', () => {
    const cases = [
      announce(offer(j(SDP))),
      announce(offer(j(SDP)), offer('"a\\/b\\u0041\\u00e9\\ud83d\\ude00"'), offer('"\\ud800 lone"'), offer('"tab\\u0009"')),
      announce(offer('"é€😀"'), offer(j('"quoted" \\back\\slashes\\ \u0001\u001f'))),
      answer(j(SDP)),
      answer('"\\u0053DP"'),
      // Whitespace everywhere, keys in another order, escaped keys, duplicates.
      ` { "action" : "announce" , "peer_id" : ${j(PEER)}, "info_hash":${j(IH)} , "offers" : [ { "offer_id" : ${j(OID)} , "offer" : { "sdp" : ${j(SDP)} , "type" : "offer" } } ] } `,
      `{${head},"offers":[{"offer":{"type":"offer","sdp":"A","sdp":"B"},"offer_id":"x"}]}`,
      `{${head},"offers":[{"offer":{"type":"offer","sdp":"A"},"offer":{"type":"offer","sdp":"B"},"offer_id":"x"}]}`,
      `{${head},"offers":[{"offer":{"type":"offer","sdp":"A"},"offer_id":"x"},{"offer":{"type":"offer","sdp":"B"},"offer_id":"y"}],"offers":[{"offer":{"type":"offer","\\u0073dp":"C"},"offer_id":"z"}]}`,
      `{${head},"offers":[{"offer":{"type":"offer","sdp":"A"},"offer_id":"x"}],"offers":[{"offer":{"type":"offer","sdp":"A","sdp":7},"offer_id":"x"}]}`,
      `{${head},"x":{"sdp":"zzz","offers":[${offer('"no"')}]},"offer":{"type":"offer","sdp":"nope"},"offers":[${offer('"yes"')}],"note":"\\"sdp\\":\\"fake\\""}`,
      // Both offers and an answer, in either order.
      `{${head},"to_peer_id":${j(PEER2)},"answer":{"type":"answer","sdp":"ANS"},"offer_id":"o","offers":[${offer('"OFF"')}]}`,
      `{${head},"offers":[${offer('"OFF"')},${offer('"OFF2"')}],"to_peer_id":${j(PEER2)},"answer":{"type":"answer","sdp":"ANS"},"offer_id":"o"}`,
      // Nested objects in the SDP field, and other wrong types: the same failures.
      announce(offer('{"sdp":"inner","x":[1,{"sdp":"deeper"}]}')),
      announce(offer('["v=0"]')), announce(offer('null')), announce(offer('12')),
      answer('{"nested":{"sdp":"x"}}'),
      announce(offer(j('x'.repeat(WS_MAX_SDP_LENGTH)))), announce(offer(j('x'.repeat(WS_MAX_SDP_LENGTH + 1)))),
      announce(offer(j('é'.repeat(WS_MAX_SDP_LENGTH - 2) + '\r\n'))), announce(offer(`"${'\\n'.repeat(WS_MAX_SDP_LENGTH + 1)}"`)),
      // Deep nesting beside the offers.
      `{${head},"deep":${'['.repeat(5000)}${']'.repeat(5000)},"offers":[${offer(j(SDP))}]}`,
      `{${head},"deep":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)},"offers":[${offer(j(SDP))}]}`,
      // Invalid JSON of every kind, including inside and around an SDP literal.
      announce(offer('"raw\ncontrol"')), announce(offer('"bad \\x escape"')), announce(offer('"\\u12"')),
      announce(offer('"unterminated')), announce(offer(j(SDP))) + 'x', announce(offer(j(SDP))).slice(0, -1),
      `{${head},"offers":[${offer('"a"')},]}`, `{${head},"offers":[${offer('"a"')}] "x":1}`, '', 'null', '[]', '"sdp"',
      `{"action":"scrape","info_hash":${j(IH)}}`, '{"action":"other","offers":[{"offer":{"sdp":"x"}}]}'
    ]
    for (const text of cases) same(text)
  })

  it('agrees with decodeWsRequest on randomly written frames (escapes, spacing, duplicate and stray keys)', () => {
    let seed = 0x2f6b1a3
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
    const pick = <T>(a: readonly T[]): T => a[rnd(a.length)]
    const ws = (): string => pick(['', '', '', ' ', '\n', '\t ', '\r\n'])
    /** A JSON string literal for `s`, each character written one of the ways JSON allows. */
    const lit = (s: string): string => {
      let out = '"'
      for (const ch of s) {
        const c = ch.codePointAt(0)!
        const mode = rnd(12)
        if (c > 0xffff) { out += mode === 0 ? ch.split('').map(u => '\\u' + u.charCodeAt(0).toString(16)).join('') : ch; continue }
        const hex = '\\u' + c.toString(16).padStart(4, '0')
        if (mode === 0) out += hex
        else if (mode === 1) out += hex.toUpperCase().replace('\\U', '\\u')
        else if (ch === '/' && mode < 6) out += '\\/'
        else out += j(ch).slice(1, -1)
      }
      return out + '"'
    }
    const SDP_CHARS = ['v', '=', '0', '\r', '\n', ' ', '/', '"', '\\', 'é', '€', '😀', '\x01', '\x1f', '\x7f', '\b', '\t', '\u2028', '\ud800', '\udc00', 'a']
    const sdp = (): string => { let s = ''; const n = rnd(40); for (let i = 0; i < n; i++) s += pick(SDP_CHARS); return s }
    const member = (k: string, v: string): string => `${ws()}${rnd(6) === 0 ? lit(k) : j(k)}${ws()}:${ws()}${v}${ws()}`
    const obj = (members: string[]): string => {
      const m = members.slice()
      for (let i = m.length - 1; i > 0; i--) { const k = rnd(i + 1); [m[i], m[k]] = [m[k], m[i]] }
      return `{${m.join(',')}}`
    }
    const stray = (): string => pick([
      () => member('sdp', lit(sdp())), () => member('x', obj([member('sdp', lit(sdp()))])),
      () => member('offer', obj([member('type', '"offer"'), member('sdp', lit(sdp()))])),
      () => member('note', lit('"sdp":"' + sdp())), () => member('n', String(rnd(100)))
    ])()
    const offerObj = (): string => {
      const inner = [member('type', rnd(20) === 0 ? '"answer"' : '"offer"'), member('sdp', rnd(25) === 0 ? String(rnd(9)) : lit(sdp()))]
      if (rnd(5) === 0) inner.push(member('sdp', lit(sdp())))
      if (rnd(5) === 0) inner.push(stray())
      const m = [member('offer', obj(inner)), member('offer_id', lit('id' + rnd(1000)))]
      if (rnd(6) === 0) m.push(member('offer', obj([member('type', '"offer"'), member('sdp', lit(sdp()))])))
      if (rnd(6) === 0) m.push(stray())
      return obj(m)
    }
    let announces = 0
    let answers = 0
    for (let i = 0; i < 3000; i++) {
      const m = [member('action', '"announce"'), member('info_hash', lit(IH)), member('peer_id', lit(PEER))]
      if (rnd(2) === 0) {
        const n = rnd(5)
        const list = Array.from({ length: n }, offerObj)
        m.push(member('offers', `[${ws()}${list.join(`${ws()},${ws()}`)}${ws()}]`))
        if (rnd(5) === 0) m.push(member('offers', `[${Array.from({ length: rnd(3) }, offerObj).join(',')}]`))
      }
      if (rnd(2) === 0) {
        m.push(member('answer', obj([member('type', '"answer"'), member('sdp', lit(sdp())), ...(rnd(5) === 0 ? [stray()] : [])])))
        m.push(member('to_peer_id', lit(PEER2)), member('offer_id', lit(OID)))
        if (rnd(6) === 0) m.push(member('answer', obj([member('type', '"answer"'), member('sdp', lit(sdp()))])))
      }
      for (let k = rnd(3); k > 0; k--) m.push(stray())
      const text = ws() + obj(m) + ws()
      const r = same(text)
      if (r.ok && r.value.action === 'announce') {
        if (r.value.offers !== undefined && r.value.offers.length > 0) announces++
        if (r.value.answer !== undefined) answers++
      }
    }
    // The generator reaches both paths often (the counts are fixed by the seed).
    assert.ok(announces > 500 && answers > 500, `${announces} ${answers}`)
  })
})

describe('encodeOfferJson / encodeAnswerJson', () => {
  it('build byte for byte the frames encodeOffer / encodeAnswer build from the decoded SDP', () => {
    for (const sdp of [SDP, '', '"\\/\b\f\n\r\t\x00\x1f\x7f é€😀 \u2028\ud800', 'x'.repeat(WS_MAX_SDP_LENGTH)]) {
      const f = { infoHash: IH, fromPeerId: PEER, offerId: OID }
      assert.equal(encodeOfferJson({ ...f, sdpJson: j(sdp) }), encodeOffer({ ...f, sdp }))
      assert.equal(encodeAnswerJson({ ...f, sdpJson: j(sdp) }), encodeAnswer({ ...f, sdp }))
    }
    assert.equal(encodeOfferJson({ infoHash: 'i', fromPeerId: 'p', offerId: 'o', sdpJson: '"v=0\\r\\n"' }),
      '{"action":"announce","offer":{"type":"offer","sdp":"v=0\\r\\n"},"offer_id":"o","peer_id":"p","info_hash":"i"}')
  })
})
