import { describe, it } from 'node:test'
import assert from 'node:assert/strict'

import { Arena, RECORD_BYTES } from '../../../../src/server/store/memory/arena.js'
import type { Chunk } from '../../../../src/server/store/memory/arena.js'

const CHUNK = 1 << 17

describe('Arena (buddy allocator of record blocks)', () => {
  it('splits a chunk for small blocks, aligned to their size, without overlap', () => {
    const a = new Arena()
    const got: Array<[Chunk, number, number]> = []
    for (const cls of [0, 3, 1, 0, 5, 2]) {
      a.alloc(cls)
      assert.equal(a.off % (1 << cls), 0, `class ${cls} block aligned`)
      got.push([a.chunk!, a.off, cls])
    }
    assert.equal(a.bytes, CHUNK * RECORD_BYTES, 'one chunk')
    const used = got.reduce((n, [, , c]) => n + (1 << c), 0)
    assert.equal(a.freeRecords, CHUNK - used)
    const ranges = got.map(([, off, cls]) => [off, off + (1 << cls)]).sort((x, y) => x[0] - y[0])
    for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i][0] >= ranges[i - 1][1], 'no overlap')
  })

  it('merges freed buddies back: after freeing everything the whole chunk is one free block again', () => {
    const a = new Arena()
    const got: Array<[Chunk, number, number]> = []
    // swarms growing side by side, as in a fill: each moves 1 → 2 → 4 → … → 64 records
    const swarms: Array<[Chunk, number, number] | undefined> = new Array(100).fill(undefined)
    for (let cls = 0; cls <= 6; cls++) {
      for (let s = 0; s < swarms.length; s++) {
        a.alloc(cls)
        const next: [Chunk, number, number] = [a.chunk!, a.off, cls]
        const prev = swarms[s]
        if (prev !== undefined) a.free(prev[0], prev[1], prev[2])
        swarms[s] = next
      }
    }
    for (const s of swarms) got.push(s!)
    // 100 blocks of 64 records: 6400 records live; everything the swarms outgrew merged back
    assert.equal(a.freeRecords, a.bytes / RECORD_BYTES - 6400)
    assert.equal(a.bytes, CHUNK * RECORD_BYTES, 'still one chunk: outgrown blocks were reused')
    for (const [chunk, off, cls] of got) a.free(chunk, off, cls)
    assert.equal(a.freeRecords, CHUNK)
    a.alloc(17 - 1)
    a.alloc(17 - 1)
    assert.equal(a.bytes, CHUNK * RECORD_BYTES, 'two half-chunk blocks fit in the merged chunk')
  })

  it('gives a block larger than a chunk its own chunk, and forgets it when freed', () => {
    const a = new Arena()
    a.alloc(18)
    assert.equal(a.off, 0)
    assert.equal(a.chunk!.u8.length, (1 << 18) * RECORD_BYTES)
    assert.equal(a.bytes, (1 << 18) * RECORD_BYTES)
    a.free(a.chunk!, 0, 18)
    assert.equal(a.bytes, 0)
    assert.equal(a.freeRecords, 0)
  })

  it('adds chunks as needed and reuses freed blocks first', () => {
    const a = new Arena()
    a.alloc(16); const x = [a.chunk!, a.off] as const
    a.alloc(16)
    a.alloc(16)
    assert.equal(a.bytes, 2 * CHUNK * RECORD_BYTES)
    a.free(x[0], x[1], 16)
    a.alloc(16)
    assert.deepEqual([a.chunk, a.off], [x[0], x[1]])
    assert.equal(a.bytes, 2 * CHUNK * RECORD_BYTES)
    a.clear()
    assert.equal(a.bytes, 0)
    assert.equal(a.freeRecords, 0)
  })
})
