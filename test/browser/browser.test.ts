// The browser bundle (scripts/build-browser.mjs) in a real browser: Debian's `chromium` driven by
// playwright-core. Two pages use our Client with our WebSocket tracker, connect over WebRTC and
// exchange a message each way; a third page announces to our HTTP tracker (cross-origin: the
// tracker answers with `Access-Control-Allow-Origin: *`). Also: the build refuses a bundle that
// would pull in a Node-only module.
//
// Chromium's WebRTC gathers candidates on every interface: the tests run in a child process in a
// network namespace with no way out (see test/helpers/browser-netns.ts, kind 'veth': Chromium
// gathers nothing on loopback, so the namespace holds a veth pair whose both ends stay inside).
// Chromium flags beyond the usual headless ones:
//   --allow-loopback-in-peer-connection  loopback addresses are acceptable ICE candidates
//   --disable-features=WebRtcHideLocalIpsWithMdns  host candidates carry the address itself
//     rather than a random .local name that needs an mDNS responder to resolve
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import type { BrowserContext, Page } from 'playwright-core'
import { Server } from '../../src/index.js'
import { canUseIsolatedNamespace, runInIsolatedNamespace } from '../helpers/browser-netns.js'
import { withTimeout } from '../helpers/tracker-clients.js'

const SELF = fileURLToPath(import.meta.url)
const ROOT = resolve(dirname(SELF), '..', '..')
const CHILD_ENV = 'BT_BROWSER_NETNS_CHILD'
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns'
]
/** Upper bound for one wait (a page load, a WebRTC connection on loopback, an announce). */
const STEP_MS = 15_000
/** Upper bound for starting Chromium with a fresh profile: on a loaded 2-core machine (the other
 * test files run beside this one) it has taken more than 15 s. */
const LAUNCH_MS = 60_000
const TEST_MS = 120_000
const CHILD_MS = 200_000

const inChild = process.env[CHILD_ENV] === '1'
const haveChromium = existsSync(CHROMIUM)

if (!haveChromium) {
  // A missing browser is a failure, not a skip: .ci/run installs it (apt-get install -y chromium).
  test('browser tests', () => {
    assert.fail(`${CHROMIUM} is not installed (apt-get install -y chromium)`)
  })
} else if (!inChild && canUseIsolatedNamespace('veth')) {
  test('browser tests, in a loopback-only network namespace', { timeout: CHILD_MS + 5_000 }, async (t) => {
    await runInIsolatedNamespace(t, SELF, CHILD_ENV, ROOT, CHILD_MS, 'veth')
  })
} else {
  defineTests()
}

// ---------------------------------------------------------------------------------------------
// Harness

function buildBundle (outfile: string, extra: string[] = []): { status: number | null, output: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-browser.mjs'), '--outfile', outfile, ...extra], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000
  })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>bittorrent-tracker browser test</title>
<script type="module">
  import Client, { Client as Named, Peer } from '/bittorrent-tracker.js'
  window.BT = { Client, Named, Peer }
  document.title = 'ready'
