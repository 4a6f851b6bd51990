// The HTTP(S) tracker client against a scripted tracker written here (node:http on loopback),
// so every byte of the request and every field of the answer is under the test's control.
// Answers are built with the shared server-side codecs (encodeAnnounceResponse, encodeFailure,
// encodeScrapeResponse): no wire format is written twice.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import Client from '../../src/index.js'
import type { TrackerWarning, ScrapeData, UpdateData } from '../../src/index.js'
import { encodeAnnounceResponse, encodeFailure, encodeScrapeResponse, parseQuery } from '../../src/protocol/http/index.js'
import { bencode } from '../../src/protocol/common/bencode.js'
import { compactAddr } from '../../src/protocol/common/address.js'
import { binaryToHex, hexToBinary } from '../../src/protocol/common/binary.js'
import { cleanups, record, testClient } from '../helpers/client-harness.js'
import type { ClientArgs } from '../helpers/client-harness.js'

/** 20 bytes with 0x00, 0x80–0xFF, invalid UTF-8 and the query metacharacters % & + space =. */
const HASH_HEX = '00252628' + '2b203d7f' + '80c328ff' + 'fe414243' + '44454647'
const HASH = hexToBinary(HASH_HEX)!
const PEER_HEX = '2d5454303030312d' + 'c3a9000102fe' + 'ff8081828384'
const PEER = hexToBinary(PEER_HEX)!
// Generous request timeout: the first fetch() of a process loads undici, which takes a while on a
// loaded machine. Tests about timing out set their own.
const SHORT = { request: 3000, udp: 1000, udpRetransmits: 2, retryMin: 40, retryMax: 200, destroyGrace: 100 }

interface Seen {
  path: string
  rawQuery: string
  params: Map<string, string[]>
  headers: http.IncomingHttpHeaders
  at: number
}

type Handler = (req: Seen, res: http.ServerResponse, n: number) => void

/** A tracker that records every request and answers with `handler`. */
class FakeTracker {
  readonly seen: Seen[] = []
  private readonly server: http.Server
  private waiters: Array<{ n: number, resolve: () => void }> = []
  constructor (public handler: Handler) {
    this.server = http.createServer((req, res) => {
      const url = req.url ?? ''
      const q = url.indexOf('?')
      const rawQuery = q < 0 ? '' : url.slice(q + 1)
      const parsed = parseQuery(rawQuery)
      const params = new Map<string, string[]>()
      if (parsed.ok) for (const p of parsed.value) params.set(p.name, [...(params.get(p.name) ?? []), p.value])
      const seen: Seen = { path: q < 0 ? url : url.slice(0, q), rawQuery, params, headers: req.headers, at: Date.now() }
      this.seen.push(seen)
      this.handler(seen, res, this.seen.length)
      this.waiters = this.waiters.filter(w => {
        if (this.seen.length >= w.n) { w.resolve(); return false }
        return true
      })
    })
  }

  async listen (host = '127.0.0.1'): Promise<this> {
    this.server.listen(0, host)
    await once(this.server, 'listening')
    return this
  }

