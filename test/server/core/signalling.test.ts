import { describe, it } from 'node:test'
import assert from 'node:assert/strict'

import { WS_MAX_OFFERS, WS_MAX_SWARMS_PER_SOCKET, WS_OFFER_TTL_MS } from '../../../src/constants.js'
import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import type { AnnounceEvent, AnnounceRequest, BinaryString } from '../../../src/protocol/common/types.js'
import { decodeWsResponse } from '../../../src/protocol/ws/codec.js'
import type { WsOfferJson, WsServerMessage } from '../../../src/protocol/ws/codec.js'
import { CONN_NODE_FACTOR, Signalling, nodeOfConn } from '../../../src/server/core/signalling.js'
import type { Delivery, RemoteSignal, SignalBus, SignalResult } from '../../../src/server/core/signalling.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import { behindPromises, hash, httpV4, req as storeReq, v4 } from '../store/conformance.js'

const NOW = 1_000_000
const WS_INTERVAL = 120

/** A WebTorrent-style peer id with bytes ≥ 0x80. */
function peer (n: number): BinaryString {
  return '-WW0102-' + String.fromCharCode(0xa0 + (n >> 8), n & 0xff) + '\xff\xfe' + String(n).padStart(8, '0')
}

function wsReq (infoHash: BinaryString, peerId: BinaryString, o: { left?: number, event?: AnnounceEvent } = {}): AnnounceRequest {
  return {
    infoHash,
    peerId,
    port: 0,
    uploaded: 0,
    downloaded: 0,
    left: o.left ?? Infinity,
    event: o.event ?? EVENT_NONE,
    numwant: 50,
    compact: false,
    noPeerId: false
  }
}

function offers (n: number, tag = 'o'): WsOfferJson[] {
  return Array.from({ length: n }, (_, i) => ({ offerId: `${tag}${i}`.padEnd(20, '\x80'), sdpJson: JSON.stringify(`v=0 offer ${tag}${i}`) }))
}

function decode (message: string): WsServerMessage {
  const r = decodeWsResponse(message)
  assert.ok(r.ok, `tracker sent undecodable JSON: ${message}`)
  return r.value
}

function decoded (deliveries: Delivery[]): Array<[number, WsServerMessage]> {
  return deliveries.map(([conn, m]) => [conn, decode(m)])
}

/** The memory store answers synchronously; so does Signalling over it. */
function sync (r: SignalResult | Promise<SignalResult>): SignalResult {
  assert.ok(!(r instanceof Promise))
  return r as SignalResult
}

function ok (r: SignalResult | Promise<SignalResult>): Delivery[] {
  const v = sync(r)
  assert.ok(v.ok, v.ok ? '' : `unexpected ${v.error.code}`)
  return v.deliveries
}

function refused (r: SignalResult | Promise<SignalResult>, code: string): void {
  const v = sync(r)
  assert.equal(v.ok, false, `expected ${code}`)
  if (!v.ok) assert.equal(v.error.code, code)
}

function setup (opts: { maxOffers?: number, maxSwarms?: number } = {}): { store: MemoryStore, sig: Signalling } {
  const store = new MemoryStore({ peerTtl: 1200 })
  return { store, sig: new Signalling(store, { wsInterval: WS_INTERVAL, ...opts }) }
}

function wsPeersOf (store: MemoryStore, H: BinaryString): Array<[BinaryString, number]> {
  const info = store.swarmInfo(H)
  if (info === undefined) return []
  return [...info.peers()].filter(([, p]) => p.kind === 2).map(([, p]): [BinaryString, number] => [p.peerId, p.conn]).sort()
}

describe('Signalling: connections', () => {
  it('open gives each socket its own number; close forgets it', () => {
    const { sig } = setup()
    const a = sig.open(v4(1))
    const b = sig.open(v4(2))
    assert.notEqual(a, b)
    assert.equal(sig.size, 2)
    assert.equal(sig.isOpen(a), true)
    assert.equal(sig.close(a), undefined)
    assert.equal(sig.isOpen(a), false)
    assert.equal(sig.isOpen(b), true)
    assert.equal(sig.size, 1)
    sig.close(a) // twice: no-op
    sig.close(12345) // unknown: no-op
    assert.equal(sig.size, 1)
    const c = sig.open(v4(3))
    assert.ok(c !== a && c !== b, 'numbers are not reused')
  })

  it('a closed or unknown connection gets nothing and changes nothing', () => {
    const { store, sig } = setup()
    assert.deepEqual(ok(sig.announce(99, wsReq(hash(1), peer(1), { event: EVENT_STARTED }), undefined, NOW)), [])
    assert.equal(store.counts.peers, 0)
  })
})

