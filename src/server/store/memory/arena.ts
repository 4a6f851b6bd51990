/**
 * Fixed-size peer records in a few large Buffers ("chunks"), handed out in blocks of 2^k records.
 *
 * Why: one JS object per peer costs ~200 bytes; a 32-byte record in a shared Buffer costs 32. A
 * swarm owns one block and grows or shrinks by moving to a block of the next size class (the copy
 * is amortised like an array's). Freed blocks go to a free list per size class and are reused by
 * the next swarm of that class; they are not merged (a workload whose swarm sizes drift keeps some
 * slack in the wrong classes — bounded by the peak it once had).
 *
 * Chunks are CHUNK_RECORDS records (4 MiB), allocated as the store grows, so the slack of the arena
 * itself is at most one chunk; a block larger than a chunk gets a chunk of its own.
 */
export const RECORD_BYTES = 32
/** Records per chunk: 2^17 × 32 B = 4 MiB. */
const CHUNK_RECORDS = 1 << 17

export class Chunk {
  readonly u8: Buffer
  readonly u16: Uint16Array
  readonly u32: Uint32Array
  /** Records handed out by bump allocation. */
  used = 0
  constructor (readonly records: number) {
    // Zeroed: a record's unused peer id bytes are never read, but keep dumps deterministic.
    this.u8 = Buffer.alloc(records * RECORD_BYTES)
    this.u16 = new Uint16Array(this.u8.buffer, this.u8.byteOffset, records * (RECORD_BYTES >> 1))
    this.u32 = new Uint32Array(this.u8.buffer, this.u8.byteOffset, records * (RECORD_BYTES >> 2))
  }
}

export class Arena {
  /** Where the last `alloc` put its block. Two fields instead of a returned object: no allocation. */
  chunk: Chunk | undefined
  off = 0
  private current: Chunk | undefined
  private readonly freeChunks: Chunk[][] = []
  private readonly freeOffs: number[][] = []
  /** Bytes of all chunks (for tests and the memory probe). */
  bytes = 0

  /** A block of 2^cls records, in `this.chunk` at record `this.off`. */
  alloc (cls: number): void {
    const fc = this.freeChunks[cls]
    if (fc !== undefined && fc.length > 0) {
      this.chunk = fc.pop()
      this.off = this.freeOffs[cls].pop()!
      return
    }
    const size = 1 << cls
    if (size >= CHUNK_RECORDS) {
      const own = new Chunk(size)
      own.used = size
      this.bytes += size * RECORD_BYTES
      this.chunk = own
      this.off = 0
      return
    }
    let cur = this.current
    if (cur === undefined || cur.records - cur.used < size) {
      if (cur !== undefined) this.spill(cur)
      cur = this.current = new Chunk(CHUNK_RECORDS)
      this.bytes += CHUNK_RECORDS * RECORD_BYTES
    }
    this.chunk = cur
    this.off = cur.used
    cur.used += size
  }

  free (chunk: Chunk, off: number, cls: number): void {
    let fc = this.freeChunks[cls]
    if (fc === undefined) {
      for (let c = this.freeChunks.length; c <= cls; c++) { this.freeChunks.push([]); this.freeOffs.push([]) }
      fc = this.freeChunks[cls]
    }
    fc.push(chunk)
    this.freeOffs[cls].push(off)
  }

  /** Records held in free lists (fragmentation, for tests). */
  freeRecords (): number {
    let n = 0
    for (let c = 0; c < this.freeChunks.length; c++) n += this.freeChunks[c].length << c
    return n
  }

  /** The unused tail of a chunk we stop bumping in becomes free blocks, largest first. */
  private spill (cur: Chunk): void {
    let left = cur.records - cur.used
    for (let cls = 30; cls >= 0 && left > 0; cls--) {
      const size = 1 << cls
      if (size > left) continue
      this.free(cur, cur.used, cls)
      cur.used += size
      left -= size
    }
  }

  clear (): void {
    this.current = undefined
    this.chunk = undefined
    this.freeChunks.length = 0
    this.freeOffs.length = 0
    this.bytes = 0
  }
}
