/**
 * Private tracker mode over real sockets: passkeys on HTTP, UDP (BEP 41 URL data) and WebSocket,
 * the admin API, and per-key accounting with exact numbers.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { ERRORS } from '../../src/errors.js'
import Client from '../../src/index.js'
import type { ScrapeData, UpdateData } from '../../src/index.js'
import { Server } from '../../src/server/server.js'
import { encodeAnnounceQuery, decodeAnnounceResponse } from '../../src/protocol/http/announce.js'
import { encodeScrapeQuery, decodeScrapeResponse } from '../../src/protocol/http/scrape.js'
import {
  httpGet, id20, startServer, udpClient, waitFor, withTimeout, wsClient, REPLY_TIMEOUT_MS
} from '../helpers/tracker-clients.js'
import type { StartedServer } from '../helpers/tracker-clients.js'

const KEY = 'Key0123456789abcdefXYZ'
const KEY2 = 'f'.repeat(32)
const TOKEN = 'secret-admin-token'
const IH = id20(1)

interface Reply { status: number, headers: http.IncomingHttpHeaders, json: any }

/** One admin API request; `body` is sent as is. */
function admin (s: StartedServer, method: string, path: string, o: { token?: string | null, body?: string, auth?: string } = {}): Promise<Reply> {
  return withTimeout(new Promise<Reply>((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {}
    const token = o.token === undefined ? TOKEN : o.token
    if (o.auth !== undefined) headers.Authorization = o.auth
    else if (token !== null) headers.Authorization = `Bearer ${token}`
    if (o.body !== undefined) headers['Content-Type'] = 'application/json'
    const req = http.request({ host: '127.0.0.1', port: s.port, path, method, headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const isJson = res.headers['content-type'] === 'application/json'
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: isJson ? JSON.parse(text) : text })
      })
    })
    req.on('error', reject)
    req.end(o.body)
  }), REPLY_TIMEOUT_MS, `${method} ${path}`)
}

interface AnnounceOpts { peer: number, port: number, uploaded?: number, downloaded?: number, left?: number, event?: 0 | 1 | 2 | 3 }

async function httpAnnounceAt (s: StartedServer, path: string, o: AnnounceOpts): Promise<ReturnType<typeof decodeAnnounceResponse>> {
  const q = encodeAnnounceQuery({
    infoHash: IH, peerId: id20(100 + o.peer), port: o.port, uploaded: o.uploaded ?? 0, downloaded: o.downloaded ?? 0,
    left: o.left ?? 1000, event: o.event, compact: true
  })
  const r = await httpGet(s.http4, `${path}?${q}`)
  assert.equal(r.status, 200)
  return decodeAnnounceResponse(r.body)
}

async function httpFailure (s: StartedServer, path: string): Promise<string | undefined> {
  const d = await httpAnnounceAt(s, path, { peer: 9, port: 7009 })
  assert.ok(d.ok)
  return d.value.failure
}

