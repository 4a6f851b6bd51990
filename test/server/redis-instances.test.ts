/**
 * Several tracker instances, one tracker: two `bittorrent-tracker --redis` processes on
 * different ports sharing one real redis-server serve the same swarms over HTTP, UDP and WS.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'

import { EVENT_STARTED, EVENT_STOPPED } from '../../src/protocol/common/types.js'
import { encodeAnnounceRequest, encodeAnswerRequest } from '../../src/protocol/ws/codec.js'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis.js'
import { CliProcess } from '../helpers/cli-process.js'
import { hex, httpAnnounce, httpScrape, id20, udpClient, withTimeout, wsClient } from '../helpers/tracker-clients.js'

const START_MS = 10_000
const SECRET = randomBytes(32).toString('hex')

/** One tracker process; ended by its PID. */
class Instance extends CliProcess {
  httpPort = 0

  /** Waits for the HTTP and UDP listening lines; resolves (and keeps) the HTTP port. */
  async started (): Promise<number> {
    const m = await this.waitUntil(() => /udp server listening/.test(this.stdout) ? /http server listening on (\d+)/.exec(this.stdout) ?? undefined : undefined, 'tracker start', START_MS)
    this.httpPort = Number(m[1])
    return this.httpPort
  }
}

/** Compact 127.0.0.1:port. */
function loopback (port: number): string {
  return '\x7f\x00\x00\x01' + String.fromCharCode(port >> 8, port & 0xff)
}

let redis: RedisServer
const instances: Instance[] = []
let a: Instance
let b: Instance

const loopbackArgs = (): string[] => ['-p', '0', '--http-hostname', '127.0.0.1', '--udp-hostname', '127.0.0.1', '--udp6-hostname', '::1',
  '--redis', redis.url, '--udp-secret', SECRET]

before(async () => {
  redis = await RedisServer.start()
  const args = ['-p', '0', '--http-hostname', '127.0.0.1', '--udp-hostname', '127.0.0.1', '--udp6-hostname', '::1',
    '--redis', redis.url, '--udp-secret', SECRET]
  a = new Instance(args)
  b = new Instance(args)
  instances.push(a, b)
  await Promise.all([a.started(), b.started()])
  assert.notEqual(a.httpPort, b.httpPort)
})

after(async () => {
  for (const i of instances) i.kill()
  await redis?.stop()
})