describe('Signalling: announce', () => {
  it('answers the sender with the swarm counts and the ws interval', () => {
    const { store, sig } = setup()
    const H = hash(1)
    store.announce(storeReq(H, httpV4(1), { event: EVENT_STARTED, seeder: true }), NOW)
    const a = sig.open(v4(1))
    const d = decoded(ok(sig.announce(a, wsReq(H, peer(1), { event: EVENT_STARTED }), undefined, NOW)))
    assert.deepEqual(d, [[a, { type: 'announce', infoHash: H, interval: WS_INTERVAL, complete: 1, incomplete: 1 }]])
    const d2 = decoded(ok(sig.announce(a, wsReq(H, peer(1), { event: EVENT_COMPLETED, left: 0 }), undefined, NOW)))
    assert.deepEqual(d2, [[a, { type: 'announce', infoHash: H, interval: WS_INTERVAL, complete: 2, incomplete: 0 }]])
    assert.equal(store.swarmInfo(H)?.downloaded, 1)
    assert.deepEqual(wsPeersOf(store, H), [[peer(1), a]])
  })

  it('relays each offer to a different random ws peer of the swarm, never the sender; the reply comes first', () => {
    const { store, sig } = setup()
    const H = hash(2)
    const conns: number[] = []
    for (let i = 1; i <= 5; i++) {
      const c = sig.open(v4(i))
      conns.push(c)
      ok(sig.announce(c, wsReq(H, peer(i), { event: EVENT_STARTED }), undefined, NOW))
    }
    // HTTP peers of the same swarm never get offers
    store.announce(storeReq(H, httpV4(50), { event: EVENT_STARTED }), NOW)
    const sender = sig.open(v4(9))
    const received = new Map<number, number>()
    for (let round = 0; round < 200; round++) {
      const sent = offers(3, `r${round}-`)
      const d = decoded(ok(sig.announce(sender, wsReq(H, peer(9), { event: round === 0 ? EVENT_STARTED : EVENT_NONE }), sent, NOW)))
      assert.equal(d.length, 4)
      assert.deepEqual(d[0], [sender, { type: 'announce', infoHash: H, interval: WS_INTERVAL, complete: 0, incomplete: 7 }])
      const targets = d.slice(1).map(([c]) => c)
      assert.equal(new Set(targets).size, 3, 'each offer to a different peer')
      assert.ok(targets.every(c => conns.includes(c)), 'only ws peers, never the sender')
      for (const c of targets) received.set(c, (received.get(c) ?? 0) + 1)
      const gotOffers = d.slice(1).map(([c, m]) => {
        assert.equal(m.type, 'offer')
        assert.ok(m.type === 'offer')
        assert.equal(m.infoHash, H)
        assert.equal(m.peerId, peer(9), 'the offer names its sender')
        return { offerId: m.offerId, sdp: m.sdp, to: c }
      })
      assert.deepEqual(gotOffers.map(o => ({ offerId: o.offerId, sdpJson: JSON.stringify(o.sdp) })).sort((x, y) => x.offerId < y.offerId ? -1 : 1), sent,
        'every offer is relayed once, untouched')
    }
    // 200 rounds × 3 offers over 5 peers: each expected 120 times
    assert.equal(received.size, 5)
    for (const [c, n] of received) assert.ok(n > 70 && n < 170, `conn ${c} got ${n} offers`)
  })

  it('relays no more offers than there are other ws peers, nor more than maxOffers', () => {
    const { sig } = setup({ maxOffers: 2 })
    const H = hash(3)
    const a = sig.open(v4(1))
    assert.equal(ok(sig.announce(a, wsReq(H, peer(1), { event: EVENT_STARTED }), offers(5), NOW)).length, 1, 'alone: just the reply')
    const b = sig.open(v4(2))
    const db = decoded(ok(sig.announce(b, wsReq(H, peer(2), { event: EVENT_STARTED }), offers(5), NOW)))
    assert.equal(db.length, 2, 'one other peer: one offer')
    assert.equal(db[1][0], a)
    for (let i = 3; i <= 6; i++) ok(sig.announce(sig.open(v4(i)), wsReq(H, peer(i), { event: EVENT_STARTED }), undefined, NOW))
    const d = decoded(ok(sig.announce(a, wsReq(H, peer(1)), offers(5), NOW)))
    assert.equal(d.length, 1 + 2, 'maxOffers caps the relay')
    assert.deepEqual(d.slice(1).map(([, m]) => m.type === 'offer' ? m.offerId : '').sort(), offers(2).map(o => o.offerId))
  })

  it('uses WS_MAX_OFFERS by default', () => {
    const { sig } = setup()
    const H = hash(4)
    for (let i = 1; i <= WS_MAX_OFFERS + 5; i++) ok(sig.announce(sig.open(v4(i)), wsReq(H, peer(i), { event: EVENT_STARTED }), undefined, NOW))
    const a = sig.open(v4(999))
    assert.equal(ok(sig.announce(a, wsReq(H, peer(999), { event: EVENT_STARTED }), offers(WS_MAX_OFFERS + 5), NOW)).length, 1 + WS_MAX_OFFERS)
  })

  it('a seeder\'s offers go only to leechers', () => {
    const { sig } = setup()
    const H = hash(5)
    const seeder = sig.open(v4(1))
    const other = sig.open(v4(2))
    const leecher = sig.open(v4(3))
    ok(sig.announce(seeder, wsReq(H, peer(1), { event: EVENT_STARTED, left: 0 }), undefined, NOW))
    ok(sig.announce(other, wsReq(H, peer(2), { event: EVENT_STARTED, left: 0 }), undefined, NOW))
    ok(sig.announce(leecher, wsReq(H, peer(3), { event: EVENT_STARTED }), undefined, NOW))
    for (let i = 0; i < 20; i++) {
      const d = ok(sig.announce(seeder, wsReq(H, peer(1), { left: 0 }), offers(5), NOW))
      assert.deepEqual(d.slice(1).map(([c]) => c), [leecher])
    }
  })

  it('stopped leaves the swarm and relays nothing', () => {
    const { store, sig } = setup()
    const H = hash(6)
    const a = sig.open(v4(1))
    const b = sig.open(v4(2))
    ok(sig.announce(a, wsReq(H, peer(1), { event: EVENT_STARTED }), undefined, NOW))
    ok(sig.announce(b, wsReq(H, peer(2), { event: EVENT_STARTED }), undefined, NOW))
    const d = decoded(ok(sig.announce(b, wsReq(H, peer(2), { event: EVENT_STOPPED }), offers(3), NOW)))
    assert.deepEqual(d, [[b, { type: 'announce', infoHash: H, interval: WS_INTERVAL, complete: 0, incomplete: 1 }]])
    assert.deepEqual(wsPeersOf(store, H), [[peer(1), a]])
  })
})

