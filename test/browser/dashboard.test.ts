// The /stats dashboard in a real browser (Debian's chromium, driven by playwright-core): peers
// announce over HTTP, UDP and WebSocket, and the page — served by the tracker itself — must show
// what /stats.json says, draw its charts, update without a reload, show a peer id made of HTML as
// text, and fit a phone's width. Screenshots go to test-output/ (docs/dashboard.png is one of them).
// No WebRTC here, so no network namespace: the page talks to 127.0.0.1 only, and its
// Content-Security-Policy forbids loading anything from elsewhere.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { Server } from '../../src/index.js'
import type { StatsDocument } from '../../src/server/stats/render.js'
import {
  closeServer, httpAnnounce, httpGet, id20, udpClient, waitFor, wsClient, withTimeout
} from '../helpers/tracker-clients.js'
import type { UdpClient, WsClient } from '../helpers/tracker-clients.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const OUT = join(ROOT, 'test-output')
const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
const STEP_MS = 15_000
const SAMPLE_MS = 150
const ROUNDS = 16
/** A peer id that is HTML: 20 bytes, `-<b>x</b>` then digits. */
const HTML_PEER_ID = '-<b>x</b>' + '12345678901'
const IH = id20(101)
const IH2 = id20(102)

interface Ctx {
  server: Server
  base: string
  browser: Browser
  udp: UdpClient
  ws: WsClient
}

async function statsJson (base: string): Promise<StatsDocument> {
  return JSON.parse((await httpGet(base, '/stats.json')).body.toString()) as StatsDocument
}

/** Opens the dashboard; every console error, page error and failed request is collected. */
async function open (c: Ctx, query: string, errors: string[], viewport: { width: number, height: number }, colorScheme: 'light' | 'dark'): Promise<Page> {
  const context = await c.browser.newContext({ viewport, colorScheme })
  const page = await context.newPage()
  page.on('pageerror', err => errors.push(`pageerror: ${err.message}`))
  page.on('console', msg => { if (msg.type() === 'error' || msg.type() === 'warning') errors.push(`console ${msg.type()}: ${msg.text()}`) })
  page.on('requestfailed', r => errors.push(`requestfailed: ${r.url()}`))
  page.on('request', r => { if (!r.url().startsWith(c.base + '/')) errors.push(`request elsewhere: ${r.url()}`) })
  await page.goto(`${c.base}/stats${query}`, { timeout: STEP_MS })
  await page.waitForFunction(() => document.documentElement.dataset.updated !== undefined, undefined, { timeout: STEP_MS })
  return page
}

/** Waits for the page's next poll after now. */
async function nextUpdate (page: Page): Promise<void> {
  const before = await page.evaluate(() => document.documentElement.dataset.updated)
  await page.waitForFunction(b => document.documentElement.dataset.updated !== b, before, { timeout: STEP_MS })
}

/** What the page shows: every [data-k] value, and the rows of each table as cell texts. */
function readPage (page: Page): Promise<{ values: Record<string, string>, requests: string[][], top: string[][], clients: string[][] }> {
  return page.evaluate(() => {
    const values: Record<string, string> = {}
    for (const e of Array.from(document.querySelectorAll<HTMLElement>('[data-k]'))) values[e.dataset.k!] = e.textContent ?? ''
    // No named functions in here: tsx would wrap them in a helper the page does not have.
    const [requests, top, clients] = ['requests', 'top', 'clients'].map(id =>
      Array.from((document.getElementById(id) as HTMLTableSectionElement).rows).map(r => Array.from(r.cells).map(c => c.textContent ?? '')))
    return { values, requests, top, clients }
  })
}