describe('private mode: passkeys on every transport', () => {
  let s: StartedServer
  before(async () => { s = await startServer({ private: { keys: [KEY], adminToken: TOKEN } }) })
  after(async () => { await s.close() })

  it('HTTP: /announce/<key> is served; no key or an unknown key gets its failure reason and changes nothing', async () => {
    assert.equal(await httpFailure(s, '/announce'), ERRORS.PASSKEY_REQUIRED)
    assert.equal(await httpFailure(s, `/announce/${KEY2}`), 'unknown passkey')
    assert.equal(await httpFailure(s, '/announce/bad-key'), 'unknown passkey')
    assert.equal(Object.keys(s.server.torrents).length, 0)
    const ok = await httpAnnounceAt(s, `/announce/${KEY}`, { peer: 1, port: 7001 })
    assert.ok(ok.ok)
    assert.equal(ok.value.failure, undefined)
    assert.equal(ok.value.incomplete, 1)
    assert.deepEqual([...s.server.torrents[Buffer.from(IH, 'latin1').toString('hex')].peers.keys()], ['127.0.0.1:7001'])
  })

  it('HTTP scrape: /scrape/<key> answers; /scrape and an unknown key are refused', async () => {
    const q = encodeScrapeQuery([IH])
    const ok = decodeScrapeResponse((await httpGet(s.http4, `/scrape/${KEY}?${q}`)).body)
    assert.ok(ok.ok)
    assert.deepEqual(ok.value.files.map(f => [f.complete, f.incomplete]), [[0, 1]])
    for (const [path, reason] of [['/scrape', ERRORS.PASSKEY_REQUIRED], [`/scrape/${KEY2}`, 'unknown passkey']]) {
      const d = decodeScrapeResponse((await httpGet(s.http4, `${path}?${q}`)).body)
      assert.ok(d.ok)
      assert.equal(d.value.failure, reason)
    }
  })

  it('HTTP: the BEP 48-friendly form /<key>/announce and /<key>/scrape works too', async () => {
    const ok = await httpAnnounceAt(s, `/${KEY}/announce`, { peer: 2, port: 7002 })
    assert.ok(ok.ok)
    assert.equal(ok.value.failure, undefined)
    assert.equal(ok.value.incomplete, 2)
    assert.equal(await httpFailure(s, `/${KEY2}/announce`), 'unknown passkey')
    const d = decodeScrapeResponse((await httpGet(s.http4, `/${KEY}/scrape?${encodeScrapeQuery([IH])}`)).body)
    assert.ok(d.ok)
    assert.deepEqual(d.value.files.map(f => [f.complete, f.incomplete]), [[0, 2]])
    const stop = await httpAnnounceAt(s, `/${KEY}/announce`, { peer: 2, port: 7002, event: 3 })
    assert.ok(stop.ok && stop.value.failure === undefined)
  })

  it('UDP: the key in BEP 41 URL data; missing or unknown → an error packet with the reason; scrape is refused', async () => {
    const c = await udpClient(4, s.port)
    try {
      const f = { infoHash: IH, peerId: id20(201), port: 7201 }
      const none = await c.announce(f)
      assert.equal(none.action, 'error')
      assert.equal(none.action === 'error' && none.message, ERRORS.PASSKEY_REQUIRED)
      const wrong = await c.announce(f, `/announce/${KEY2}`)
      assert.equal(wrong.action === 'error' && wrong.message, 'unknown passkey')
      const scrape = await c.scrape([IH])
      assert.equal(scrape.action === 'error' && scrape.message, ERRORS.UDP_SCRAPE_PRIVATE)
      assert.equal(s.server.torrents[Buffer.from(IH, 'latin1').toString('hex')].peers.size, 1)
      const ok = await c.announce(f, `/announce/${KEY}?extra=1`)
      assert.equal(ok.action, 'announce')
      assert.deepEqual(ok.action === 'announce' && ok.peers.map(p => p.addr), ['\x7f\x00\x00\x01\x1b\x59']) // 127.0.0.1:7001
    } finally { c.close() }
  })

  it('WS: ws://host/<key>; without a key or with an unknown one each message gets the reason', async () => {
    const msg = { action: 'announce', info_hash: IH, peer_id: id20(301), uploaded: 0, downloaded: 0, left: 10, numwant: 0, offers: [] }
    for (const [path, reason] of [['', ERRORS.PASSKEY_REQUIRED], ['/', ERRORS.PASSKEY_REQUIRED], [`/${KEY2}`, 'unknown passkey']]) {
      const w = await wsClient(`${s.ws}${path}`)
      try {
        w.send(msg)
        const r = await w.next()
        assert.equal(r['failure reason'], reason, path)
        assert.equal(r.action, 'announce')
        w.send({ action: 'scrape', info_hash: IH })
        assert.equal((await w.next())['failure reason'], reason)
      } finally { await w.close() }
    }
    let peerNo = 310
    for (const path of [`/${KEY}`, `/announce/${KEY}`, `/${KEY}/announce`, `/${KEY}?x=1`]) {
      const w = await wsClient(`${s.ws}${path}`)
      try {
        w.send({ ...msg, peer_id: id20(peerNo++) })
        const r = await w.next()
        assert.equal(r['failure reason'], undefined, path)
        assert.equal(r.incomplete, 3, path) // two HTTP/UDP peers and this one (each closes before the next)
      } finally { await w.close() }
      assert.ok(await waitFor(() => s.server.torrents[Buffer.from(IH, 'latin1').toString('hex')].peers.size === 2, REPLY_TIMEOUT_MS))
    }
  })
})

