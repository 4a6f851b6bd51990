/**
 * Bad input on every protocol, against a running Server over loopback: each gets its clear
 * failure reason (or silence where SPEC §3 says so), fires 'warning', and changes no state.
 * Then property-based fuzzing of all three transports interleaved with valid announces.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  encodeAnnounceRequest as encodeUdpAnnounce, encodeConnectRequest, encodeScrapeRequest as encodeUdpScrape
} from '../../src/protocol/udp/codec.js'
import { encodeAnnounceQuery } from '../../src/protocol/http/announce.js'
import { encodeScrapeQuery } from '../../src/protocol/http/scrape.js'
import {
  MAX_QUERY_PARAMS, MAX_SCRAPE_HASHES, MAX_URL_LENGTH, UDP_MAX_PACKET, UDP_MAX_SCRAPE_HASHES, WS_MAX_OFFERS, WS_MAX_PAYLOAD
} from '../../src/constants.js'
import {
  AgentPool, TRANSPORTS, hex, httpGet, id20, rawTcp, startServer, udpClient, waitFor, wsClient, withTimeout,
  REPLY_TIMEOUT_MS
} from '../helpers/tracker-clients.js'
import type { Agent, StartedServer, UdpClient, WsClient } from '../helpers/tracker-clients.js'
import type { Server } from '../../src/server/server.js'

const IH = Buffer.from('00ff80c3a9e282ac0001feed7f8081a0ffee0000', 'hex').toString('latin1')
const IH2 = id20(2)

function pct (b: string): string {
  return Buffer.from(b, 'latin1').toString('hex').replace(/../g, '%$&')
}

function failureBody (reason: string): string {
  return `d14:failure reason${Buffer.byteLength(reason)}:${reason}e`
}

/** Everything observable about swarm state. */
function snapshot (server: Server): unknown {
  const keys = Object.keys(server.torrents).sort()
  return {
    keys,
    torrents: keys.map(k => {
      const t = server.torrents[k]!
      return {
        complete: t.complete,
        incomplete: t.incomplete,
        downloaded: t.downloaded,
        peers: Array.from(t.peers.entries()).sort((a, b) => a[0] < b[0] ? -1 : 1)
      }
    }),
    stats: JSON.parse(JSON.stringify(server.getStats()))
  }
}

/**
 * Counts recomputed from `server.torrents[*].peers` equal the ones the server keeps (swarm
 * complete/incomplete and every /stats.json number).
 */
function assertConsistent (server: Server): void {
  const byPeerId = new Map<string, { seed: boolean, leech: boolean, v4: boolean, v6: boolean }>()
  const keys = Object.keys(server.torrents)
  for (const k of keys) {
    const t = server.torrents[k]!
    let complete = 0
    let incomplete = 0
    for (const p of t.peers.values()) {
      if (p.complete) complete++; else incomplete++
      const e = byPeerId.get(p.peerId) ?? { seed: false, leech: false, v4: false, v6: false }
      if (p.complete) e.seed = true; else e.leech = true
      if (p.ip.includes(':')) e.v6 = true; else e.v4 = true
      byPeerId.set(p.peerId, e)
    }
    assert.equal(t.complete, complete, `complete of ${k}`)
    assert.equal(t.incomplete, incomplete, `incomplete of ${k}`)
    assert.ok(complete + incomplete > 0, `empty swarm ${k} still listed`)
  }
  const st = server.getStats()
  const all = Array.from(byPeerId.values())
  assert.equal(st.activeTorrents, keys.length)
  assert.ok(st.torrents >= st.activeTorrents)
  assert.equal(st.peersAll, byPeerId.size)
  assert.equal(st.peersSeederOnly, all.filter(e => e.seed && !e.leech).length)
  assert.equal(st.peersLeecherOnly, all.filter(e => e.leech && !e.seed).length)
  assert.equal(st.peersSeederAndLeecher, all.filter(e => e.seed && e.leech).length)
  assert.equal(st.peersIPv4, all.filter(e => e.v4).length)
  assert.equal(st.peersIPv6, all.filter(e => e.v6).length)
  let clients = 0
  for (const versions of Object.values(st.clients)) for (const n of Object.values(versions)) clients += n
  assert.equal(clients, byPeerId.size)
}

/** A server with a small swarm in place (one peer per transport), shared by a describe. */
function hostileServer (): { s: () => StartedServer, pool: () => AgentPool } {
  let s: StartedServer
  let pool: AgentPool
  before(async () => {
    s = await startServer()
    pool = new AgentPool(s)
    let i = 0
    for (const t of TRANSPORTS) {
      const a = await pool.create(t, id20(100 + i), 40000 + i)
      await a.announce(IH, { event: 'started', left: i % 2 === 0 ? 0 : 10, offers: 0 })
      i++
    }
    assert.equal(s.server.torrents[hex(IH)]?.peers.size, 5)
  })
  after(async () => {
    await pool.closeAll()
    await s.close()
  })
  return { s: () => s, pool: () => pool }
}