/** The same, computed from a /stats.json document. */
function expectedFrom (d: StatsDocument): { values: Record<string, string>, requests: string[][], top: string[][], clients: string[][] } {
  const values: Record<string, string> = {}
  for (const k of ['torrents', 'activeTorrents', 'peersAll', 'peersSeederOnly', 'peersLeecherOnly', 'peersSeederAndLeecher', 'peersIPv4', 'peersIPv6', 'wsConnections']) {
    values[k] = String((d as unknown as Record<string, number>)[k])
  }
  values['swarmPeers.seeders'] = String(d.swarmPeers.seeders)
  values['swarmPeers.leechers'] = String(d.swarmPeers.leechers)
  values['health.workers'] = '1'
  const requests: string[][] = []
  for (const p of Object.keys(d.requests)) {
    for (const a of Object.keys(d.requests[p])) {
      const r = d.requests[p][a]
      requests.push([p, a, String(r.ok), String(r.error), String(r.dropped), String(r.rate)])
    }
  }
  const top = d.topTorrents.map(t => [t.infoHash, t.peers, t.complete, t.incomplete, t.downloaded].map(String))
  const clients: string[][] = []
  for (const name of Object.keys(d.clients).sort()) {
    for (const v of Object.keys(d.clients[name]).sort()) clients.push([name, v, String(d.clients[name][v])])
  }
  return { values, requests, top, clients }
}

/** Drops the values that move on their own (memory, uptime, event-loop lag). */
function stable (p: { values: Record<string, string> } & Record<string, unknown>): typeof p {
  const values = Object.fromEntries(Object.entries(p.values).filter(([k]) => !k.startsWith('health.') || k === 'health.workers'))
  return { ...p, values }
}