</script>`

/** Serves the test page and the bundle on 127.0.0.1 (favicon: 204, anything else: 404). */
async function serveStatic (bundleDir: string): Promise<{ origin: string, close: () => Promise<void> }> {
  const files: Record<string, [string, string]> = {
    '/': ['text/html; charset=utf-8', PAGE],
    '/bittorrent-tracker.js': ['text/javascript; charset=utf-8', readFileSync(join(bundleDir, 'bittorrent-tracker.js'), 'utf8')],
    '/bittorrent-tracker.js.map': ['application/json', readFileSync(join(bundleDir, 'bittorrent-tracker.js.map'), 'utf8')]
  }
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path === '/favicon.ico') { res.writeHead(204).end(); return }
    const f = files[path]
    if (f === undefined) { res.writeHead(404).end(); return }
    res.writeHead(200, { 'content-type': f[0], 'cache-control': 'no-store' }).end(f[1])
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

async function openPage (ctx: BrowserContext, origin: string, errors: string[]): Promise<Page> {
  const page = await ctx.newPage()
  page.on('pageerror', err => errors.push(`pageerror: ${err.message}`))
  page.on('console', msg => { if (msg.type() === 'error') errors.push(`console: ${msg.text()}`) })
  await page.goto(origin + '/', { timeout: STEP_MS })
  await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: STEP_MS })
  return page
}

interface PageResult {
  peerId: string
  connected: boolean
  received: string
  updates: Array<{ announce: string, complete: number, incomplete: number }>
  warnings: string[]
}

/**
 * In the page: a Client on `announce` that sends `message` to the first peer it meets and resolves
 * once it has received one message back (or rejects after `ms`).
 */
function runPeer (page: Page, args: { announce: string, infoHash: string, peerId: string, message: string, ms: number }): Promise<PageResult> {
  return page.evaluate(async ({ announce, infoHash, peerId, message, ms }) => {
    const { Client } = (window as unknown as { BT: { Client: any } }).BT
    const client = new Client({ infoHash, peerId, announce: [announce], rtcConfig: { iceServers: [] } })
    ;(window as unknown as { client: unknown }).client = client
    const updates: PageResult['updates'] = []
    const warnings: string[] = []
    client.on('update', (u: PageResult['updates'][number]) => updates.push({ announce: u.announce, complete: u.complete, incomplete: u.incomplete }))
    client.on('warning', (e: Error) => warnings.push(e.message))
    return await new Promise<PageResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${ms} ms; warnings: ${warnings.join(' | ')}`)), ms)
      client.once('peer', (peer: any) => {
        peer.on('error', (e: Error) => warnings.push(`peer: ${e.message}`))
        peer.once('data', (data: Uint8Array) => {
          clearTimeout(timer)
          resolve({ peerId: peer.id, connected: peer.connected, received: new TextDecoder().decode(data), updates, warnings })
        })
        peer.send(message)
      })
      client.start()
    })
  }, args)
}

function destroyPageClient (page: Page): Promise<void> {
  return page.evaluate(() => new Promise<void>(resolve => {
    const c = (window as unknown as { client?: { destroy: (cb: () => void) => void } }).client
    if (c === undefined) resolve()
    else c.destroy(() => resolve())
  }))
}

const INFO_HASH = '80ff00' + 'ab'.repeat(17)
const PEER_A = Buffer.from('-WW0001-page-A-00001').toString('hex')
const PEER_B = Buffer.from('-WW0001-page-B-00002').toString('hex')
const PEER_C = Buffer.from('-WW0001-page-C-00003').toString('hex')

// ---------------------------------------------------------------------------------------------
// Tests

