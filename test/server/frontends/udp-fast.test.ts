/**
 * The UDP frontend's in-place path (announces and scrapes answered straight from the received
 * bytes into the reply, through the store's announceCompact / scrapeCompact) against its general
 * path (decoded objects, every rule), on both UDP backends: the same replies, the same state,
 * and the general path taken whenever something needs more than the swarm.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import type { CompactAnnounceResult, StoreAnnounce } from '../../../src/server/store/store.js'
import type { BinaryString } from '../../../src/protocol/common/types.js'
import { encodeAnnounceRequest, encodeScrapeRequest } from '../../../src/protocol/udp/codec.js'
import { UDP_MAX_URL_DATA } from '../../../src/constants.js'
import { id20, startServer, udpClient, REPLY_TIMEOUT_MS } from '../../helpers/tracker-clients.js'
import type { StartedServer } from '../../helpers/tracker-clients.js'

/** A MemoryStore that counts which of its announce entry points the frontend used. */
class CountingStore extends MemoryStore {
  compactCalls = 0
  announceCalls = 0
  scrapeCompactCalls = 0
  scrapeCalls = 0
  override announceCompact (a: StoreAnnounce, now: number, out: Uint8Array, offset: number): CompactAnnounceResult {
    this.compactCalls++
    return super.announceCompact(a, now, out, offset)
  }

  override announce (a: StoreAnnounce, now: number): ReturnType<MemoryStore['announce']> {
    this.announceCalls++
    return super.announce(a, now)
  }

  override scrapeCompact (infoHash: BinaryString, out: Uint8Array, offset: number): void {
    this.scrapeCompactCalls++
    super.scrapeCompact(infoHash, out, offset)
  }

  override scrape (infoHashes: readonly BinaryString[]): ReturnType<MemoryStore['scrape']> {
    this.scrapeCalls++
    return super.scrape(infoHashes)
  }
}

const H = id20(7)
const H2 = id20(8)

interface Announce { peerId: BinaryString, port: number, left: number, event: 0 | 1 | 2 | 3, numwant: number, infoHash?: BinaryString }