  url (path = '/announce'): string {
    const a = this.server.address() as AddressInfo
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}${path}`
  }

  /** Resolves once `n` requests have arrived (bounded by the test's own timeouts). */
  async requests (n: number): Promise<void> {
    if (this.seen.length >= n) return
    await new Promise<void>(resolve => this.waiters.push({ n, resolve }))
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise(resolve => this.server.close(resolve))
  }
}

function one (p: Seen, name: string): string | undefined {
  const v = p.params.get(name)
  assert.ok(v === undefined || v.length === 1, `${name} repeated`)
  return v?.[0]
}

function reply (res: http.ServerResponse, body: Uint8Array, status = 200): void {
  res.writeHead(status, { 'Content-Type': 'text/plain' })
  res.end(body)
}

const ok = (extra: Partial<Parameters<typeof encodeAnnounceResponse>[0]> = {}): Uint8Array =>
  encodeAnnounceResponse({ interval: 1800, complete: 0, incomplete: 0, peers: [], compact: true, ...extra })


async function tracker (handler: Handler, host?: string): Promise<FakeTracker> {
  const t = await new FakeTracker(handler).listen(host)
  cleanups.push(() => t.close())
  return t
}

function client (opts: ClientArgs): Client {
  return testClient({ infoHash: HASH_HEX, peerId: PEER_HEX, port: 6881, timeouts: SHORT }, opts)
}

const signal = (): AbortSignal => AbortSignal.timeout(5000)

describe('HTTP tracker: requests', () => {
  it('percent-encodes binary ids byte by byte and sends the announce fields, custom params and User-Agent', async () => {
    const t = await tracker((_q, res) => reply(res, ok()))
    const c = client({ announce: t.url(), userAgent: 'test-agent/1.0' })
    c.start({ uploaded: 10, downloaded: 20, left: 30, customParam: 'blah', 'näme': 'välue ü' })
    await once(c, 'update', { signal: signal() })
    const q = t.seen[0]
    assert.equal(q.path, '/announce')
    assert.equal(q.rawQuery,
      'info_hash=%00%25%26%28%2B%20%3D%7F%80%C3%28%FF%FEABCDEFG' +
      '&peer_id=-TT0001-%C3%A9%00%01%02%FE%FF%80%81%82%83%84' +
      '&port=6881&uploaded=10&downloaded=20&left=30&event=started&numwant=50&compact=1' +
      '&customParam=blah&n%C3%A4me=v%C3%A4lue%20%C3%BC')
    assert.equal(one(q, 'info_hash'), HASH)
    assert.equal(one(q, 'peer_id'), PEER)
    assert.equal(q.headers['user-agent'], 'test-agent/1.0')
  })

  it('sends the event of each method, defaults, left=0 on complete(), getAnnounceOpts, and keeps the order start → complete', async () => {
    const t = await tracker((_q, res) => setTimeout(() => reply(res, ok()), 20))
    let uploaded = 100
    const c = client({ announce: t.url(), getAnnounceOpts: () => ({ uploaded: uploaded++, mine: 'x' }) })
    const updates = record<UpdateData>(c, 'update')
    c.start()
    c.complete() // issued in the same tick: must arrive after `started`
    await t.requests(2)
    c.update({ numwant: 7, uploaded: 1 }) // getAnnounceOpts' `uploaded` wins, as in the reference
    await t.requests(3)
    c.stop()
    await t.requests(4)
    await once(c, 'update', { signal: signal() })
    while (updates.length < 4) await once(c, 'update', { signal: signal() })
    const summary = t.seen.map(q => [one(q, 'event') ?? '', one(q, 'left') ?? '-', one(q, 'uploaded'), one(q, 'numwant'), one(q, 'mine')])
    assert.deepEqual(summary, [
      ['started', '-', '100', '50', 'x'],
      ['completed', '0', '101', '50', 'x'],
      ['', '0', '102', '7', 'x'],
      ['stopped', '0', '103', '7', 'x']
    ])
  })

  it('scrapes the BEP 48 scrape URL (keeping the passkey query) with raw 20-byte keys, in chunks of 74', async () => {
    const hashes = Array.from({ length: 80 }, (_, i) => String.fromCharCode(0x80 + i) + HASH.slice(1))
    const t = await tracker((q, res) => {
      const asked = q.params.get('info_hash') ?? []
      // Answer for every hash asked except the first of each chunk (BEP 48 allows leaving out),
      // plus one that was not asked for, which the client must ignore.
      const files = asked.slice(1).map(h => ({ infoHash: h, complete: h.charCodeAt(0), incomplete: 1, downloaded: 2 }))
      files.push({ infoHash: 'Z'.repeat(20), complete: 9, incomplete: 9, downloaded: 9 })
      reply(res, encodeScrapeResponse(files))
    })
    const c = client({ announce: t.url('/x/announce.php?passkey=k%20y') })
    const got = record<ScrapeData>(c, 'scrape')
    const warnings = record<TrackerWarning>(c, 'warning')
    c.scrape({ infoHash: hashes.map(binaryToHex) })
    await t.requests(2)
    while (got.length < 78) await once(c, 'scrape', { signal: signal() })
    assert.deepEqual(t.seen.map(q => [q.path, one(q, 'passkey'), q.params.get('info_hash')!.length]), [
      ['/x/scrape.php', 'k y', 74],
      ['/x/scrape.php', 'k y', 6]
    ])
    assert.ok(t.seen[0].rawQuery.startsWith('passkey=k%20y&info_hash=%80%25%26%28%2B'))
    const expected = hashes.filter((_, i) => i !== 0 && i !== 74).map(h => ({
      announce: t.url('/x/announce.php?passkey=k%20y'), infoHash: binaryToHex(h), complete: h.charCodeAt(0), incomplete: 1, downloaded: 2
    }))
    assert.deepEqual(got.sort((a, b) => a.infoHash < b.infoHash ? -1 : 1), expected)
    assert.deepEqual(warnings, [])
  })

  it('warns when the announce URL has no scrape URL, and when the tracker knows none of the hashes', async () => {
    const t = await tracker((_q, res) => reply(res, encodeScrapeResponse([])))
    const noScrape = client({ announce: t.url('/tracker') })
    noScrape.scrape()
    const [w1] = await once(noScrape, 'warning', { signal: signal() })
    assert.equal(w1.message, `tracker has no scrape URL (BEP 48: the path must end in /announce…) (${t.url('/tracker')})`)
    assert.equal(t.seen.length, 0)
    const unknown = client({ announce: t.url() })
    unknown.scrape()
    const [w2] = await once(unknown, 'warning', { signal: signal() })
    assert.equal(w2.message, `tracker returned no scrape data for ${HASH_HEX} (${t.url()})`)
    assert.equal(w2.announce, t.url())
  })
})

describe('HTTP tracker: answers', () => {
  it('reads compact peers and peers6 into "ip:port" peer events', async () => {
    const peers = [
      { peerId: '', addr: compactAddr('1.2.3.4', 6881)! },
      { peerId: '', addr: compactAddr('255.0.0.1', 65535)! },
      { peerId: '', addr: compactAddr('2001:db8::1', 51413)! },
      { peerId: '', addr: compactAddr('::ffff:10.0.0.1', 80)! } // IPv4-mapped: plain IPv4 in `peers`
    ]
    const t = await tracker((_q, res) => reply(res, ok({ complete: 3, incomplete: 4, peers })))
    const c = client({ announce: t.url() })
    const got = record<string>(c, 'peer')
    c.start()
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: t.url(), infoHash: HASH_HEX, complete: 3, incomplete: 4 })
    assert.deepEqual(got, ['1.2.3.4:6881', '255.0.0.1:65535', '10.0.0.1:80', '[2001:db8::1]:51413'])
  })

  it('reads non-compact (dict) peers of both families, skipping malformed entries', async () => {
    const body = bencode({
      complete: 1,
      incomplete: 2,
      interval: 60,
      peers: [
        { ip: '10.1.2.3', port: 1000, 'peer id': 'A'.repeat(20) },
        { ip: '2001:db8::2', port: 2000 },
        { ip: 'not-an-ip', port: 3000 },
        { ip: '10.1.2.4', port: 0 },
        { ip: '10.1.2.5', port: 70000 }
      ]
    })
    const t = await tracker((_q, res) => reply(res, body))
    const c = client({ announce: t.url() })
    const got = record<string>(c, 'peer')
    c.update()
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: t.url(), infoHash: HASH_HEX, complete: 1, incomplete: 2 })
    assert.deepEqual(got, ['10.1.2.3:1000', '[2001:db8::2]:2000'])
  })

  it('turns `failure reason` into a warning (exact text), then retries with back-off carrying the `started` event', async () => {
    const t = await tracker((_q, res, n) => reply(res, n === 1 ? encodeFailure('torrent not allowed here') : ok({ complete: 5 })))
    const c = client({ announce: t.url() })
    const updates = record<UpdateData>(c, 'update')
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, 'torrent not allowed here')
    assert.equal(w.announce, t.url())
    assert.deepEqual(updates, [])
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(updates, [{ announce: t.url(), infoHash: HASH_HEX, complete: 5, incomplete: 0 }])
    assert.deepEqual(t.seen.map(q => one(q, 'event')), ['started', 'started'])
    const gap = t.seen[1].at - t.seen[0].at
    assert.ok(gap >= 20 && gap < 1000, `retry after ${gap} ms (back-off 40 ms with jitter: 20–40)`)
  })

  it('emits `warning message` as a warning and still the update', async () => {
    const t = await tracker((_q, res) => reply(res, ok({ warning: 'tracker will move soon', incomplete: 2 })))
    const c = client({ announce: t.url() })
    const warnings = record<TrackerWarning>(c, 'warning')
    c.start()
    const [u] = await once(c, 'update', { signal: signal() })
    assert.deepEqual(u, { announce: t.url(), infoHash: HASH_HEX, complete: 0, incomplete: 2 })
    assert.deepEqual(warnings.map(w => w.message), ['tracker will move soon'])
  })

  it('echoes `tracker id` back as `trackerid` and keeps it when a later answer has none', async () => {
    const t = await tracker((_q, res, n) => reply(res, ok(n === 1 ? { trackerId: 'id 1/é' } : {})))
    const c = client({ announce: t.url() })
    c.start()
    await once(c, 'update', { signal: signal() })
    c.update()
    await once(c, 'update', { signal: signal() })
    c.update()
    await once(c, 'update', { signal: signal() })
    assert.deepEqual(t.seen.map(q => one(q, 'trackerid')), [undefined, 'id 1/\xc3\xa9', 'id 1/\xc3\xa9'])
    assert.ok(t.seen[1].rawQuery.endsWith('&trackerid=id%201%2F%C3%A9'))
  })

  it('re-announces after `interval`; setInterval overrides it but never goes below `min interval`', async () => {
    const a = await tracker((_q, res) => reply(res, ok({ interval: 1 })))
    const b = await tracker((_q, res) => reply(res, ok({ interval: 3600, minInterval: 2 })))
    // intervalFloor 0: the tracker's own 1-s interval is used as it is.
    const ca = client({ announce: a.url(), timeouts: { ...SHORT, intervalFloor: 0 } })
    const cb = client({ announce: b.url(), timeouts: { ...SHORT, intervalFloor: 0 } })
    ca.start()
    cb.start()
    cb.setInterval(300)
    await Promise.all([a.requests(2), b.requests(2)])
    const gapA = a.seen[1].at - a.seen[0].at
    const gapB = b.seen[1].at - b.seen[0].at
    assert.ok(gapA >= 950 && gapA < 1600, `interval 1 s: re-announced after ${gapA} ms`)
    assert.ok(gapB >= 1950 && gapB < 2600, `min interval 2 s over setInterval(300): re-announced after ${gapB} ms`)
    assert.deepEqual([one(a.seen[1], 'event'), one(b.seen[1], 'event')], [undefined, undefined])
  })
})

describe('HTTP tracker: failures', () => {
  it('times out a silent tracker (AbortController), warns, and retries', async () => {
    const t = await tracker(() => { /* never answers */ })
    const c = client({ announce: t.url(), timeouts: { ...SHORT, request: 100 } })
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, `tracker did not answer within 100 ms (${t.url()})`)
    await t.requests(2)
    assert.equal(one(t.seen[1], 'event'), 'started')
  })

  it('reports a non-200 answer without a bencoded failure, and an oversized body', async () => {
    const t = await tracker((_q, res, n) => {
      if (n === 1) return reply(res, new TextEncoder().encode('<html>oops</html>'), 502)
      res.writeHead(200)
      res.end(new Uint8Array(2 * 1024 * 1024))
    })
    const c = client({ announce: t.url() })
    c.start()
    const [w1] = await once(c, 'warning', { signal: signal() })
    assert.equal(w1.message, `tracker answered HTTP 502 (${t.url()})`)
    const [w2] = await once(c, 'warning', { signal: signal() })
    assert.match(w2.message, /^tracker request failed: tracker response (of 2097152 bytes is too large|over 1048576 bytes)/)
  })

  it('reads a bencoded failure sent with a non-200 status as the failure reason', async () => {
    const t = await tracker((_q, res) => reply(res, encodeFailure('invalid passkey'), 403))
    const c = client({ announce: t.url() })
    c.start()
    const [w] = await once(c, 'warning', { signal: signal() })
    assert.equal(w.message, 'invalid passkey')
  })

  it('works with an IPv6 tracker (http://[::1]:port)', async () => {
    const t = await tracker((_q, res) => reply(res, ok({ complete: 1, peers: [{ peerId: '', addr: compactAddr('::1', 7000)! }] })), '::1')
    const c = client({ announce: t.url() })
    c.start()
    const [[u], [p]] = await Promise.all([once(c, 'update', { signal: signal() }), once(c, 'peer', { signal: signal() })])
    assert.deepEqual(u, { announce: t.url(), infoHash: HASH_HEX, complete: 1, incomplete: 0 })
    assert.equal(p, '[::1]:7000')
    assert.ok(t.url().startsWith('http://[::1]:'))
  })
})