function defineTests (): void {
  test('the browser build refuses a bundle that reaches a Node-only module', { timeout: TEST_MS }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-bundle-bad-'))
    try {
      const r = buildBundle(join(dir, 'bad.js'), ['--also', './src/client/udp-tracker.js'])
      assert.equal(r.status, 1, r.output)
      assert.match(r.output, /browser build failed: Node-only modules are reachable from the client:/)
      assert.match(r.output, /imports '\.\/src\/client\/udp-tracker\.js' \(UDP trackers need node:dgram\)/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('two pages meet through our WebSocket tracker and exchange messages over WebRTC; a page announces over HTTP', { timeout: TEST_MS }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-bundle-'))
    const profile = mkdtempSync(join(tmpdir(), 'bt-chromium-profile-'))
    const tracker = new Server({ udp: false, stats: false })
    const trackerWarnings: string[] = []
    tracker.on('warning', (err: Error) => trackerWarnings.push(err.message))
    let site: Awaited<ReturnType<typeof serveStatic>> | undefined
    let ctx: BrowserContext | undefined
    const errors: string[] = []
    try {
      const built = buildBundle(join(dir, 'bittorrent-tracker.js'))
      assert.equal(built.status, 0, built.output)
      assert.doesNotMatch(readFileSync(join(dir, 'bittorrent-tracker.js'), 'utf8'), /from\s*["']node:|require\(["']node:/)

      await withTimeout(new Promise<void>(resolve => tracker.listen(0, '127.0.0.1', () => resolve())), STEP_MS, 'tracker listen')
      const port = (tracker.http!.address() as AddressInfo).port
      site = await serveStatic(dir)

      ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
        headless: true,
        timeout: LAUNCH_MS
      })
      const [pageA, pageB, pageC] = [await openPage(ctx, site.origin, errors), await openPage(ctx, site.origin, errors), await openPage(ctx, site.origin, errors)]

      // The bundle's exports.
      assert.deepEqual(await pageA.evaluate(() => {
        const bt = (window as unknown as { BT: { Client: unknown, Named: unknown, Peer: unknown } }).BT
        return [typeof bt.Client, bt.Client === bt.Named, typeof bt.Peer]
      }), ['function', true, 'function'])

      const ws = `ws://127.0.0.1:${port}`
      const a = runPeer(pageA, { announce: ws, infoHash: INFO_HASH, peerId: PEER_A, message: 'hello from page A', ms: STEP_MS })
      // A is in the swarm before B arrives, so B's offers go to A.
      const swarmHasA = (): boolean => tracker.torrents[INFO_HASH]?.peers.has(PEER_A) === true
      const t0 = Date.now()
      while (!swarmHasA() && Date.now() - t0 < STEP_MS) await new Promise(resolve => setTimeout(resolve, 20))
      assert.equal(swarmHasA(), true, 'page A did not join the swarm')
      const b = runPeer(pageB, { announce: ws, infoHash: INFO_HASH, peerId: PEER_B, message: 'hello from page B', ms: STEP_MS })
      const [ra, rb] = await Promise.all([a, b])
      assert.deepEqual(ra, {
        peerId: PEER_B, connected: true, received: 'hello from page B', updates: [{ announce: ws, complete: 0, incomplete: 1 }], warnings: []
      })
      assert.equal(rb.peerId, PEER_A)
      assert.equal(rb.connected, true)
      assert.equal(rb.received, 'hello from page A')
      assert.deepEqual(rb.updates, [{ announce: ws, complete: 0, incomplete: 2 }])
      assert.deepEqual(rb.warnings, [])

      // HTTP tracker from a page: a cross-origin fetch, allowed by the tracker's CORS header.
      const httpAnnounce = `http://127.0.0.1:${port}/announce`
      const rc = await pageC.evaluate(async ({ announce, infoHash, peerId, ms }) => {
        const { Client } = (window as unknown as { BT: { Client: any } }).BT
        const client = new Client({ infoHash, peerId, announce: [announce], port: 6881 })
        const warnings: string[] = []
        client.on('warning', (e: Error) => warnings.push(e.message))
        const update = await new Promise<{ announce: string, complete: number, incomplete: number }>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no update within ${ms} ms; warnings: ${warnings.join(' | ')}`)), ms)
          client.once('update', (u: { announce: string, complete: number, incomplete: number }) => {
            clearTimeout(timer)
            resolve({ announce: u.announce, complete: u.complete, incomplete: u.incomplete })
          })
          client.start({ left: 0 })
        })
        await new Promise<void>(resolve => client.destroy(() => resolve()))
        return { update, warnings }
      }, { announce: httpAnnounce, infoHash: INFO_HASH, peerId: PEER_C, ms: STEP_MS })
      // Counts cover the whole swarm: C (seeding) and the two WebSocket leechers A and B.
      assert.deepEqual(rc, { update: { announce: httpAnnounce, complete: 1, incomplete: 2 }, warnings: [] })

      await destroyPageClient(pageA)
      await destroyPageClient(pageB)
      assert.deepEqual(errors, [])
      assert.deepEqual(trackerWarnings, [])
    } finally {
      if (ctx !== undefined) await withTimeout(ctx.close(), STEP_MS, 'browser close').catch(() => {})
      if (site !== undefined) await site.close()
      await withTimeout(new Promise<void>(resolve => tracker.close(() => resolve())), STEP_MS, 'tracker close').catch(() => {})
      rmSync(dir, { recursive: true, force: true })
      rmSync(profile, { recursive: true, force: true })
    }
  })
}