for (const backend of ['native', 'dgram'] as const) {
  for (const family of [4, 6] as const) {
    describe(`UDP in-place answers, ${backend} v${family}`, () => {
      async function withServer (fn: (s: StartedServer, store: CountingStore) => Promise<void>, general: boolean): Promise<void> {
        const store = new CountingStore({ peerTtl: 3600 })
        const s = await startServer({ udpBackend: backend, store, http: false, ws: false, stats: false, intervalJitter: 0 })
        // An announce listener needs the request's params: every announce takes the general path.
        if (general) s.server.on('update', () => {})
        try { await fn(s, store) } finally { await s.close() }
      }

      /** Runs one script of requests and returns the replies (peers sorted, since the pick is random). */
      async function script (general: boolean): Promise<{ replies: unknown[], store: CountingStore }> {
        let counting: CountingStore | undefined
        const replies: unknown[] = []
        await withServer(async (s, store) => {
          counting = store
          const c = await udpClient(family, s.port)
          try {
            const cid = await c.connect()
            let tid = 100
            const announce = async (a: Announce, urlData?: string): Promise<void> => {
              const t = tid++
              const raw = await c.send(encodeAnnounceRequest({
                connectionId: cid,
                transactionId: t,
                request: { infoHash: a.infoHash ?? H, peerId: a.peerId, port: a.port, downloaded: 5, left: a.left, uploaded: 6, event: a.event, numwant: a.numwant },
                ...(urlData !== undefined ? { urlData } : {})
              }), REPLY_TIMEOUT_MS)
              assert.ok(raw !== undefined, `a reply to ${t}`)
              const r = c.decode(raw)
              if (r.action === 'announce') {
                assert.equal(r.transactionId, t)
                replies.push({ ...r, peers: r.peers.map(p => Buffer.from(p.addr, 'latin1').toString('hex')).sort() })
              } else replies.push(r)
            }
            for (let i = 0; i < 8; i++) await announce({ peerId: id20(100 + i), port: 6000 + i, left: i < 3 ? 0 : 10, event: 2, numwant: 50 })
            await announce({ peerId: id20(100), port: 6000, left: 0, event: 0, numwant: 50 }) // a seeder: leechers only
            await announce({ peerId: id20(104), port: 6004, left: 10, event: 0, numwant: -1 }) // default numwant
            await announce({ peerId: id20(105), port: 6005, left: 10, event: 0, numwant: 3 }) // 3 of 7
            await announce({ peerId: id20(106), port: 6006, left: 0, event: 1, numwant: 50 }) // completed
            await announce({ peerId: id20(107), port: 6007, left: 10, event: 3, numwant: 50 }) // stopped
            await announce({ peerId: id20(103), port: 6003, left: 10, event: 0, numwant: 50 }, '/announce?x=1') // BEP 41 URL data
            await announce({ peerId: id20(103), port: 6003, left: 10, event: 0, numwant: 50 }, 'u'.repeat(UDP_MAX_URL_DATA + 1)) // refused
            await announce({ peerId: id20(200), port: 6100, left: 10, event: 2, numwant: 50, infoHash: H2 })
            for (const hashes of [[H], [H2, id20(9), H]]) {
              const t = tid++
              const raw = await c.send(encodeScrapeRequest(cid, t, hashes), REPLY_TIMEOUT_MS)
              assert.ok(raw !== undefined)
              replies.push(c.decode(raw))
            }
            // A wrong connection id: no answer on either path.
            const bad = Buffer.from(cid)
            bad[0] ^= 1
            assert.equal(await c.send(encodeScrapeRequest(bad, tid++, [H])), undefined)
            assert.equal(await c.send(encodeAnnounceRequest({
              connectionId: bad, transactionId: tid++, request: { infoHash: H, peerId: id20(1), port: 1, downloaded: 0, left: 0, uploaded: 0, event: 0, numwant: 5 }
            })), undefined)
            replies.push(s.server.torrents[Buffer.from(H, 'latin1').toString('hex')])
          } finally { c.close() }
        }, general)
        return { replies, store: counting! }
      }

      it('the in-place path gives the replies and state the general path gives', async () => {
        const fast = await script(false)
        const general = await script(true)
        // 3 of 7 is a random pick: compare how many.
        for (const run of [fast, general]) {
          const r = run.replies[10] as { peers: string[] | number }
          r.peers = (r.peers as string[]).length
        }
        assert.deepEqual(fast.replies, general.replies)
        // The reply each request got: spot checks of the content itself.
        const last = fast.replies.at(-1) as { complete: number, incomplete: number, downloaded: number }
        assert.deepEqual([last.complete, last.incomplete, last.downloaded], [4, 3, 1])
        const seederReply = fast.replies[8] as { seeders: number, leechers: number, peers: string[] }
        assert.equal(seederReply.peers.length, 5, 'a seeder gets the 5 leechers')
        assert.equal((fast.replies[10] as { peers: number }).peers, 3)
        assert.deepEqual((fast.replies[12] as { peers: string[] }).peers, [], 'stopped: no peers')
        assert.deepEqual(fast.replies[14], { action: 'error', transactionId: 114, message: general.replies[14] !== undefined ? (general.replies[14] as { message: string }).message : '' })
        assert.match((fast.replies[14] as { message: string }).message, /url|long/i)
        assert.deepEqual(fast.replies[16], { action: 'scrape', transactionId: 116, entries: [{ complete: 4, downloaded: 1, incomplete: 3 }] })
        assert.deepEqual(fast.replies[17], {
          action: 'scrape',
          transactionId: 117,
          entries: [{ complete: 0, downloaded: 0, incomplete: 1 }, { complete: 0, downloaded: 0, incomplete: 0 }, { complete: 4, downloaded: 1, incomplete: 3 }]
        })
        // Which path answered: in place unless something needed more; the refused URL data went the general way.
        assert.equal(fast.store.compactCalls, 15)
        assert.equal(fast.store.announceCalls, 0)
        assert.deepEqual([fast.store.scrapeCompactCalls, fast.store.scrapeCalls], [4, 0])
        assert.equal(general.store.compactCalls, 0)
        assert.equal(general.store.announceCalls, 15)
      })

      it('a listener added by user code while datagrams are handled hears the announces after it', async () => {
        const store = new CountingStore({ peerTtl: 3600 })
        const s = await startServer({ udpBackend: backend, store, http: false, ws: false, stats: false })
        const c = await udpClient(family, s.port)
        const heard: string[] = []
        // The first warning (a bad connection id) adds an 'update' listener, mid-burst.
        s.server.once('warning', () => { s.server.on('update', (addr: string) => heard.push(addr)) })
        try {
          const cid = await c.connect()
          const bad = Buffer.from(cid)
          bad[3] ^= 0x40
          const req = (connectionId: Uint8Array, t: number): Uint8Array => encodeAnnounceRequest({
            connectionId, transactionId: t, request: { infoHash: H, peerId: id20(t), port: 7000 + t, downloaded: 0, left: 1, uploaded: 0, event: 0, numwant: 5 }
          })
          c.fire(req(cid, 1))
          c.fire(req(bad, 2))
          c.fire(req(cid, 3))
          const tids = [(c.decode((await c.next(REPLY_TIMEOUT_MS))!)).transactionId, (c.decode((await c.next(REPLY_TIMEOUT_MS))!)).transactionId]
          assert.deepEqual(tids, [1, 3])
          const host = family === 4 ? '127.0.0.1' : '[::1]'
          assert.deepEqual(heard, [`${host}:7003`])
          assert.deepEqual([store.compactCalls, store.announceCalls], [1, 1])
        } finally {
          c.close()
          await s.close()
        }
      })

      it('an access list refusal and a filter take the general path and answer as before', async () => {
        const store = new CountingStore({ peerTtl: 3600 })
        const s = await startServer({
          udpBackend: backend, store, http: false, ws: false, stats: false,
          filter: (infoHash: string, _params: unknown, cb: (err: Error | null) => void) => cb(infoHash === Buffer.from(H2, 'latin1').toString('hex') ? new Error('not here') : null)
        })
        const c = await udpClient(family, s.port)
        try {
          const cid = await c.connect()
          const send = async (infoHash: BinaryString, t: number): Promise<unknown> => c.decode((await c.send(encodeAnnounceRequest({
            connectionId: cid, transactionId: t, request: { infoHash, peerId: id20(1), port: 7000, downloaded: 0, left: 1, uploaded: 0, event: 2, numwant: 5 }
          }), REPLY_TIMEOUT_MS))!)
          assert.deepEqual(await send(H2, 1), { action: 'error', transactionId: 1, message: 'not here' })
          const ok = await send(H, 2) as { action: string, leechers: number }
          assert.deepEqual([ok.action, ok.leechers], ['announce', 1])
          assert.deepEqual([store.compactCalls, store.announceCalls], [0, 1])
        } finally {
          c.close()
          await s.close()
        }
      })
    })
  }
}
