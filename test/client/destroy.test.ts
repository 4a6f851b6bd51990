// destroy() releases everything: every timer (re-announce, back-off, request timeouts, the UDP
// idle timer) and every socket (UDP, HTTP), in every state a client can be in.
//
// Two independent counts:
// - process.getActiveResourcesInfo() before the clients exist and after destroy's callback must
//   match (it lists ref'd handles and requests: sockets, pending DNS, ref'd timers);
// - an async_hooks probe records every Timeout, UDP and TCP resource created with our client code
//   on the stack (unref'd timers included, which the first count cannot see) and requires each to
//   be gone after destroy's callback.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHook } from 'node:async_hooks'
import { once } from 'node:events'
import http from 'node:http'
import dgram from 'node:dgram'
import type { AddressInfo } from 'node:net'
import Client, { Server } from '../../src/index.js'
import type { ClientOptions } from '../../src/index.js'

const H1 = 'ff80c32800252628' + '2b203d7f0102030405060708'
const PEER_A = '2d4141303030312d' + 'a1a2a3a4a5a6a7a8a9aaabac'
const PEER_B = '2d4242303030312d' + 'b1b2b3b4b5b6b7b8b9babbbc'
const TIMEOUTS = { request: 5000, udp: 5000, udpRetransmits: 8, retryMin: 60_000, retryMax: 60_000, destroyGrace: 1000 }
const TRACKED = new Set(['Timeout', 'UDPWRAP', 'TCPWRAP', 'GETADDRINFOREQWRAP', 'UDPSENDWRAP'])
const OURS = /[/\\]src[/\\]client[/\\]/

/** Resources created with our client code on the stack, live until their destroy hook runs. */
const live = new Map<number, { type: string, stack: string }>()
const hook = createHook({
  init (id, type) {
    if (!TRACKED.has(type)) return
    const stack = new Error().stack ?? ''
    if (OURS.test(stack)) live.set(id, { type, stack })
  },
  destroy (id) { live.delete(id) }
})

const signal = (): AbortSignal => AbortSignal.timeout(5000)
const tick = async (ms = 20): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)); await new Promise(resolve => setImmediate(resolve)) }
const destroy = (c: Client): Promise<void> => new Promise(resolve => c.destroy(() => resolve()))

function resources (): string[] {
  return process.getActiveResourcesInfo().filter(r => r !== 'Timeout').sort()
}

function describeLive (): string {
  return [...live.values()].map(r => `${r.type}\n${r.stack.split('\n').slice(2, 8).join('\n')}`).join('\n---\n')
}

let server: Server
let httpUrl: string
let udpUrl: string
let udp6Url: string
/** A tracker that accepts requests and never answers (HTTP and UDP). */
let silentHttp: http.Server
let silentUdp: dgram.Socket
let silentHttpUrl: string
let silentUdpUrl: string
let keepAlive: NodeJS.Timeout

before(async () => {
  // Back-off timers do not keep the loop alive; this keeps the test process up between awaits.
  keepAlive = setInterval(() => {}, 1000)
  server = new Server({ ws: false, stats: false, interval: 600_000 })
  await new Promise<void>(resolve => server.listen(0, 'localhost', () => resolve()))
  const port = (server.http!.address() as AddressInfo).port
  httpUrl = `http://127.0.0.1:${port}/announce`
  udpUrl = `udp://127.0.0.1:${port}`
  udp6Url = `udp://[::1]:${port}`
  // Two server-side details would otherwise show up in the count as this server's own sockets:
  // - Node's HTTP server keeps a connection whose request it has not answered open after the
  //   client's FIN (half-close): close it on 'end'.
  // - After an aborted fetch, Node's fetch (undici) opens one fresh idle connection to the same
  //   origin (its own pool; unref'd on the client side, closed by undici after ~4 s): the
  //   short headersTimeout makes this server drop such a connection that sends no request.
  silentHttp = http.createServer({ headersTimeout: 150, requestTimeout: 0, connectionsCheckingInterval: 50 }, () => { /* never answers */ })
  silentHttp.on('connection', socket => socket.on('end', () => socket.destroy()))
  silentHttp.listen(0, '127.0.0.1')
  await once(silentHttp, 'listening')
  silentHttpUrl = `http://127.0.0.1:${(silentHttp.address() as AddressInfo).port}/announce`
  silentUdp = dgram.createSocket('udp4')
  silentUdp.bind(0, '127.0.0.1')
  await once(silentUdp, 'listening')
  silentUdpUrl = `udp://127.0.0.1:${silentUdp.address().port}`
  hook.enable()
})

