// WebSocketTracker (src/client/ws-tracker.ts) in Node, with WebRTC from @roamhq/wrtc: against our
// tracker server, the reference npm server, and a scripted fake tracker that checks exact frames.
//
// WebRTC gathers ICE candidates on every network interface. So that no packet can leave
// loopback, the tests run in a child process (this file, selected by WS_CHILD_ENV) inside a fresh
// network namespace holding only `lo` (`unshare --net`, then `ip link set lo up`; needs root,
// which CI has). Without that (not root, no unshare) they run in this process, still with no ICE
// servers and loopback-only tracker URLs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { dirname, resolve } from 'node:path'
import wrtc from '@roamhq/wrtc'
import { WebSocketServer } from 'ws'
import type { WebSocket as WsSocket } from 'ws'
import Client, { Server } from '../../src/index.js'
import { WebSocketTracker, wsTimeouts } from '../../src/client/ws-tracker.js'
import { Peer } from '../../src/client/peer.js'
import type { SignalData } from '../../src/client/peer.js'
import { poolSize } from '../../src/client/socket-pool.js'
import type { AnnounceOpts, TrackerOwner } from '../../src/client/tracker.js'
import { EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED } from '../../src/protocol/common/types.js'
import type { BinaryString } from '../../src/protocol/common/types.js'
import { id20, hex, withTimeout, waitFor } from '../helpers/tracker-clients.js'
import { canUseIsolatedNamespace, runInIsolatedNamespace } from '../helpers/browser-netns.js'

const SELF = fileURLToPath(import.meta.url)
const ROOT = resolve(dirname(SELF), '..', '..')
const WS_CHILD_ENV = 'BT_WS_TRACKER_NETNS_CHILD'
/** Upper bound for one wait on the network (loopback WebRTC connects in ~100 ms). */
const STEP_MS = 8_000
/** Upper bound for one test. */
const TEST_MS = 30_000
/** Upper bound for the whole child run. */
const CHILD_MS = 150_000

// ---------------------------------------------------------------------------------------------
// Namespace wrapper

const inChild = process.env[WS_CHILD_ENV] === '1'

if (!inChild && canUseIsolatedNamespace('loopback')) {
  test('WebSocket tracker tests, in a loopback-only network namespace', { timeout: CHILD_MS + 5_000 }, async (t) => {
    await runInIsolatedNamespace(t, SELF, WS_CHILD_ENV, ROOT, CHILD_MS)
  })
} else {
  defineTests()
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** The TrackerOwner a Client would be, reduced to what WebSocketTracker uses; records events. */
class Owner extends EventEmitter implements TrackerOwner {
  readonly port = 0
  readonly userAgent = undefined
  readonly rtcConfig = { iceServers: [] }
  readonly wrtc: unknown = wrtc
  readonly warnings: string[] = []
  readonly updates: unknown[] = []
  readonly peers: Peer[] = []
  defaults: AnnounceOpts = { numwant: 2, left: 1000, uploaded: 0, downloaded: 0 }

  constructor (readonly infoHashBinary: BinaryString, readonly peerIdBinary: BinaryString, opts: { wrtc?: unknown } = {}) {
    super()
    if ('wrtc' in opts) this.wrtc = opts.wrtc
    this.on('warning', (err: Error) => { this.warnings.push(err.message) })
    this.on('update', (u: unknown) => { this.updates.push(u) })
    this.on('peer', (p: Peer) => { this.peers.push(p) })
  }

  get infoHash (): string { return hex(this.infoHashBinary) }
  get peerId (): string { return hex(this.peerIdBinary) }
  defaultAnnounceOpts (): AnnounceOpts { return { ...this.defaults } }
}

/** The next `event` on `em`, as its argument list; rejects after `ms`. */
function next<T = unknown> (em: EventEmitter, event: string, what: string, ms = STEP_MS): Promise<T> {
  return withTimeout(new Promise<T>(resolve => em.once(event, (v: T) => resolve(v))), ms, what)
}

function destroyTracker (t: WebSocketTracker): Promise<void> {
  return withTimeout(new Promise<void>(resolve => t.destroy(() => resolve())), STEP_MS, 'tracker.destroy')
}

const TEST_TIMEOUTS = { retryMin: 100, retryMax: 400, destroyGrace: 1_000 }

async function startOurs (opts: ConstructorParameters<typeof Server>[0] = {}, port = 0): Promise<{ server: Server, port: number, url: string, warnings: string[] }> {
  const server = new Server({ udp: false, stats: false, ...opts })
  const warnings: string[] = []
  server.on('warning', (err: Error) => { warnings.push(err.message) })
  await withTimeout(new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  }), STEP_MS, 'server.listen')
  const p = (server.http!.address() as AddressInfo).port
  return { server, port: p, url: `ws://127.0.0.1:${p}`, warnings }
}

/** Counts the WebSocket connections a server accepted and how many are still open. */
function countSockets (server: Server): { opened: number, open: number } {
  const n = { opened: 0, open: 0 }
  server.ws!.on('connection', (socket: WsSocket) => {
    n.opened++
    n.open++
    socket.once('close', () => { n.open-- })
  })
  return n
}

