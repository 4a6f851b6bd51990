// Our Client against the reference npm server (bittorrent-tracker@11.2.3, installed as the
// devDependency alias `bittorrent-tracker-reference`) over HTTP and UDP, IPv4 and IPv6, on
// loopback.
//
// Two facts about the reference server shape what is asserted:
// - Its HTTP scrape decodes `info_hash` with `unescape` but writes the `files` keys through a
//   UTF-8 bencoder, so a hash with a byte ≥ 0x80 comes back under a different (longer) key. Our
//   client reads keys as raw bytes (BEP 48) and is NOT bent to accept that: the swarms used here
//   have every byte below 0x80 (but still 0x00 and the URL metacharacters % & + space =).
// - Its UDP announce reply always carries the IPv4 `peers` list (6-byte entries), whatever the
//   request's family, so over UDP/IPv6 it hands out no IPv6 peers: that run checks counts only.
// - Its scrape reports `downloaded` as the current seeder count (its own comment calls it a lower bound).
// - It hands an HTTP/UDP peer its own address along with the others.
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { once, type EventEmitter } from 'node:events'
import type { AddressInfo } from 'node:net'
import Client from '../../src/index.js'
import type { TrackerWarning, ClientOptions, ScrapeResults, UpdateData } from '../../src/index.js'

interface RefServer extends EventEmitter {
  http: { address: () => AddressInfo } | null
  udp4: { address: () => AddressInfo } | null
  udp6: { address: () => AddressInfo } | null
  listen: (port: number, host: string | { http?: string, udp?: string, udp6?: string }, cb: () => void) => void
  close: (cb: () => void) => void
}
type RefServerCtor = new (opts: object) => RefServer

const H1 = '00252628' + '2b203d7f' + '01020304' + '41424344' + '45464748'
const H2 = '7f7e7d7c' + '25262b20' + '3d000102' + '61626364' + '65666768'
const H3 = '3031323334353637383930313233343536373839' // "01234567890123456789"
const PEER_A = '2d4141303030312d' + 'a1a2a3a4a5a6a7a8a9aaabac'
const PEER_B = '2d4242303030312d' + 'b1b2b3b4b5b6b7b8b9babbbc'
const TIMEOUTS = { request: 2000, udp: 1000, udpRetransmits: 2, retryMin: 100, retryMax: 500, destroyGrace: 300 }