describe('Signalling: peer id binding', () => {
  it('a peer id bound to one socket is refused on another for announce, stop and answer', () => {
    const { store, sig } = setup()
    const H = hash(10)
    const a = sig.open(v4(1))
    const b = sig.open(v4(2))
    ok(sig.announce(a, wsReq(H, peer(1), { event: EVENT_STARTED }), undefined, NOW))
    assert.equal(sig.mayUse(a, peer(1)), true)
    assert.equal(sig.mayUse(b, peer(1)), false)
    refused(sig.announce(b, wsReq(H, peer(1), { event: EVENT_STARTED }), undefined, NOW), 'PEER_ID_BOUND')
    refused(sig.announce(b, wsReq(hash(11), peer(1), { event: EVENT_STARTED }), undefined, NOW), 'PEER_ID_BOUND')
    refused(sig.announce(b, wsReq(H, peer(1), { event: EVENT_STOPPED }), undefined, NOW), 'PEER_ID_BOUND')
    refused(sig.answer(b, H, peer(1), { toPeerId: peer(2), offerId: 'x', sdpJson: '"y"' }, NOW), 'PEER_ID_BOUND')
    assert.deepEqual(wsPeersOf(store, H), [[peer(1), a]], 'the refused announces changed nothing')
    assert.equal(store.swarmInfo(hash(11)), undefined)

    // once A closes, the id is free
    sig.close(a)
    assert.deepEqual(wsPeersOf(store, H), [])
    assert.equal(sig.mayUse(b, peer(1)), true)
    ok(sig.announce(b, wsReq(H, peer(1), { event: EVENT_STARTED }), undefined, NOW))
    assert.deepEqual(wsPeersOf(store, H), [[peer(1), b]])
  })

  it('the binding lasts until the socket has left every swarm with that id', () => {
    const { sig } = setup()
    const a = sig.open(v4(1))
    const b = sig.open(v4(2))
    ok(sig.announce(a, wsReq(hash(12), peer(1), { event: EVENT_STARTED }), undefined, NOW))
    ok(sig.announce(a, wsReq(hash(13), peer(1), { event: EVENT_STARTED }), undefined, NOW))
    ok(sig.announce(a, wsReq(hash(12), peer(1)), undefined, NOW)) // a re-announce binds nothing more
    ok(sig.announce(a, wsReq(hash(12), peer(1), { event: EVENT_STOPPED }), undefined, NOW))
    assert.equal(sig.mayUse(b, peer(1)), false, 'still in one swarm')
    ok(sig.announce(a, wsReq(hash(12), peer(1), { event: EVENT_STOPPED }), undefined, NOW)) // stopping twice unbinds nothing more
    assert.equal(sig.mayUse(b, peer(1)), false)
    ok(sig.announce(a, wsReq(hash(13), peer(1), { event: EVENT_STOPPED }), undefined, NOW))
    assert.equal(sig.mayUse(b, peer(1)), true)
    ok(sig.announce(b, wsReq(hash(12), peer(1), { event: EVENT_STARTED }), undefined, NOW))
    assert.equal(sig.mayUse(a, peer(1)), false, 'now bound to B')
  })
})

