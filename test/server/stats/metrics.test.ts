/**
 * /metrics, /health, the stats guard and the new /stats.json fields, over real sockets on
 * loopback: known requests over HTTP, UDP and WebSocket, then the exact numbers.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import http from 'node:http'
import { Server } from '../../../src/server/server.js'
import type { ServerOptions } from '../../../src/server/server.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import { encodeAnnounceRequest as encodeUdpAnnounce } from '../../../src/protocol/udp/codec.js'
import { LATENCY_BUCKETS_S } from '../../../src/constants.js'
import {
  closeServer, hex, httpAnnounce, httpGet, httpScrape, id20, startServer, udpClient, waitFor, wsClient, withTimeout
} from '../../helpers/tracker-clients.js'
import type { StartedServer } from '../../helpers/tracker-clients.js'

const IH = id20(1)
const IH2 = id20(2)

async function withServer (opts: ServerOptions, fn: (s: StartedServer) => Promise<void>): Promise<void> {
  const s = await startServer(opts)
  try { await fn(s) } finally { await s.close() }
}

/** Prometheus text → { 'name{labels}': value } (HELP/TYPE lines skipped). */
function parseProm (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const sp = line.lastIndexOf(' ')
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)))
  }
  return out
}

function req (protocol: string, action: string, result: string): string {
  return `tracker_requests_total{protocol="${protocol}",action="${action}",result="${result}"}`
}

/** The same known mix of requests on every protocol: see the comments for what each counts. */
async function knownTraffic (s: StartedServer): Promise<void> {
  // HTTP: announce ok ×2 (a leecher, a seeder), scrape ok ×1, announce error ×1, scrape error ×1.
  await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(11, '-TR2940-'), port: 7001, left: 10, event: 2 })
  await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(12, '-qB4250-'), port: 7002, left: 0, event: 2 })
  await httpScrape(s.http4, [IH])
  assert.equal((await httpGet(s.http4, '/announce?info_hash=short')).status, 200)
  assert.equal((await httpGet(s.http4, '/scrape?info_hash=short')).status, 200)
  // UDP: connect ok ×1, announce ok ×1 (a leecher on IH2), scrape ok ×1, then an announce with a
  // forged connection id: dropped, no answer.
  const u = await udpClient(4, s.port)
  try {
    await u.announce({ infoHash: IH2, peerId: id20(13, '-TR2940-'), port: 7003, left: 5, event: 2 })
    await u.scrape([IH2])
    const forged = encodeUdpAnnounce({
      connectionId: new Uint8Array(8).fill(7),
      transactionId: 99,
      request: { infoHash: IH2, peerId: id20(14), port: 7004, downloaded: 0, left: 1, uploaded: 0, event: 2, numwant: -1 }
    })
    assert.equal(await u.send(forged), undefined)
  } finally { u.close() }
  // WS: announce ok ×1 (a seeder on IH2), scrape ok ×1, a non-JSON message: invalid error ×1.
  const w = await wsClient(s.ws)
  w.send({ action: 'announce', info_hash: IH2, peer_id: id20(15, '-WW0102-'), numwant: 0, uploaded: 0, downloaded: 0, left: 0, event: 'started', offers: [] })
  assert.equal((await w.next()).action, 'announce')
  w.send({ action: 'scrape', info_hash: [IH2] })
  assert.equal((await w.next()).action, 'scrape')
  w.send('not json')
  assert.ok(typeof (await w.next())['failure reason'] === 'string')
}