if (!existsSync(CHROMIUM)) {
  it('dashboard tests', () => assert.fail(`${CHROMIUM} is not installed (apt-get install -y chromium)`))
} else {
  describe('the /stats dashboard in Chromium', { timeout: 120_000 }, () => {
    const c = {} as Ctx

    before(async () => {
      c.server = new Server({ metrics: true, statsSampleInterval: SAMPLE_MS })
      await withTimeout(new Promise<void>(resolve => c.server.listen(0, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' }, () => resolve())), STEP_MS, 'listen')
      const port = (c.server.http!.address() as AddressInfo).port
      c.base = `http://127.0.0.1:${port}`
      // Peers on every protocol: HTTP (one with an HTML peer id), UDP, WebSocket.
      await httpAnnounce(c.base, { infoHash: IH, peerId: HTML_PEER_ID, port: 6001, left: 100, event: 2 })
      await httpAnnounce(c.base, { infoHash: IH, peerId: id20(1, '-TR2940-'), port: 6002, left: 0, event: 2 })
      await httpAnnounce(c.base, { infoHash: IH2, peerId: id20(2, '-TR2940-'), port: 6003, left: 0, event: 2 })
      c.udp = await udpClient(4, port)
      await c.udp.announce({ infoHash: IH, peerId: id20(3, '-qB4250-'), port: 6004, left: 10, event: 2 })
      await c.udp.scrape([IH, IH2])
      c.ws = await wsClient(`ws://127.0.0.1:${port}`)
      c.ws.send({ action: 'announce', info_hash: IH, peer_id: id20(4, '-WW0102-'), numwant: 0, uploaded: 0, downloaded: 0, left: 0, event: 'started', offers: [] })
      await c.ws.next()
      // Bounded rounds of re-announces (no new peers), one round per sample, so the charts have
      // lines to draw: HTTP 40, UDP 40, WS 8 more announces in all.
      for (let i = 0; i < ROUNDS; i++) {
        for (let k = 0; k < (i % 4) + 1; k++) await httpAnnounce(c.base, { infoHash: IH, peerId: id20(1, '-TR2940-'), port: 6002, left: 0, event: 0 })
        for (let k = 0; k < ((i + 2) % 4) + 1; k++) await c.udp.announce({ infoHash: IH, peerId: id20(3, '-qB4250-'), port: 6004, left: 10, event: 0 })
        if (i % 2 === 1) {
          c.ws.send({ action: 'announce', info_hash: IH, peer_id: id20(4, '-WW0102-'), numwant: 0, uploaded: 0, downloaded: 0, left: 0, event: 'update', offers: [] })
          await c.ws.next()
        }
        await new Promise(resolve => setTimeout(resolve, SAMPLE_MS))
      }
      // A sample taken after the last announce ranks both swarms.
      assert.ok(await waitFor(() => c.server.getStatsDocument().topTorrents.reduce((n, t) => n + t.peers, 0) === 5, STEP_MS))
      // Starting Chromium on a loaded 2-core machine has taken more than 15 s.
      c.browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 60_000 })
      mkdirSync(OUT, { recursive: true })
    })

    after(async () => {
      await c.browser?.close()
      c.udp?.close()
      await c.ws?.close()
      if (c.server !== undefined) await closeServer(c.server)
    })

    it('loads with no error, shows what /stats.json says, draws the charts, shows HTML peer ids as text', async () => {
      const errors: string[] = []
      const page = await open(c, '?refresh=500', errors, { width: 1280, height: 900 }, 'light')
      // Two samples after the traffic: the newest rates are 0 and stay 0, so page and JSON agree.
      await new Promise(resolve => setTimeout(resolve, SAMPLE_MS * 3))
      await nextUpdate(page)
      const shown = await readPage(page)
      const d = await statsJson(c.base)
      assert.deepEqual(stable(shown), stable(expectedFrom(d)))
      // The numbers the test made, not just "equal to the JSON".
      assert.equal(shown.values.peersAll, '5')
      assert.equal(shown.values.torrents, '2')
      assert.equal(shown.values.wsConnections, '1')
      assert.deepEqual(shown.requests.find(r => r[0] === 'udp' && r[1] === 'announce'), ['udp', 'announce', '41', '0', '0', '0'])
      assert.deepEqual(shown.requests.find(r => r[0] === 'http' && r[1] === 'announce'), ['http', 'announce', '43', '0', '0', '0'])
      assert.deepEqual(shown.requests.find(r => r[0] === 'ws' && r[1] === 'announce'), ['ws', 'announce', '9', '0', '0', '0'])
      assert.deepEqual(shown.top.map(r => r[1]), ['4', '1'])

      // The HTML peer id is text: its version cell reads `-<b>x</b`, and no <b> element exists.
      assert.deepEqual(shown.clients.find(r => r[0] === 'unknown'), ['unknown', '-<b>x</b', '1'])
      assert.equal(await page.locator('b').count(), 0)

      // Charts: a line per series with a real path, a text alternative that is not the placeholder.
      const charts = await page.evaluate(() => ['chart-requests', 'chart-swarms'].map(id => {
        const svg = document.getElementById(id)!
        return {
          role: svg.getAttribute('role'),
          paths: Array.from(svg.querySelectorAll('path')).map(p => p.getAttribute('d') ?? ''),
          title: svg.querySelector('title')?.textContent,
          desc: svg.querySelector('desc')?.textContent ?? ''
        }
      }))
      assert.equal(charts[0].paths.length, 8)
      assert.equal(charts[1].paths.length, 2)
      for (const ch of charts) {
        assert.equal(ch.role, 'img')
        for (const d of ch.paths) assert.match(d, /^M[\d.]+ [\d.]+(L[\d.]+ [\d.-]+)*$/)
        assert.match(ch.desc, /^\d+ samples\. /)
      }
      assert.match(charts[1].desc, /peers: now 5, peak 5; torrents: now 2, peak 2\./)

      // Structure for screen readers: one h1, captioned tables, live totals.
      assert.deepEqual(await page.evaluate(() => ({
        h1: document.querySelectorAll('h1').length,
        h2: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
        uncaptioned: Array.from(document.querySelectorAll('table')).filter(t => t.caption === null).length,
        live: document.getElementById('totals')!.getAttribute('aria-live'),
        lang: document.documentElement.lang
      })), {
        h1: 1,
        h2: ['Totals', 'Requests', 'Top torrents by peers', 'Clients', 'Server health'],
        uncaptioned: 0,
        live: 'polite',
        lang: 'en'
      })
      await page.screenshot({ path: join(OUT, 'dashboard-desktop.png'), fullPage: true })
      // Keyboard: the scrollable table regions take focus, in order.
      const focused: Array<string | null | undefined> = []
      for (let i = 0; i < 3; i++) {
        await page.keyboard.press('Tab')
        focused.push(await page.evaluate(() => document.activeElement?.getAttribute('aria-labelledby')))
      }
      assert.deepEqual(focused, ['h-req', 'h-top', 'h-clients'])
      assert.deepEqual(errors, [])
      await page.context().close()
    })

    it('updates live, without a reload, when peers come and go', async () => {
      const errors: string[] = []
      const page = await open(c, '?refresh=500', errors, { width: 1280, height: 900 }, 'light')
      await page.evaluate(() => { (window as unknown as { marker: number }).marker = 42 })
      await httpAnnounce(c.base, { infoHash: IH2, peerId: id20(9, '-TR2940-'), port: 6009, left: 10, event: 2 })
      await page.waitForFunction(() => document.querySelector('[data-k="peersAll"]')?.textContent === '6', undefined, { timeout: STEP_MS })
      assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42)
      await httpAnnounce(c.base, { infoHash: IH2, peerId: id20(9, '-TR2940-'), port: 6009, left: 10, event: 3 })
      await page.waitForFunction(() => document.querySelector('[data-k="peersAll"]')?.textContent === '5', undefined, { timeout: STEP_MS })
      assert.deepEqual(errors, [])
      await page.context().close()
    })

    it('fits a phone’s width, in dark mode', async () => {
      const errors: string[] = []
      const page = await open(c, '', errors, { width: 375, height: 812 }, 'dark')
      const layout = await page.evaluate(() => ({
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        bg: getComputedStyle(document.body).backgroundColor
      }))
      assert.equal(layout.overflow, 0, 'no horizontal scrolling of the page')
      assert.equal(layout.bg, 'rgb(13, 17, 23)', 'the dark palette applies')
      await page.screenshot({ path: join(OUT, 'dashboard-phone.png'), fullPage: true })
      assert.deepEqual(errors, [])
      await page.context().close()
    })

    it('the built package (dist/, ESM and CommonJS) serves a working page too', async () => {
      // The page script is a function's source text: what tsc and esbuild emit must run as is.
      const esm = await import(join(ROOT, 'dist', 'index.js')) as { Server: typeof Server }
      const cjs = createRequire(import.meta.url)(join(ROOT, 'dist', 'index.cjs')) as { Server: typeof Server }
      for (const Built of [esm.Server, cjs.Server]) {
        const built = new Built({ udp: false, ws: false, statsSampleInterval: 50 })
        await withTimeout(new Promise<void>(resolve => built.listen(0, '127.0.0.1', () => resolve())), STEP_MS, 'listen')
        const base = `http://127.0.0.1:${(built.http!.address() as AddressInfo).port}`
        const context = await c.browser.newContext()
        const errors: string[] = []
        try {
          await httpAnnounce(base, { infoHash: IH, peerId: id20(6), port: 6006, left: 1, event: 2 })
          const page = await context.newPage()
          page.on('pageerror', err => errors.push(`pageerror: ${err.message}`))
          page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })
          await page.goto(`${base}/stats?refresh=500`, { timeout: STEP_MS })
          await page.waitForFunction(() => document.querySelectorAll('#chart-swarms path').length === 2, undefined, { timeout: STEP_MS })
          assert.equal(await page.locator('[data-k="peersAll"]').innerText(), '1')
          assert.deepEqual(errors, [])
        } finally {
          await context.close()
          await closeServer(built)
        }
      }
    })

    it('with a stats token, the page passes its ?token= on to stats.json', async () => {
      const guarded = new Server({ udp: false, ws: false, statsToken: 'pa55', statsSampleInterval: SAMPLE_MS })
      await withTimeout(new Promise<void>(resolve => guarded.listen(0, '127.0.0.1', () => resolve())), STEP_MS, 'listen')
      const base = `http://127.0.0.1:${(guarded.http!.address() as AddressInfo).port}`
      const errors: string[] = []
      const context = await c.browser.newContext()
      try {
        await httpAnnounce(base, { infoHash: IH, peerId: id20(5), port: 6005, left: 1, event: 2 })
        const page = await context.newPage()
        // The plain-text 401 page makes Chromium ask for /favicon.ico (a 404); the dashboard has its own icon.
        page.on('console', msg => { if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) errors.push(msg.text()) })
        const denied = await page.goto(`${base}/stats`, { timeout: STEP_MS })
        assert.equal(denied?.status(), 401)
        errors.length = 0 // the 401 of the page itself
        await page.goto(`${base}/stats?token=pa55&refresh=500`, { timeout: STEP_MS })
        await page.waitForFunction(() => document.documentElement.dataset.updated !== undefined, undefined, { timeout: STEP_MS })
        assert.match(await page.locator('#status').innerText(), /^Updated /)
        assert.equal(await page.locator('[data-k="peersAll"]').innerText(), '1')
        assert.deepEqual(errors, [])
      } finally {
        await context.close()
        await closeServer(guarded)
      }
    })
  })
}
