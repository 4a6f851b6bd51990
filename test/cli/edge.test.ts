/**
 * The command with TLS (reload on SIGHUP of a real child process), and its abuse-control
 * defaults: full scrape off, interval jitter on, rate limits on and adjustable.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ERRORS } from '../../src/errors.js'
import { decodeAnnounceResponse, encodeAnnounceQuery } from '../../src/protocol/http/announce.js'
import { decodeScrapeResponse } from '../../src/protocol/http/scrape.js'
import { httpAnnounce, httpGet, id20, wsClient } from '../helpers/tracker-clients.js'
import { CliProcess, killAllCli, runCli } from '../helpers/cli-process.js'
import { makeCert, servedFingerprint } from '../helpers/tls.js'
import type { TestCert } from '../helpers/tls.js'

const LOOPBACK = ['-p', '0', '--http-hostname', '127.0.0.1', '--udp-hostname', '127.0.0.1', '--udp6-hostname', '::1']
const IH = id20(950)
let dir: string
let a: TestCert
let b: TestCert

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tracker-cli-tls-'))
  a = makeCert(dir, 'a')
  b = makeCert(dir, 'b')
})
after(() => {
  killAllCli()
  rmSync(dir, { recursive: true, force: true })
})

const query = (peer: number, port: number): string => encodeAnnounceQuery({
  infoHash: IH, peerId: id20(peer), port, uploaded: 0, downloaded: 0, left: 5, compact: true
})

describe('CLI: TLS', () => {
  it('serves HTTPS and WSS; SIGHUP loads rewritten files; a bad file at reload keeps the old certificate', async () => {
    const certFile = join(dir, 'live.crt')
    const keyFile = join(dir, 'live.key')
    writeFileSync(certFile, a.cert)
    writeFileSync(keyFile, a.key)
    const cli = new CliProcess([...LOOPBACK, '--cert', certFile, '--key', keyFile])
    const port = await cli.port('https')
    await cli.waitFor('stdout', new RegExp(`"msg":"wss server listening on ${port}"`))
    assert.equal(await servedFingerprint(port), a.fingerprint256)
    const r = decodeAnnounceResponse((await httpGet(`https://127.0.0.1:${port}`, `/announce?${query(1, 7101)}`, undefined, { ca: a.cert })).body)
    assert.ok(r.ok)
    assert.equal(r.value.failure, undefined)
    assert.equal(r.value.incomplete, 1)
    const w = await wsClient(`wss://127.0.0.1:${port}`, { ca: a.cert })
    try {
      w.send({ action: 'announce', info_hash: IH, peer_id: id20(2), numwant: 0, uploaded: 0, downloaded: 0, left: 5 })
      const m = await w.next()
      assert.equal(m['failure reason'], undefined)
      assert.equal(m.incomplete, 2)
    } finally { await w.close() }

    // Renewal: both files rewritten, then SIGHUP.
    writeFileSync(certFile, b.cert)
    writeFileSync(keyFile, b.key)
    cli.signal('SIGHUP')
    await cli.waitFor('stdout', /"msg":"TLS certificate reloaded"/)
    assert.equal(await servedFingerprint(port), b.fingerprint256)
    assert.ok(decodeAnnounceResponse((await httpGet(`https://127.0.0.1:${port}`, `/announce?${query(3, 7103)}`, undefined, { ca: b.cert })).body).ok)
    await assert.rejects(httpGet(`https://127.0.0.1:${port}`, '/stats.json', undefined, { ca: a.cert }), /self[- ]signed certificate|unable to verify/)

    // A broken file at the next reload: logged, the process lives on with certificate b.
    writeFileSync(certFile, 'garbage\n')
    cli.signal('SIGHUP')
    const err = await cli.waitFor('stderr', /"msg":"TLS reload failed, still serving the previous certificate: ([^"]*)/)
    assert.equal(err[1].startsWith(`TLS: the certificate (${certFile}) is not a valid PEM certificate`), true, err[1])
    assert.equal(await servedFingerprint(port), b.fingerprint256)
    assert.equal(cli.child.exitCode, null)
    const e = await cli.stop('SIGTERM')
    assert.deepEqual(e, { code: 0, signal: null })
  })

  it('with --workers 2, SIGHUP reloads the certificate in every worker; a bad file keeps the old one in all', async () => {
    const certFile = join(dir, 'pool.crt')
    const keyFile = join(dir, 'pool.key')
    writeFileSync(certFile, a.cert)
    writeFileSync(keyFile, a.key)
    const cli = new CliProcess([...LOOPBACK, '--workers', '2', '--cert', certFile, '--key', keyFile])
    const port = await cli.port('https')
    await cli.waitFor('stdout', /"msg":"2 worker threads/)
    // Fresh connections until both workers have answered: each request verifies the certificate
    // served against exactly `ca`, so one worker left on the old certificate fails it.
    const workersServing = async (ca: string): Promise<string[]> => {
      const seen = new Set<string>()
      for (let i = 0; i < 200 && seen.size < 2; i++) {
        const r = await httpGet(`https://127.0.0.1:${port}`, '/health', undefined, { ca })
        assert.equal(r.status, 200)
        seen.add(String(r.headers['x-tracker-worker']))
      }
      return [...seen].sort()
    }
    assert.deepEqual(await workersServing(a.cert), ['1', '2'])

    writeFileSync(certFile, b.cert)
    writeFileSync(keyFile, b.key)
    cli.signal('SIGHUP')
    await cli.waitFor('stdout', /"msg":"TLS certificate reloaded"/)
    assert.deepEqual(await workersServing(b.cert), ['1', '2'])

    writeFileSync(keyFile, a.key)
    cli.signal('SIGHUP')
    const err = await cli.waitFor('stderr', /"msg":"TLS reload failed, still serving the previous certificate: ([^"]*)/)
    assert.equal(err[1].startsWith('TLS: the private key does not match the certificate'), true, err[1])
    assert.deepEqual(await workersServing(b.cert), ['1', '2'])
    assert.equal(cli.child.exitCode, null)
    assert.deepEqual(await cli.stop('SIGTERM'), { code: 0, signal: null })
  })

  const badStarts: Array<[string, () => string[], RegExp]> = [
    ['a missing certificate file', () => ['--cert', join(dir, 'nope.crt'), '--key', a.keyFile], /^bittorrent-tracker: TLS: cannot read certificate file .*nope\.crt: ENOENT/],
    ['a certificate file that is not PEM', () => ['--cert', a.keyFile, '--key', a.keyFile], /^bittorrent-tracker: TLS: the certificate \(.*a\.key\) is not a valid PEM certificate/],
    ['a key of another certificate', () => ['--cert', a.certFile, '--key', b.keyFile], /^bittorrent-tracker: TLS: the private key does not match the certificate/],
    ['--cert without --key', () => ['--cert', a.certFile], /^bittorrent-tracker: --cert and --key go together$/m]
  ]
  for (const [what, args, message] of badStarts) {
    it(`exits 2 at start with ${what}`, async () => {
      const r = await runCli([...LOOPBACK, ...args()])
      assert.equal(r.code, 2)
      assert.equal(r.stdout, '')
      assert.match(r.stderr, message)
    })
  }
})

describe('CLI: abuse-control defaults', () => {
  it('full scrape is off by default and on with --full-scrape', async () => {
    for (const full of [false, true]) {
      const cli = new CliProcess([...LOOPBACK, ...(full ? ['--full-scrape'] : [])])
      const port = await cli.port('http')
      const base = `http://127.0.0.1:${port}`
      assert.equal((await httpAnnounce(base, { infoHash: IH, peerId: id20(4), port: 7104 })).failure, undefined)
      const d = decodeScrapeResponse((await httpGet(base, '/scrape')).body)
      assert.ok(d.ok)
      if (full) {
        assert.equal(d.value.failure, undefined)
        assert.deepEqual(d.value.files.map(f => [f.infoHash, f.incomplete]), [[IH, 1]])
      } else {
        assert.equal(d.value.failure, ERRORS.FULL_SCRAPE_DISABLED)
      }
      assert.deepEqual(await cli.stop(), { code: 0, signal: null })
    }
  })

  it('announce intervals vary within ±10% by default', async () => {
    const cli = new CliProcess([...LOOPBACK, '--interval', '600000'])
    const base = `http://127.0.0.1:${await cli.port('http')}`
    const seen: number[] = []
    for (let i = 0; i < 40; i++) seen.push((await httpAnnounce(base, { infoHash: IH, peerId: id20(5), port: 7105 })).interval!)
    for (const v of seen) assert.ok(v >= 540 && v <= 660, `interval ${v}`)
    assert.ok(new Set(seen).size > 1, `40 equal intervals: ${seen[0]}`)
    await cli.stop()
  })

  it('--rate-limit-http sets the HTTP limit', async () => {
    const cli = new CliProcess([...LOOPBACK, '--rate-limit-http', '0.001/s:2'])
    const base = `http://127.0.0.1:${await cli.port('http')}`
    const failures = []
    for (let i = 0; i < 3; i++) failures.push((await httpAnnounce(base, { infoHash: IH, peerId: id20(6), port: 7106 })).failure)
    assert.deepEqual(failures, [undefined, undefined, ERRORS.RATE_LIMITED])
    await cli.stop()
  })

  it('a bad --trust-proxy-from entry exits 2 naming it', async () => {
    const r = await runCli([...LOOPBACK, '--trust-proxy-from', '127.0.0.1,10.0.0.0/99'])
    assert.equal(r.code, 2)
    assert.equal(r.stderr.split('\n')[0], 'bittorrent-tracker: invalid prefix length in proxy list: 10.0.0.0/99')
    assert.ok(r.stderr.includes('Usage:'), 'usage follows the error')
  })

  it('a malformed rate exits 2', async () => {
    const r = await runCli([...LOOPBACK, '--rate-limit-udp', '5'])
    assert.equal(r.code, 2)
    assert.equal(r.stderr.split('\n')[0], 'bittorrent-tracker: invalid rate-limit-udp (N/s, N/s:BURST or off): 5')
  })
})