describe('/metrics', () => {
  it('counts requests by protocol, action and result, and reads the gauges at scrape time', async () => {
    await withServer({ metrics: true }, async (s) => {
      await knownTraffic(s)
      const r = await httpGet(s.http4, '/metrics')
      assert.equal(r.status, 200)
      assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/)
      const m = parseProm(r.body.toString())
      const expected: Record<string, number> = {
        [req('http', 'announce', 'ok')]: 2,
        [req('http', 'announce', 'error')]: 1,
        [req('http', 'scrape', 'ok')]: 1,
        [req('http', 'scrape', 'error')]: 1,
        [req('udp', 'connect', 'ok')]: 1,
        [req('udp', 'announce', 'ok')]: 1,
        [req('udp', 'announce', 'dropped')]: 1,
        [req('udp', 'scrape', 'ok')]: 1,
        [req('ws', 'announce', 'ok')]: 1,
        [req('ws', 'scrape', 'ok')]: 1,
        [req('ws', 'invalid', 'error')]: 1,
        tracker_udp_bad_connection_id_total: 1,
        tracker_torrents: 2,
        tracker_peers: 4,
        tracker_seeders: 2,
        tracker_leechers: 2,
        tracker_ws_connections: 1,
        'tracker_request_duration_seconds_count{protocol="http"}': 5,
        'tracker_request_duration_seconds_count{protocol="udp"}': 4,
        'tracker_request_duration_seconds_count{protocol="ws"}': 3,
        'tracker_request_duration_seconds_bucket{le="+Inf",protocol="udp"}': 4
      }
      for (const [k, v] of Object.entries(expected)) assert.equal(m.get(k), v, k)
      // Every other request series exists and is 0 (children are created up front).
      const requestSeries = [...m.keys()].filter(k => k.startsWith('tracker_requests_total{'))
      assert.equal(requestSeries.length, (2 + 4 + 3) * 3)
      for (const k of requestSeries) if (!(k in expected)) assert.equal(m.get(k), 0, k)
      // Buckets are cumulative and end at the count.
      for (const p of ['http', 'udp', 'ws']) {
        let prev = 0
        for (const le of [...LATENCY_BUCKETS_S.map(String), '+Inf']) {
          const v = m.get(`tracker_request_duration_seconds_bucket{le="${le}",protocol="${p}"}`)
          assert.ok(v !== undefined && v >= prev, `${p} ${le}`)
          prev = v
        }
        assert.equal(prev, m.get(`tracker_request_duration_seconds_count{protocol="${p}"}`))
        assert.ok(m.get(`tracker_request_duration_seconds_sum{protocol="${p}"}`)! > 0)
      }
      for (const stat of ['mean', 'p99', 'max']) assert.ok(m.get(`tracker_event_loop_lag_seconds{stat="${stat}"}`)! >= 0)
      assert.ok(m.get('tracker_resident_memory_bytes')! > 1e6)

      // Counters keep their totals between scrapes (delta export), and move by what happened.
      await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(11, '-TR2940-'), port: 7001, left: 10, event: 0 })
      const again = parseProm((await httpGet(s.http4, '/metrics')).body.toString())
      assert.equal(again.get(req('http', 'announce', 'ok')), 3)
      assert.equal(again.get(req('udp', 'announce', 'dropped')), 1)
      assert.equal(again.get('tracker_request_duration_seconds_count{protocol="http"}'), 6)
    })
  })

  it('each server has its own registry', async () => {
    await withServer({ metrics: true }, async (a) => {
      await withServer({ metrics: true }, async (b) => {
        await httpAnnounce(a.http4, { infoHash: IH, peerId: id20(1), port: 7001, left: 1, event: 2 })
        assert.equal(parseProm((await httpGet(a.http4, '/metrics')).body.toString()).get(req('http', 'announce', 'ok')), 1)
        assert.equal(parseProm((await httpGet(b.http4, '/metrics')).body.toString()).get(req('http', 'announce', 'ok')), 0)
      })
    })
  })

  it('is off by default (404), and on only when asked', async () => {
    await withServer({}, async (s) => {
      assert.equal((await httpGet(s.http4, '/metrics')).status, 404)
    })
    await withServer({ metrics: true, stats: false }, async (s) => {
      assert.equal((await httpGet(s.http4, '/metrics')).status, 200)
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 404)
    })
  })
})

