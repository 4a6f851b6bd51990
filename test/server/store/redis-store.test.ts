import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'

import { EVENT_COMPLETED, EVENT_STARTED } from '../../../src/protocol/common/types.js'
import { RedisStore } from '../../../src/server/store/redis/redis-store.js'
import { RedisServer } from '../../helpers/redis.js'
import { hash, httpV4, req, runStoreConformance } from './conformance.js'

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis?.stop() })

/** A store on the test's redis-server, under a key prefix of its own (a fresh, empty store). */
async function makeStore (peerTtl: number, viewMaxSwarms?: number): Promise<RedisStore> {
  const s = new RedisStore({ url: redis.url, peerTtl, prefix: `t${randomBytes(6).toString('hex')}:`, viewMaxSwarms })
  await s.connect()
  return s
}

runStoreConformance('RedisStore', async opts => await makeStore(opts.peerTtl), { listener: false })

describe('RedisStore specifics', () => {
  it('keys carry a hash tag per info hash', async () => {
    const s = await makeStore(100)
    try {
      const keys = s.keys(hash(1))
      const tag = `{${Buffer.from(hash(1), 'latin1').toString('hex')}}`
      assert.equal(keys.length, 11)
      for (const k of keys.slice(0, 9)) assert.ok(k.startsWith(`${s.prefix}${tag}:`), k)
      await s.announce(req(hash(1), httpV4(1), { event: EVENT_STARTED }), 1)
      const stored = (await s.redis.keys(`${s.prefix}*`)).sort()
      assert.deepEqual(stored, [`${s.prefix}counts`, `${s.prefix}swarms`, `${s.prefix}${tag}:p`, `${s.prefix}${tag}:a0`, `${s.prefix}${tag}:t`].sort())
    } finally { await s.close() }
  })

  it('an announce is one script call', async () => {
    const s = await makeStore(100)
    const monitor = await s.redis.monitor()
    const seen: string[] = []
    monitor.on('monitor', (_time: string, args: string[]) => { seen.push(args[0].toUpperCase()) })
    try {
      await s.announce(req(hash(2), httpV4(1), { event: EVENT_STARTED }), 1)
      await s.announce(req(hash(2), httpV4(2), { event: EVENT_COMPLETED, seeder: true, numwant: 5 }), 1)
      await s.redis.ping()
      // the monitor connection sees the PING after both announces
      for (let i = 0; i < 200 && !seen.includes('PING'); i++) await new Promise(resolve => setTimeout(resolve, 10))
      assert.ok(seen.includes('PING'))
      // MONITOR shows the commands the scripts run too (as "lua" entries): count only client calls
      assert.deepEqual(seen.filter(c => c === 'EVALSHA' || c === 'EVAL'), ['EVALSHA', 'EVALSHA'])
    } finally { monitor.disconnect(); await s.close() }
  })

  it('reloads its scripts when Redis forgot them (SCRIPT FLUSH)', async () => {
    const s = await makeStore(100)
    try {
      await s.redis.script('FLUSH')
      const r = await s.announce(req(hash(3), httpV4(1), { event: EVENT_COMPLETED, seeder: true }), 1)
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 1])
      await s.redis.script('FLUSH')
      assert.deepEqual(await s.scrape([hash(3)]), [{ infoHash: hash(3), complete: 1, incomplete: 0, downloaded: 1 }])
    } finally { await s.close() }
  })

  it('the synchronous view is a bounded snapshot: exact counts, at most viewMaxSwarms swarms', async () => {
    const s = await makeStore(100, 2)
    try {
      for (let i = 0; i < 5; i++) await s.announce(req(hash(10 + i), httpV4(i), { event: EVENT_STARTED, seeder: i === 0 }), 1)
      assert.deepEqual(s.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 }, 'nothing before a refresh')
      await s.refresh()
      assert.deepEqual(s.counts, { torrents: 5, retired: 0, peers: 5, seeders: 1, leechers: 4 })
      const shown = [...s.infoHashes()]
      assert.equal(shown.length, 2)
      for (const ih of shown) {
        const info = s.swarmInfo(ih)!
        assert.equal(info.complete + info.incomplete, 1)
        assert.equal([...info.peers()].length, 1)
      }
    } finally { await s.close() }
  })

  it('ready() is false once closed', async () => {
    const s = await makeStore(100)
    assert.equal(s.ready(), true)
    await s.close()
    assert.equal(s.ready(), false)
  })
})