describe('private mode: the project\'s own Client', () => {
  it('announces over HTTP (/<key>/announce) and UDP (/announce/<key>), and scrapes over HTTP', async () => {
    const s = await startServer({ private: { keys: [KEY] } }, { http: '127.0.0.1', udp: '127.0.0.1' })
    const ihHex = Buffer.from(IH, 'latin1').toString('hex')
    const client = new Client({
      infoHash: ihHex,
      peerId: Buffer.from(id20(601), 'latin1'),
      port: 7601,
      announce: [`http://127.0.0.1:${s.port}/${KEY}/announce`, `udp://127.0.0.1:${s.port}/announce/${KEY}`]
    })
    try {
      const updates: UpdateData[] = []
      const warnings: Error[] = []
      client.on('warning', (e: Error) => warnings.push(e))
      await withTimeout(new Promise<void>(resolve => {
        client.on('update', (d: UpdateData) => { updates.push(d); if (updates.length === 2) resolve() })
        client.start({ uploaded: 0, downloaded: 0, left: 100 })
      }), REPLY_TIMEOUT_MS, 'two updates')
      assert.deepEqual(updates.map(u => u.announce).sort(), [`http://127.0.0.1:${s.port}/${KEY}/announce`, `udp://127.0.0.1:${s.port}/announce/${KEY}`])
      // HTTP and UDP both reach the same swarm entry (same address and port)
      assert.deepEqual([...s.server.torrents[ihHex].peers.keys()], ['127.0.0.1:7601'])
      const scraped = await withTimeout(new Promise<ScrapeData>(resolve => {
        client.on('scrape', (d: ScrapeData) => { if (d.announce.startsWith('http')) resolve(d) })
        client.scrape()
      }), REPLY_TIMEOUT_MS, 'http scrape')
      assert.deepEqual([scraped.complete, scraped.incomplete, scraped.downloaded], [0, 1, 0])
      // the UDP scrape is refused with its reason, as a warning
      assert.ok(await waitFor(() => warnings.some(w => w.message === ERRORS.UDP_SCRAPE_PRIVATE), REPLY_TIMEOUT_MS))
    } finally {
      await new Promise<void>(resolve => client.destroy(() => resolve()))
      await s.close()
    }
  })
})