describe('/stats.json new fields', () => {
  it('has the request counts, top torrents, history and health, and keeps the reference fields', async () => {
    await withServer({ statsSampleInterval: 50 }, async (s) => {
      await knownTraffic(s)
      // The top list is ranked at each sample: wait for one taken after the last announce.
      assert.ok(await waitFor(() => s.server.getStatsDocument().topTorrents.reduce((n, t) => n + t.peers, 0) === 4, 3000))
      const d = JSON.parse((await httpGet(s.http4, '/stats.json')).body.toString())
      assert.deepEqual(Object.keys(d).slice(0, 9), [
        'torrents', 'activeTorrents', 'peersAll', 'peersSeederOnly', 'peersLeecherOnly', 'peersSeederAndLeecher',
        'peersIPv4', 'peersIPv6', 'clients'
      ])
      assert.equal(d.torrents, 2)
      assert.equal(d.peersAll, 4)
      assert.deepEqual(d.swarmPeers, { all: 4, seeders: 2, leechers: 2 })
      assert.equal(d.wsConnections, 1)
      assert.equal(d.udpBadConnectionId, 1)
      const counts = (p: string, a: string): number[] => [d.requests[p][a].ok, d.requests[p][a].error, d.requests[p][a].dropped]
      assert.deepEqual(counts('http', 'announce'), [2, 1, 0])
      assert.deepEqual(counts('http', 'scrape'), [1, 1, 0])
      assert.deepEqual(counts('udp', 'connect'), [1, 0, 0])
      assert.deepEqual(counts('udp', 'announce'), [1, 0, 1])
      assert.deepEqual(counts('udp', 'scrape'), [1, 0, 0])
      assert.deepEqual(counts('ws', 'announce'), [1, 0, 0])
      assert.deepEqual(counts('ws', 'invalid'), [0, 1, 0])
      assert.deepEqual(Object.keys(d.requests), ['http', 'udp', 'ws'])
      assert.deepEqual(d.topTorrents, [
        { infoHash: hex(IH2), peers: 2, complete: 1, incomplete: 1, downloaded: 0 },
        { infoHash: hex(IH), peers: 2, complete: 1, incomplete: 1, downloaded: 0 }
      ].sort((x, y) => x.infoHash < y.infoHash ? -1 : 1))
      assert.equal(d.health.workers, 1)
      assert.ok(d.health.rssBytes > 1e6 && d.health.heapUsedBytes > 1e5)
      assert.equal(d.history.sampleSeconds, 0.05)
      const n = d.history.t.length
      assert.ok(n >= 1)
      assert.deepEqual(Object.keys(d.history.series), [
        'http.announce', 'http.scrape', 'udp.connect', 'udp.announce', 'udp.scrape', 'ws.announce', 'ws.scrape', 'errors', 'peers', 'torrents'
      ])
      for (const v of Object.values(d.history.series) as number[][]) assert.equal(v.length, n)
      assert.equal(d.history.series.peers[n - 1], 4)
      assert.equal(d.history.series.torrents[n - 1], 2)
    })
  })
})