describe('Signalling: answers', () => {
  /** Sender P1 on A offers to P2 on B (its only other peer); returns the relayed offer id. */
  function offered (): { store: MemoryStore, sig: Signalling, a: number, b: number, H: BinaryString, offerId: string } {
    const { store, sig } = setup()
    const H = hash(20)
    const a = sig.open(v4(1))
    const b = sig.open(v4(2))
    ok(sig.announce(b, wsReq(H, peer(2), { event: EVENT_STARTED }), undefined, NOW))
    const d = decoded(ok(sig.announce(a, wsReq(H, peer(1), { event: EVENT_STARTED }), offers(1), NOW)))
    assert.equal(d.length, 2)
    const [to, m] = d[1]
    assert.equal(to, b)
    assert.ok(m.type === 'offer')
    return { store, sig, a, b, H, offerId: m.offerId }
  }

  it('forwards an answer to the offering socket only, naming the answerer; nothing goes back', () => {
    const { sig, a, b, H, offerId } = offered()
    const d = decoded(ok(sig.answer(b, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"v=0 answer"' }, NOW)))
    assert.deepEqual(d, [[a, { type: 'answer', infoHash: H, peerId: peer(2), offerId, sdp: 'v=0 answer' }]])
  })

  it('refuses a second answer to the same offer', () => {
    const { sig, b, H, offerId } = offered()
    ok(sig.answer(b, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW))
    refused(sig.answer(b, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
  })

  it('refuses a forged offer id, a wrong to_peer_id and a wrong info hash', () => {
    const { sig, b, H, offerId } = offered()
    refused(sig.answer(b, H, peer(2), { toPeerId: peer(1), offerId: 'forged'.padEnd(20, 'x'), sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
    refused(sig.answer(b, H, peer(2), { toPeerId: peer(3), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
    refused(sig.answer(b, H, peer(2), { toPeerId: peer(2), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
    refused(sig.answer(b, hash(21), peer(2), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
    // the genuine answer still works after the refused ones
    ok(sig.answer(b, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW))
  })

  it('refuses an answer from another socket or another peer id', () => {
    const { sig, a, b, H, offerId } = offered()
    const c = sig.open(v4(3))
    // C, as an unbound id or as the offerer itself, was never offered anything
    refused(sig.answer(c, H, peer(3), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
    refused(sig.answer(a, H, peer(1), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
    // as the peer it was relayed to: that id is bound to B
    refused(sig.answer(c, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW), 'PEER_ID_BOUND')
    // B answering under another (unbound) peer id
    refused(sig.answer(b, H, peer(7), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
    // once B is gone, nobody can answer for it
    sig.close(b)
    refused(sig.answer(c, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
  })

  it('an offer can be answered for WS_OFFER_TTL_MS, not after', () => {
    const ttl = WS_OFFER_TTL_MS / 1000
    const late = offered()
    refused(late.sig.answer(late.b, late.H, peer(2), { toPeerId: peer(1), offerId: late.offerId, sdpJson: '"s"' }, NOW + ttl + 1), 'UNKNOWN_OFFER')
    const inTime = offered()
    ok(inTime.sig.answer(inTime.b, inTime.H, peer(2), { toPeerId: peer(1), offerId: inTime.offerId, sdpJson: '"s"' }, NOW + ttl))
  })

  it('an answer to a socket that has closed is refused', () => {
    const { sig, a, b, H, offerId } = offered()
    sig.close(a)
    refused(sig.answer(b, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_PEER')
  })
})

describe('Signalling: closing and limits', () => {
  it('closing a socket removes its peers from every swarm', () => {
    const { store, sig } = setup()
    const a = sig.open(v4(1))
    const b = sig.open(v4(2))
    for (let i = 0; i < 3; i++) ok(sig.announce(a, wsReq(hash(30 + i), peer(1), { event: EVENT_STARTED, left: i === 0 ? 0 : 10 }), undefined, NOW))
    ok(sig.announce(b, wsReq(hash(30), peer(2), { event: EVENT_STARTED }), undefined, NOW))
    store.announce(storeReq(hash(31), httpV4(1), { event: EVENT_STARTED }), NOW)
    assert.deepEqual(store.counts, { torrents: 3, retired: 0, peers: 5, seeders: 1, leechers: 4 })
    assert.equal(sig.close(a), undefined)
    assert.deepEqual(store.counts, { torrents: 2, retired: 0, peers: 2, seeders: 0, leechers: 2 })
    assert.deepEqual(wsPeersOf(store, hash(30)), [[peer(2), b]])
    assert.deepEqual(wsPeersOf(store, hash(31)), [])
    assert.equal(store.swarmInfo(hash(32)), undefined)
    sig.close(b)
    assert.deepEqual(store.counts, { torrents: 1, retired: 0, peers: 1, seeders: 0, leechers: 1 })
  })

  it('refuses a new swarm beyond maxSwarms, but not a re-announce or a stop', () => {
    const { store, sig } = setup({ maxSwarms: 3 })
    const a = sig.open(v4(1))
    for (let i = 0; i < 3; i++) ok(sig.announce(a, wsReq(hash(40 + i), peer(1), { event: EVENT_STARTED }), undefined, NOW))
    refused(sig.announce(a, wsReq(hash(43), peer(1), { event: EVENT_STARTED }), undefined, NOW), 'TOO_MANY_SWARMS')
    assert.equal(store.swarmInfo(hash(43)), undefined)
    ok(sig.announce(a, wsReq(hash(40), peer(1)), undefined, NOW))
    ok(sig.announce(a, wsReq(hash(44), peer(1), { event: EVENT_STOPPED }), undefined, NOW))
    ok(sig.announce(a, wsReq(hash(40), peer(1), { event: EVENT_STOPPED }), undefined, NOW))
    ok(sig.announce(a, wsReq(hash(43), peer(1), { event: EVENT_STARTED }), undefined, NOW))
    assert.equal(store.counts.peers, 3)
    // the limit is per socket
    ok(sig.announce(sig.open(v4(2)), wsReq(hash(45), peer(2), { event: EVENT_STARTED }), undefined, NOW))
  })

  it('uses WS_MAX_SWARMS_PER_SOCKET by default', () => {
    const { sig } = setup()
    const a = sig.open(v4(1))
    for (let i = 0; i < WS_MAX_SWARMS_PER_SOCKET; i++) ok(sig.announce(a, wsReq(hash(1000 + i), peer(1), { event: EVENT_STARTED }), undefined, NOW))
    refused(sig.announce(a, wsReq(hash(5000), peer(1), { event: EVENT_STARTED }), undefined, NOW), 'TOO_MANY_SWARMS')
  })

  it('one socket may carry two peer ids in the same swarm (pooled sockets), and they signal each other', () => {
    const { store, sig } = setup()
    const H = hash(50)
    const pool = sig.open(v4(1))
    ok(sig.announce(pool, wsReq(H, peer(1), { event: EVENT_STARTED }), undefined, NOW))
    ok(sig.announce(pool, wsReq(H, peer(2), { event: EVENT_STARTED, left: 0 }), undefined, NOW))
    assert.deepEqual(wsPeersOf(store, H), [[peer(1), pool], [peer(2), pool]].sort())

    // peer 1's offer reaches peer 2, over the same socket
    const d = decoded(ok(sig.announce(pool, wsReq(H, peer(1)), offers(1), NOW)))
    assert.equal(d.length, 2, 'the offer is relayed to the other peer id on the same socket')
    const [to, m] = d[1]
    assert.equal(to, pool)
    assert.ok(m.type === 'offer')
    assert.equal(m.peerId, peer(1))
    // peer 1 cannot answer its own offer; peer 2 can
    refused(sig.answer(pool, H, peer(1), { toPeerId: peer(1), offerId: m.offerId, sdpJson: '"s"' }, NOW), 'UNKNOWN_OFFER')
    const back = decoded(ok(sig.answer(pool, H, peer(2), { toPeerId: peer(1), offerId: m.offerId, sdpJson: '"ans"' }, NOW)))
    assert.deepEqual(back, [[pool, { type: 'answer', infoHash: H, peerId: peer(2), offerId: m.offerId, sdp: 'ans' }]])

    // stopping one id leaves the other
    ok(sig.announce(pool, wsReq(H, peer(1), { event: EVENT_STOPPED }), undefined, NOW))
    assert.deepEqual(wsPeersOf(store, H), [[peer(2), pool]])
    ok(sig.announce(pool, wsReq(H, peer(1), { event: EVENT_STARTED }), undefined, NOW))
    sig.close(pool)
    assert.deepEqual(store.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 })
  })
})

describe('Signalling over a store that answers with Promises', () => {
  it('relays, answers and closes the same way, once the store has answered', async () => {
    const inner = new MemoryStore({ peerTtl: 1200 })
    const sig = new Signalling(behindPromises(inner), { wsInterval: WS_INTERVAL })
    const H = hash(60)
    const a = sig.open(v4(1))
    const b = sig.open(v4(2))
    const pb = sig.announce(b, wsReq(H, peer(2), { event: EVENT_STARTED }), undefined, NOW)
    assert.ok(pb instanceof Promise)
    const rb = await pb
    assert.ok(rb.ok)
    const ra = await sig.announce(a, wsReq(H, peer(1), { event: EVENT_STARTED }), offers(2), NOW)
    assert.ok(ra.ok)
    const d = decoded(ra.deliveries)
    assert.deepEqual(d[0], [a, { type: 'announce', infoHash: H, interval: WS_INTERVAL, complete: 0, incomplete: 2 }])
    assert.equal(d.length, 2)
    const [to, m] = d[1]
    assert.equal(to, b)
    assert.ok(m.type === 'offer')
    assert.deepEqual(decoded(ok(sig.answer(b, H, peer(2), { toPeerId: peer(1), offerId: m.offerId, sdpJson: '"x"' }, NOW))),
      [[a, { type: 'answer', infoHash: H, peerId: peer(2), offerId: m.offerId, sdp: 'x' }]])

    const closing = sig.close(a)
    assert.ok(closing instanceof Promise, 'close waits for the store')
    await closing
    assert.deepEqual(wsPeersOf(inner, H), [[peer(2), b]])
  })

  it('a close racing an announce still removes the peer', async () => {
    const inner = new MemoryStore({ peerTtl: 1200 })
    const sig = new Signalling(behindPromises(inner), { wsInterval: WS_INTERVAL })
    const a = sig.open(v4(1))
    const pending = sig.announce(a, wsReq(hash(61), peer(1), { event: EVENT_STARTED }), undefined, NOW)
    await sig.close(a)
    await pending
    assert.deepEqual(inner.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 })
    assert.equal(sig.mayUse(sig.open(v4(2)), peer(1)), true)
  })
})

/** Nodes sharing one store, with a bus that queues signals until the test hands them over. */
function nodes (count: number): { store: MemoryStore, sigs: Signalling[], sent: Array<[from: number, to: number, RemoteSignal]> } {
  const store = new MemoryStore({ peerTtl: 1200 })
  const sent: Array<[number, number, RemoteSignal]> = []
  const sigs = Array.from({ length: count }, (_, i) => {
    const bus: SignalBus = { node: i + 1, send (to, signal) { sent.push([i + 1, to, signal]) } }
    return new Signalling(store, { wsInterval: WS_INTERVAL, bus })
  })
  return { store, sigs, sent }
}

describe('Signalling across nodes (SignalBus)', () => {
  it('connection numbers carry the node number; without a bus they are node 0', () => {
    const { sigs } = nodes(2)
    const a = sigs[0].open(v4(1))
    const b = sigs[1].open(v4(2))
    assert.equal(nodeOfConn(a), 1)
    assert.equal(nodeOfConn(b), 2)
    assert.equal(a, CONN_NODE_FACTOR + 1)
    assert.equal(nodeOfConn(setup().sig.open(v4(3))), 0)
  })

  it('a bus that learns its node number after construction (from Redis) numbers later connections with it', () => {
    const bus: SignalBus & { node: number } = { node: 0, send () {} }
    const sig = new Signalling(new MemoryStore({ peerTtl: 1200 }), { wsInterval: WS_INTERVAL, bus })
    assert.equal(nodeOfConn(sig.open(v4(1))), 0)
    bus.node = 7
    const c = sig.open(v4(2))
    assert.equal(c, 7 * CONN_NODE_FACTOR + 2)
    assert.equal(sig.isOpen(c), true)
  })

  it('an offer to a peer on another node goes over the bus; its answer comes back over the bus', () => {
    const { sigs, sent } = nodes(2)
    const [A, B] = sigs
    const H = hash(90)
    const b = B.open(v4(2))
    ok(B.announce(b, wsReq(H, peer(2), { event: EVENT_STARTED }), undefined, NOW))
    const a = A.open(v4(1))
    const d = decoded(ok(A.announce(a, wsReq(H, peer(1), { event: EVENT_STARTED }), offers(1), NOW)))
    assert.equal(d.length, 1, 'only the announce reply is delivered locally')
    assert.equal(sent.length, 1)
    const [from, to, signal] = sent[0]
    assert.deepEqual([from, to, signal.t, signal.conn], [1, 2, 'offer', b])
    // The answer is refused until the offer has arrived: B has not relayed it.
    const offerId = offers(1)[0].offerId
    refused(B.answer(b, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"x"' }, NOW), 'UNKNOWN_OFFER')
    assert.deepEqual(decoded(B.receive(signal)), [[b, { type: 'offer', infoHash: H, peerId: peer(1), offerId, sdp: 'v=0 offer o0' }]])
    assert.deepEqual(ok(B.answer(b, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"x"' }, NOW)), [], 'the answer leaves over the bus')
    assert.equal(sent.length, 2)
    const [from2, to2, back] = sent[1]
    assert.deepEqual([from2, to2, back.t, back.conn], [2, 1, 'answer', a])
    assert.deepEqual(decoded(A.receive(back)), [[a, { type: 'answer', infoHash: H, peerId: peer(2), offerId, sdp: 'x' }]])
    // Answered once: a second answer is refused.
    refused(B.answer(b, H, peer(2), { toPeerId: peer(1), offerId, sdpJson: '"y"' }, NOW), 'UNKNOWN_OFFER')
  })

  it('a signal for a connection that has closed delivers nothing', () => {
    const { sigs, sent } = nodes(2)
    const [A, B] = sigs
    const H = hash(91)
    const b = B.open(v4(2))
    ok(B.announce(b, wsReq(H, peer(2), { event: EVENT_STARTED }), undefined, NOW))
    const a = A.open(v4(1))
    ok(A.announce(a, wsReq(H, peer(1), { event: EVENT_STARTED }), offers(1), NOW))
    B.close(b)
    assert.deepEqual(B.receive(sent[0][2]), [])
    assert.deepEqual(A.receive({ t: 'answer', conn: a + 5, message: '{}' }), [])
  })
})
