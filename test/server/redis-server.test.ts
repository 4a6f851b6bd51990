/**
 * The Server façade on the Redis store, in process: `server.torrents` and `/stats.json` of one
 * instance show what was announced to another (a snapshot, reloaded every REDIS_VIEW_REFRESH_MS).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'

import { REDIS_VIEW_REFRESH_MS } from '../../src/constants.js'
import { EVENT_COMPLETED, EVENT_STARTED } from '../../src/protocol/common/types.js'
import { RedisServer } from '../helpers/redis.js'
import { hex, httpAnnounce, httpGet, id20, startServer, waitFor } from '../helpers/tracker-clients.js'
import type { StartedServer } from '../helpers/tracker-clients.js'

let redis: RedisServer
let a: StartedServer
let b: StartedServer
const HOST = { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' }

before(async () => {
  redis = await RedisServer.start()
  a = await startServer({ redis: redis.url }, HOST)
  b = await startServer({ redis: redis.url }, HOST)
})

after(async () => {
  await a?.close()
  await b?.close()
  await redis?.stop()
})

describe('Server with the Redis store', () => {
  it('server.torrents and /stats.json of B show the swarm announced to A', async () => {
    const ih = id20(300)
    await httpAnnounce(a.http4, { infoHash: ih, peerId: id20(1), port: 6001, event: EVENT_STARTED })
    await httpAnnounce(a.http4, { infoHash: ih, peerId: id20(2), port: 6002, event: EVENT_COMPLETED, left: 0 })
    const key = hex(ih)
    assert.ok(await waitFor(() => b.server.torrents[key]?.complete === 1, 3 * REDIS_VIEW_REFRESH_MS), 'B sees the swarm after a refresh')
    const t = b.server.torrents[key]!
    assert.deepEqual([t.infoHash, t.complete, t.incomplete, t.downloaded], [key, 1, 1, 1])
    assert.deepEqual([...t.peers.keys()].sort(), ['127.0.0.1:6001', '127.0.0.1:6002'])
    assert.deepEqual(t.peers.get('127.0.0.1:6002'), { peerId: hex(id20(2)), ip: '127.0.0.1', port: 6002, complete: true, type: 'http/udp' })
    assert.deepEqual(Object.keys(b.server.torrents), [key])
    const stats = JSON.parse((await httpGet(b.http4, '/stats.json')).body.toString()) as Record<string, unknown>
    assert.deepEqual([stats.torrents, stats.activeTorrents, stats.peersAll, stats.peersSeederOnly, stats.peersLeecherOnly], [1, 1, 2, 1, 1])
    assert.equal(b.server.ready(), true)
  })
})