describe('a store that fails to give its counters', () => {
  it('/metrics and /stats.json answer 500 with a warning, and work again once it recovers', async () => {
    const store = new MemoryStore({ peerTtl: 1200 })
    const counts = store.counts
    let broken = false
    Object.defineProperty(store, 'counts', {
      get: () => { if (broken) throw new Error('store connection lost'); return counts }
    })
    await withServer({ store, metrics: true, statsSampleInterval: 20 }, async (s) => {
      assert.equal((await httpGet(s.http4, '/metrics')).status, 200)
      broken = true
      for (const path of ['/metrics', '/stats.json', '/stats']) {
        const r = await httpGet(s.http4, path)
        assert.equal(r.status, 500, path)
        assert.equal(r.body.toString(), path === '/metrics' ? 'metrics unavailable' : 'statistics unavailable')
      }
      assert.deepEqual(s.warnings.map(w => w.message), ['store connection lost', 'store connection lost', 'store connection lost'])
      // The history sampler meets the same failure several times meanwhile, and the process lives on.
      await new Promise(resolve => setTimeout(resolve, 100))
      broken = false
      assert.equal((await httpGet(s.http4, '/metrics')).status, 200)
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 200)
    })
  })

  it('the dashboard is sent with a policy that forbids loading anything from elsewhere', async () => {
    await withServer({}, async (s) => {
      const r = await httpGet(s.http4, '/stats')
      assert.equal(r.headers['content-security-policy'], "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
      // No URL in the page but the SVG namespace.
      assert.deepEqual(r.body.toString().match(/https?:\/\/[^'"\s)]+/g), ['http://www.w3.org/2000/svg'])
    })
  })
})

describe('/health', () => {
  it('200 when listening and the store is ready; 503 when the store says it is not', async () => {
    let ready = true
    const store = Object.assign(new MemoryStore({ peerTtl: 1200 }), { ready: () => ready })
    await withServer({ store }, async (s) => {
      const ok = await httpGet(s.http4, '/health')
      assert.equal(ok.status, 200)
      assert.match(String(ok.headers['content-type']), /^application\/json/)
      const body = JSON.parse(ok.body.toString())
      assert.equal(body.status, 'ok')
      assert.equal(body.listening, true)
      assert.equal(body.storeReady, true)
      ready = false
      const down = await httpGet(s.http4, '/health')
      assert.equal(down.status, 503)
      assert.deepEqual({ ...JSON.parse(down.body.toString()), uptimeSeconds: 0 }, { status: 'unavailable', listening: true, storeReady: false, uptimeSeconds: 0 })
      ready = true
      assert.equal((await httpGet(s.http4, '/health')).status, 200)
    })
  })

  it('503 while not every transport is listening (UDP port taken after HTTP bound)', async () => {
    const taken = dgram.createSocket('udp4')
    await new Promise<void>(resolve => taken.bind(0, '127.0.0.1', resolve))
    const server = new Server({ ws: false })
    const errors: Error[] = []
    server.on('error', (err: Error) => errors.push(err))
    try {
      server.listen({ http: 0, udp: taken.address().port }, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' })
      assert.ok(await waitFor(() => errors.length === 1, 3000))
      assert.equal((errors[0] as NodeJS.ErrnoException).code, 'EADDRINUSE')
      assert.equal(server.http!.listening, true)
      const port = (server.http!.address() as { port: number }).port
      const r = await httpGet(`http://127.0.0.1:${port}`, '/health')
      assert.equal(r.status, 503)
      assert.equal(JSON.parse(r.body.toString()).listening, false)
    } finally {
      await closeServer(server)
      taken.close()
    }
  })

  it('is served with stats off too, and is not behind the stats guard', async () => {
    await withServer({ stats: false, statsToken: 'sekret' }, async (s) => {
      assert.equal((await httpGet(s.http4, '/health')).status, 200)
    })
  })
})

describe('stats guard', () => {
  it('a token: 401 without or with a wrong one; 200 with the bearer header or ?token=', async () => {
    await withServer({ metrics: true, statsToken: 's3cr3t' }, async (s) => {
      for (const path of ['/stats', '/stats.json', '/metrics']) {
        const none = await httpGet(s.http4, path)
        assert.equal(none.status, 401, path)
        assert.equal(none.headers['www-authenticate'], 'Bearer')
        assert.equal((await httpGet(s.http4, path, { Authorization: 'Bearer wrong' })).status, 401, path)
        assert.equal((await httpGet(s.http4, `${path}?token=s3cr3`)).status, 401, path)
        assert.equal((await httpGet(s.http4, path, { Authorization: 'Bearer s3cr3t' })).status, 200, path)
        assert.equal((await httpGet(s.http4, `${path}?token=s3cr3t`)).status, 200, path)
      }
      // The tracker itself is not guarded.
      const a = await httpAnnounce(s.http4, { infoHash: IH, peerId: id20(1), port: 7001, left: 1, event: 2 })
      assert.equal(a.failure, undefined)
    })
  })

  it('address ranges: 403 outside, 200 inside, IPv4 and IPv6', async () => {
    await withServer({ metrics: true, statsAllow: ['10.0.0.0/8', '::1/128'] }, async (s) => {
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 403)
      assert.equal((await httpGet(s.http4, '/metrics')).status, 403)
      assert.equal((await httpGet(s.http6, '/stats.json')).status, 200)
      assert.equal((await httpGet(s.http6, '/metrics')).status, 200)
    })
    await withServer({ statsAllow: ['127.0.0.0/30'] }, async (s) => {
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 200)
      assert.equal((await httpGet(s.http6, '/stats.json')).status, 403)
    })
  })

  it('both: the address first (403), then the token (401)', async () => {
    await withServer({ statsAllow: ['127.0.0.1'], statsToken: 't' }, async (s) => {
      assert.equal((await httpGet(s.http6, '/stats.json', { Authorization: 'Bearer t' })).status, 403)
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 401)
      assert.equal((await httpGet(s.http4, '/stats.json', { Authorization: 'Bearer t' })).status, 200)
    })
  })

  it('with trustProxy the range applies to the forwarded address', async () => {
    await withServer({ trustProxy: true, statsAllow: ['192.0.2.0/24'] }, async (s) => {
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 403)
      assert.equal((await httpGet(s.http4, '/stats.json', { 'X-Forwarded-For': '192.0.2.7' })).status, 200)
      assert.equal((await httpGet(s.http4, '/stats.json', { 'X-Forwarded-For': '192.0.2.7, 198.51.100.1' })).status, 403)
    })
  })

  it('a malformed range is refused when the server is made', () => {
    assert.throws(() => new Server({ statsAllow: ['10.0.0.0/33'] }), { name: 'TypeError', message: 'invalid address range: 10.0.0.0/33' })
  })

  it('a client that vanishes mid-request to /metrics does not break the server', async () => {
    await withServer({ metrics: true }, async (s) => {
      await withTimeout(new Promise<void>(resolve => {
        const r = http.get({ host: '127.0.0.1', port: s.port, path: '/metrics', agent: false })
        r.on('socket', sock => sock.on('connect', () => { r.destroy(); resolve() }))
        r.on('error', () => undefined)
      }), 3000, 'vanishing client')
      assert.equal((await httpGet(s.http4, '/metrics')).status, 200)
    })
  })
})