/** Resources active now that were not in `before` (a multiset difference; closed ones don't count). */
function newResources (before: string[]): string[] {
  const left = [...before]
  const extra: string[] = []
  for (const r of process.getActiveResourcesInfo()) {
    const i = left.indexOf(r)
    if (i >= 0) left.splice(i, 1)
    else extra.push(r)
  }
  return extra.sort()
}

function closeServer (server: { close: (cb: () => void) => void }): Promise<void> {
  return withTimeout(new Promise<void>(resolve => server.close(() => resolve())), STEP_MS, 'server.close')
}

/** Two owners on `urlA`/`urlB` announce; resolves with the connected peer each one got. */
async function meet (a: Owner, b: Owner, ta: WebSocketTracker, tb: WebSocketTracker): Promise<[Peer, Peer]> {
  const pa = next<Peer>(a, 'peer', 'peer event of A')
  const pb = next<Peer>(b, 'peer', 'peer event of B')
  ta.announce({ event: EVENT_STARTED, numwant: 2, left: 1000 })
  await next(a, 'update', 'first update of A')
  tb.announce({ event: EVENT_STARTED, numwant: 2, left: 1000 })
  return await Promise.all([pa, pb])
}

/** Sends a text each way over the pair and checks it arrives unchanged. */
async function exchange (pa: Peer, pb: Peer): Promise<void> {
  const gotB = next<Uint8Array>(pb, 'data', 'data at B')
  const gotA = next<Uint8Array>(pa, 'data', 'data at A')
  pa.send('hello from A ✓')
  pb.send(new TextEncoder().encode('hello from B ✓'))
  assert.equal(new TextDecoder().decode(await gotB), 'hello from A ✓')
  assert.equal(new TextDecoder().decode(await gotA), 'hello from B ✓')
}

async function closePeers (...peers: Peer[]): Promise<void> {
  const closed = peers.map(p => p.destroyed ? Promise.resolve() : next(p, 'close', 'peer close'))
  for (const p of peers) p.destroy()
  await Promise.all(closed)
}

const H1 = id20(1, '\x80\xff')
const H2 = id20(2, '\x00\xfe')
const PEER_A = id20(10, '-AA0001-')
const PEER_B = id20(11, '-BB0001-')
const PEER_C = id20(12, '-CC0001-')

// ---------------------------------------------------------------------------------------------
// Tests

