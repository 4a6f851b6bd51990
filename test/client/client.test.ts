// Our Client against our Server, on loopback, for HTTP and UDP over IPv4 and IPv6: the README's
// client API end to end (events, counts, scrape, Client.scrape), refusals, a dead tracker next
// to a live one, retry with back-off, and the constructor's checks.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import dgram from 'node:dgram'
import type { AddressInfo } from 'node:net'
import Client, { Server } from '../../src/index.js'
import type { TrackerWarning, ClientOptions, ScrapeData, ScrapeResults, ServerOptions, UpdateData } from '../../src/index.js'
import { cleanups, record, testClient } from '../helpers/client-harness.js'
import type { ClientArgs } from '../helpers/client-harness.js'

/** Info hashes with bytes ≥ 0x80, invalid UTF-8 and URL metacharacters: a binary-safe path is required. */
const H1 = 'ff80c328' + '00252628' + '2b203d7f' + '01020304' + '05060708'
const H2 = '80818283' + 'fefdfcfb' + 'c0c1c2c3' + '25252525' + '26262626'
const H3 = '0123456789abcdef0123456789abcdef01234567'
const PEER_A = '2d4141303030312d' + 'a1a2a3a4a5a6a7a8a9aaabac'
const PEER_B = '2d4242303030312d' + 'b1b2b3b4b5b6b7b8b9babbbc'
const SHORT = { request: 3000, udp: 1000, udpRetransmits: 2, retryMin: 50, retryMax: 200, destroyGrace: 200 }

interface Transport {
  name: string
  host: '127.0.0.1' | '::1'
  url: (port: number) => string
}

const TRANSPORTS: Transport[] = [
  { name: 'HTTP IPv4', host: '127.0.0.1', url: p => `http://127.0.0.1:${p}/announce` },
  { name: 'HTTP IPv6', host: '::1', url: p => `http://[::1]:${p}/announce` },
  { name: 'UDP IPv4', host: '127.0.0.1', url: p => `udp://127.0.0.1:${p}` },
  { name: 'UDP IPv6', host: '::1', url: p => `udp://[::1]:${p}` }
]


async function startServer (host: string, opts: ServerOptions = {}, port = 0): Promise<Server> {
  const server = new Server({ ws: false, stats: false, ...opts })
  cleanups.push(() => new Promise<void>(resolve => server.close(() => resolve())))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  return server
}

function portOf (server: Server): number {
  return (server.http!.address() as AddressInfo).port
}

function client (opts: ClientArgs): Client {
  return testClient({ infoHash: H1, peerId: PEER_A, port: 6001, timeouts: SHORT }, opts)
}

const signal = (): AbortSignal => AbortSignal.timeout(5000)

async function nextUpdate (c: Client): Promise<UpdateData> {
  const [u] = await once(c, 'update', { signal: signal() })
  return u as UpdateData
}

function scrape (url: string, hashes: string | string[]): Promise<ScrapeResults> {
  return new Promise((resolve, reject) => {
    Client.scrape(url, hashes, (err, results) => err !== null ? reject(err) : resolve(results!))
  })
}

/** A port with nothing listening on it, for TCP and UDP on `host`. */
async function closedPort (host: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const s = net.createServer()
    s.listen(0, host)
    await once(s, 'listening')
    const port = (s.address() as AddressInfo).port
    await new Promise(resolve => s.close(resolve))
    const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
    const free = await new Promise<boolean>(resolve => {
      u.once('error', () => resolve(false))
      u.bind(port, host, () => resolve(true))
    })
    await new Promise<void>(resolve => { try { u.close(() => resolve()) } catch { resolve() } })
    if (free) return port
  }
  throw new Error('no free port')
}

