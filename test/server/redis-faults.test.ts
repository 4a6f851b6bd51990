/**
 * Faults of the shared store: the tracker's redis-server killed (SIGKILL) or hung (SIGSTOP)
 * under a bounded load, then back. Every request is answered with the store's failure reason
 * within a bound, nothing hangs, the tracker says it is not ready, and service resumes without
 * a restart. With appendonly + fsync always, what Redis acknowledged survives the kill.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'

import { ERRORS } from '../../src/errors.js'
import { EVENT_COMPLETED, EVENT_STARTED } from '../../src/protocol/common/types.js'
import { encodeAnnounceRequest } from '../../src/protocol/ws/codec.js'
import type { Server } from '../../src/server/server.js'
import { RedisServer } from '../helpers/redis.js'
import { closeServer, httpAnnounce, httpScrape, id20, startServer, udpClient, waitFor, wsClient } from '../helpers/tracker-clients.js'

/** A correctness bound (no request may hang), not a performance figure. */
const ANSWER_BOUND_MS = 3000
const REASON = ERRORS.STORE_UNAVAILABLE

let redis: RedisServer
let server: Server
let port: number
let base: string

before(async () => {
  redis = await RedisServer.start({ persist: true })
  const s = await startServer({ redis: redis.url, stats: false }, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' })
  server = s.server
  port = s.port
  base = `http://127.0.0.1:${port}`
})

after(async () => {
  if (server !== undefined) await closeServer(server)
  await redis?.stop()
})

/** Compact 127.0.0.1:port. */
function loopback (p: number): string {
  return '\x7f\x00\x00\x01' + String.fromCharCode(p >> 8, p & 0xff)
}

describe('Redis store faults', () => {
  it('redis-server killed under load: every request answered (success or the store failure) in bounded time; back without a restart; acknowledged announces kept', async () => {
    const ih = id20(500)
    assert.equal(server.ready(), true)
    const acked: number[] = []
    const failed: string[] = []
    let slowest = 0
    const LOAD = 120
    const KILL_AT = 40
    for (let i = 0; i < LOAD; i++) {
      if (i === KILL_AT) await redis.kill()
      const t0 = Date.now()
      // each request a new peer that completed: one download each
      const r = await httpAnnounce(base, { infoHash: ih, peerId: id20(1000 + i), port: 10_000 + i, event: EVENT_COMPLETED, left: 0 })
      slowest = Math.max(slowest, Date.now() - t0)
      if (r.failure === undefined) acked.push(10_000 + i)
      else failed.push(r.failure)
    }
    assert.ok(slowest < ANSWER_BOUND_MS, `slowest answer ${slowest} ms`)
    assert.equal(acked.length, KILL_AT, 'all announces before the kill succeeded, none after')
    assert.equal(failed.length, LOAD - KILL_AT)
    for (const f of failed) assert.equal(f, REASON)
    assert.equal(server.ready(), false)

    // UDP and WS get the same reason while Redis is away
    const u = await udpClient(4, port)
    const w = await wsClient(`ws://127.0.0.1:${port}`)
    try {
      const t0 = Date.now()
      const ur = await u.announce({ infoHash: ih, peerId: id20(7), port: 9007, event: EVENT_STARTED })
      assert.deepEqual({ action: ur.action, message: ur.action === 'error' ? ur.message : '' }, { action: 'error', message: REASON })
      w.send(encodeAnnounceRequest({ infoHash: ih, peerId: id20(8), uploaded: 0, downloaded: 0, left: 1, event: EVENT_STARTED, numwant: 0 }))
      const wr = await w.next()
      assert.equal(wr['failure reason'], REASON)
      const hs = await httpScrape(base, [ih])
      assert.equal(hs.failure, REASON)
      assert.ok(Date.now() - t0 < 3 * ANSWER_BOUND_MS)
    } finally { u.close(); await w.close() }

    // Redis back on the same port and data: the tracker reconnects by itself
    await redis.launch()
    assert.ok(await waitFor(() => server.ready(), 10_000), 'ready again')
    const back = await httpAnnounce(base, { infoHash: ih, peerId: id20(2000), port: 20_000, event: EVENT_STARTED, numwant: 200 })
    assert.equal(back.failure, undefined)
    // every acknowledged announce survived the kill (fsync always): peers and downloads
    assert.deepEqual(back.peers.map(p => p.addr).sort(), acked.map(loopback).sort())
    assert.deepEqual([back.complete, back.incomplete], [KILL_AT, 1])
    const s = await httpScrape(base, [ih])
    assert.deepEqual(s.files, [{ infoHash: ih, complete: KILL_AT, incomplete: 1, downloaded: KILL_AT }])
  })

  it('redis-server hung (SIGSTOP): requests fail within the command timeout, not ready; SIGCONT: served again', async () => {
    const ih = id20(501)
    assert.ok(await waitFor(() => server.ready(), 10_000))
    const ok = await httpAnnounce(base, { infoHash: ih, peerId: id20(1), port: 9101, event: EVENT_STARTED })
    assert.equal(ok.failure, undefined)
    const pid = redis.proc!.pid!
    process.kill(pid, 'SIGSTOP')
    try {
      const t0 = Date.now()
      const answers = await Promise.all([0, 1, 2, 3].map(i => httpAnnounce(base, { infoHash: ih, peerId: id20(10 + i), port: 9110 + i, event: EVENT_STARTED })))
      const took = Date.now() - t0
      assert.deepEqual(answers.map(a => a.failure), [REASON, REASON, REASON, REASON])
      assert.ok(took < ANSWER_BOUND_MS, `answered in ${took} ms`)
      assert.equal(server.ready(), false)
    } finally { process.kill(pid, 'SIGCONT') }
    let r = await httpAnnounce(base, { infoHash: ih, peerId: id20(20), port: 9120, event: EVENT_STARTED, numwant: 50 })
    for (let i = 0; i < 50 && r.failure !== undefined; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      r = await httpAnnounce(base, { infoHash: ih, peerId: id20(20), port: 9120, event: EVENT_STARTED, numwant: 50 })
    }
    assert.equal(r.failure, undefined)
    assert.ok(r.peers.some(p => p.addr === loopback(9101)))
    assert.ok(await waitFor(() => server.ready(), 5000))
  })

  it('a WebSocket that closes while Redis is away leaves no peer behind once Redis is back', async () => {
    const ih = id20(502)
    assert.ok(await waitFor(() => server.ready(), 10_000))
    const gone = await wsClient(`ws://127.0.0.1:${port}`)
    gone.send(encodeAnnounceRequest({ infoHash: ih, peerId: id20(31), uploaded: 0, downloaded: 0, left: 0, event: EVENT_STARTED, numwant: 0 }))
    assert.deepEqual([(await gone.next()).complete], [1])
    await redis.kill()
    await gone.close()
    await redis.launch()
    assert.ok(await waitFor(() => server.ready(), 10_000), 'ready again')
    const other = await wsClient(`ws://127.0.0.1:${port}`)
    try {
      let r: Record<string, unknown> = {}
      for (let i = 0; i < 50; i++) {
        other.send(encodeAnnounceRequest({ infoHash: ih, peerId: id20(32), uploaded: 0, downloaded: 0, left: 3, event: EVENT_STARTED, numwant: 0 }))
        r = await other.next()
        if (r.complete === 0) break
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      assert.deepEqual([r.complete, r.incomplete], [0, 1], 'the closed seeder is gone (it survived the restart on disk)')
    } finally { await other.close() }
  })
})
