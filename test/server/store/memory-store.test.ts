import { describe, it } from 'node:test'
import assert from 'node:assert/strict'

import { EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import { behindPromises, hash, httpV4, req, runStoreConformance, wsPeer } from './conformance.js'

runStoreConformance('MemoryStore', opts => new MemoryStore(opts))

// The same store answering through Promises: shows the suite awaits every result.
runStoreConformance('MemoryStore behind Promises', async opts => behindPromises(new MemoryStore(opts)))

describe('MemoryStore specifics', () => {
  /** Makes torrent `n` retired with `downloads` downloads. */
  function retire (s: MemoryStore, n: number, downloads = 1): void {
    for (let i = 0; i < downloads; i++) {
      s.announce(req(hash(n), httpV4(i), { event: EVENT_STARTED }), 1)
      s.announce(req(hash(n), httpV4(i), { event: EVENT_COMPLETED, seeder: true }), 1)
    }
    for (let i = 0; i < downloads; i++) s.announce(req(hash(n), httpV4(i), { event: EVENT_STOPPED }), 1)
  }

  it('forgets the longest-retired torrent beyond maxRetired', () => {
    const s = new MemoryStore({ peerTtl: 100, maxRetired: 3 })
    retire(s, 1, 1)
    retire(s, 2, 2)
    retire(s, 3, 3)
    assert.equal(s.counts.retired, 3)
    retire(s, 4, 4)
    assert.deepEqual(s.counts, { torrents: 0, retired: 3, peers: 0, seeders: 0, leechers: 0 })
    assert.deepEqual(s.scrape([hash(1), hash(2), hash(3), hash(4)]).map(e => e.downloaded), [0, 2, 3, 4])

    // a retired torrent that comes back is no longer retired; retiring it again makes it the newest
    s.announce(req(hash(2), httpV4(9), { event: EVENT_STARTED }), 1)
    assert.deepEqual(s.counts, { torrents: 1, retired: 2, peers: 1, seeders: 0, leechers: 1 })
    s.announce(req(hash(2), httpV4(9), { event: EVENT_STOPPED }), 1)
    assert.equal(s.counts.retired, 3)
    retire(s, 5, 5)
    assert.deepEqual(s.scrape([hash(2), hash(3), hash(4), hash(5)]).map(e => e.downloaded), [2, 0, 4, 5])
    assert.equal(s.counts.retired, 3)
  })

  it('close() forgets everything', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    retire(s, 1)
    s.announce(req(hash(2), wsPeer(1), { event: EVENT_STARTED }), 1)
    s.close()
    assert.deepEqual(s.counts, { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 })
    assert.deepEqual([...s.infoHashes()], [])
    assert.deepEqual(s.scrape([hash(1)])[0].downloaded, 0)
  })

  it('answers synchronously', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    const r = s.announce(req(hash(1), httpV4(1), { event: EVENT_STARTED }), 1)
    assert.equal(typeof (r as { then?: unknown }).then, 'undefined')
    assert.equal(typeof s.sweep(1, 10), 'boolean')
    assert.equal(typeof s.remove(hash(1), 'x'), 'boolean')
    assert.ok(Array.isArray(s.scrape([hash(1)])))
  })
})