after(async () => {
  hook.disable()
  clearInterval(keepAlive)
  silentHttp.closeAllConnections()
  await new Promise(resolve => silentHttp.close(resolve))
  silentUdp.close()
  await new Promise<void>(resolve => server.close(() => resolve()))
})

function client (opts: Partial<ClientOptions> & { announce: ClientOptions['announce'] }): Client {
  return new Client({ infoHash: H1, peerId: PEER_A, port: 6001, timeouts: TIMEOUTS, ...opts })
}

async function expectReleased (before: string[]): Promise<void> {
  await tick()
  assert.equal(live.size, 0, `still live after destroy:\n${describeLive()}`)
  // fetch() gives no handle on its TCP socket: after an abort the socket closes a moment after
  // the request settled (and the peer's side follows). Give both up to a second.
  for (let i = 0; i < 50 && resources().join() !== before.join(); i++) await tick(20)
  assert.deepEqual(resources(), before, 'active resources differ from before the clients existed')
}

describe('Client.destroy releases every timer and socket', () => {
  it('after answered announces and scrapes (re-announce timers and UDP sockets pending)', async () => {
    await tick()
    const baseline = resources()
    live.clear()
    const c = client({ announce: [httpUrl, udpUrl, udp6Url] })
    let updates = 0
    c.on('update', () => { updates++ })
    c.start()
    while (updates < 3) await once(c, 'update', { signal: signal() })
    c.scrape()
    for (let n = 0; n < 3; n++) await once(c, 'scrape', { signal: signal() })
    assert.ok([...live.values()].some(r => r.type === 'UDPWRAP'), 'the UDP sockets were seen')
    assert.ok([...live.values()].some(r => r.type === 'Timeout'), 'the re-announce timers were seen')
    await destroy(c)
    await expectReleased(baseline)
  })

  it('while requests are in flight to silent trackers: cut off at once', async () => {
    await tick()
    const baseline = resources()
    live.clear()
    const c = client({ announce: [silentHttpUrl, silentUdpUrl], timeouts: { ...TIMEOUTS, destroyGrace: 5000 } })
    const events: string[] = []
    for (const e of ['update', 'warning', 'peer', 'scrape']) c.on(e, () => events.push(e))
    c.start()
    c.scrape()
    await tick(100)
    assert.notDeepEqual(resources(), baseline, 'requests are pending')
    const t0 = Date.now()
    await destroy(c)
    // Well under the 5 s grace: only a `stopped` announce may use it.
    assert.ok(Date.now() - t0 < 2000, `destroy took ${Date.now() - t0} ms`)
    await expectReleased(baseline)
    assert.deepEqual(events, [])
  })

  it('after stop(): the final `stopped` is still delivered within the grace period', async () => {
    await tick()
    const baseline = resources()
    live.clear()
    const a = client({ announce: [httpUrl, udpUrl], peerId: PEER_A, port: 6011 })
    const stops: string[] = []
    const onStop = (addr: string): void => { stops.push(addr) }
    server.on('stop', onStop)
    a.start()
    for (let n = 0; n < 2; n++) await once(a, 'update', { signal: signal() })
    a.stop()
    await destroy(a) // right away, as the README example does
    server.off('stop', onStop)
    assert.deepEqual(stops.sort(), ['127.0.0.1:6011', '127.0.0.1:6011'])
    await expectReleased(baseline)
  })

  it('while a dead tracker is in back-off, and with a `stopped` nobody answers', async () => {
    await tick()
    const baseline = resources()
    live.clear()
    const probe = dgram.createSocket('udp4')
    probe.bind(0, '127.0.0.1')
    await once(probe, 'listening')
    const deadUdp = `udp://127.0.0.1:${probe.address().port}`
    probe.close()
    const b = client({ announce: [deadUdp, silentUdpUrl, 'http://127.0.0.1:9/announce'], peerId: PEER_B, timeouts: { ...TIMEOUTS, destroyGrace: 150 } })
    let warnings = 0
    b.on('warning', () => { warnings++ })
    b.start()
    while (warnings < 2) await once(b, 'warning', { signal: signal() })
    b.stop() // queued behind the silent tracker's `started`; goes out on destroy, never answered
    const t0 = Date.now()
    await destroy(b)
    const took = Date.now() - t0
    assert.ok(took >= 100 && took < 1500, `destroy waited ${took} ms for the unanswered stop (grace 150 ms)`)
    await expectReleased(baseline)
  })

  it('calls back on a second destroy too, and emits nothing afterwards', async () => {
    const c = client({ announce: [httpUrl] })
    let events = 0
    c.on('update', () => { events++ })
    c.start()
    await destroy(c)
    await destroy(c)
    c.start()
    c.update()
    c.scrape()
    await tick(50)
    assert.equal(events, 0)
    assert.equal(c.destroyed, true)
  })
})