for (const tr of TRANSPORTS) {
  describe(`Client ↔ our Server over ${tr.name}`, () => {
    const addr = (port: number): string => tr.host === '::1' ? `[::1]:${port}` : `127.0.0.1:${port}`

    it('two clients find each other; update counts follow start, complete and stop; scrape agrees', async () => {
      const server = await startServer(tr.host)
      const url = tr.url(portOf(server))
      const a = client({ announce: url, peerId: PEER_A, port: 6001 })
      const b = client({ announce: url, peerId: PEER_B, port: 6002 })
      const peersA = record<string>(a, 'peer')
      const peersB = record<string>(b, 'peer')
      const warnings = [...record<TrackerWarning>(a, 'warning'), ...record<TrackerWarning>(b, 'warning')]

      a.start({ left: 1000 })
      assert.deepEqual(await nextUpdate(a), { announce: url, infoHash: H1, complete: 0, incomplete: 1 })
      b.start({ left: 0 })
      assert.deepEqual(await nextUpdate(b), { announce: url, infoHash: H1, complete: 1, incomplete: 1 })
      assert.deepEqual(peersB, [addr(6001)])
      a.update({ downloaded: 500, left: 500 })
      assert.deepEqual(await nextUpdate(a), { announce: url, infoHash: H1, complete: 1, incomplete: 1 })
      assert.deepEqual(peersA, [addr(6002)])

      a.complete({ downloaded: 1000 })
      assert.deepEqual(await nextUpdate(a), { announce: url, infoHash: H1, complete: 2, incomplete: 0 })
      assert.equal(server.torrents[H1].complete, 2)

      a.scrape()
      const [s] = await once(a, 'scrape', { signal: signal() })
      assert.deepEqual(s, { announce: url, infoHash: H1, complete: 2, incomplete: 0, downloaded: 1 })

      b.stop()
      assert.deepEqual(await nextUpdate(b), { announce: url, infoHash: H1, complete: 1, incomplete: 0 })
      assert.equal(server.torrents[H1].complete, 1)
      assert.equal(server.torrents[H1].incomplete, 0)
      assert.deepEqual(warnings, [])
    })

    it('Client.scrape: several hashes keyed by hex, one hash as a single result, both call forms', async () => {
      const server = await startServer(tr.host)
      const url = tr.url(portOf(server))
      const a = client({ announce: url, infoHash: H1, port: 6001 })
      const b = client({ announce: url, infoHash: H2, peerId: PEER_B, port: 6002 })
      a.start({ left: 0 })
      b.start({ left: 10 })
      await Promise.all([nextUpdate(a), nextUpdate(b)])

      const many = await scrape(url, [H1, H2.toUpperCase(), H3])
      assert.deepEqual(many, {
        [H1]: { announce: url, infoHash: H1, complete: 1, incomplete: 0, downloaded: 0 },
        [H2]: { announce: url, infoHash: H2, complete: 0, incomplete: 1, downloaded: 0 },
        [H3]: { announce: url, infoHash: H3, complete: 0, incomplete: 0, downloaded: 0 }
      })
      const single = await scrape(url, H2)
      assert.deepEqual(single, { announce: url, infoHash: H2, complete: 0, incomplete: 1, downloaded: 0 })
      const inList = await scrape(url, [H1])
      assert.deepEqual(inList, { announce: url, infoHash: H1, complete: 1, incomplete: 0, downloaded: 0 })
      const objectForm = await new Promise<ScrapeResults>((resolve, reject) => {
        Client.scrape({ announce: url, infoHash: [H1, H2] }, (err, r) => err !== null ? reject(err) : resolve(r!))
      })
      assert.deepEqual(Object.keys(objectForm).sort(), [H2, H1].sort())
      assert.equal((objectForm as Record<string, ScrapeData>)[H2].incomplete, 1)
    })

    it('a refusing filter arrives as a warning with its reason, and no update', async () => {
      const server = await startServer(tr.host, {
        filter: (infoHash, _params, cb) => cb(infoHash === H1 ? new Error('torrent is not registered') : true)
      })
      const url = tr.url(portOf(server))
      const refused = client({ announce: url, infoHash: H1 })
      const allowed = client({ announce: url, infoHash: H2, peerId: PEER_B, port: 6002 })
      const updates = record<UpdateData>(refused, 'update')
      refused.start()
      allowed.start()
      const [w] = await once(refused, 'warning', { signal: signal() })
      assert.equal(w.message, 'torrent is not registered')
      assert.equal(w.announce, url)
      assert.deepEqual(await nextUpdate(allowed), { announce: url, infoHash: H2, complete: 0, incomplete: 1 })
      assert.deepEqual(updates, [])
      assert.equal(server.torrents[H1], undefined)
    })

    it('a dead tracker warns and does not stop a live one', async () => {
      const server = await startServer(tr.host)
      const live = tr.url(portOf(server))
      const dead = tr.url(await closedPort(tr.host))
      const c = client({ announce: [dead, live] })
      const warnings = record<TrackerWarning>(c, 'warning')
      c.start()
      assert.deepEqual(await nextUpdate(c), { announce: live, infoHash: H1, complete: 0, incomplete: 1 })
      while (warnings.length === 0) await once(c, 'warning', { signal: signal() })
      assert.equal(warnings[0].announce, dead)
      assert.match(warnings[0].message, /ECONNREFUSED/)
      assert.ok(warnings.every(w => w.announce === dead))
    })

    it('retries a tracker that was down with back-off, and recovers when it comes up', async () => {
      // Back-off timers do not hold Node's event loop open (as in the reference): a real program
      // has its own sockets; this test keeps the loop alive itself.
      const keepAlive = setInterval(() => {}, 1000)
      cleanups.push(() => clearInterval(keepAlive))
      const port = await closedPort(tr.host)
      const url = tr.url(port)
      const c = client({ announce: url })
      const warnings = record<TrackerWarning>(c, 'warning')
      c.start()
      while (warnings.length < 2) await once(c, 'warning', { signal: signal() })
      const server = await startServer(tr.host, {}, port)
      assert.deepEqual(await nextUpdate(c), { announce: url, infoHash: H1, complete: 0, incomplete: 1 })
      assert.equal(server.torrents[H1].incomplete, 1)
      assert.ok(warnings.every(w => w.announce === url && /ECONNREFUSED/.test(w.message)), warnings.map(w => w.message).join('; '))
    })
  })
}

