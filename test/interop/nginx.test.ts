/**
 * The tracker behind a real nginx (Debian's nginx-light): X-Forwarded-For handling with a forged
 * header, over HTTP and WebSocket, and the operator's config in docs/deploy/nginx.conf checked
 * with `nginx -t` and then run for real (HTTPS, plain HTTP and WSS).
 *
 * Clients connect from other loopback addresses (127.0.0.2 …) so the address nginx appends
 * differs from the socket address the tracker sees (nginx's own, 127.0.0.1): a peer recorded at
 * the client's address proves the tracker took the LAST X-Forwarded-For entry, and nothing else.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeAnnounceResponse, encodeAnnounceQuery } from '../../src/protocol/http/announce.js'
import type { AnnounceResponse } from '../../src/protocol/http/announce.js'
import { parseCompactAddr } from '../../src/protocol/common/address.js'
import { REPLY_TIMEOUT_MS, hex, id20, startServer, withTimeout, wsClient } from '../helpers/tracker-clients.js'
import type { StartedServer } from '../helpers/tracker-clients.js'
import { NGINX, Nginx, freeTcpPort, nginxHttpBasics, nginxMain, nginxTest } from '../helpers/nginx.js'
import { makeCert } from '../helpers/tls.js'
import type { TestCert } from '../helpers/tls.js'

const DOCS_CONF = fileURLToPath(new URL('../../docs/deploy/nginx.conf', import.meta.url))
const IH = id20(990)
const FORGED = '6.6.6.6'

interface Via { port: number, from: string, tls?: string }

/** An announce sent from `via.from` to 127.0.0.1:via.port with a forged X-Forwarded-For. */
function announce (via: Via, peer: number, peerPort: number, compact: boolean, forged = FORGED): Promise<AnnounceResponse> {
  const q = encodeAnnounceQuery({ infoHash: IH, peerId: id20(peer), port: peerPort, uploaded: 0, downloaded: 0, left: 10, compact })
  return withTimeout(new Promise<AnnounceResponse>((resolve, reject) => {
    const opts = {
      host: '127.0.0.1', port: via.port, path: `/announce?${q}`, localAddress: via.from, agent: false,
      headers: { 'X-Forwarded-For': forged }
    }
    const onRes = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const d = decodeAnnounceResponse(Buffer.concat(chunks))
        if (!d.ok) return reject(new Error(`${res.statusCode ?? 0}: ${Buffer.concat(chunks).toString('latin1')}`))
        resolve(d.value)
      })
    }
    const req = via.tls === undefined ? http.request(opts, onRes) : https.request({ ...opts, ca: via.tls }, onRes)
    req.on('error', reject)
    req.end()
  }), REPLY_TIMEOUT_MS, `announce via ${via.port}`)
}

const peersOf = (r: AnnounceResponse): string[] => r.peers.map(p => {
  const a = parseCompactAddr(p.addr)!
  return `${a.ip}:${a.port}`
}).sort()

/** A WebSocket announce from `from`; returns the address the tracker recorded for the peer. */
async function wsAnnounce (s: StartedServer, url: string, from: string, peer: number, ca?: string): Promise<string | undefined> {
  const w = await wsClient(url, { localAddress: from, headers: { 'X-Forwarded-For': FORGED }, ...(ca === undefined ? {} : { ca }) })
  try {
    w.send({ action: 'announce', info_hash: IH, peer_id: id20(peer), numwant: 0, uploaded: 0, downloaded: 0, left: 10 })
    const m = await w.next()
    assert.equal(m['failure reason'], undefined)
    assert.equal(m.info_hash, IH)
    return s.server.torrents[hex(IH)].peers.get(hex(id20(peer)))?.ip
  } finally { await w.close() }
}

const keys = (s: StartedServer): string[] => [...s.server.torrents[hex(IH)].peers.keys()].sort()

let dir: string
before(() => {
  assert.ok(existsSync(NGINX), `${NGINX} is missing (Debian package nginx-light)`)
  dir = mkdtempSync(join(tmpdir(), 'tracker-nginx-'))
})
after(() => rmSync(dir, { recursive: true, force: true }))

