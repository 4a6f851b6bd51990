import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import { B_TAG, ENTRY_BYTES, ENTRY_MASK, ENTRY_SHIFT, TorrentTable } from '../../../../src/server/store/memory/torrent-table.js'
import { hash } from '../conformance.js'

/** Inserts `key` (absent) tagged 1 and returns its entry. */
function put (t: TorrentTable, key: string): number {
  assert.equal(t.find(key), -1)
  return t.insert(1)
}

/** Every key of the model found at its entry, every live entry a key of the model. */
function check (t: TorrentTable, model: Map<string, number>): void {
  assert.equal(t.size, model.size)
  for (const [key, e] of model) {
    assert.equal(t.find(key), e)
    assert.equal(t.key(e), key)
    assert.equal(t.live(e), true)
  }
  let live = 0
  for (let e = 0; e < t.end; e++) if (t.live(e)) { live++; assert.equal(model.get(t.key(e)), e) }
  assert.equal(live, model.size)
}

describe('TorrentTable (entries by info hash)', () => {
  it('grows its index incrementally, stays findable mid-resize, and shrinks back when emptied', () => {
    const t = new TorrentTable(12345)
    const model = new Map<string, number>()
    assert.equal(t.slots, 1024)
    let sawResize = false
    for (let i = 0; i < 5000; i++) {
      model.set(hash(i), put(t, hash(i)))
      if (t.resizing) {
        sawResize = true
        // mid-resize: a key added before and one added now are both found
        assert.equal(t.find(hash(0)), model.get(hash(0)))
        assert.equal(t.find(hash(i)), model.get(hash(i)))
      }
    }
    assert.ok(sawResize)
    while (t.resizing) t.migrate(100)
    assert.equal(t.slots, 8192, '5000 torrents: under 0.7 of 8192 slots')
    assert.equal(t.end, 5000)
    check(t, model)
    for (let i = 10; i < 5000; i++) { t.delete(model.get(hash(i))!); model.delete(hash(i)) }
    while (t.resizing) t.migrate(100)
    // deletes start shrinks; each halving waits for its walk to finish
    for (let i = 0; i < 20 && t.slots > 1024; i++) { t.migrate(10_000); while (t.resizing) t.migrate(10_000) }
    check(t, model)
    assert.equal(t.find(hash(4999)), -1)
    // freed entries are reused, last freed first
    const e = put(t, hash(70000))
    assert.equal(e, 4999)
    assert.equal(t.end, 5000)
  })

  it('reuses tombstones, and rebuilds an index clogged by them at the same size', () => {
    const t = new TorrentTable(7)
    const model = new Map<string, number>()
    for (let i = 0; i < 300; i++) model.set(hash(i), put(t, hash(i)))
    let rebuilt = false
    // churn: 20,000 deletes and inserts of fresh keys; live count stays 300
    for (let i = 0; i < 20_000; i++) {
      const gone = hash(i)
      t.delete(model.get(gone)!)
      model.delete(gone)
      assert.ok(t.dead >= 0)
      model.set(hash(300 + i), put(t, hash(300 + i)))
      if (t.resizing) rebuilt = true
      assert.ok((t.size + t.dead) <= t.slots * 0.8, 'live and dead slots stay bounded')
    }
    assert.ok(rebuilt, 'the tombstones forced a rebuild')
    while (t.resizing) t.migrate(1000)
    assert.equal(t.slots, 1024, 'the same size: only 300 live')
    assert.equal(t.end, 300, 'entries reused, none added')
    check(t, model)
  })

  it('keys that differ in one byte are different torrents; only 20-character keys are found', () => {
    const t = new TorrentTable(1)
    const a = 'A'.repeat(19) + '\x00'
    const b = 'A'.repeat(19) + '\x01'
    const ea = put(t, a)
    const eb = put(t, b)
    assert.notEqual(ea, eb)
    assert.equal(t.find(a), ea)
    assert.equal(t.find(b), eb)
    assert.equal(t.find('A'.repeat(19)), -1)
    assert.equal(t.find('A'.repeat(21)), -1)
    assert.throws(() => t.insert(1), TypeError)
    // the tag byte is the entry's byte 27; the key its bytes 0..19
    const chunk = t.chunks[ea >>> ENTRY_SHIFT]
    assert.equal(chunk.u8[(ea & ENTRY_MASK) * ENTRY_BYTES + B_TAG], 1)
    assert.equal(chunk.u8.toString('latin1', (ea & ENTRY_MASK) * ENTRY_BYTES, (ea & ENTRY_MASK) * ENTRY_BYTES + 20), a)
    t.clear()
    assert.equal(t.find(a), -1)
    assert.equal(t.size, 0)
  })

  it('model-based: any sequence of inserts, deletes and migration steps keeps every key findable', () => {
    const op = fc.oneof(
      { arbitrary: fc.record({ t: fc.constant('put' as const), k: fc.integer({ min: 0, max: 3000 }), n: fc.integer({ min: 1, max: 400 }) }), weight: 3 },
      { arbitrary: fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 3000 }), n: fc.integer({ min: 1, max: 400 }) }), weight: 3 },
      { arbitrary: fc.record({ t: fc.constant('walk' as const), n: fc.integer({ min: 1, max: 500 }) }), weight: 1 }
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), fc.integer(), (ops, seed) => {
      const t = new TorrentTable(seed)
      const model = new Map<string, number>()
      for (const o of ops) {
        if (o.t === 'walk') { t.migrate(o.n); continue }
        for (let i = 0; i < o.n; i++) {
          const key = hash((o.k + i) % 3001)
          const e = t.find(key)
          assert.equal(e, model.get(key) ?? -1)
          if (o.t === 'put' && e < 0) model.set(key, t.insert(1))
          if (o.t === 'del' && e >= 0) { t.delete(e); model.delete(key) }
        }
        assert.equal(t.size, model.size)
      }
      check(t, model)
    }), { numRuns: 60 })
  })
})