describe('private mode: admin API', () => {
  let s: StartedServer
  before(async () => { s = await startServer({ private: { keys: [KEY], adminToken: TOKEN } }) })
  after(async () => { await s.close() })

  it('401 without the right bearer token (none, wrong, another scheme), with WWW-Authenticate', async () => {
    for (const o of [{ token: null }, { token: 'wrong' }, { token: TOKEN + 'x' }, { auth: `Basic ${TOKEN}` }, { auth: TOKEN }]) {
      const r = await admin(s, 'GET', '/admin/keys', o)
      assert.equal(r.status, 401, JSON.stringify(o))
      assert.equal(r.headers['www-authenticate'], 'Bearer')
      assert.deepEqual(r.json, { error: 'missing or wrong bearer token' })
    }
    const r = await admin(s, 'POST', '/admin/keys', { token: 'wrong', body: '{}' })
    assert.equal(r.status, 401)
  })

  it('create (random and chosen), list, get, delete; a deleted key is refused at once', async () => {
    const random = await admin(s, 'POST', '/admin/keys', { body: '{}' })
    assert.equal(random.status, 201)
    assert.match(random.json.key, /^[0-9a-f]{32}$/)
    assert.deepEqual(random.json, { key: random.json.key, source: 'api', uploaded: 0, downloaded: 0 })
    const empty = await admin(s, 'POST', '/admin/keys')
    assert.equal(empty.status, 201)
    const chosen = await admin(s, 'POST', '/admin/keys', { body: JSON.stringify({ key: KEY2 }) })
    assert.deepEqual([chosen.status, chosen.json], [201, { key: KEY2, source: 'api', uploaded: 0, downloaded: 0 }])
    const dup = await admin(s, 'POST', '/admin/keys', { body: JSON.stringify({ key: KEY2 }) })
    assert.deepEqual([dup.status, dup.json], [409, { error: 'passkey exists' }])

    const list = await admin(s, 'GET', '/admin/keys')
    assert.equal(list.status, 200)
    assert.deepEqual(list.json.keys.map((k: { key: string }) => k.key), [KEY, random.json.key, empty.json.key, KEY2])
    assert.deepEqual(list.json.keys[0], { key: KEY, source: 'file', uploaded: 0, downloaded: 0 })

    // the new key works on HTTP right away
    const ok = await httpAnnounceAt(s, `/announce/${KEY2}`, { peer: 1, port: 7101 })
    assert.ok(ok.ok && ok.value.failure === undefined)
    const w = await wsClient(`${s.ws}/${KEY2}`)
    try {
      const del = await admin(s, 'DELETE', `/admin/keys/${KEY2}`)
      assert.deepEqual([del.status, del.json], [200, { key: KEY2, source: 'api', uploaded: 0, downloaded: 0 }])
      assert.equal(await httpFailure(s, `/announce/${KEY2}`), 'unknown passkey')
      // an open WebSocket with the key is refused from its next message on
      w.send({ action: 'announce', info_hash: IH, peer_id: id20(302), uploaded: 0, downloaded: 0, left: 10, numwant: 0, offers: [] })
      assert.equal((await w.next())['failure reason'], 'unknown passkey')
    } finally { await w.close() }
    assert.deepEqual((await admin(s, 'GET', `/admin/keys/${KEY2}`)).status, 404)
    const gone = await admin(s, 'DELETE', `/admin/keys/${KEY2}`)
    assert.deepEqual([gone.status, gone.json], [404, { error: 'unknown passkey' }])
  })

  it('bad bodies get a clear 4xx', async () => {
    const cases: Array<[string, number, string]> = [
      ['{', 400, 'body is not valid JSON'],
      ['[]', 400, 'body must be a JSON object'],
      ['"x"', 400, 'body must be a JSON object'],
      ['null', 400, 'body must be a JSON object'],
      ['{"key":"short"}', 400, 'key must be 16 to 64 characters of A-Z, a-z, 0-9'],
      ['{"key":12345678901234567}', 400, 'key must be 16 to 64 characters of A-Z, a-z, 0-9'],
      [`{"key":"${'a'.repeat(15)}/"}`, 400, 'key must be 16 to 64 characters of A-Z, a-z, 0-9'],
      ['{"name":"x"}', 400, 'unknown field: name'],
      [JSON.stringify({ key: 'a'.repeat(16), pad: 'x'.repeat(5000) }), 413, 'body larger than 4096 bytes']
    ]
    for (const [body, status, error] of cases) {
      const r = await admin(s, 'POST', '/admin/keys', { body })
      assert.deepEqual([r.status, r.json], [status, { error }], body.slice(0, 40))
    }
    const put = await admin(s, 'PUT', '/admin/keys')
    assert.deepEqual([put.status, put.headers.allow], [405, 'GET, POST'])
    const post = await admin(s, 'POST', `/admin/keys/${KEY}`)
    assert.deepEqual([post.status, post.headers.allow], [405, 'GET, DELETE'])
    // nothing of the above added a key
    assert.deepEqual((await admin(s, 'GET', '/admin/keys')).json.keys.map((k: { key: string }) => k.key).includes('a'.repeat(16)), false)
  })

  it('a client that vanishes mid-body adds nothing, and the API keeps serving', async () => {
    const before = (await admin(s, 'GET', '/admin/keys')).json.keys.length
    const sock = net.connect(s.port, '127.0.0.1')
    await new Promise(resolve => sock.once('connect', resolve))
    const body = `{"key":"${'v'.repeat(20)}"}`
    sock.write(`POST /admin/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`)
    await new Promise(resolve => setTimeout(resolve, 50))
    sock.destroy()
    await new Promise(resolve => setTimeout(resolve, 50))
    const after = await admin(s, 'GET', '/admin/keys')
    assert.equal(after.status, 200)
    assert.equal(after.json.keys.length, before)
    assert.equal((await admin(s, 'GET', `/admin/keys/${'v'.repeat(20)}`)).status, 404)
  })

  it('a declared body over 4 KiB is refused with 413 before it is read', async () => {
    const r = await withTimeout(new Promise<number>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: s.port, path: '/admin/keys', method: 'POST', agent: false,
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Length': '5000' }
      }, res => { res.resume(); resolve(res.statusCode ?? 0); req.destroy() })
      req.on('error', reject)
      req.write('{')
    }), REPLY_TIMEOUT_MS, 'declared-too-large body')
    assert.equal(r, 413)
    assert.equal((await admin(s, 'GET', '/admin/keys')).status, 200)
  })
})