describe('behind nginx (trustProxy limited to nginx\'s address)', () => {
  let s: StartedServer
  let nginx: Nginx
  let port: number

  before(async () => {
    s = await startServer({ trustProxy: ['127.0.0.1/32'] }, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' })
    port = await freeTcpPort()
    const d = join(dir, 'proxy')
    nginx = await Nginx.start(dir, `${nginxMain(d)}
http {
  ${nginxHttpBasics(d)}
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${s.port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`, port)
  })
  after(async () => {
    await nginx?.stop()
    await s?.close()
  })

  it('records the address nginx appended, not the forged entries, as other peers see it', async () => {
    const a = await announce({ port, from: '127.0.0.2' }, 1, 7201, false)
    assert.equal(a.failure, undefined)
    assert.deepEqual(peersOf(a), [])
    // Non-compact answer, a forged list of two entries.
    const b = await announce({ port, from: '127.0.0.4' }, 2, 7202, false, `${FORGED}, 7.7.7.7`)
    assert.deepEqual(peersOf(b), ['127.0.0.2:7201'])
    const c = await announce({ port, from: '127.0.0.6' }, 3, 7203, true)
    assert.deepEqual(peersOf(c), ['127.0.0.2:7201', '127.0.0.4:7202'])
    assert.deepEqual(keys(s), ['127.0.0.2:7201', '127.0.0.4:7202', '127.0.0.6:7203'])
  })

  it('a client talking to the tracker directly is not trusted: its header is ignored', async () => {
    await announce({ port: s.port, from: '127.0.0.3' }, 4, 7204, true)
    assert.ok(keys(s).includes('127.0.0.3:7204'), keys(s).join(' '))
    assert.ok(!keys(s).some(k => k.startsWith(FORGED)))
  })

  it('a WebSocket through nginx is recorded at the address nginx appended', async () => {
    assert.equal(await wsAnnounce(s, `ws://127.0.0.1:${port}`, '127.0.0.5', 5), '127.0.0.5')
    // And directly, from a socket not in the list: its own address.
    assert.equal(await wsAnnounce(s, `ws://127.0.0.1:${s.port}`, '127.0.0.7', 6), '127.0.0.7')
  })
})

describe('docs/deploy/nginx.conf', () => {
  let cert: TestCert
  let s: StartedServer
  let conf: string
  let plainPort: number
  let tlsPort: number

  before(async () => {
    cert = makeCert(dir, 'docs')
    s = await startServer({ trustProxy: ['127.0.0.1'] }, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' })
    plainPort = await freeTcpPort()
    tlsPort = await freeTcpPort()
    let site = readFileSync(DOCS_CONF, 'utf8')
    // Each replaced text must be in the file, so the test fails if the docs change shape.
    const swaps: Array<[string, string]> = [
      ['/etc/letsencrypt/live/tracker.example.org/fullchain.pem', cert.certFile],
      ['/etc/letsencrypt/live/tracker.example.org/privkey.pem', cert.keyFile],
      ['listen 80;', `listen 127.0.0.1:${plainPort};`],
      ['listen [::]:80;', `listen [::1]:${plainPort};`],
      ['listen 443 ssl;', `listen 127.0.0.1:${tlsPort} ssl;`],
      ['listen [::]:443 ssl;', `listen [::1]:${tlsPort} ssl;`],
      ['server 127.0.0.1:8000;', `server 127.0.0.1:${s.port};`]
    ]
    for (const [from, to] of swaps) {
      assert.ok(site.includes(from), `docs/deploy/nginx.conf no longer contains ${JSON.stringify(from)}`)
      site = site.replace(from, to)
    }
    const d = join(dir, 'docs-run')
    writeFileSync(join(dir, 'site.conf'), site)
    conf = `${nginxMain(d)}
http {
  ${nginxHttpBasics(d)}
  include ${join(dir, 'site.conf')};
}
`
  })
  after(async () => { await s?.close() })

  it('passes nginx -t', () => {
    const c = join(dir, 'docs-test.conf')
    writeFileSync(c, conf)
    const r = nginxTest(dir, c)
    assert.equal(r.status, 0, r.output)
    assert.match(r.output, /syntax is ok/)
    assert.match(r.output, /test is successful/)
  })

  it('nginx -t fails for a broken copy (the check can fail)', () => {
    const broken = join(dir, 'broken.conf')
    writeFileSync(broken, conf.replace(`include ${join(dir, 'site.conf')};`, 'proxy_set_header X-Forwarded-For;'))
    const r = nginxTest(dir, broken)
    assert.notEqual(r.status, 0)
    assert.match(r.output, /invalid number of arguments in "proxy_set_header"/)
  })

  it('serves HTTPS, plain HTTP and WSS to the tracker with the client\'s real address', async () => {
    const nginx = await Nginx.start(join(dir, 'docs-run'), conf, tlsPort)
    try {
      const a = await announce({ port: tlsPort, from: '127.0.0.8', tls: cert.cert }, 10, 7301, true)
      assert.equal(a.failure, undefined)
      const b = await announce({ port: plainPort, from: '127.0.0.9', tls: undefined }, 11, 7302, true)
      assert.deepEqual(peersOf(b), ['127.0.0.8:7301'])
      assert.equal(await wsAnnounce(s, `wss://127.0.0.1:${tlsPort}`, '127.0.0.10', 12, cert.cert), '127.0.0.10')
      assert.deepEqual(keys(s).filter(k => k.includes(':73')), ['127.0.0.8:7301', '127.0.0.9:7302'])
    } finally { await nginx.stop() }
  })
})