/** Runs `fn`, then checks that exactly the given warnings fired and no state changed. */
async function unchanged (s: StartedServer, warnings: Array<string | RegExp>, fn: () => Promise<void>): Promise<void> {
  const before = snapshot(s.server)
  const w = s.warnings.length
  await fn()
  const fired = s.warnings.slice(w).map(e => e.message)
  assert.equal(fired.length, warnings.length, `warnings: ${JSON.stringify(fired)}`)
  warnings.forEach((expected, i) => {
    if (typeof expected === 'string') assert.equal(fired[i], expected)
    else assert.match(fired[i], expected)
  })
  assert.deepEqual(snapshot(s.server), before)
}

// =============================================================================================
// HTTP
// =============================================================================================

describe('hostile HTTP', () => {
  const h = hostileServer()
  const ih = pct(IH)
  const pid = pct(id20(1))
  const ok = `info_hash=${ih}&peer_id=${pid}&port=6881`

  const tooLong = '/announce?' + `${ok}&pad=`.padEnd(MAX_URL_LENGTH - 10 + 1, 'a')
  const atLimit = '/announce?' + 'pad='.padEnd(MAX_URL_LENGTH - 10, 'a')
  const params = (n: number): string => Array.from({ length: n }, (_, i) => `p${i}=1`).join('&')
  const hashes = (n: number): string => encodeScrapeQuery(Array.from({ length: n }, (_, i) => id20(300 + i)))
  const badEscape = (q: string, at: string): [string, string] =>
    [`/announce?${q}`, `malformed query string: bad escape or character at offset ${q.lastIndexOf(at)}`]

  const cases: Array<[string, string, string]> = [
    ['missing info_hash', `/announce?peer_id=${pid}&port=1`, 'invalid info_hash: missing'],
    ['empty info_hash', `/announce?info_hash=&peer_id=${pid}&port=1`, 'invalid info_hash: 0 bytes, need 20'],
    ['short info_hash', `/announce?info_hash=${pct(IH.slice(0, 19))}&peer_id=${pid}&port=1`, 'invalid info_hash: 19 bytes, need 20'],
    ['long info_hash', `/announce?info_hash=${pct(IH + 'x')}&peer_id=${pid}&port=1`, 'invalid info_hash: 21 bytes, need 20'],
    ['hex info_hash', `/announce?info_hash=${hex(IH)}&peer_id=${pid}&port=1`, 'invalid info_hash: 40 bytes, need 20'],
    ['repeated info_hash', `/announce?${ok}&info_hash=${ih}`, 'invalid info_hash: repeated'],
    ['missing peer_id', `/announce?info_hash=${ih}&port=1`, 'invalid peer_id: missing'],
    ['short peer_id', `/announce?info_hash=${ih}&peer_id=abcde&port=1`, 'invalid peer_id: 5 bytes, need 20'],
    ['long peer_id', `/announce?info_hash=${ih}&peer_id=${pid}x&port=1`, 'invalid peer_id: 21 bytes, need 20'],
    ['missing port', `/announce?info_hash=${ih}&peer_id=${pid}`, 'invalid port: missing'],
    ['port 0', `/announce?info_hash=${ih}&peer_id=${pid}&port=0`, 'invalid port'],
    ['port 65536', `/announce?info_hash=${ih}&peer_id=${pid}&port=65536`, 'invalid port'],
    ['negative port', `/announce?info_hash=${ih}&peer_id=${pid}&port=-1`, 'invalid port'],
    ['port not a number', `/announce?info_hash=${ih}&peer_id=${pid}&port=http`, 'invalid port'],
    ['empty port', `/announce?info_hash=${ih}&peer_id=${pid}&port=`, 'invalid port'],
    ['unknown event', `/announce?${ok}&event=begun`, 'invalid event'],
    ['event in capitals', `/announce?${ok}&event=STARTED`, 'invalid event'],
    ['negative uploaded', `/announce?${ok}&uploaded=-5`, 'invalid numeric parameter: uploaded'],
    ['fractional downloaded', `/announce?${ok}&downloaded=1.5`, 'invalid numeric parameter: downloaded'],
    ['left in exponent form', `/announce?${ok}&left=1e3`, 'invalid numeric parameter: left'],
    ['left beyond 2^53', `/announce?${ok}&left=9007199254740993`, 'invalid numeric parameter: left'],
    ['numwant not a number', `/announce?${ok}&numwant=all`, 'invalid numeric parameter: numwant'],
    ['negative numwant', `/announce?${ok}&numwant=-1`, 'invalid numeric parameter: numwant'],
    ['bad escape %ZZ', ...badEscape(`info_hash=%ZZ&peer_id=${pid}&port=1`, '%ZZ')],
    ['truncated escape at the end', ...badEscape(`${ok}&key=%4`, '%4')],
    ['lone % in a name', ...badEscape(`${ok}&a%=1`, '%=')],
    ['URL longer than MAX_URL_LENGTH', tooLong, 'request URL too long'],
    ['URL of exactly MAX_URL_LENGTH (reaches the decoder)', atLimit, 'invalid info_hash: missing'],
    ['too many params', `/announce?${params(MAX_QUERY_PARAMS + 1)}`, `too many query parameters: more than ${MAX_QUERY_PARAMS}`],
    ['MAX_QUERY_PARAMS params (reaches the decoder)', `/announce?${params(MAX_QUERY_PARAMS)}`, 'invalid info_hash: missing'],
    ['percent-encoded binary garbage', `/announce?%00%ff%80=%c3%28&%fe=%00&${pct('\x00\x01\x02')}`, 'invalid info_hash: missing'],
    ['garbage where ids go', `/announce?info_hash=%00%ff&peer_id=%80&port=1`, 'invalid info_hash: 2 bytes, need 20'],
    ['too many scrape hashes', `/scrape?${hashes(MAX_SCRAPE_HASHES + 1)}`, `too many info_hash values in scrape: more than ${MAX_SCRAPE_HASHES}`],
    ['short scrape hash', `/scrape?info_hash=${ih}&info_hash=abc`, 'invalid info_hash: 3 bytes, need 20'],
    ['bad escape in scrape', '/scrape?info_hash=%%%', 'malformed query string: bad escape or character at offset 10']
  ]
  assert.ok(tooLong.length === MAX_URL_LENGTH + 1 && atLimit.length === MAX_URL_LENGTH)

  for (const [name, path, reason] of cases) {
    it(`${name} → "${reason}"`, async () => {
      const s = h.s()
      await unchanged(s, [reason], async () => {
        const r = await httpGet(s.http4, path)
        assert.equal(r.status, 200)
        assert.equal(r.body.toString('latin1'), failureBody(reason))
      })
    })
  }

  it('a valid announce is still answered after all that, over IPv4 and IPv6', async () => {
    const s = h.s()
    for (const [i, base] of [s.http4, s.http6].entries()) {
      const r = await httpGet(base, `/announce?${encodeAnnounceQuery({
        infoHash: IH2, peerId: id20(9), port: 9, uploaded: 0, downloaded: 0, left: 0
      })}`)
      assert.equal(r.body.toString('latin1'), `d8:completei${i + 1}e10:incompletei0e8:intervali600e12:min intervali300e5:peers0:e`)
    }
    assert.equal(s.server.torrents[hex(IH2)]?.complete, 2)
  })

  it('raw bytes the HTTP parser refuses get 400 and a warning', async () => {
    const s = h.s()
    const requests = [
      Buffer.concat([Buffer.from('GET /announce?info_hash='), Buffer.from([0x80, 0xff, 0x00, 0x01, 0x7f]), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')]),
      Buffer.from('GET /announce?info_hash=\x01\x02 HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'),
      Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage that looks like TLS\r\n\r\n', 'latin1'),
      Buffer.from('GET /announce HTTP/1.1\r\nHo st: x\r\n\r\n')
    ]
    for (const req of requests) {
      await unchanged(s, [/^Parse Error/], async () => {
        const res = await rawTcp('127.0.0.1', s.port, req)
        assert.match(res.toString('latin1'), /^HTTP\/1\.1 400 Bad Request\r\n/)
      })
    }
  })

  it("a request target beyond Node's header limit gets 431 and a warning", async () => {
    const s = h.s()
    await unchanged(s, ['Parse Error: Header overflow'], async () => {
      const res = await rawTcp('127.0.0.1', s.port, `GET /announce?${ok}&pad=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)
      assert.match(res.toString('latin1'), /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
    })
  })

  it('a client that disconnects mid-request changes nothing', async () => {
    const s = h.s()
    const before = snapshot(s.server)
    for (const partial of [
      `GET /announce?${ok}`,
      `GET /announce?${ok}&event=started HTTP/1.1\r\nHost: x\r\n`,
      `GET /announce?${ok}&event=started HTTP/1.1\r\nHost: x\r\nUser-Agent: half a hea`
    ]) {
      await rawTcp('127.0.0.1', s.port, partial, { destroyAfterWrite: true })
    }
    // The next client is answered, and nothing of the partial requests was counted.
    const r = await httpGet(s.http4, `/scrape?info_hash=${ih}`)
    assert.equal(r.status, 200)
    assert.deepEqual(snapshot(s.server), before)
  })

  it('a client that vanishes after a whole request leaves consistent state', async () => {
    const s = h.s()
    await rawTcp('127.0.0.1', s.port, `GET /announce?${ok}&port=6999 HTTP/1.1\r\nHost: x\r\n\r\n`, { destroyAfterWrite: true })
    assert.equal((await httpGet(s.http4, `/scrape?info_hash=${ih}`)).status, 200)
    assertConsistent(s.server)
  })
})

// =============================================================================================
// UDP
// =============================================================================================

/** Deterministic bytes. */
function prng (seed: number): (n: number) => Buffer {
  let x = seed >>> 0
  return n => {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; b[i] = x >>> 24 }
    return b
  }
}

for (const family of [4, 6] as const) {
  describe(`hostile UDP v${family}`, () => {
    const h = hostileServer()
    let c: UdpClient
    let cid: Uint8Array
    before(async () => {
      c = await udpClient(family, h.s().port)
      cid = await c.connect()
    })
    after(() => c.close())

    /** Sends `packets`, then a barrier connect: nothing may come back before its reply. */
    async function expectSilence (packets: Uint8Array[]): Promise<void> {
      for (const p of packets) c.fire(p)
      assert.deepEqual((await c.drain()).map(b => b.toString('hex')), [])
      assert.equal(c.pending, 0)
    }

    async function expectError (packet: Uint8Array, reason: string): Promise<void> {
      const raw = await c.send(packet, REPLY_TIMEOUT_MS)
      assert.ok(raw !== undefined, `no error reply for "${reason}"`)
      const tid = Buffer.from(packet).readUInt32BE(12)
      assert.deepEqual(raw, Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from(packet.subarray(12, 16)), Buffer.from(reason)]),
        `tid ${tid}: ${raw.subarray(8).toString()}`)
    }

    const header = (action: number, tid: number, body: Uint8Array | number = 0): Buffer => {
      const b = Buffer.alloc(16 + (typeof body === 'number' ? body : body.length))
      Buffer.from(cid).copy(b, 0)
      b.writeUInt32BE(action, 8)
      b.writeUInt32BE(tid, 12)
      if (typeof body !== 'number') Buffer.from(body).copy(b, 16)
      return b
    }
    const announce = (patch: (b: Buffer) => void = () => {}): Buffer => {
      const b = Buffer.from(encodeUdpAnnounce({
        connectionId: cid,
        transactionId: 0x0a0b0c0d,
        request: { infoHash: IH, peerId: id20(50), port: 5050, downloaded: 0, left: 10, uploaded: 0, event: 2, numwant: -1 }
      }))
      patch(b)
      return b
    }

    it('every length 0..120 of random bytes gets no reply, one warning each, no state change', async () => {
      const s = h.s()
      const rnd = prng(family)
      const packets = Array.from({ length: 121 }, (_, n) => rnd(n))
      await unchanged(s, Array(121).fill(/^(malformed packet|invalid action)/), () => expectSilence(packets))
    })

    it('datagrams over UDP_MAX_PACKET bytes (valid announces padded, up to 64 KiB) get no reply', async () => {
      // The native path reads into 2048-byte slots: longer datagrams arrive cut, with their true length.
      const big = (n: number): Buffer => Buffer.concat([announce(), Buffer.alloc(n - 98)])
      const sizes = [UDP_MAX_PACKET + 1, UDP_MAX_PACKET + 98, 9000, 65000]
      await unchanged(h.s(), sizes.map(() => 'malformed packet: datagram too large'), () => expectSilence(sizes.map(big)))
      // One byte less is a valid announce with BEP 41 padding (option 0 ends the options): answered.
      const r = await c.send(big(UDP_MAX_PACKET), REPLY_TIMEOUT_MS)
      assert.equal(r?.readUInt32BE(0), 1)
      await c.announce({ infoHash: IH, peerId: id20(50), port: 5050, event: 3 })
    })

    it('a connect without the protocol id gets no reply', async () => {
      const bad = Buffer.from(encodeConnectRequest(7))
      bad[7] ^= 1
      await unchanged(h.s(), ['malformed packet: connect without the protocol id'], () => expectSilence([bad]))
    })

    it('announce and scrape of an unknown connection id get no reply, whatever follows', async () => {
      const s = h.s()
      const forge = (b: Buffer): Buffer => { b.fill(0x42, 0, 8); return b }
      // A well-formed request is refused for its id; a malformed one for its body — silently too.
      await unchanged(s, [
        'malformed packet: unknown or expired connection id',
        'malformed packet: unknown or expired connection id',
        'malformed packet: announce of 26 bytes, need 98',
        'scrape requires info_hash'
      ], () => expectSilence([
        forge(announce()),
        forge(Buffer.from(encodeUdpScrape(cid, 1, [IH]))),
        forge(header(1, 2, 10)),
        forge(header(2, 3, 0))
      ]))
    })

    it('without a valid connection id only a connect is answered, with 16 bytes: never a reply longer than its request', async () => {
      const s = h.s()
      const before = snapshot(s.server)
      const rnd = prng(100 + family)
      // First 8 bytes: the connect protocol id (a valid connect), zeros, random: any action, any length.
      const starts = [Buffer.from('0000041727101980', 'hex'), Buffer.alloc(8), rnd(8)]
      let tid = 0x80000000
      let connects = 0
      for (const start of starts) {
        for (const action of [0, 1, 2, 3, 4, 5, 0xffffffff]) {
          const sent = new Map<number, number>()
          for (let len = 16; len <= 120; len++) {
            const p = Buffer.concat([start, rnd(len - 8)])
            p.writeUInt32BE(action, 8)
            p.writeUInt32BE(++tid, 12)
            sent.set(tid, len)
            c.fire(p)
          }
          const replies = await c.drain()
          const valid = start.equals(starts[0]) && action === 0
          // A connect with the protocol id is answered (extra bytes after its 16 are ignored).
          assert.equal(replies.length, valid ? sent.size : 0, `start ${start.toString('hex')} action ${action}`)
          for (const r of replies) {
            assert.equal(r.length, 16)
            assert.equal(r.readUInt32BE(0), 0)
            assert.ok(sent.has(r.readUInt32BE(4)))
          }
          connects += replies.length
        }
      }
      assert.equal(connects, 105)
      assert.deepEqual(snapshot(s.server), before)
    })

    const errors: Array<[string, () => Buffer, string]> = [
      ['truncated announce (50 bytes)', () => announce().subarray(0, 50), 'malformed packet: announce of 50 bytes, need 98'],
      ['announce of 97 bytes', () => announce().subarray(0, 97), 'malformed packet: announce of 97 bytes, need 98'],
      ['announce header only', () => header(1, 77), 'malformed packet: announce of 16 bytes, need 98'],
      ['event 4', () => announce(b => b.writeUInt32BE(4, 80)), 'invalid event: 4'],
      ['event 2^32-1', () => announce(b => b.writeUInt32BE(0xffffffff, 80)), 'invalid event: 4294967295'],
      ['port 0', () => announce(b => b.writeUInt16BE(0, 96)), 'invalid port: 0'],
      ['BEP 41 URL data over the limit', () => Buffer.concat([announce(), Buffer.from(Array.from({ length: 5 }, () => [2, 255, ...Buffer.alloc(255, 0x61)]).flat())]),
        'request URL too long: BEP 41 URL data over 1024 bytes'],
      ['scrape with 0 hashes', () => header(2, 78), 'scrape requires info_hash'],
      ['scrape with 75 hashes', () => header(2, 79, Buffer.alloc(20 * (UDP_MAX_SCRAPE_HASHES + 1), 1)), `too many info_hash values in scrape: 75 > ${UDP_MAX_SCRAPE_HASHES}`],
      ['scrape with a partial hash', () => header(2, 80, 30), 'invalid info_hash: scrape body of 30 bytes is not whole 20-byte hashes'],
      ['unknown action 4 with a valid connection id', () => header(4, 81, 20), 'invalid action: 4'],
      ['action 2^32-1 with a valid connection id', () => header(0xffffffff, 82), 'invalid action: 4294967295']
    ]
    for (const [name, make, reason] of errors) {
      it(`${name} → error "${reason}"`, async () => {
        await unchanged(h.s(), [reason], () => expectError(make(), reason))
      })
    }

    it('every announce length 16..97 behind a valid connection id gets its error', async () => {
      const s = h.s()
      const full = announce()
      await unchanged(s, Array.from({ length: 82 }, (_, i) => `malformed packet: announce of ${16 + i} bytes, need 98`), async () => {
        for (let len = 16; len < 98; len++) {
          const p = Buffer.from(full.subarray(0, len))
          p.writeUInt32BE(len, 12)
          await expectError(p, `malformed packet: announce of ${len} bytes, need 98`)
        }
      })
    })

    it('a valid announce is still answered', async () => {
      const s = h.s()
      const r = await c.announce({ infoHash: IH2, peerId: id20(60), port: 6060, left: 0 })
      assert.equal(r.action, 'announce')
      assert.ok((s.server.torrents[hex(IH2)]?.complete ?? 0) >= 1)
    })
  })
}

// =============================================================================================
// WebSocket
// =============================================================================================

describe('hostile WS', () => {
  const h = hostileServer()
  let c: WsClient
  before(async () => { c = await wsClient(h.s().ws) })
  after(async () => { await c.close() })

  const A = { action: 'announce', info_hash: IH, peer_id: id20(70), numwant: 0, uploaded: 0, downloaded: 0, left: 5 }
  const offer = (id: string): unknown => ({ offer_id: id, offer: { type: 'offer', sdp: 'x' } })
  const fail = (reason: string, action?: string, infoHash?: string): string =>
    JSON.stringify({ ...(action === undefined ? {} : { action }), 'failure reason': reason, ...(infoHash === undefined ? {} : { info_hash: infoHash }) })

  const cases: Array<[string, string | Buffer, string]> = [
    ['not JSON', 'hello tracker', fail('invalid JSON')],
    ['truncated JSON', '{"action":"announce"', fail('invalid JSON')],
    ['JSON array', '[1,2,3]', fail('invalid JSON')],
    ['JSON number', '42', fail('invalid JSON')],
    ['JSON null', 'null', fail('invalid JSON')],
    ['JSON string', '"announce"', fail('invalid JSON')],
    ['empty frame', '', fail('invalid JSON')],
    ['binary frame', Buffer.from(JSON.stringify(A)), fail('invalid JSON')],
    ['no action', JSON.stringify({ info_hash: IH }), fail('invalid action')],
    ['unknown action', JSON.stringify({ ...A, action: 'connect' }), fail('invalid action')],
    ['action of the wrong type', JSON.stringify({ ...A, action: 1 }), fail('invalid action')],
    ['info_hash a number', JSON.stringify({ ...A, info_hash: 12345 }), fail('invalid info_hash', 'announce')],
    ['info_hash 19 chars', JSON.stringify({ ...A, info_hash: IH.slice(1) }), fail('invalid info_hash', 'announce')],
    ['info_hash with a char above 0xff', JSON.stringify({ ...A, info_hash: '€'.repeat(20) }), fail('invalid info_hash', 'announce')],
    ['info_hash a list', JSON.stringify({ ...A, info_hash: [IH] }), fail('invalid info_hash', 'announce')],
    ['peer_id missing', JSON.stringify({ ...A, peer_id: undefined }), fail('invalid peer_id', 'announce', IH)],
    ['peer_id an object', JSON.stringify({ ...A, peer_id: { a: 1 } }), fail('invalid peer_id', 'announce', IH)],
    ['uploaded a word', JSON.stringify({ ...A, uploaded: 'lots' }), fail('invalid numeric parameter: uploaded', 'announce', IH)],
    ['downloaded negative', JSON.stringify({ ...A, downloaded: -1 }), fail('invalid numeric parameter: downloaded', 'announce', IH)],
    ['left an object', JSON.stringify({ ...A, left: {} }), fail('invalid numeric parameter: left', 'announce', IH)],
    ['left true', JSON.stringify({ ...A, left: true }), fail('invalid numeric parameter: left', 'announce', IH)],
    ['numwant fractional', JSON.stringify({ ...A, numwant: 1.5 }), fail('invalid numeric parameter: numwant', 'announce', IH)],
    ['event unknown', JSON.stringify({ ...A, event: 'begun' }), fail('invalid event', 'announce', IH)],
    ['event a number', JSON.stringify({ ...A, event: 2 }), fail('invalid event', 'announce', IH)],
    ['offers not a list', JSON.stringify({ ...A, offers: 'x' }), fail('invalid offer: offers is not an array', 'announce', IH)],
    ['offer not an object', JSON.stringify({ ...A, offers: [1] }), fail('invalid offer', 'announce', IH)],
    ['offer without offer_id', JSON.stringify({ ...A, offers: [{ offer: { type: 'offer', sdp: 'x' } }] }), fail('invalid offer: bad offer_id', 'announce', IH)],
    ['offer of type answer', JSON.stringify({ ...A, offers: [{ offer_id: 'a', offer: { type: 'answer', sdp: 'x' } }] }), fail('invalid offer: offer type is not "offer"', 'announce', IH)],
    ['offer sdp a number', JSON.stringify({ ...A, offers: [{ offer_id: 'a', offer: { type: 'offer', sdp: 1 } }] }), fail('invalid offer: offer sdp is not a string', 'announce', IH)],
    ['too many offers', JSON.stringify({ ...A, offers: Array.from({ length: WS_MAX_OFFERS + 1 }, (_, i) => offer(`o${i}`)) }), fail(`too many offers: more than ${WS_MAX_OFFERS}`, 'announce', IH)],
    ['answer a string', JSON.stringify({ ...A, answer: 'x', to_peer_id: id20(1), offer_id: 'a' }), fail('invalid answer: answer is not an object', 'announce', IH)],
    ['answer without to_peer_id', JSON.stringify({ ...A, answer: { type: 'answer', sdp: 'x' }, offer_id: 'a' }), fail('invalid to_peer_id (required with answer)', 'announce', IH)],
    ['answer without offer_id', JSON.stringify({ ...A, answer: { type: 'answer', sdp: 'x' }, to_peer_id: id20(1) }), fail('invalid answer: bad offer_id', 'announce', IH)],
    ['answer to an offer never made', JSON.stringify({ ...A, answer: { type: 'answer', sdp: 'x' }, to_peer_id: id20(100), offer_id: 'nope' }),
      fail('answer does not match an offer relayed to this peer', 'announce', IH)],
    ['scrape info_hash a number', JSON.stringify({ action: 'scrape', info_hash: 5 }), fail('invalid info_hash', 'scrape')],
    ['scrape with a bad hash in the list', JSON.stringify({ action: 'scrape', info_hash: [IH, 'short'] }), fail('invalid info_hash', 'scrape')],
    ['scrape of too many hashes', JSON.stringify({ action: 'scrape', info_hash: Array.from({ length: 75 }, (_, i) => id20(i)) }),
      fail('too many info_hash values in scrape: more than 74', 'scrape')],
    ['__proto__ games', '{"__proto__":{"action":"announce"},"info_hash":"x"}', fail('invalid action')]
  ]

  for (const [name, frame, reply] of cases) {
    it(`${name} → ${reply}`, async () => {
      const s = h.s()
      await unchanged(s, [JSON.parse(reply)['failure reason']], async () => {
        c.send(frame)
        assert.equal(await c.nextRaw(REPLY_TIMEOUT_MS), reply)
      })
    })
  }

  it('a huge frame closes that socket only; state and other sockets unaffected', async () => {
    const s = h.s()
    const victim = await wsClient(s.ws)
    await unchanged(s, [/Max payload size exceeded/], async () => {
      victim.send(JSON.stringify({ ...A, pad: 'x'.repeat(WS_MAX_PAYLOAD) }))
      assert.equal(await withTimeout(victim.closed, REPLY_TIMEOUT_MS, 'close'), 1009)
    })
    c.send({ action: 'scrape', info_hash: IH })
    assert.equal((await c.next()).action, 'scrape')
  })

  it('a socket that joined then sent garbage still leaves its swarm on close', async () => {
    const s = h.s()
    const before = snapshot(s.server)
    const d = await wsClient(s.ws)
    d.send({ ...A, peer_id: id20(71), event: 'started' })
    assert.equal((await d.next()).incomplete, 3)
    d.send('garbage')
    assert.equal((await d.next())['failure reason'], 'invalid JSON')
    await d.close()
    // No event tells when the server has seen the close: poll, bounded.
    assert.ok(await waitFor(() => s.server.torrents[hex(IH)]?.peers.size === 5, 2000))
    assert.deepEqual(snapshot(s.server), before)
  })
})

// =============================================================================================
// Fuzzing: random and mutated requests on all three transports, interleaved with valid ones
// =============================================================================================

describe('fuzzing a running server', () => {
  const h = hostileServer()
  let u4: UdpClient
  let u6: UdpClient
  let w: WsClient
  let valid: Agent[]
  before(async () => {
    const s = h.s()
    u4 = await udpClient(4, s.port)
    u6 = await udpClient(6, s.port)
    await u4.connect()
    await u6.connect()
    w = await wsClient(s.ws)
    valid = []
    for (const t of TRANSPORTS) valid.push(await h.pool().create(t, id20(900 + valid.length), 45000 + valid.length))
  })
  after(async () => {
    u4.close()
    u6.close()
    await w.close()
  })

  const HASHES = [IH, IH2, id20(3)]
  const validQuery = (ih: string, peer: number, event: string): string =>
    `info_hash=${pct(ih)}&peer_id=${pct(id20(peer))}&port=${1000 + peer}&left=${peer % 2}&event=${event}`

  type Cmd =
    | { t: 'http-raw', path: string }
    | { t: 'http-mutated', ih: number, peer: number, event: string, cut: number, insert: string }
    | { t: 'udp-raw', v6: boolean, bytes: Uint8Array, keepId: boolean }
    | { t: 'udp-mutated', v6: boolean, ih: number, peer: number, at: number, value: number, len: number }
    | { t: 'ws-raw', text: string }
    | { t: 'ws-mutated', ih: number, peer: number, field: string, value: unknown }
    | { t: 'valid', agent: number, ih: number, event: 'started' | 'completed' | 'stopped' | 'update', left: number }

  const events = fc.constantFrom('started', 'completed', 'stopped', '', 'paused', 'bogus')
  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    fc.record({
      t: fc.constant('http-raw' as const),
      // Printable ASCII (stray '%' included) as is; every other byte of the UTF-8 percent-encoded.
      path: fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 }), fc.uint8Array({ maxLength: 100 }).map(b => Buffer.from(b).toString('latin1')))
        .map(q => '/announce?' + Array.from(Buffer.from(q, 'utf8')).map(b => b > 0x20 && b < 0x7f ? String.fromCharCode(b) : '%' + b.toString(16).padStart(2, '0')).join(''))
    }),
    fc.record({
      t: fc.constant('http-mutated' as const), ih: fc.nat(2), peer: fc.nat(20), event: events,
      cut: fc.nat(200), insert: fc.constantFrom('', '%', '%zz', '&', '=', '&info_hash=x', '&port=0', '&numwant=99999999999999999999', '%00', '&&&')
    }),
    fc.record({ t: fc.constant('udp-raw' as const), v6: fc.boolean(), bytes: fc.uint8Array({ maxLength: 140 }), keepId: fc.boolean() }),
    fc.record({ t: fc.constant('udp-mutated' as const), v6: fc.boolean(), ih: fc.nat(2), peer: fc.nat(20), at: fc.integer({ min: 8, max: 130 }), value: fc.nat(255), len: fc.integer({ min: 16, max: 140 }) }),
    fc.record({ t: fc.constant('ws-raw' as const), text: fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 })) }),
    fc.record({
      t: fc.constant('ws-mutated' as const), ih: fc.nat(2), peer: fc.nat(20),
      field: fc.constantFrom('action', 'info_hash', 'peer_id', 'left', 'uploaded', 'numwant', 'event', 'offers', 'answer', 'to_peer_id', 'offer_id'),
      value: fc.jsonValue({ maxDepth: 2 })
    }),
    fc.record({ t: fc.constant('valid' as const), agent: fc.nat(TRANSPORTS.length - 1), ih: fc.nat(2), event: fc.constantFrom('started', 'completed', 'stopped', 'update'), left: fc.constantFrom(0, 100) })
  )

  async function run (c: Cmd): Promise<void> {
    const s = h.s()
    switch (c.t) {
      case 'http-raw': {
        // Node refuses some targets itself (400): either answer is fine, a hang or crash is not.
        const r = await httpGet(s.http4, c.path).catch(() => undefined)
        if (r !== undefined) assert.ok(r.status === 200 || r.status === 400 || r.status === 404, `status ${r.status}`)
        return
      }
      case 'http-mutated': {
        const q = validQuery(HASHES[c.ih], c.peer, c.event)
        const at = c.cut % (q.length + 1)
        const r = await httpGet(s.http6, `/announce?${q.slice(0, at)}${c.insert}${q.slice(at)}`)
        assert.equal(r.status, 200)
        assert.match(r.body.toString('latin1'), /^d/)
        return
      }
      case 'udp-raw': {
        const u = c.v6 ? u6 : u4
        const b = Buffer.from(c.bytes)
        if (c.keepId && b.length >= 8) Buffer.from(u.connectionId!).copy(b, 0)
        u.fire(b)
        return
      }
      case 'udp-mutated': {
        const u = c.v6 ? u6 : u4
        const b = Buffer.from(encodeUdpAnnounce({
          connectionId: u.connectionId!,
          transactionId: 1,
          request: { infoHash: HASHES[c.ih], peerId: id20(c.peer), port: 1000 + c.peer, downloaded: 0, left: c.peer % 2, uploaded: 0, event: 2, numwant: -1 }
        }))
        const m = Buffer.concat([b, Buffer.alloc(60)]).subarray(0, c.len)
        if (c.at < m.length) m[c.at] = c.value
        u.fire(m)
        return
      }
      case 'ws-raw':
        w.send(c.text)
        return
      case 'ws-mutated': {
        const msg: Record<string, unknown> = {
          action: 'announce', info_hash: HASHES[c.ih], peer_id: id20(500 + c.peer), numwant: 2, uploaded: 0, downloaded: 0, left: c.peer % 2
        }
        msg[c.field] = c.value
        w.send(msg)
        return
      }
      case 'valid': {
        const r = await valid[c.agent].announce(HASHES[c.ih], { event: c.event, left: c.left, offers: 1 })
        assert.equal(r.failure, undefined)
      }
    }
  }

  /** Lets every fire-and-forget datagram and frame be handled (a barrier on each client). */
  async function drain (): Promise<void> {
    await u4.drain()
    await u6.drain()
    await w.drain()
  }

  it('keeps serving and keeps its counts consistent', async () => {
    const s = h.s()
    const started = Date.now()
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 12 }), async cmds => {
        for (const c of cmds) await run(c)
        await drain()
        assertConsistent(s.server)
      }),
      { numRuns: 300, interruptAfterTimeLimit: 8000, seed: 0x5eed, endOnFailure: true }
    )
    assert.ok(Date.now() - started < 20_000)
    // Afterwards a valid announce works on every transport.
    for (const a of valid) {
      const r = await a.announce(IH2, { event: 'started', left: 0, offers: 0 })
      assert.equal(r.failure, undefined)
      assert.ok(s.server.torrents[hex(IH2)]?.peers.has(a.key), `${a.transport} peer missing`)
    }
    assertConsistent(s.server)
    assert.ok(s.warnings.length > 0)
  })
})