describe('private mode: accounting', () => {
  let s: StartedServer
  before(async () => { s = await startServer({ private: { keys: [KEY, KEY2], adminToken: TOKEN } }) })
  after(async () => { await s.close() })

  it('sums upload/download deltas per key over HTTP, UDP and WS, with restarts counted as fresh starts', async () => {
    // HTTP peer under KEY: 0/0 → 1000/200 → 1500/700 = 1500 up, 700 down
    for (const [up, down, event] of [[0, 0, 2], [1000, 200, 0], [1500, 700, 0]] as const) {
      const r = await httpAnnounceAt(s, `/announce/${KEY}`, { peer: 1, port: 7301, uploaded: up, downloaded: down, event })
      assert.ok(r.ok && r.value.failure === undefined)
    }
    // UDP peer under KEY: 100/50 (started) → 300/50 → 20/10 (client restarted) = 320 up, 60 down
    const c = await udpClient(4, s.port)
    try {
      for (const [up, down, event] of [[100, 50, 2], [300, 50, 0], [20, 10, 0]] as const) {
        const r = await c.announce({ infoHash: IH, peerId: id20(401), port: 7401, uploaded: up, downloaded: down, event }, `/announce/${KEY}`)
        assert.equal(r.action, 'announce')
      }
      // a refused announce counts nothing
      await c.announce({ infoHash: IH, peerId: id20(401), port: 7401, uploaded: 1e9, downloaded: 1e9 }, '/announce')
    } finally { c.close() }
    // WS peer under KEY2: 11/22 → 33/44, then stopped at 40/50 = 40 up, 50 down
    const w = await wsClient(`${s.ws}/${KEY2}`)
    try {
      for (const [up, down, event] of [[11, 22, 'started'], [33, 44, undefined], [40, 50, 'stopped']] as const) {
        const m: Record<string, unknown> = { action: 'announce', info_hash: IH, peer_id: id20(501), uploaded: up, downloaded: down, left: 10, numwant: 0, offers: [] }
        if (event !== undefined) m.event = event
        w.send(m)
        assert.equal((await w.next())['failure reason'], undefined)
      }
    } finally { await w.close() }
    const k1 = await admin(s, 'GET', `/admin/keys/${KEY}`)
    assert.deepEqual([k1.status, k1.json], [200, { key: KEY, source: 'file', uploaded: 1500 + 320, downloaded: 700 + 60 }])
    const all = await admin(s, 'GET', '/admin/keys')
    assert.deepEqual(all.json, {
      keys: [
        { key: KEY, source: 'file', uploaded: 1820, downloaded: 760 },
        { key: KEY2, source: 'file', uploaded: 40, downloaded: 50 }
      ]
    })
  })
})

describe('private mode off / admin API off', () => {
  it('an open tracker keeps /announce/<x> and /admin/keys as 404', async () => {
    const s = await startServer()
    try {
      assert.equal((await httpGet(s.http4, `/announce/${KEY}?x=1`)).status, 404)
      assert.equal((await admin(s, 'GET', '/admin/keys')).status, 404)
    } finally { await s.close() }
  })

  it('private without an admin token: /admin/keys is 404, even with a token', async () => {
    const s = await startServer({ private: { keys: [KEY] } })
    try {
      assert.equal((await admin(s, 'GET', '/admin/keys')).status, 404)
      assert.equal(await httpFailure(s, '/announce'), ERRORS.PASSKEY_REQUIRED)
    } finally { await s.close() }
  })

  it('mounted on a server of your own: onHttpRequest takes keyed paths, onAdminRequest the admin API', async () => {
    const tracker = new Server({ http: false, udp: false, ws: false, stats: false, private: { keys: [KEY], adminToken: TOKEN } })
    const own = http.createServer((req, res) => {
      if (req.url!.startsWith('/admin/')) tracker.onAdminRequest(req, res)
      else tracker.onHttpRequest(req, res)
    })
    await new Promise<void>(resolve => own.listen(0, '127.0.0.1', resolve))
    const port = (own.address() as net.AddressInfo).port
    const s = { port, http4: `http://127.0.0.1:${port}` } as unknown as StartedServer
    try {
      assert.equal(await httpFailure(s, '/tracker/announce'), 'unknown passkey') // "tracker" taken as the key
      const ok = await httpAnnounceAt(s, `/tracker/announce/${KEY}`, { peer: 1, port: 7701 })
      assert.ok(ok.ok && ok.value.failure === undefined)
      const k = await admin(s, 'GET', `/admin/keys/${KEY}`)
      assert.deepEqual([k.status, k.json], [200, { key: KEY, source: 'file', uploaded: 0, downloaded: 0 }])
      assert.equal((await admin(s, 'GET', '/admin/other')).status, 404)
      // an open tracker answers 404 to the admin API
      const open = new Server({ http: false, udp: false, ws: false, stats: false })
      own.removeAllListeners('request')
      own.on('request', (req, res) => open.onAdminRequest(req, res))
      assert.equal((await admin(s, 'GET', '/admin/keys')).status, 404)
      await new Promise(resolve => open.close(resolve))
    } finally {
      own.closeAllConnections()
      await new Promise(resolve => own.close(resolve))
      await new Promise(resolve => tracker.close(resolve))
    }
  })

  it('a malformed key in the options throws, naming it', () => {
    assert.throws(() => new Server({ private: { keys: ['bad'] } }), /invalid passkey in options.private.keys: "bad"/)
  })
})