interface Transport {
  name: string
  kind: 'http' | 'udp'
  family: 4 | 6
}
const TRANSPORTS: Transport[] = [
  { name: 'HTTP IPv4', kind: 'http', family: 4 },
  { name: 'HTTP IPv6', kind: 'http', family: 6 },
  { name: 'UDP IPv4', kind: 'udp', family: 4 },
  { name: 'UDP IPv6', kind: 'udp', family: 6 }
]

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function startReference (opts: object = {}): Promise<RefServer> {
  const { Server } = await import('bittorrent-tracker-reference') as unknown as { Server: RefServerCtor }
  const server = new Server({ ws: false, stats: false, ...opts })
  cleanups.push(() => new Promise<void>(resolve => server.close(() => resolve())))
  await new Promise<void>(resolve => server.listen(0, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' }, resolve))
  return server
}

/** The reference binds each transport separately (port 0 gives each its own port). */
async function urlFor (t: Transport, opts: object = {}): Promise<string> {
  if (t.kind === 'http' && t.family === 6) {
    const { Server } = await import('bittorrent-tracker-reference') as unknown as { Server: RefServerCtor }
    const server = new Server({ ws: false, udp: false, stats: false, ...opts })
    cleanups.push(() => new Promise<void>(resolve => server.close(() => resolve())))
    await new Promise<void>(resolve => server.listen(0, '::1', resolve))
    return `http://[::1]:${server.http!.address().port}/announce`
  }
  const server = await startReference(opts)
  if (t.kind === 'http') return `http://127.0.0.1:${server.http!.address().port}/announce`
  if (t.family === 4) return `udp://127.0.0.1:${server.udp4!.address().port}`
  return `udp://[::1]:${server.udp6!.address().port}`
}

function client (opts: Partial<ClientOptions> & { announce: string }): Client {
  const c = new Client({ infoHash: H1, peerId: PEER_A, port: 6001, timeouts: TIMEOUTS, ...opts })
  cleanups.push(() => new Promise<void>(resolve => c.destroy(() => resolve())))
  return c
}

const signal = (): AbortSignal => AbortSignal.timeout(5000)

async function nextUpdate (c: Client): Promise<UpdateData> {
  const [u] = await once(c, 'update', { signal: signal() })
  return u as UpdateData
}

function record<T> (c: Client, event: string): T[] {
  const out: T[] = []
  c.on(event, (v: T) => out.push(v))
  return out
}

function scrape (url: string, hashes: string | string[]): Promise<ScrapeResults> {
  return new Promise((resolve, reject) => {
    Client.scrape(url, hashes, (err, results) => err !== null ? reject(err) : resolve(results!))
  })
}

for (const t of TRANSPORTS) {
  describe(`Client ↔ reference server over ${t.name}`, () => {
    const addr = (port: number): string => t.family === 6 ? `[::1]:${port}` : `127.0.0.1:${port}`
    // See the header: the reference's UDP replies carry no IPv6 peers.
    const peersDelivered = !(t.kind === 'udp' && t.family === 6)

    it('two clients find each other; counts follow start, complete and stop; scrape agrees', async () => {
      const url = await urlFor(t)
      const a = client({ announce: url, peerId: PEER_A, port: 6001 })
      const b = client({ announce: url, peerId: PEER_B, port: 6002 })
      const peersA = record<string>(a, 'peer')
      const peersB = record<string>(b, 'peer')
      const warnings = [...record<TrackerWarning>(a, 'warning'), ...record<TrackerWarning>(b, 'warning')]

      a.start({ left: 1000 })
      assert.deepEqual(await nextUpdate(a), { announce: url, infoHash: H1, complete: 0, incomplete: 1 })
      b.start({ left: 0 })
      assert.deepEqual(await nextUpdate(b), { announce: url, infoHash: H1, complete: 1, incomplete: 1 })
      a.update({ left: 500 })
      assert.deepEqual(await nextUpdate(a), { announce: url, infoHash: H1, complete: 1, incomplete: 1 })
      // The reference hands an HTTP/UDP peer its own address too (it skips only WebRTC peers).
      // A's start saw only A; B's start and A's update saw both.
      assert.deepEqual(peersB.sort(), peersDelivered ? [addr(6001), addr(6002)] : [])
      assert.deepEqual(peersA.sort(), peersDelivered ? [addr(6001), addr(6001), addr(6002)] : [])

      a.complete()
      assert.deepEqual(await nextUpdate(a), { announce: url, infoHash: H1, complete: 2, incomplete: 0 })
      a.scrape()
      const [s] = await once(a, 'scrape', { signal: signal() })
      assert.deepEqual(s, { announce: url, infoHash: H1, complete: 2, incomplete: 0, downloaded: 2 })

      b.stop()
      assert.deepEqual(await nextUpdate(b), { announce: url, infoHash: H1, complete: 1, incomplete: 0 })
      assert.deepEqual(warnings, [])
    })

    it('Client.scrape of several hashes (one unknown) and of one hash', async () => {
      const url = await urlFor(t)
      const a = client({ announce: url, infoHash: H1, port: 6001 })
      const b = client({ announce: url, infoHash: H2, peerId: PEER_B, port: 6002 })
      a.start({ left: 0 })
      b.start({ left: 5 })
      await Promise.all([nextUpdate(a), nextUpdate(b)])
      assert.deepEqual(await scrape(url, [H1, H2, H3]), {
        [H1]: { announce: url, infoHash: H1, complete: 1, incomplete: 0, downloaded: 1 },
        [H2]: { announce: url, infoHash: H2, complete: 0, incomplete: 1, downloaded: 0 },
        [H3]: { announce: url, infoHash: H3, complete: 0, incomplete: 0, downloaded: 0 }
      })
      assert.deepEqual(await scrape(url, H2), { announce: url, infoHash: H2, complete: 0, incomplete: 1, downloaded: 0 })
    })

    it('a refusing filter arrives as a warning with its reason', async () => {
      const url = await urlFor(t, { filter: (_h: string, _p: unknown, cb: (e: Error) => void) => cb(new Error('not on this tracker')) })
      const c = client({ announce: url })
      const updates = record<UpdateData>(c, 'update')
      c.start()
      const [w] = await once(c, 'warning', { signal: signal() })
      assert.equal(w.message, 'not on this tracker')
      assert.equal(w.announce, url)
      assert.deepEqual(updates, [])
    })
  })
}