function defineTests (): void {
  test('two clients find each other through our WS tracker and exchange data both ways', { timeout: TEST_MS }, async () => {
    const s = await startOurs()
    const a = new Owner(H1, PEER_A)
    const b = new Owner(H1, PEER_B)
    // Separate paths, so separate sockets (one tracker URL shares one socket).
    const ta = new WebSocketTracker(a, `${s.url}/a`, TEST_TIMEOUTS)
    const tb = new WebSocketTracker(b, `${s.url}/b`, TEST_TIMEOUTS)
    const [pa, pb] = await meet(a, b, ta, tb)
    assert.equal(pa.id, hex(PEER_B))
    assert.equal(pb.id, hex(PEER_A))
    assert.equal(pa.connected, true)
    assert.equal(pb.connected, true)
    await exchange(pa, pb)
    assert.deepEqual(a.updates[0], { announce: `${s.url}/a`, infoHash: hex(H1), complete: 0, incomplete: 1 })
    await waitFor(() => b.updates.length > 0, STEP_MS)
    assert.deepEqual(b.updates[0], { announce: `${s.url}/b`, infoHash: hex(H1), complete: 0, incomplete: 2 })
    assert.equal(s.server.torrents[hex(H1)].incomplete, 2)

    // scrape over the same socket
    const scraped = next<unknown>(b, 'scrape', 'scrape')
    tb.scrape()
    assert.deepEqual(await scraped, { announce: `${s.url}/b`, infoHash: hex(H1), complete: 0, incomplete: 2, downloaded: 0 })

    // completed: no offers, the tracker counts a seeder and a download
    const upd = next<unknown>(a, 'update', 'update after completed')
    ta.announce({ event: EVENT_COMPLETED, left: 0, numwant: 2 })
    assert.deepEqual(await upd, { announce: `${s.url}/a`, infoHash: hex(H1), complete: 1, incomplete: 1 })
    assert.equal(s.server.torrents[hex(H1)].downloaded, 1)

    await closePeers(pa, pb)
    await destroyTracker(ta)
    await destroyTracker(tb)
    assert.ok(await waitFor(() => s.server.torrents[hex(H1)] === undefined || s.server.torrents[hex(H1)].peers.size === 0, STEP_MS))
    await closeServer(s.server)
    assert.deepEqual(a.warnings, [])
    assert.deepEqual(b.warnings, [])
    assert.deepEqual(s.warnings, [])
    assert.equal(ta.pendingPeers + tb.pendingPeers, 0)
  })

  test('two clients find each other through the reference npm server', { timeout: TEST_MS }, async () => {
    const ref = await import('bittorrent-tracker-reference') as unknown as {
      Server: new (opts: object) => EventEmitter & {
        http: { address: () => AddressInfo }
        listen: (port: number, host: string, cb: () => void) => void
        close: (cb: () => void) => void
      }
    }
    const server = new ref.Server({ udp: false, http: true, ws: true, stats: false })
    const serverWarnings: string[] = []
    server.on('warning', (err: Error) => { serverWarnings.push(err.message) })
    await withTimeout(new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve)), STEP_MS, 'reference listen')
    const url = `ws://127.0.0.1:${server.http.address().port}`
    const a = new Owner(H2, PEER_A)
    const b = new Owner(H2, PEER_B)
    const ta = new WebSocketTracker(a, `${url}/a`, TEST_TIMEOUTS)
    const tb = new WebSocketTracker(b, `${url}/b`, TEST_TIMEOUTS)
    const [pa, pb] = await meet(a, b, ta, tb)
    assert.equal(pa.id, hex(PEER_B))
    assert.equal(pb.id, hex(PEER_A))
    await exchange(pa, pb)
    assert.deepEqual(a.updates[0], { announce: `${url}/a`, infoHash: hex(H2), complete: 0, incomplete: 1 })
    await waitFor(() => b.updates.length > 0, STEP_MS)
    assert.deepEqual(b.updates[0], { announce: `${url}/b`, infoHash: hex(H2), complete: 0, incomplete: 2 })

    const scraped = next<unknown>(a, 'scrape', 'scrape')
    ta.scrape()
    assert.deepEqual(await scraped, { announce: `${url}/a`, infoHash: hex(H2), complete: 0, incomplete: 2, downloaded: 0 })

    await closePeers(pa, pb)
    await destroyTracker(ta)
    await destroyTracker(tb)
    await closeServer(server)
    assert.deepEqual(a.warnings, [])
    assert.deepEqual(b.warnings, [])
    assert.deepEqual(serverWarnings, [])
  })

  test('clients of one tracker URL share one socket; replies are routed by info hash', { timeout: TEST_MS }, async () => {
    const s = await startOurs()
    const sockets = countSockets(s.server)
    const a = new Owner(H1, PEER_A)
    const c = new Owner(H2, PEER_C)
    const ta = new WebSocketTracker(a, s.url, TEST_TIMEOUTS)
    const tc = new WebSocketTracker(c, s.url, TEST_TIMEOUTS)
    assert.equal(poolSize(), 1)
    const ua = next<unknown>(a, 'update', 'update of A')
    const uc = next<unknown>(c, 'update', 'update of C')
    ta.announce({ event: EVENT_STARTED, numwant: 0, left: 0 })
    tc.announce({ event: EVENT_STARTED, numwant: 0, left: 5 })
    assert.deepEqual(await ua, { announce: s.url, infoHash: hex(H1), complete: 1, incomplete: 0 })
    assert.deepEqual(await uc, { announce: s.url, infoHash: hex(H2), complete: 0, incomplete: 1 })
    assert.deepEqual(sockets, { opened: 1, open: 1 })
    assert.equal(a.updates.length, 1)
    assert.equal(c.updates.length, 1)

    // The last one out closes the socket; until then it stays open for the other.
    await destroyTracker(ta)
    assert.equal(poolSize(), 1)
    const uc2 = next<unknown>(c, 'update', 'second update of C')
    tc.announce({ numwant: 0, left: 5 })
    assert.deepEqual(await uc2, { announce: s.url, infoHash: hex(H2), complete: 0, incomplete: 1 })
    assert.deepEqual(sockets, { opened: 1, open: 1 })
    await destroyTracker(tc)
    assert.equal(poolSize(), 0)
    assert.ok(await waitFor(() => sockets.open === 0, STEP_MS))
    assert.equal(sockets.opened, 1)
    await closeServer(s.server)
    assert.deepEqual([a.warnings, c.warnings, s.warnings], [[], [], []])
  })

  test('two Clients (public API) on one shared socket meet through our tracker; Client.scrape over ws', { timeout: TEST_MS }, async () => {
    const s = await startOurs()
    const sockets = countSockets(s.server)
    let stops = 0
    s.server.on('stop', () => { stops++ })
    const before = process.getActiveResourcesInfo()
    const common = { announce: s.url, port: 6881, wrtc, rtcConfig: { iceServers: [] }, timeouts: TEST_TIMEOUTS }
    const a = new Client({ ...common, infoHash: hex(H1), peerId: hex(PEER_A) })
    const b = new Client({ ...common, infoHash: hex(H1), peerId: hex(PEER_B) })
    const warnings: string[] = []
    a.on('warning', (e: Error) => warnings.push(`A: ${e.message}`))
    b.on('warning', (e: Error) => warnings.push(`B: ${e.message}`))
    assert.equal(poolSize(), 1)
    const pa = next<Peer>(a, 'peer', 'peer of A')
    const pb = next<Peer>(b, 'peer', 'peer of B')
    const ua = next<unknown>(a, 'update', 'update of A')
    a.start()
    assert.deepEqual(await ua, { announce: s.url, infoHash: hex(H1), complete: 0, incomplete: 1 })
    const ub = next<unknown>(b, 'update', 'update of B')
    b.start()
    assert.deepEqual(await ub, { announce: s.url, infoHash: hex(H1), complete: 0, incomplete: 2 })
    const [peerA, peerB] = await Promise.all([pa, pb])
    assert.equal(peerA.id, hex(PEER_B))
    assert.equal(peerB.id, hex(PEER_A))
    await exchange(peerA, peerB)
    assert.deepEqual(sockets, { opened: 1, open: 1 })

    // The static scrape, in both of the seed's forms, on a WebSocket tracker.
    const one = await withTimeout(new Promise<unknown>((resolve, reject) => {
      Client.scrape({ announce: s.url, infoHash: hex(H1), wrtc, timeouts: TEST_TIMEOUTS }, (err, r) => err !== null ? reject(err) : resolve(r))
    }), STEP_MS, 'Client.scrape (object form)')
    assert.deepEqual(one, { announce: s.url, infoHash: hex(H1), complete: 0, incomplete: 2, downloaded: 0 })
    const many = await withTimeout(new Promise<unknown>((resolve, reject) => {
      Client.scrape(s.url, [hex(H1), hex(H2)], (err, r) => err !== null ? reject(err) : resolve(r))
    }), STEP_MS, 'Client.scrape (list form)')
    assert.deepEqual(many, {
      [hex(H1)]: { announce: s.url, infoHash: hex(H1), complete: 0, incomplete: 2, downloaded: 0 },
      [hex(H2)]: { announce: s.url, infoHash: hex(H2), complete: 0, incomplete: 0, downloaded: 0 }
    })

    await closePeers(peerA, peerB)
    a.stop()
    b.stop()
    await withTimeout(Promise.all([
      new Promise<void>(resolve => a.destroy(() => resolve())),
      new Promise<void>(resolve => b.destroy(() => resolve()))
    ]), STEP_MS, 'Client.destroy')
    assert.equal(poolSize(), 0)
    assert.ok(await waitFor(() => sockets.open === 0, STEP_MS))
    // Both stops reached the tracker before the socket closed.
    assert.equal(stops, 2)
    assert.equal(s.server.torrents[hex(H1)]?.peers.size ?? 0, 0)
    await waitFor(() => newResources(before).length === 0, 2_000)
    assert.deepEqual(newResources(before), [])
    await closeServer(s.server)
    assert.deepEqual(warnings, [])
    assert.deepEqual(s.warnings, [])
  })

  test('two clients sharing one socket connect through the reference server', { timeout: TEST_MS }, async () => {
    // The reference relays offers to other peers on the sender's own socket; the relayed offer
    // reaches the pooled client that is not its sender.
    const ref = await import('bittorrent-tracker-reference') as unknown as {
      Server: new (opts: object) => EventEmitter & {
        http: { address: () => AddressInfo }
        listen: (port: number, host: string, cb: () => void) => void
        close: (cb: () => void) => void
      }
    }
    const server = new ref.Server({ udp: false, http: true, ws: true, stats: false })
    await withTimeout(new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve)), STEP_MS, 'reference listen')
    const url = `ws://127.0.0.1:${server.http.address().port}`
    const a = new Owner(H1, PEER_A)
    const b = new Owner(H1, PEER_B)
    const ta = new WebSocketTracker(a, url, TEST_TIMEOUTS)
    const tb = new WebSocketTracker(b, url, TEST_TIMEOUTS)
    assert.equal(poolSize(), 1)
    const [pa, pb] = await meet(a, b, ta, tb)
    assert.equal(pa.id, hex(PEER_B))
    assert.equal(pb.id, hex(PEER_A))
    await exchange(pa, pb)
    await closePeers(pa, pb)
    await destroyTracker(ta)
    await destroyTracker(tb)
    await closeServer(server)
    assert.deepEqual([a.warnings, b.warnings], [[], []])
  })

  test('reconnects with back-off after the tracker restarts on the same port, and announces again', { timeout: TEST_MS }, async () => {
    const s1 = await startOurs()
    const a = new Owner(H1, PEER_A)
    a.defaults = { numwant: 0, left: 7 }
    const ta = new WebSocketTracker(a, s1.url, TEST_TIMEOUTS)
    const u1 = next<unknown>(a, 'update', 'first update')
    ta.announce({ event: EVENT_STARTED, numwant: 0, left: 7 })
    assert.deepEqual(await u1, { announce: s1.url, infoHash: hex(H1), complete: 0, incomplete: 1 })

    const down = next<Error>(a, 'warning', 'warning on disconnect')
    await closeServer(s1.server)
    assert.equal((await down).message, `WebSocket tracker: connection closed (code 1006) (${s1.url})`)
    // While the tracker is away, retries fail (each one warns) with growing delays.
    await new Promise(resolve => setTimeout(resolve, 300))
    const failedSoFar = a.warnings.length

    const s2 = await startOurs({}, s1.port)
    assert.equal(s2.port, s1.port)
    const u2 = await next<unknown>(a, 'update', 'update after reconnect')
    assert.deepEqual(u2, { announce: s1.url, infoHash: hex(H1), complete: 0, incomplete: 1 })
    assert.equal(s2.server.torrents[hex(H1)].peers.has(hex(PEER_A)), true)
    // 300 ms of back-off from 100 ms doubling (each delay jittered into its upper half) leaves
    // room for 1 to 3 failed attempts: retried, but not in a tight loop.
    assert.ok(failedSoFar >= 2 && failedSoFar <= 4, `warnings: ${JSON.stringify(a.warnings)}`)
    assert.equal(a.warnings[0], `WebSocket tracker: connection closed (code 1006) (${s1.url})`)
    for (const w of a.warnings.slice(1)) {
      assert.equal(w, `WebSocket tracker: connect ECONNREFUSED 127.0.0.1:${s1.port} (${s1.url})`)
    }
    await destroyTracker(ta)
    await closeServer(s2.server)
  })

  test('a failure reason becomes a warning; the tracker interval is honoured', { timeout: TEST_MS }, async () => {
    // interval 5 s → WebSocket peers are told 1 s (a fifth)
    const s = await startOurs({
      interval: 5_000,
      filter: (infoHash: string, _params: unknown, cb: (r?: boolean | Error | null) => void) => {
        cb(infoHash === hex(H2) ? new Error('torrent not allowed here') : true)
      }
    })
    const a = new Owner(H2, PEER_A)
    const ta = new WebSocketTracker(a, s.url, TEST_TIMEOUTS)
    const w = next<Error>(a, 'warning', 'failure warning')
    ta.announce({ event: EVENT_STARTED, numwant: 0 })
    assert.equal((await w).message, `torrent not allowed here (${s.url})`)
    await destroyTracker(ta)

    const b = new Owner(H1, PEER_B)
    b.defaults = { numwant: 0, left: 3 }
    // intervalFloor 0: the tracker's 1-s interval is used as it is.
    const tb = new WebSocketTracker(b, s.url, { ...TEST_TIMEOUTS, intervalFloor: 0 })
    const t0 = Date.now()
    tb.announce({ event: EVENT_STARTED, numwant: 0, left: 3 })
    await next(b, 'update', 'first update')
    const t1 = Date.now()
    await next(b, 'update', 'timer update')
    const gap = Date.now() - t1
    assert.ok(gap >= 900 && gap < 2_500, `re-announced after ${gap} ms (first reply after ${t1 - t0} ms)`)
    // After `stopped`, no more timed announces.
    tb.announce({ event: EVENT_STOPPED, numwant: 0 })
    await next(b, 'update', 'stop reply')
    const n = b.updates.length
    await new Promise(resolve => setTimeout(resolve, 1_500))
    assert.equal(b.updates.length, n)
    await destroyTracker(tb)
    await closeServer(s.server)
    assert.deepEqual(b.warnings, [])
  })

  test('frames against a scripted tracker: offers, answers, unknown offer ids, offer timeout', { timeout: TEST_MS }, async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await withTimeout(new Promise(resolve => wss.once('listening', resolve)), STEP_MS, 'wss listening')
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
    const frames: Array<Record<string, unknown>> = []
    const frameEvents = new EventEmitter()
    let conn: WsSocket | undefined
    wss.on('connection', (ws) => {
      conn = ws
      ws.on('message', (data) => {
        const f = JSON.parse(data.toString()) as Record<string, unknown>
        frames.push(f)
        frameEvents.emit('frame', f)
      })
    })
    const saved = { ...wsTimeouts }
    wsTimeouts.offerMs = 400
    try {
      const a = new Owner(H1, PEER_A)
      const ta = new WebSocketTracker(a, url, TEST_TIMEOUTS)
      const f1p = next<Record<string, unknown>>(frameEvents, 'frame', 'announce frame')
      ta.announce({ event: EVENT_STARTED, numwant: 3, left: 1000, uploaded: 5, downloaded: 6 })
      const f1 = await f1p
      const offers = f1.offers as Array<{ offer: { type: string, sdp: string }, offer_id: string }>
      assert.deepEqual(Object.keys(f1), ['action', 'info_hash', 'peer_id', 'uploaded', 'downloaded', 'left', 'event', 'numwant', 'offers'])
      assert.deepEqual([f1.action, f1.info_hash, f1.peer_id, f1.uploaded, f1.downloaded, f1.left, f1.event, f1.numwant],
        ['announce', H1, PEER_A, 5, 6, 1000, 'started', 3])
      assert.equal(offers.length, 3)
      assert.equal(new Set(offers.map(o => o.offer_id)).size, 3)
      for (const o of offers) {
        assert.equal(o.offer.type, 'offer')
        assert.equal(o.offer_id.length, 20)
        assert.match(o.offer.sdp, /a=candidate:/) // non-trickle: candidates are in the SDP
      }
      assert.equal(ta.pendingPeers, 3)

      // An answer to an offer id we never made is ignored: no peer, no warning, nothing closes.
      conn!.send(JSON.stringify({ action: 'announce', answer: { type: 'answer', sdp: 'v=0\r\n' }, offer_id: 'x'.repeat(20), peer_id: PEER_B, info_hash: H1 }))
      // A failure reason is a warning; an announce reply with a tracker id is echoed back later.
      conn!.send(JSON.stringify({ action: 'announce', 'failure reason': 'go away', info_hash: H1 }))
      assert.equal((await next<Error>(a, 'warning', 'failure')).message, `go away (${url})`)
      conn!.send(JSON.stringify({ action: 'announce', interval: 120, complete: 3, incomplete: 4, info_hash: H1, 'tracker id': 'T-1' }))
      assert.deepEqual(await next(a, 'update', 'update'), { announce: url, infoHash: hex(H1), complete: 3, incomplete: 4 })
      assert.equal(ta.pendingPeers, 3)
      assert.equal(a.peers.length, 0)

      // Unanswered offers are destroyed after offerMs.
      assert.ok(await waitFor(() => ta.pendingPeers === 0, 2_000), `pending: ${ta.pendingPeers}`)

      // An offer relayed to us is answered with to_peer_id and offer_id, and the peer that then
      // connects is emitted, connected, with the offerer's id.
      const remote = new Peer({ initiator: true, wrtc: wrtc as never, config: { iceServers: [] } })
      const offer = await next<SignalData>(remote, 'signal', 'remote offer')
      const answerFrame = next<Record<string, unknown>>(frameEvents, 'frame', 'answer frame')
      const gotPeer = next<Peer>(a, 'peer', 'peer from relayed offer')
      conn!.send(JSON.stringify({ action: 'announce', offer, offer_id: 'o'.repeat(20), peer_id: PEER_C, info_hash: H1 }))
      const f2 = await answerFrame
      assert.deepEqual(Object.keys(f2), ['action', 'info_hash', 'peer_id', 'to_peer_id', 'answer', 'offer_id', 'trackerid'])
      assert.deepEqual([f2.action, f2.info_hash, f2.peer_id, f2.to_peer_id, f2.offer_id, f2.trackerid],
        ['announce', H1, PEER_A, PEER_C, 'o'.repeat(20), 'T-1'])
      const answer = f2.answer as SignalData
      assert.equal(answer.type, 'answer')
      const remoteConnected = next(remote, 'connect', 'remote connect')
      remote.signal(answer)
      const local = await gotPeer
      await remoteConnected
      assert.equal(local.id, hex(PEER_C))
      assert.equal(local.connected, true)
      await exchange(local, remote)

      // An offer from our own peer id is not answered; one for another info hash neither.
      const before = frames.length
      conn!.send(JSON.stringify({ action: 'announce', offer, offer_id: 'p'.repeat(20), peer_id: PEER_A, info_hash: H1 }))
      conn!.send(JSON.stringify({ action: 'announce', offer, offer_id: 'q'.repeat(20), peer_id: PEER_C, info_hash: H2 }))
      await new Promise(resolve => setTimeout(resolve, 300))
      assert.equal(frames.length, before)
      assert.equal(ta.pendingPeers, 0)

      // stopped and completed carry no offers; a scrape asks for our info hash.
      const f3p = next<Record<string, unknown>>(frameEvents, 'frame', 'stopped frame')
      ta.announce({ event: EVENT_STOPPED, numwant: 3, left: 0 })
      const f3 = await f3p
      assert.deepEqual(f3, { action: 'announce', info_hash: H1, peer_id: PEER_A, uploaded: 0, downloaded: 0, left: 0, event: 'stopped', numwant: 0, trackerid: 'T-1' })
      const f4p = next<Record<string, unknown>>(frameEvents, 'frame', 'scrape frame')
      ta.scrape()
      assert.deepEqual(await f4p, { action: 'scrape', info_hash: [H1] })
      conn!.send(JSON.stringify({ action: 'scrape', files: { [H1]: { complete: 1, incomplete: 2, downloaded: 3 } } }))
      assert.deepEqual(await next(a, 'scrape', 'scrape event'), { announce: url, infoHash: hex(H1), complete: 1, incomplete: 2, downloaded: 3 })

      await closePeers(local, remote)
      await destroyTracker(ta)
      assert.deepEqual(a.warnings, [`go away (${url})`])
    } finally {
      Object.assign(wsTimeouts, saved)
      for (const c of wss.clients) c.terminate()
      await withTimeout(new Promise(resolve => wss.close(resolve)), STEP_MS, 'wss close')
    }
  })

  test('a tracker flooding unusable offers: at most CLIENT_WS_MAX_PENDING_PEERS WebRTC peers per connect deadline', { timeout: TEST_MS }, async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await withTimeout(new Promise(resolve => wss.once('listening', resolve)), STEP_MS, 'wss listening')
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
    let sent = 0
    let conn: WsSocket | undefined
    wss.on('connection', ws => { conn = ws })
    /** `n` relayed offers whose SDP no WebRTC stack accepts, in bursts of 100 per event-loop turn. */
    const flood = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i += 100) {
        for (let k = i; k < Math.min(n, i + 100); k++) {
          conn!.send(JSON.stringify({ action: 'announce', info_hash: H1, offer: { type: 'offer', sdp: `v=0 not sdp ${k}` }, offer_id: String(sent++).padStart(20, 'o'), peer_id: PEER_C }))
        }
        await new Promise(resolve => setImmediate(resolve))
      }
    }
    const saved = { ...wsTimeouts }
    wsTimeouts.connectMs = 2_500
    try {
      const a = new Owner(H1, PEER_A)
      const ta = new WebSocketTracker(a, url, TEST_TIMEOUTS)
      let most = 0
      const poll = setInterval(() => { most = Math.max(most, ta.pendingPeers) }, 2)
      ta.announce({ event: EVENT_STARTED, numwant: 0 })
      assert.ok(await waitFor(() => conn !== undefined, STEP_MS))
      await flood(2000)
      // Each accepted offer fails (one warning) and keeps its slot until its connect deadline.
      assert.ok(await waitFor(() => a.warnings.length >= 50, STEP_MS), `${a.warnings.length} warnings`)
      await new Promise(resolve => setTimeout(resolve, 200))
      assert.equal(a.warnings.length, 50)
      assert.equal(new Set(a.warnings.map(w => w.replace(/: cannot apply the remote offer: .*/, ''))).size, 1)
      assert.match(a.warnings[0], /^WebRTC connection error: cannot apply the remote offer: /)
      assert.equal(ta.pendingPeers, 50)
      // After the deadline the slots are free again: the next burst gets 50 more, no more.
      assert.ok(await waitFor(() => ta.pendingPeers === 0, STEP_MS), `pending: ${ta.pendingPeers}`)
      await flood(2000)
      assert.ok(await waitFor(() => a.warnings.length >= 100, STEP_MS), `${a.warnings.length} warnings`)
      await new Promise(resolve => setTimeout(resolve, 200))
      clearInterval(poll)
      assert.equal(a.warnings.length, 100)
      assert.ok(most <= 50, `pending peers peaked at ${most}`)
      assert.deepEqual(a.peers, [])
      await destroyTracker(ta)
      assert.equal(ta.pendingPeers, 0)
    } finally {
      Object.assign(wsTimeouts, saved)
      for (const c of wss.clients) c.terminate()
      await withTimeout(new Promise(resolve => wss.close(resolve)), STEP_MS, 'wss close')
    }
  })

  test('custom announce params (method opts and getAnnounceOpts) are sent as fields and reach the server’s events', { timeout: TEST_MS }, async () => {
    // A scripted tracker first: the exact frame.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await withTimeout(new Promise(resolve => wss.once('listening', resolve)), STEP_MS, 'wss listening')
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
    const frames = new EventEmitter()
    wss.on('connection', (ws) => { ws.on('message', (data) => { frames.emit('frame', JSON.parse(data.toString())) }) })
    const scripted = new Client({
      infoHash: hex(H1),
      peerId: hex(PEER_A),
      announce: url,
      port: 6881,
      getAnnounceOpts: () => ({ fromGetter: 'g', numwant: 0 })
    })
    const warnings: string[] = []
    scripted.on('warning', (err: Error) => { warnings.push(err.message) })
    try {
      const f = next<Record<string, unknown>>(frames, 'frame', 'announce frame')
      scripted.start({ passkey: 'k1', n: 3, on: true, skipped: { a: 1 } })
      assert.deepEqual(await f, {
        action: 'announce', info_hash: H1, peer_id: PEER_A, uploaded: 0, downloaded: 0, event: 'started', numwant: 0,
        passkey: 'k1', n: 3, on: true, fromGetter: 'g'
      })
    } finally {
      await new Promise<void>(resolve => scripted.destroy(() => resolve()))
      for (const c of wss.clients) c.terminate()
      await withTimeout(new Promise(resolve => wss.close(resolve)), STEP_MS, 'wss close')
    }
    assert.deepEqual(warnings, [])

    // Our server hands them to its announce events, as it does HTTP custom query params.
    const s = await startOurs()
    const params = new Promise<Record<string, unknown>>(resolve => s.server.once('start', (_addr: string, p: Record<string, unknown>) => resolve(p)))
    const c = new Client({ infoHash: hex(H2), peerId: hex(PEER_B), announce: s.url, port: 6881 })
    try {
      c.start({ passkey: 'k2', numwant: 0 })
      const p = await withTimeout(params, STEP_MS, 'server start event')
      assert.deepEqual([p.type, p.passkey, p.info_hash, p.numwant], ['ws', 'k2', hex(H2), 0])
    } finally {
      await new Promise<void>(resolve => c.destroy(() => resolve()))
      await closeServer(s.server)
    }
    assert.deepEqual(s.warnings, [])
  })

  test('stop(); destroy(): the socket stays open for the stop’s reply (within destroyGrace), then closes', { timeout: TEST_MS }, async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await withTimeout(new Promise(resolve => wss.once('listening', resolve)), STEP_MS, 'wss listening')
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
    const events: string[] = []
    /** Whether the scripted tracker answers `stopped` (after 100 ms) or never. */
    let answerStop = true
    wss.on('connection', (ws) => {
      ws.on('close', (code: number) => { events.push(`tracker saw close ${code}`) })
      ws.on('message', (data) => {
        const f = JSON.parse(data.toString()) as Record<string, unknown>
        const reply = JSON.stringify({ action: 'announce', interval: 120, info_hash: f.info_hash, complete: 0, incomplete: f.event === 'stopped' ? 0 : 1 })
        if (f.event !== 'stopped') return ws.send(reply)
        events.push('stopped')
        if (!answerStop) return
        setTimeout(() => {
          events.push(ws.readyState === ws.OPEN ? 'answered while open' : 'answer found the socket closing')
          if (ws.readyState === ws.OPEN) ws.send(reply)
        }, 100)
      })
    })
    const run = async (grace: number): Promise<string[]> => {
      events.length = 0
      const c = new Client({ infoHash: hex(H1), peerId: hex(PEER_A), announce: url, port: 6881, timeouts: { destroyGrace: grace } })
      const warnings: string[] = []
      c.on('warning', (err: Error) => { warnings.push(err.message) })
      c.start({ numwant: 0 })
      await next(c, 'update', 'start reply')
      c.on('update', () => { events.push('update after destroy') })
      c.stop()
      await new Promise<void>(resolve => c.destroy(() => { events.push('destroyed'); resolve() }))
      assert.ok(await waitFor(() => events.some(e => e.startsWith('tracker saw close')), STEP_MS), events.join(', '))
      assert.deepEqual(warnings, [])
      return events.slice()
    }
    try {
      // Answered: the reply goes out on an open socket, then the client closes with 1000.
      const answered = await run(5_000)
      assert.deepEqual(answered.slice(0, 2), ['stopped', 'answered while open'])
      assert.deepEqual(answered.slice(2).sort(), ['destroyed', 'tracker saw close 1000'])
      // Never answered: after destroyGrace the socket is dropped (no close frame: 1006).
      answerStop = false
      const unanswered = await run(300)
      assert.deepEqual(unanswered[0], 'stopped')
      assert.deepEqual(unanswered.slice(1).sort(), ['destroyed', 'tracker saw close 1006'])
    } finally {
      for (const c of wss.clients) c.terminate()
      await withTimeout(new Promise(resolve => wss.close(resolve)), STEP_MS, 'wss close')
    }

    // The reference server answers the stop without reporting a send on a closing socket.
    const ref = await import('bittorrent-tracker-reference') as unknown as {
      Server: new (opts: object) => EventEmitter & { http: { address: () => AddressInfo }, listen: (port: number, host: string, cb: () => void) => void, close: (cb: () => void) => void }
    }
    const server = new ref.Server({ udp: false, http: true, ws: true, stats: false })
    const serverEvents: string[] = []
    server.on('warning', (err: Error) => { serverEvents.push(`warning: ${err.message}`) })
    server.on('stop', () => { serverEvents.push('stop') })
    await withTimeout(new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve)), STEP_MS, 'reference listen')
    const c = new Client({ infoHash: hex(H2), peerId: hex(PEER_B), announce: `ws://127.0.0.1:${server.http.address().port}`, port: 6881 })
    c.start({ numwant: 0 })
    await next(c, 'update', 'reference start reply')
    c.stop()
    await new Promise<void>(resolve => c.destroy(() => resolve()))
    assert.ok(await waitFor(() => serverEvents.includes('stop'), STEP_MS))
    // A warning would come right after the stop's reply; the close has happened by now.
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.deepEqual(serverEvents, ['stop'])
    await closeServer(server)
  })

  test('without WebRTC the client still announces (no offers) and warns once', { timeout: TEST_MS }, async () => {
    const s = await startOurs()
    const a = new Owner(H1, PEER_A, { wrtc: undefined })
    const ta = new WebSocketTracker(a, s.url, TEST_TIMEOUTS)
    ta.announce({ event: EVENT_STARTED, numwant: 5 })
    assert.deepEqual(await next(a, 'update', 'update'), { announce: s.url, infoHash: hex(H1), complete: 0, incomplete: 1 })
    ta.announce({ numwant: 5 })
    await next(a, 'update', 'second update')
    assert.deepEqual(a.warnings, [`No WebRTC implementation (pass \`wrtc\` in Node): announcing without offers (${s.url})`])
    await destroyTracker(ta)
    await closeServer(s.server)
  })

  test('destroy releases every timer, socket and pending peer', { timeout: TEST_MS }, async () => {
    const s = await startOurs()
    // settle: let the server's own handles exist before counting
    await new Promise(resolve => setTimeout(resolve, 50))
    const before = process.getActiveResourcesInfo()
    const a = new Owner(H1, PEER_A)
    const b = new Owner(H1, PEER_B)
    const ta = new WebSocketTracker(a, `${s.url}/a`, TEST_TIMEOUTS)
    const tb = new WebSocketTracker(b, `${s.url}/b`, TEST_TIMEOUTS)
    ta.setInterval(60_000)
    const [pa, pb] = await meet(a, b, ta, tb)
    await exchange(pa, pb)
    // more offers outstanding when destroyed
    tb.announce({ numwant: 4 })
    await next(b, 'update', 'update with offers outstanding')
    assert.ok(tb.pendingPeers > 0)
    await closePeers(pa, pb)
    await Promise.all([destroyTracker(ta), destroyTracker(tb)])
    assert.equal(ta.pendingPeers + tb.pendingPeers, 0)
    assert.equal(poolSize(), 0)
    await waitFor(() => newResources(before).length === 0, 2_000)
    assert.deepEqual(newResources(before), [])
    // a destroyed tracker ignores everything and destroy is idempotent
    ta.announce({ numwant: 1 })
    ta.scrape()
    await destroyTracker(ta)
    assert.equal(poolSize(), 0)
    await closeServer(s.server)
  })
}