describe('two tracker processes sharing one Redis', () => {
  it('HTTP: a peer announced to A is returned by B, and both scrape the same swarm', async () => {
    const ih = id20(101)
    const r1 = await httpAnnounce(`http://127.0.0.1:${a.httpPort}`, { infoHash: ih, peerId: id20(1), port: 7001, event: EVENT_STARTED })
    assert.equal(r1.failure, undefined)
    assert.deepEqual([r1.complete, r1.incomplete], [0, 1])
    const r2 = await httpAnnounce(`http://127.0.0.1:${b.httpPort}`, { infoHash: ih, peerId: id20(2), port: 7002, event: EVENT_STARTED, left: 0 })
    assert.deepEqual([r2.complete, r2.incomplete], [1, 1])
    assert.deepEqual(r2.peers, [{ peerId: '', addr: loopback(7001) }])
    const s = await httpScrape(`http://127.0.0.1:${a.httpPort}`, [ih])
    assert.deepEqual(s.files, [{ infoHash: ih, complete: 1, incomplete: 1, downloaded: 0 }])
  })

  it('UDP: a connection id issued by A is accepted by B', async () => {
    const ih = id20(102)
    const ca = await udpClient(4, a.httpPort)
    const cb = await udpClient(4, b.httpPort)
    try {
      const cid = await ca.connect()
      await ca.announce({ infoHash: ih, peerId: id20(3), port: 7003, event: EVENT_STARTED })
      cb.connectionId = cid
      const r = await cb.announce({ infoHash: ih, peerId: id20(4), port: 7004, event: EVENT_STARTED })
      assert.equal(r.action, 'announce')
      if (r.action !== 'announce') return
      assert.deepEqual([r.seeders, r.leechers], [0, 2])
      assert.deepEqual(r.peers, [{ peerId: '', addr: loopback(7003) }])
      // B does check ids: a forged one gets no reply
      cb.connectionId = new Uint8Array(8).fill(7)
      await assert.rejects(cb.announce({ infoHash: ih, peerId: id20(5), port: 7005 }), /no UDP reply/)
    } finally { ca.close(); cb.close() }
  })

  it('WS: an offer from a client on B reaches a client on A, and its answer comes back', async () => {
    const ih = id20(103)
    const x = await wsClient(`ws://127.0.0.1:${a.httpPort}`)
    const y = await wsClient(`ws://127.0.0.1:${b.httpPort}`)
    // hostile messages on the instances' signal channels are ignored (neither crashes)
    const raw = new Redis(redis.url)
    try {
      const channels = await raw.pubsub('CHANNELS', 'bt:sig:*') as string[]
      assert.equal(channels.length, 2)
      for (const ch of channels) {
        for (const m of ['not json', 'null', '{"t":"answer","conn":"1","message":3}', '{"t":"offer","conn":1}', JSON.stringify({ t: 'answer', conn: 2 ** 40, message: 'x' })]) {
          assert.equal(await raw.publish(ch, m), 1)
        }
      }
    } finally { raw.disconnect() }
    try {
      const px = id20(11)
      const py = id20(12)
      x.send(encodeAnnounceRequest({ infoHash: ih, peerId: px, uploaded: 0, downloaded: 0, left: 0, event: EVENT_STARTED, numwant: 0 }))
      const rx = await x.next()
      assert.deepEqual([rx.action, rx.complete, rx.incomplete], ['announce', 1, 0])
      y.send(encodeAnnounceRequest({ infoHash: ih, peerId: py, uploaded: 0, downloaded: 0, left: 10, event: EVENT_STARTED, numwant: 1, offers: [{ offerId: 'o'.repeat(20), sdp: 'v=0 offer from y' }] }))
      const ry = await y.next()
      assert.deepEqual([ry.action, ry.complete, ry.incomplete], ['announce', 1, 1])
      const offer = await x.next()
      assert.deepEqual(offer, { action: 'announce', info_hash: ih, peer_id: py, offer_id: 'o'.repeat(20), offer: { type: 'offer', sdp: 'v=0 offer from y' } })
      x.send(encodeAnswerRequest({ infoHash: ih, peerId: px, toPeerId: py, offerId: 'o'.repeat(20), sdp: 'v=0 answer from x' }))
      const answer = await y.next()
      assert.deepEqual(answer, { action: 'announce', info_hash: ih, peer_id: px, offer_id: 'o'.repeat(20), answer: { type: 'answer', sdp: 'v=0 answer from x' } })
      // x closing removes it from the shared swarm: B now sees only y
      await x.close()
      let last: Record<string, unknown> = {}
      for (let i = 0; i < 100; i++) {
        y.send(encodeAnnounceRequest({ infoHash: ih, peerId: py, uploaded: 0, downloaded: 0, left: 10, numwant: 0 }))
        last = await y.next()
        if (last.complete === 0) break
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      assert.deepEqual([last.complete, last.incomplete], [0, 1])
      assert.equal(hex(ih).length, 40)
    } finally { await x.close(); await y.close() }
  })

  it('WS: a peer id held by a socket on A cannot be announced, stopped or removed by a socket on B', async () => {
    const ih = id20(104)
    const victim = await wsClient(`ws://127.0.0.1:${a.httpPort}`)
    const attacker = await wsClient(`ws://127.0.0.1:${b.httpPort}`)
    try {
      const pv = id20(21)
      victim.send(encodeAnnounceRequest({ infoHash: ih, peerId: pv, uploaded: 0, downloaded: 0, left: 10, event: EVENT_STARTED, numwant: 0 }))
      assert.deepEqual([(await victim.next()).incomplete], [1])
      const refused = { action: 'announce', 'failure reason': 'peer_id is bound to another connection', info_hash: ih }
      attacker.send(encodeAnnounceRequest({ infoHash: ih, peerId: pv, uploaded: 0, downloaded: 0, left: 0, event: EVENT_STARTED, numwant: 0 }))
      assert.deepEqual(await attacker.next(), refused)
      attacker.send(encodeAnnounceRequest({ infoHash: ih, peerId: pv, uploaded: 0, downloaded: 0, left: 0, event: EVENT_STOPPED, numwant: 0 }))
      assert.deepEqual(await attacker.next(), refused)
      await attacker.close()
      // No event says when B has handled the close: the victim must stay over a few scrapes.
      for (let i = 0; i < 10; i++) {
        await new Promise(resolve => setTimeout(resolve, 30))
        const s = await httpScrape(`http://127.0.0.1:${a.httpPort}`, [ih])
        assert.deepEqual(s.files.map(f => [f.complete, f.incomplete]), [[0, 1]])
      }
    } finally { await victim.close(); await attacker.close() }
  })

  it('WS peers of an instance that died (SIGKILL) are removed by the sweep of another', async () => {
    const ih = id20(104)
    // c sweeps every second (--interval 1000); d is killed
    const c = new Instance([...loopbackArgs(), '--interval', '1000'])
    const d = new Instance(loopbackArgs())
    instances.push(c, d)
    await Promise.all([c.started(), d.started()])
    const onD = await wsClient(`ws://127.0.0.1:${d.httpPort}`)
    const onC = await wsClient(`ws://127.0.0.1:${c.httpPort}`)
    try {
      onD.send(encodeAnnounceRequest({ infoHash: ih, peerId: id20(21), uploaded: 0, downloaded: 0, left: 0, event: EVENT_STARTED, numwant: 0 }))
      assert.deepEqual([(await onD.next()).complete], [1])
      const announceOnC = async (): Promise<Record<string, unknown>> => {
        onC.send(encodeAnnounceRequest({ infoHash: ih, peerId: id20(22), uploaded: 0, downloaded: 0, left: 5, numwant: 0 }))
        return await onC.next()
      }
      const first = await announceOnC()
      assert.deepEqual([first.complete, first.incomplete], [1, 1])
      d.kill()
      let last = first
      for (let i = 0; i < 100 && last.complete !== 0; i++) {
        await new Promise(resolve => setTimeout(resolve, 100))
        last = await announceOnC()
      }
      assert.deepEqual([last.complete, last.incomplete], [0, 1], 'the dead instance\'s seeder is gone, the live leecher stays')
    } finally { await onD.close(); await onC.close() }
  })

  it('a tracker whose Redis cannot be reached at start exits 1 with a fatal log line', async () => {
    const dead = await RedisServer.start()
    const url = dead.url
    await dead.stop() // nothing listens on that port now
    const t = new Instance(['-p', '0', '--http-hostname', '127.0.0.1', '--udp-hostname', '127.0.0.1', '--udp6-hostname', '::1', '--redis', url])
    instances.push(t)
    const { code } = await withTimeout(t.exited, START_MS, 'exit')
    assert.equal(code, 1)
    const lines = [...t.logs('stdout'), ...t.logs('stderr')]
    assert.deepEqual(lines.map(l => [l.level, l.msg]), [['fatal', `cannot reach Redis at 127.0.0.1:${new URL(url).port} within 2000 ms`]])
  })
})
