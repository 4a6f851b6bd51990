import { it } from 'node:test'
import assert from 'node:assert/strict'
import { jitterInterval } from '../../../src/server/core/jitter.js'

it('jitterInterval stays within ±fraction, whole seconds, reaches both ends, and is exact without jitter', () => {
  const seen = new Set<number>()
  for (let i = 0; i < 20_000; i++) {
    const v = jitterInterval(600, 0.1)
    assert.ok(Number.isInteger(v) && v >= 540 && v <= 660, String(v))
    seen.add(v)
  }
  assert.ok(seen.has(540) && seen.has(660), 'both bounds are reachable')
  assert.equal(seen.size, 121)
  assert.equal(jitterInterval(600, 0), 600)
  assert.equal(jitterInterval(5, 0.1), 5, 'a spread under one second is none')
  for (let i = 0; i < 1000; i++) assert.ok(jitterInterval(1, 0.5) === 1)
})