describe('Client: options', () => {
  const base = { infoHash: H1, peerId: PEER_A, announce: 'http://127.0.0.1:1/announce', port: 6881 }

  it('throws a clear Error for missing required options and a bad port', () => {
    const without = (k: string): ClientOptions => { const o: Record<string, unknown> = { ...base }; delete o[k]; return o as unknown as ClientOptions }
    assert.throws(() => new Client(without('peerId')), { message: 'Option `peerId` is required' })
    assert.throws(() => new Client(without('infoHash')), { message: 'Option `infoHash` is required' })
    assert.throws(() => new Client(without('announce')), { message: 'Option `announce` is required' })
    assert.throws(() => new Client(without('port')), { message: 'Option `port` is required' })
    assert.throws(() => new Client({ ...base, port: 70000 }), { message: 'Option `port` must be an integer from 1 to 65535' })
    assert.throws(() => Client.scrape({ announce: base.announce } as never, () => {}), { message: 'Option `infoHash` is required' })
    assert.throws(() => Client.scrape('', H1, () => {}), { message: 'Option `announce` is required' })
  })

  it('a malformed id (the seed example passes 21 bytes) is an error event, not a throw, and nothing is announced', async () => {
    for (const bad of [{ infoHash: 'abc' }, { infoHash: new Uint8Array(21) }, { peerId: new Uint8Array(21) }]) {
      const c = new Client({ ...base, ...bad })
      const err = await new Promise<Error>(resolve => c.once('error', resolve))
      const name = 'peerId' in bad ? 'peerId' : 'infoHash'
      assert.equal(err.message, `Option \`${name}\` must be a 40-character hex string or 20 bytes`)
      assert.deepEqual(c.announce, [])
      c.destroy()
    }
  })

  it('takes hex (any case) or bytes, and reports lowercase hex', () => {
    const c = new Client({ ...base, infoHash: H1.toUpperCase(), peerId: Buffer.from(PEER_A, 'hex'), announce: [] })
    assert.equal(c.infoHash, H1)
    assert.equal(c.peerId, PEER_A)
    c.destroy()
  })

  it('folds duplicates and trailing slashes; unsupported and invalid URLs warn (later), never throw', async () => {
    const c = new Client({
      ...base,
      announce: [
        'http://t.example/announce', 'http://t.example/announce/', 'udp://t.example:6969/', 'udp://t.example:6969',
        'ftp://t.example/announce', 'http://', 'udp://no-port.example', 42 as unknown as string,
        new TextEncoder().encode('https://t.example/announce')
      ]
    })
    const warnings: string[] = []
    c.on('warning', (e: Error) => warnings.push(e.message))
    assert.deepEqual(warnings, []) // nothing synchronous: listeners attached after construction see them
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(c.announce, ['http://t.example/announce', 'udp://t.example:6969', 'https://t.example/announce'])
    assert.deepEqual(warnings, [
      'Unsupported tracker protocol: ftp://t.example/announce',
      'Invalid tracker URL: http://',
      'Invalid tracker port: udp://no-port.example',
      'Invalid tracker URL: not a string'
    ])
    await new Promise(resolve => c.destroy(resolve))
  })

  it('Client.scrape calls back with an error when the tracker is unreachable', async () => {
    const url = `udp://127.0.0.1:${await closedPort('127.0.0.1')}`
    const err = await new Promise<Error | null>(resolve => Client.scrape(url, [H1, H2], e => resolve(e)))
    assert.match(err!.message, /^tracker unreachable: .*ECONNREFUSED/)
  })
})
