/**
 * HTTPS and WSS served directly (`tls` option): real openssl certificates, real TLS clients that
 * trust only the test certificate, reload without a restart, and every bad-material path.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Server } from '../../src/server/server.js'
import { decodeAnnounceResponse, encodeAnnounceQuery } from '../../src/protocol/http/announce.js'
import { HTTP_HEADERS_TIMEOUT_MS } from '../../src/constants.js'
import { httpGet, id20, REPLY_TIMEOUT_MS, startServer, withTimeout, wsClient } from '../helpers/tracker-clients.js'
import type { StartedServer } from '../helpers/tracker-clients.js'
import { makeCert, servedFingerprint } from '../helpers/tls.js'
import type { TestCert } from '../helpers/tls.js'

let dir: string
let a: TestCert
let b: TestCert

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tracker-tls-'))
  a = makeCert(dir, 'a')
  b = makeCert(dir, 'b')
})
after(() => rmSync(dir, { recursive: true, force: true }))

const IH = id20(901)
const query = (peer: number, port: number): string => encodeAnnounceQuery({
  infoHash: IH, peerId: id20(peer), port, uploaded: 0, downloaded: 0, left: 10, compact: true
})

describe('TLS: HTTPS and WSS on the HTTP port', () => {
  let s: StartedServer
  before(async () => { s = await startServer({ tls: { cert: a.cert, key: Buffer.from(a.key) }, interval: 60_000 }, '127.0.0.1') })
  after(async () => { await s.close() })

  it('answers an HTTPS announce to a client that trusts only the test CA', async () => {
    const r = await httpGet(`https://127.0.0.1:${s.port}`, `/announce?${query(1, 7001)}`, undefined, { ca: a.cert })
    assert.equal(r.status, 200)
    const d = decodeAnnounceResponse(r.body)
    assert.ok(d.ok)
    assert.equal(d.value.failure, undefined)
    assert.equal(d.value.interval, 60)
    assert.equal(d.value.incomplete, 1)
    assert.equal(await servedFingerprint(s.port), a.fingerprint256)
  })

  it('a client trusting another CA refuses the certificate', async () => {
    await assert.rejects(httpGet(`https://127.0.0.1:${s.port}`, '/stats.json', undefined, { ca: b.cert }), /self[- ]signed certificate|unable to verify/)
  })

  it('answers a WSS announce (ws client with the CA) and sees the HTTPS peer', async () => {
    const w = await wsClient(`wss://127.0.0.1:${s.port}`, { ca: a.cert })
    try {
      w.send({ action: 'announce', info_hash: IH, peer_id: id20(2), numwant: 0, uploaded: 0, downloaded: 0, left: 0 })
      assert.deepEqual(await w.next(), { action: 'announce', interval: 12, info_hash: IH, complete: 1, incomplete: 1 })
    } finally { await w.close() }
  })

  it('plain HTTP on the TLS port gets no tracker answer, and a warning', async () => {
    const before = s.warnings.length
    await assert.rejects(httpGet(`http://127.0.0.1:${s.port}`, '/stats.json'))
    assert.ok(s.warnings.slice(before).some(e => /http request/i.test(e.message)), s.warnings.map(e => e.message).join('; '))
  })

  it('reloadTls swaps the certificate for new connections; bad material throws and changes nothing', async () => {
    s.server.reloadTls({ cert: b.cert, key: b.key })
    assert.equal(await servedFingerprint(s.port), b.fingerprint256)
    assert.throws(() => s.server.reloadTls({ cert: 'not a certificate', key: a.key }), /^TypeError: TLS: the certificate is not a valid PEM certificate/)
    assert.throws(() => s.server.reloadTls({ cert: a.cert, key: b.key }), /^TypeError: TLS: the private key does not match the certificate/)
    assert.throws(() => s.server.reloadTls({ cert: a.cert, key: 'junk' }), /^TypeError: TLS: the private key is not a valid PEM key/)
    assert.equal(await servedFingerprint(s.port), b.fingerprint256)
    const r = await httpGet(`https://127.0.0.1:${s.port}`, `/announce?${query(3, 7003)}`, undefined, { ca: b.cert })
    assert.equal(decodeAnnounceResponse(r.body).ok, true)
    s.server.reloadTls({ cert: a.cert, key: a.key })
    assert.equal(await servedFingerprint(s.port), a.fingerprint256)
  })
})

describe('TLS: files and bad material', () => {
  it('certFile/keyFile are read at start and again by reloadTls()', async () => {
    const certFile = join(dir, 'live.crt')
    const keyFile = join(dir, 'live.key')
    writeFileSync(certFile, a.cert)
    writeFileSync(keyFile, a.key)
    const s = await startServer({ tls: { certFile, keyFile }, udp: false }, '127.0.0.1')
    try {
      assert.equal(await servedFingerprint(s.port), a.fingerprint256)
      writeFileSync(certFile, b.cert)
      writeFileSync(keyFile, b.key)
      assert.equal(await servedFingerprint(s.port), a.fingerprint256, 'nothing changes until reloadTls')
      s.server.reloadTls()
      assert.equal(await servedFingerprint(s.port), b.fingerprint256)
      // Half-written renewal: a new certificate with the old key. Refused; b stays.
      writeFileSync(certFile, a.cert)
      assert.throws(() => s.server.reloadTls(), /TLS: the private key does not match the certificate/)
      rmSync(keyFile)
      assert.throws(() => s.server.reloadTls(), new RegExp(`TLS: cannot read private key file ${keyFile}: ENOENT`))
      assert.equal(await servedFingerprint(s.port), b.fingerprint256)
    } finally { await s.close() }
  })

  it('the constructor throws a clear error for bad material', () => {
    const missing = join(dir, 'missing.crt')
    const garbage = join(dir, 'garbage.crt')
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    assert.throws(() => new Server({ tls: { certFile: missing, keyFile: a.keyFile } }), new RegExp(`^TypeError: TLS: cannot read certificate file ${missing}: ENOENT`))
    assert.throws(() => new Server({ tls: { certFile: garbage, keyFile: a.keyFile } }), new RegExp(`^TypeError: TLS: the certificate \\(${garbage}\\) is not a valid PEM certificate`))
    assert.throws(() => new Server({ tls: { certFile: a.certFile, keyFile: a.certFile } }), /^TypeError: TLS: the private key \(.*a\.crt\) is not a valid PEM key/)
    assert.throws(() => new Server({ tls: { certFile: a.certFile, keyFile: b.keyFile } }), /^TypeError: TLS: the private key does not match the certificate/)
    assert.throws(() => new Server({ tls: { cert: a.cert } }), /^TypeError: TLS: no private key given/)
  })

  it('reloadTls on a server without TLS throws; the default server is plain HTTP', async () => {
    const s = await startServer({ udp: false }, '127.0.0.1')
    try {
      assert.throws(() => s.server.reloadTls({ cert: a.cert, key: a.key }), /^Error: TLS is not enabled on this server$/)
      const r = await httpGet(s.http4, `/announce?${query(4, 7004)}`)
      assert.equal(decodeAnnounceResponse(r.body).ok, true)
    } finally { await s.close() }
  })
})

describe('TLS: clients that vanish', () => {
  it('a client leaving mid-handshake or sending junk costs nothing; the server goes on serving', async () => {
    const s = await startServer({ tls: { cert: a.cert, key: a.key }, udp: false }, '127.0.0.1')
    try {
      const net = await import('node:net')
      const half = async (bytes: Buffer): Promise<void> => {
        const sock = net.connect({ host: '127.0.0.1', port: s.port })
        await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
        sock.write(bytes)
        await new Promise(resolve => setTimeout(resolve, 50))
        sock.destroy()
      }
      // The first bytes of a TLS 1.2 ClientHello record (header: handshake, version, 512 bytes;
      // then the start of a ClientHello), and the client is gone.
      await half(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]))
      const codes = (): string[] => s.warnings.map(e => String((e as NodeJS.ErrnoException).code))
      assert.deepEqual(codes(), [], 'a client that left is not bad input')
      // Bytes that are no TLS record: bad input, one warning.
      await half(Buffer.from('\x00\xff garbage that is no TLS record \r\n\r\n', 'latin1'))
      assert.deepEqual(codes(), ['ERR_SSL_WRONG_VERSION_NUMBER'])
      const r = await httpGet(`https://127.0.0.1:${s.port}`, '/stats.json', undefined, { ca: a.cert })
      assert.equal(r.status, 200)
      assert.equal((JSON.parse(r.body.toString()) as { torrents: number }).torrents, 0)
    } finally { await s.close() }
  })
})

describe('TLS: clients that send nothing', () => {
  it('by default a TLS handshake and a first request each get HTTP_HEADERS_TIMEOUT_MS; plain HTTP leaves it to the fast path', async () => {
    const tlsServer = new Server({ tls: { cert: a.cert, key: a.key }, udp: false })
    const plain = new Server({ udp: false })
    const statsOnly = new Server({ udp: false, http: false, ws: false })
    try {
      const handshake = (srv: object): unknown => Object.getOwnPropertySymbols(srv).filter(k => k.description === 'handshake-timeout').map(k => (srv as Record<symbol, unknown>)[k])
      assert.deepEqual(handshake(tlsServer.http!), [HTTP_HEADERS_TIMEOUT_MS])
      assert.deepEqual([tlsServer.http!.timeout, plain.http!.timeout, statsOnly.http!.timeout], [HTTP_HEADERS_TIMEOUT_MS, 0, HTTP_HEADERS_TIMEOUT_MS])
    } finally {
      for (const srv of [tlsServer, plain, statsOnly]) await new Promise(resolve => srv.close(resolve))
    }
  })

  it('a socket that never handshakes, or handshakes and never asks, is closed; an open WSS socket is not', async () => {
    // The same mechanism with short limits (the defaults would make this test 15 s long).
    const LIMIT = 300
    const s = await startServer({ tls: { cert: a.cert, key: a.key }, udp: false, http: { handshakeTimeout: LIMIT } as object }, '127.0.0.1')
    s.server.http!.timeout = LIMIT
    const w = await wsClient(`wss://127.0.0.1:${s.port}`, { ca: a.cert })
    try {
      const net = await import('node:net')
      const tls = await import('node:tls')
      const closedBy = (sock: import('node:net').Socket): Promise<void> => withTimeout(new Promise<void>(resolve => {
        sock.on('error', () => {})
        sock.on('data', () => {})
        sock.once('close', () => resolve())
      }), REPLY_TIMEOUT_MS, 'server closing an idle socket')
      await Promise.all([
        closedBy(net.connect({ host: '127.0.0.1', port: s.port })),
        closedBy(tls.connect({ host: '127.0.0.1', port: s.port, ca: a.cert, servername: 'localhost', checkServerIdentity: () => undefined }))
      ])
      // The WSS socket outlived both (upgraded sockets have no idle limit) and still answers.
      w.send({ action: 'scrape', info_hash: IH })
      assert.deepEqual(await w.next(), { action: 'scrape', files: { [IH]: { complete: 0, incomplete: 0, downloaded: 0 } } })
    } finally {
      await w.close()
      await s.close()
    }
  })
})
