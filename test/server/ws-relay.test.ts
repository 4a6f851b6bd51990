/**
 * Offers and answers forwarded through the tracker over real WebSockets: the SDP is spliced from
 * the sender's frame text, and the frame a peer receives must be byte for byte the one built
 * from the decoded SDP (encodeOffer / encodeAnswer), whatever escapes the sender used.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'

import { WS_MAX_SDP_LENGTH } from '../../src/constants.js'
import { ERRORS } from '../../src/errors.js'
import { encodeAnswer, encodeFailure, encodeOffer } from '../../src/protocol/ws/codec.js'
import { startServer, wsClient } from '../helpers/tracker-clients.js'
import type { StartedServer, WsClient } from '../helpers/tracker-clients.js'

const IH = '\x12\x34\x56\x78\x9a\xbc\xde\xf0\x00\x1f"\\/\x7f\x80\xff\xe9ab\n'
const A = '-WW0001-\x00\x01"\\\xff\xfeabcdef'
const B = '-WW0001-mnopqrstuvwx'
const j = JSON.stringify

async function withPeers (fn: (a: WsClient, b: WsClient, s: StartedServer) => Promise<void>): Promise<void> {
  const s = await startServer()
  const a = await wsClient(s.ws)
  const b = await wsClient(s.ws)
  try {
    b.send({ action: 'announce', info_hash: IH, peer_id: B, event: 'started', numwant: 0 })
    assert.equal((await b.next()).action, 'announce')
    await fn(a, b, s)
  } finally {
    await a.close()
    await b.close()
    await s.close()
  }
}

/** A's announce with one offer whose `"sdp"` member is written as `sdpText`. */
function announceText (offerId: string, sdpText: string): string {
  return `{"action":"announce","info_hash":${j(IH)},"peer_id":${j(A)},"event":"started","numwant":1,` +
    `"offers":[{"offer":{"type":"offer","sdp":${sdpText}},"offer_id":${j(offerId)}}]}`
}

function answerText (offerId: string, sdpText: string): string {
  return `{"action":"announce","info_hash":${j(IH)},"peer_id":${j(B)},"to_peer_id":${j(A)},` +
    `"answer":{"type":"answer","sdp":${sdpText}},"offer_id":${j(offerId)}}`
}

// SDP texts as a client may write them: plain (spliced as received), and with escapes that
// JSON.stringify writes otherwise (re-encoded), unicode, quotes and backslashes.
const SDP_TEXTS = [
  j('v=0\r\no=- 46 2 IN IP4 127.0.0.1\r\na=group:BUNDLE 0\r\n'),
  '"v=0\\r\\n\\/path \\u0041\\u00e9 \\ud83d\\ude00 \\u0000 \\"q\\" \\\\ é€😀 \u2028"',
  '"lone \\udc00 surrogate, tab\\u0009, slash\\/"',
  j('x'.repeat(WS_MAX_SDP_LENGTH))
]

describe('WS relay: SDPs forwarded byte for byte', () => {
  it('an offer reaches the other peer as encodeOffer of the decoded SDP, and its answer comes back as encodeAnswer', async () => {
    await withPeers(async (a, b) => {
      let n = 0
      for (const offerSdp of SDP_TEXTS) {
        for (const answerSdp of [SDP_TEXTS[0], SDP_TEXTS[1]]) {
          const offerId = `offer-${n++}`.padEnd(20, '\x7f')
          a.send(announceText(offerId, offerSdp))
          assert.equal((await a.next()).action, 'announce')
          assert.equal(await b.nextRaw(3000),
            encodeOffer({ infoHash: IH, fromPeerId: A, offerId, sdp: JSON.parse(offerSdp) as string }))
          b.send(answerText(offerId, answerSdp))
          assert.equal(await a.nextRaw(3000),
            encodeAnswer({ infoHash: IH, fromPeerId: B, offerId, sdp: JSON.parse(answerSdp) as string }))
        }
      }
      assert.deepEqual(await a.drain(), [])
      assert.deepEqual(await b.drain(), [])
    })
  })

  it('duplicate keys and stray "sdp" members: the value JSON.parse keeps is the one forwarded', async () => {
    await withPeers(async (a, b) => {
      const offerId = 'dup-offer-id-0000000'
      a.send(`{"action":"announce","info_hash":${j(IH)},"peer_id":${j(A)},"numwant":1,"sdp":"top",` +
        `"offers":[{"offer":{"type":"offer","sdp":"first"}}],"x":{"sdp":"stray"},` +
        `"offers":[{"offer":{"type":"offer","sdp":"old","\\u0073dp":"kept"},"offer_id":${j(offerId)},"note":"\\"sdp\\":\\"no\\""}]}`)
      assert.equal((await a.next()).action, 'announce')
      assert.equal(await b.nextRaw(3000), encodeOffer({ infoHash: IH, fromPeerId: A, offerId, sdp: 'kept' }))
      b.send(`{"action":"announce","info_hash":${j(IH)},"peer_id":${j(B)},"to_peer_id":${j(A)},"offer_id":${j(offerId)},` +
        `"answer":{"type":"answer","sdp":"a1"},"answer":{"sdp":"a2","type":"answer","sdp":"a3"}}`)
      assert.equal(await a.nextRaw(3000), encodeAnswer({ infoHash: IH, fromPeerId: B, offerId, sdp: 'a3' }))
    })
  })

  it('a nested object, an oversized SDP or broken JSON in the SDP field is refused, nothing forwarded', async () => {
    await withPeers(async (a, b) => {
      const refusals: Array<[string, string]> = [
        [announceText('o1', '{"sdp":"inner"}'), encodeFailure(`${ERRORS.INVALID_OFFER}: offer sdp is not a string`, 'announce', IH)],
        [announceText('o2', j('x'.repeat(WS_MAX_SDP_LENGTH + 1))), encodeFailure(`${ERRORS.INVALID_OFFER}: offer sdp longer than ${WS_MAX_SDP_LENGTH}`, 'announce', IH)],
        [announceText('o3', '"raw\ncontrol"'), encodeFailure(ERRORS.INVALID_JSON)],
        [announceText('o4', '"bad \\x escape"'), encodeFailure(ERRORS.INVALID_JSON)]
      ]
      for (const [text, reply] of refusals) {
        a.send(text)
        assert.equal(await a.nextRaw(3000), reply)
      }
      assert.deepEqual(await b.drain(), [])
    })
  })
})
