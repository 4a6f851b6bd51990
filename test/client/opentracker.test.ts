// Our Client against a real opentracker (Debian package, started here on 127.0.0.1 — the Debian
// build is IPv4-only and whitelist-only; see test/helpers/opentracker.ts) over HTTP and UDP.
import { describe, it, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import Client from '../../src/index.js'
import type { TrackerWarning, ClientOptions, ScrapeResults, UpdateData } from '../../src/index.js'
import { haveOpentracker, startOpentracker, type Opentracker } from '../helpers/opentracker.js'

// Whitelisted swarms, one pair per transport so the two runs cannot see each other. They hold
// bytes ≥ 0x80 and URL metacharacters, so only a binary-safe client gets through.
const SWARMS = {
  http: ['ff80c32800252628' + '2b203d7f0102030405060708', 'fe81c32900252628' + '2b203d7f0102030405060708'],
  udp: ['fd82c32a00252628' + '2b203d7f0102030405060708', 'fc83c32b00252628' + '2b203d7f0102030405060708']
}
/** Not on the whitelist and never announced: opentracker does not know it. */
const UNKNOWN = '0123456789abcdef0123456789abcdef01234567'
const PEER_A = '2d4141303030312d' + 'a1a2a3a4a5a6a7a8a9aaabac'
const PEER_B = '2d4242303030312d' + 'b1b2b3b4b5b6b7b8b9babbbc'
const TIMEOUTS = { request: 2000, udp: 1000, udpRetransmits: 2, retryMin: 200, retryMax: 1000, destroyGrace: 300 }

let ot: Opentracker

before(async () => {
  // Missing opentracker is a failure, not a skip: .ci/run installs it.
  assert.ok(haveOpentracker(), 'opentracker is not installed (apt-get install opentracker)')
  ot = await startOpentracker([...SWARMS.http, ...SWARMS.udp])
})
after(async () => {
  if (ot !== undefined) await ot.stop()
})

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

function client (opts: Partial<ClientOptions> & { announce: string, infoHash: string }): Client {
  const c = new Client({ peerId: PEER_A, port: 6001, timeouts: TIMEOUTS, ...opts })
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

function scrape (url: string, hashes: string[]): Promise<ScrapeResults> {
  return new Promise((resolve, reject) => {
    Client.scrape(url, hashes, (err, results) => err !== null ? reject(err) : resolve(results!))
  })
}

for (const kind of ['http', 'udp'] as const) {
  describe(`Client ↔ opentracker over ${kind.toUpperCase()} (IPv4)`, () => {
    const [H1, H2] = SWARMS[kind]
    const url = (): string => kind === 'http' ? ot.httpUrl : ot.udpUrl

    it('two clients find each other; counts follow start and complete; scrape returns its counts', async () => {
      const a = client({ announce: url(), infoHash: H1, peerId: PEER_A, port: 6001 })
      const b = client({ announce: url(), infoHash: H1, peerId: PEER_B, port: 6002 })
      const peersA = record<string>(a, 'peer')
      const peersB = record<string>(b, 'peer')
      const warnings = [...record<TrackerWarning>(a, 'warning'), ...record<TrackerWarning>(b, 'warning')]

      a.start({ left: 1000 })
      assert.deepEqual(await nextUpdate(a), { announce: url(), infoHash: H1, complete: 0, incomplete: 1 })
      b.start({ left: 0 })
      assert.deepEqual(await nextUpdate(b), { announce: url(), infoHash: H1, complete: 1, incomplete: 1 })
      a.update({ left: 500 })
      assert.deepEqual(await nextUpdate(a), { announce: url(), infoHash: H1, complete: 1, incomplete: 1 })
      // opentracker may hand a peer its own address as well; the other one must be there.
      assert.ok(peersB.includes('127.0.0.1:6001'), `B saw ${peersB.join(', ')}`)
      assert.ok(peersA.includes('127.0.0.1:6002'), `A saw ${peersA.join(', ')}`)
      for (const p of [...peersA, ...peersB]) assert.ok(p === '127.0.0.1:6001' || p === '127.0.0.1:6002', p)

      a.complete()
      assert.deepEqual(await nextUpdate(a), { announce: url(), infoHash: H1, complete: 2, incomplete: 0 })
      a.scrape()
      const [s] = await once(a, 'scrape', { signal: signal() })
      assert.deepEqual(s, { announce: url(), infoHash: H1, complete: 2, incomplete: 0, downloaded: 1 })

      b.stop()
      await nextUpdate(b)
      a.scrape()
      const [s2] = await once(a, 'scrape', { signal: signal() })
      assert.deepEqual(s2, { announce: url(), infoHash: H1, complete: 1, incomplete: 0, downloaded: 1 })
      assert.deepEqual(warnings, [], `${warnings.map(w => w.message).join('; ')}\n${ot.output()}`)
    })

    it('multi-hash Client.scrape including a hash it does not know still calls back with what it returned', async () => {
      const a = client({ announce: url(), infoHash: H2, port: 6003 })
      a.start({ left: 0 })
      await nextUpdate(a)
      const results = await scrape(url(), [H2, UNKNOWN])
      if (kind === 'http') {
        // BEP 48: opentracker leaves unknown hashes out of `files`.
        assert.deepEqual(results, { [H2]: { announce: url(), infoHash: H2, complete: 1, incomplete: 0, downloaded: 0 } })
      } else {
        // BEP 15 answers by position, so opentracker sends zeros for the unknown hash.
        assert.deepEqual(results, {
          [H2]: { announce: url(), infoHash: H2, complete: 1, incomplete: 0, downloaded: 0 },
          [UNKNOWN]: { announce: url(), infoHash: UNKNOWN, complete: 0, incomplete: 0, downloaded: 0 }
        })
      }
    })
  })
}

describe('Client ↔ opentracker: whitelist refusal', () => {
  it('an announce of a hash off the whitelist arrives as a warning (HTTP: its failure reason)', async () => {
    const c = client({ announce: ot.httpUrl, infoHash: UNKNOWN })
    const updates = record<UpdateData>(c, 'update')
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.announce, ot.httpUrl)
    assert.equal(w.message, 'Requested download is not authorized for use with this tracker.')
    assert.deepEqual(updates, [])
  })

  it('over UDP it answers a bare 8-byte announce header, which is reported as invalid', async () => {
    const c = client({ announce: ot.udpUrl, infoHash: UNKNOWN })
    const updates = record<UpdateData>(c, 'update')
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, `invalid UDP reply: malformed packet: announce response of 8 bytes, need 20 (${ot.udpUrl})`)
    assert.deepEqual(updates, [])
  })
})
